//! The model: one arena, a fixed schedule over it, and the safe API.
//!
//! The schedule for k hidden layers (`A_0 = X`, `A_l = H_l`):
//!
//! ```text
//! forward   for l in 1..=k:  H_l = ReLU(A_{l-1} W_l^T + b_l)        dense_relu
//!           Yhat = H_k W_o^T + b_o        (m = 1: fused into layer k's pass, else head_forward)
//! backward  dY = (2/n)(Yhat - Y), L = sum (Yhat - Y)^2 / n          loss_grad
//!           gW_o, gb_o, dZ_k = (dY W_o) * [H_k > 0]                head_backward
//!           for l in k..=1:  gW_l = dZ_l^T A_{l-1}, gb_l = sum dZ_l  weight_grad
//!                            dZ_{l-1} = (dZ_l W_l) * [H_{l-1} > 0]  input_grad (l > 1)
//! step      theta' = theta - lr * g into the other parameter buffer; flip if all finite
//! ```
//!
//! Every public method validates all of its input before it writes anything, so a
//! refused call leaves parameters, gradients, and the kept forward as they were.
//! The one exception is a non-finite loss or update found inside `train_step` after
//! its forward pass: parameters and gradients stay, but the kept forward is dropped
//! (except on the one-hidden-layer one-row path, whose forward stays in registers).

use core::ptr::NonNull;
use std::alloc::Layout;

use crate::config::{Config, Isa, Loss};
use crate::init;
use crate::kernels::row::{OneHiddenStep, RowCtx, RowTrain};
use crate::kernels::{
    self, put_grad1, DenseArgs, ForwardRowFn, Fused, HeadArgs, HeadBackArgs, HeadOne,
    InputGradArgs, Kernels, TrainOneHiddenFn, TrainRowFn, UpdateArgs, WeightGradArgs,
};
use crate::layout::{Plan, ALIGN, PANEL};
use crate::optim::{clip_scale, Optimizer, Update};

use crate::last_error::refuse;
use crate::Error;

/// The header at the start of the arena.
pub(crate) struct State {
    plan: Plan,
    config: Config,
    kernels: &'static Kernels,
    /// Start of the arena (this header).
    base: *mut u8,
    /// The layout to free with, when flowmlp allocated the arena.
    owned: Option<Layout>,
    /// Which copy of the parameters, gradients, optimizer state and kept input is current.
    params: usize,
    grads: usize,
    state: usize,
    x: usize,
    optimizer: Optimizer,
    /// Global gradient-norm limit; 0 = no clipping.
    clip_norm: f32,
    /// Plain SGD without clipping: the train step may fuse the update into the
    /// backward pass (kept in step with `optimizer` and `clip_norm`).
    fusable: bool,
    /// Optimizer steps taken since the state was reset.
    steps: u64,
    /// Rows of the kept forward pass; 0 when none.
    fwd_n: usize,
    /// The current gradients are the factors in `plan.factors[grads]`, not the buffer
    /// (after a one-row one-hidden-layer `train_step`; see `Model::factor_grad`).
    lazy: bool,
    /// The one-row forward kernel for this plan (`None`: the layer kernels).
    row_forward: Option<ForwardRowFn>,
    /// The one-row fused SGD train step for this plan while `fusable`, else `None`
    /// (also `None` for the one-hidden-layer network, which has `one_hidden_train`).
    row_train: Option<TrainRowFn>,
    /// The one-hidden-layer one-row fused SGD train step while `fusable`, else `None`; it
    /// leaves the gradients as factors.
    one_hidden_train: Option<TrainOneHiddenFn>,
}

impl State {
    /// Recompute `fusable` and the one-row train steps after the optimizer or the
    /// clipping changed.
    fn refresh_fusable(&mut self) {
        self.fusable = self.optimizer.is_plain_sgd() && self.clip_norm == 0.0;
        let (row, one_hidden) = match self.plan.one_hidden {
            true => (None, self.kernels.train_one_hidden),
            false => (self.kernels.train_row, None),
        };
        self.row_train = row.filter(|_| self.fusable);
        self.one_hidden_train = one_hidden.filter(|_| self.fusable);
    }

    /// The fused SGD step: the update of each gradient goes from the current into the
    /// spare parameters, at offsets from the spare gradient buffer (see `Fused`).
    fn fused(&self, lr: f32) -> Fused {
        let gbuf = self.plan.grads[1 - self.grads] as isize;
        // Sections are 64-byte aligned: the byte difference divides exactly.
        let off = |buf: usize| (buf as isize - gbuf) >> 2;
        Fused {
            lr,
            cur: off(self.plan.params[self.params]),
            next: off(self.plan.params[1 - self.params]),
        }
    }

    /// A fused SGD step succeeded: its gradients and parameters, written to the spare
    /// buffers, become current; `lazy` when the gradients are kept as factors.
    fn commit_fused(&mut self, lazy: bool) {
        self.grads = 1 - self.grads;
        self.params = 1 - self.params;
        self.steps += 1;
        self.lazy = lazy;
    }

    /// Pointer to the f32 section at byte offset `off`.
    fn ptr(&self, off: usize) -> *mut f32 {
        // SAFETY: every offset in the plan lies inside the arena.
        unsafe { self.base.add(off) as *mut f32 }
    }
}

/// A multilayer perceptron d -> h_1 .. h_k -> m with everything in one allocation.
///
/// Not for concurrent use while training (`&mut self`); distinct models are
/// independent. No method allocates after `Model::new`.
pub struct Model {
    state: NonNull<State>,
}

// SAFETY: the model owns its arena exclusively; `&self` methods only read it.
unsafe impl Send for Model {}
// SAFETY: shared references only read the arena.
unsafe impl Sync for Model {}

impl Drop for Model {
    fn drop(&mut self) {
        let s = self.st();
        if let Some(layout) = s.owned {
            let base = s.base;
            // SAFETY: `base` was returned by `alloc_zeroed(layout)` in `Model::new`, and
            // nothing in the header needs dropping.
            unsafe { std::alloc::dealloc(base, layout) };
        }
    }
}

impl core::fmt::Debug for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.st().config)
            .field("isa", &self.isa())
            .finish()
    }
}

/// Workspace bytes of `predict` beyond its rows: alignment and rounding of its three
/// buffers to 64 bytes.
const PREDICT_SLACK: usize = 4 * ALIGN;

/// Values that `all_finite` checks inline rather than through a kernel call.
const SMALL: usize = 16;

/// Bit 31 set when `v` is infinite or NaN, without a branch: an all-ones exponent
/// carries into it.
#[inline(always)]
fn nonfinite_bit(v: f32) -> u32 {
    ((v.to_bits() & 0x7f80_0000) + 0x0080_0000) & 0x8000_0000
}

/// A buffer of the wrong length (`want` floats).
#[cold]
fn wrong_len(name: &str, want: usize) -> Error {
    refuse!(InvalidArgument, "{name} must hold {want} values")
}

/// Learning rates must be finite and not negative.
fn check_lr(lr: f32) -> Result<(), Error> {
    // Two compares, both false for NaN.
    if (0.0..=f32::MAX).contains(&lr) {
        Ok(())
    } else {
        Err(refuse!(
            InvalidArgument,
            "learning_rate must be finite and >= 0, got {lr}"
        ))
    }
}

impl Model {
    /// Validate `config`, allocate the arena, and initialize the parameters.
    pub fn new(config: &Config) -> Result<Model, Error> {
        // The config first, then the kernel set: the C API reports them in that order.
        let plan = Plan::new(config, core::mem::size_of::<State>())?;
        let kernels = kernels::select(config.isa)?;
        // Sizes past isize::MAX fit size_t, but no allocator serves them.
        let layout = Layout::from_size_align(plan.total, ALIGN).map_err(|_| Error::OutOfMemory)?;
        // SAFETY: the layout has a non-zero size (the header alone is non-empty).
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        if base.is_null() {
            return Err(Error::OutOfMemory);
        }
        // SAFETY: `base` is a fresh, zeroed, 64-byte aligned block of `plan.total`
        // bytes, which starts with room for the header.
        Ok(unsafe { Model::init_at(base, Some(layout), plan, *config, kernels) })
    }

    /// A model on a given kernel table (tests of tables that detection never returns).
    #[cfg(test)]
    pub(crate) fn with_kernels(config: &Config, kernels: &'static Kernels) -> Result<Model, Error> {
        let plan = Plan::new(config, core::mem::size_of::<State>())?;
        // Sizes past isize::MAX fit size_t, but no allocator serves them.
        let layout = Layout::from_size_align(plan.total, ALIGN).map_err(|_| Error::OutOfMemory)?;
        // SAFETY: non-zero size, as in `new`.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        if base.is_null() {
            return Err(Error::OutOfMemory);
        }
        // SAFETY: as in `new`.
        Ok(unsafe { Model::init_at(base, Some(layout), plan, *config, kernels) })
    }

    /// Bytes of the one allocation a model with `config` needs (the header included),
    /// for `Model::new_in`. Alignment: 64 bytes.
    pub fn arena_size_for(config: &Config) -> Result<usize, Error> {
        Ok(Plan::new(config, core::mem::size_of::<State>())?.total)
    }

    /// Build a model inside caller-owned memory: the whole model, header included,
    /// lives in `memory[..size]` and dropping it frees nothing.
    ///
    /// Refuses memory that is not 64-byte aligned or smaller than
    /// `arena_size_for(config)` with `InvalidArgument`.
    ///
    /// # Safety
    /// `memory` is valid for reads and writes of `size` bytes, is used by nothing else
    /// while the model lives, and outlives it.
    pub unsafe fn new_in(config: &Config, memory: *mut u8, size: usize) -> Result<Model, Error> {
        let plan = Plan::new(config, core::mem::size_of::<State>())?;
        let kernels = kernels::select(config.isa)?;
        if memory.is_null() {
            return Err(refuse!(NullPointer, "memory is NULL"));
        }
        if !(memory as usize).is_multiple_of(ALIGN) {
            return Err(refuse!(
                InvalidArgument,
                "memory = {memory:p} must be aligned to {ALIGN} bytes"
            ));
        }
        if size < plan.total {
            return Err(refuse!(
                InvalidArgument,
                "size = {size} bytes is less than the model needs, {} (flowmlp_arena_size)",
                plan.total
            ));
        }
        // SAFETY: the caller guarantees `size >= plan.total` writable bytes.
        unsafe { core::ptr::write_bytes(memory, 0, plan.total) };
        // SAFETY: zeroed, aligned, large enough, and exclusively ours (caller's promise).
        Ok(unsafe { Model::init_at(memory, None, plan, *config, kernels) })
    }

    /// Write the header and the initial parameters into zeroed memory.
    ///
    /// # Safety
    /// `base` is valid for `plan.total` bytes, zeroed, aligned to `ALIGN`, and not
    /// used by anything else for the model's lifetime.
    unsafe fn init_at(
        base: *mut u8,
        owned: Option<Layout>,
        plan: Plan,
        mut config: Config,
        kernels: &'static Kernels,
    ) -> Model {
        config.isa = kernels.isa;
        let mut state = State {
            plan,
            config,
            kernels,
            base,
            owned,
            params: 0,
            grads: 0,
            state: 0,
            x: 0,
            optimizer: Optimizer::SGD,
            clip_norm: 0.0,
            fusable: true,
            steps: 0,
            fwd_n: 0,
            lazy: false,
            row_forward: if plan.one_hidden {
                kernels.forward_one_hidden
            } else {
                kernels.forward_row
            },
            row_train: None,
            one_hidden_train: None,
        };
        state.refresh_fusable();
        // SAFETY: the header fits at the start of the block and is aligned (ALIGN >=
        // align_of::<State>()).
        unsafe { (base as *mut State).write(state) };
        let mut model = Model {
            // SAFETY: base is non-null.
            state: unsafe { NonNull::new_unchecked(base as *mut State) },
        };
        model.init_params();
        model
    }

    fn init_params(&mut self) {
        let plan = self.st().plan;
        let mut rng = init::SplitMix64::new(self.st().config.seed);
        let p = self.params_mut();
        plan.for_each_index(|_, int, l, is_bias| {
            p[int] = if is_bias {
                0.0
            } else {
                let std = init::weight_std(plan.layers[l].inputs, l == plan.n_hidden);
                (rng.normal() * std) as f32
            };
        });
    }

    fn st(&self) -> &State {
        // SAFETY: the header was written at creation and lives as long as `self`.
        unsafe { self.state.as_ref() }
    }

    fn st_mut(&mut self) -> &mut State {
        // SAFETY: as in `st`; `&mut self` makes the access exclusive.
        unsafe { self.state.as_mut() }
    }

    fn params_ptr(&self) -> *mut f32 {
        let s = self.st();
        s.ptr(s.plan.params[s.params])
    }

    fn params(&self) -> &[f32] {
        // SAFETY: the current parameter buffer holds `int_len` floats.
        unsafe { core::slice::from_raw_parts(self.params_ptr(), self.st().plan.int_len) }
    }

    fn params_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `params`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.params_ptr(), self.st().plan.int_len) }
    }

    fn grads(&self) -> &[f32] {
        let s = self.st();
        // SAFETY: the current gradient buffer holds `int_len` floats.
        unsafe { core::slice::from_raw_parts(s.ptr(s.plan.grads[s.grads]), s.plan.int_len) }
    }

    /// The configuration the model was created with (`isa` resolved to the set in use).
    pub fn config(&self) -> &Config {
        &self.st().config
    }

    /// The kernel set in use.
    pub fn isa(&self) -> Isa {
        self.st().kernels.isa
    }

    /// Length of the flat parameter (and gradient) array.
    pub fn param_count(&self) -> usize {
        self.st().plan.flat_len
    }

    /// Bytes of the model's one allocation (header, parameters, gradients,
    /// activations and scratch).
    pub fn arena_size(&self) -> usize {
        self.st().plan.total
    }

    /// Rows in the batch of the kept forward pass, if there is one.
    pub fn kept_rows(&self) -> Option<usize> {
        Some(self.st().fwd_n).filter(|&n| n > 0)
    }

    /// Rows of `x` (`n x d`), checked against `max_batch`.
    fn rows_of(&self, x_len: usize) -> Result<usize, Error> {
        let d = self.st().plan.inputs;
        // One row is the embedded loop's case: skip the division.
        if x_len == d {
            return Ok(1);
        }
        if x_len == 0 || !x_len.is_multiple_of(d) {
            return Err(refuse!(
                InvalidArgument,
                "x.len() = {x_len} is not a positive multiple of n_inputs ({d})"
            ));
        }
        let n = x_len / d;
        if n > self.st().plan.max_batch {
            return Err(Error::BatchTooLarge);
        }
        Ok(n)
    }

    fn all_finite(&self, v: &[f32]) -> bool {
        // A few values are checked faster here than through a kernel call.
        if v.len() <= SMALL {
            return v.iter().fold(0, |acc, x| acc | nonfinite_bit(*x)) == 0;
        }
        // SAFETY: the slice is valid for its length.
        unsafe { (self.st().kernels.all_finite)(v.as_ptr(), v.len()) }
    }

    /// Predict `n = x.len() / d` rows and keep the activations for `backward`.
    /// `y_out`, when given, receives the `n x m` predictions.
    pub fn forward(&mut self, x: &[f32], y_out: Option<&mut [f32]>) -> Result<(), Error> {
        let s = self.st();
        // One row, the embedded loop's case: one row-kernel call.
        if let (true, Some(row)) = (x.len() == s.plan.inputs, s.row_forward) {
            return self.forward_one(row, x, y_out);
        }
        self.forward_batch(x, y_out)
    }

    /// `forward` past the one-row kernel; apart, so that the embedded loop's call does
    /// not pay for this path's registers.
    #[inline(never)]
    fn forward_batch(&mut self, x: &[f32], y_out: Option<&mut [f32]>) -> Result<(), Error> {
        let n = self.rows_of(x.len())?;
        let s = self.st();
        let m = s.plan.outputs;
        if y_out.as_ref().is_some_and(|y| y.len() != n * m) {
            return Err(wrong_len("y_out", n * m));
        }
        // Copy into the spare input buffer, checking as we go: the kept forward stays
        // intact if x is refused.
        let spare = 1 - s.x;
        let xbuf = s.ptr(s.plan.x[spare]);
        // SAFETY: the spare x section holds max_batch * d >= x.len() floats and does not
        // overlap the caller's slice.
        if !unsafe { (s.kernels.copy_finite)(x.as_ptr(), xbuf, x.len()) } {
            return Err(Error::NonFinite);
        }
        // SAFETY: x has been copied into the arena; n <= max_batch.
        unsafe { self.run_forward(xbuf, n) };
        let st = self.st_mut();
        st.x = spare;
        st.fwd_n = n;
        if let Some(y) = y_out {
            let s = self.st();
            // SAFETY: yhat holds n * m values just written.
            y.copy_from_slice(unsafe { core::slice::from_raw_parts(s.ptr(s.plan.yhat), n * m) });
        }
        Ok(())
    }

    /// `forward` of one row (`x.len() == d`) through the ISA's row kernel, which also
    /// copies x into the spare input buffer, checking it first.
    #[inline]
    fn forward_one(
        &mut self,
        row: ForwardRowFn,
        x: &[f32],
        y_out: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let s = self.st();
        let m = s.plan.outputs;
        if y_out.as_ref().is_some_and(|y| y.len() != m) {
            return Err(wrong_len("y_out", m));
        }
        let spare = 1 - s.x;
        let ctx = RowCtx {
            plan: &s.plan,
            base: s.base,
            params: self.params_ptr(),
            x: x.as_ptr(),
            keep: s.ptr(s.plan.x[spare]),
        };
        // SAFETY: the arena is live; x holds one row, and the spare x section as much,
        // apart from the caller's slice.
        if !unsafe { row(&ctx) } {
            return Err(Error::NonFinite);
        }
        let st = self.st_mut();
        st.x = spare;
        st.fwd_n = 1;
        if let Some(y) = y_out {
            let s = self.st();
            // SAFETY: yhat holds the m predictions just written.
            let yhat = unsafe { core::slice::from_raw_parts(s.ptr(s.plan.yhat), m) };
            if let ([one], [v]) = (&mut *y, yhat) {
                // One prediction: no memcpy call.
                *one = *v;
            } else {
                y.copy_from_slice(yhat);
            }
        }
        Ok(())
    }

    /// Gradients of the loss of the kept forward against targets `y` (`n x m`);
    /// returns the loss. Replaces the gradients only on success.
    pub fn backward(&mut self, y: &[f32]) -> Result<f32, Error> {
        let s = self.st();
        let n = s.fwd_n;
        if n == 0 {
            return Err(Error::NoForward);
        }
        if y.len() != n * s.plan.outputs {
            return Err(wrong_len("y", n * s.plan.outputs));
        }
        if !self.all_finite(y) {
            return Err(Error::NonFinite);
        }
        let x = s.ptr(s.plan.x[s.x]);
        // SAFETY: the kept forward's input and activations are in the arena for n rows.
        let loss = unsafe { self.run_backward(x, n, y.as_ptr(), None)? };
        let st = self.st_mut();
        st.grads = 1 - st.grads;
        st.lazy = false;
        Ok(loss)
    }

    /// Bytes of workspace `predict` and `classify` need to process `rows` rows at a time
    /// (any `rows`, also beyond `max_batch`; a smaller workspace processes fewer rows
    /// at a time).
    pub fn predict_workspace_size(&self, rows: usize) -> usize {
        let per_row = self.predict_row_bytes();
        rows.max(1)
            .saturating_mul(per_row)
            .saturating_add(PREDICT_SLACK)
    }

    #[cold]
    fn workspace_too_small(&self, len: usize) -> Error {
        refuse!(
            InvalidArgument,
            "workspace_len = {len} bytes is too small for one row: \
             flowmlp_predict_workspace_size(model, 1) is {}",
            self.predict_workspace_size(1)
        )
    }

    /// Bytes of workspace one row takes: two activation rows of the widest layer, the
    /// head's scratch, and the row's outputs (which `classify` keeps in the workspace).
    fn predict_row_bytes(&self) -> usize {
        let plan = &self.st().plan;
        let max_ld = plan.ld[..plan.n_hidden].iter().copied().max().unwrap_or(0);
        (2 * max_ld + PANEL + plan.outputs) * core::mem::size_of::<f32>()
    }

    /// Inference that only reads the model: `n = x.len() / d` rows (any number, not
    /// limited by `max_batch`) into `y_out` (`n x m`), with activations in the
    /// caller's `workspace` (see `predict_workspace_size`), processed in chunks of as
    /// many rows as the workspace holds. Any number of threads may predict with one
    /// model at once, each with its own workspace, while none trains it.
    pub fn predict(&self, x: &[f32], y_out: &mut [f32], workspace: &mut [u8]) -> Result<(), Error> {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        if x.is_empty() || !x.len().is_multiple_of(d) || y_out.len() != x.len() / d * m {
            return Err(refuse!(
                InvalidArgument,
                "x.len() = {} and y_out.len() = {} are not n x n_inputs ({d}) and \
                 n x n_outputs ({m}) for some n >= 1",
                x.len(),
                y_out.len()
            ));
        }
        let n = x.len() / d;
        let chunk = workspace.len().saturating_sub(PREDICT_SLACK) / self.predict_row_bytes();
        if chunk == 0 {
            return Err(self.workspace_too_small(workspace.len()));
        }
        if !self.all_finite(x) {
            return Err(Error::NonFinite);
        }
        self.predict_passes(x, y_out, workspace, chunk.min(n));
        Ok(())
    }

    /// `predict` on checked arguments, `chunk` rows a pass, where `workspace` holds at
    /// least `PREDICT_SLACK - 4 + chunk * predict_row_bytes()` minus the outputs'
    /// `chunk * m * 4` bytes (it needs 3 x 63 bytes of alignment and rounding).
    fn predict_passes(&self, x: &[f32], y_out: &mut [f32], workspace: &mut [u8], chunk: usize) {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        let n = x.len() / d;
        let act_bytes = chunk * (self.predict_row_bytes() - m * 4);
        assert!(workspace.len() >= PREDICT_SLACK - 4 + act_bytes);
        let max_ld = plan.ld[..plan.n_hidden].iter().copied().max().unwrap_or(0);
        // Carve two activation buffers and the head's scratch, 64-byte aligned.
        let base = workspace.as_mut_ptr();
        let start = base.align_offset(ALIGN);
        let hbytes = (chunk * max_ld * 4).next_multiple_of(ALIGN);
        // SAFETY: start + 2 * hbytes + chunk * PANEL * 4 <= workspace.len(), since
        // PREDICT_SLACK covers the alignment and the rounding.
        let (h0, h1, part) = unsafe {
            let h0 = base.add(start);
            (
                h0 as *mut f32,
                h0.add(hbytes) as *mut f32,
                h0.add(2 * hbytes) as *mut f32,
            )
        };
        let mut i0 = 0;
        while i0 < n {
            let rows = chunk.min(n - i0);
            // SAFETY: the buffers above hold `chunk >= rows` rows each; x and y_out hold
            // rows i0..i0 + rows; the model is only read.
            unsafe {
                self.layers_forward(
                    x.as_ptr().add(i0 * d),
                    rows,
                    |l| if l % 2 == 0 { h0 } else { h1 },
                    y_out.as_mut_ptr().add(i0 * m),
                    part,
                );
            }
            i0 += rows;
        }
    }

    /// `predict`, then the index of the largest output of each row into `classes`
    /// (`x.len() / d` entries; ties go to the lowest index): the class of a
    /// cross-entropy model, reading the model only, so any number of threads may
    /// classify with one model at once, each with its own workspace (of
    /// `predict_workspace_size` bytes; the outputs of a pass stay in it). Errors as
    /// `predict`, plus a `classes` of another length (`InvalidArgument`); on an error
    /// `classes` is unchanged.
    pub fn classify(
        &self,
        x: &[f32],
        classes: &mut [u32],
        workspace: &mut [u8],
    ) -> Result<(), Error> {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        if x.is_empty() || !x.len().is_multiple_of(d) || classes.len() != x.len() / d {
            return Err(refuse!(
                InvalidArgument,
                "x.len() = {} and classes.len() = {} are not n x n_inputs ({d}) and n for \
                 some n >= 1",
                x.len(),
                classes.len()
            ));
        }
        let chunk = workspace.len().saturating_sub(PREDICT_SLACK) / self.predict_row_bytes();
        if chunk == 0 {
            return Err(self.workspace_too_small(workspace.len()));
        }
        // Every row is checked before any class is written.
        if !self.all_finite(x) {
            return Err(Error::NonFinite);
        }
        let chunk = chunk.min(classes.len());
        // A pass's outputs at the end of the workspace (4-byte aligned), the
        // activations before them: `predict_row_bytes` counts both, and the three
        // bytes of alignment come out of PREDICT_SLACK, which is 64 bytes more than
        // the activations' own alignment and rounding need.
        let out_bytes = chunk * m * 4;
        let end = workspace.as_ptr() as usize + workspace.len();
        let split = workspace.len() - out_bytes - (end - out_bytes) % 4;
        let (acts, outputs) = workspace.split_at_mut(split);
        // SAFETY: every bit pattern is a valid f32; `outputs` starts 4-byte aligned and
        // holds at least `out_bytes`, so the middle part is `chunk * m` floats or more.
        let (_, outputs, _) = unsafe { outputs.align_to_mut::<f32>() };
        for (xs, cs) in x.chunks(chunk * d).zip(classes.chunks_mut(chunk)) {
            let y = &mut outputs[..cs.len() * m];
            self.predict_passes(xs, y, acts, chunk);
            argmax_rows(y, m, cs);
        }
        Ok(())
    }

    /// `forward`, then the index of the largest output of each row into `classes`
    /// (`n` entries; ties go to the lowest index): the class for cross-entropy models.
    /// Keeps the forward; `classify` is the read-only form.
    pub fn predict_class(&mut self, x: &[f32], classes: &mut [u32]) -> Result<(), Error> {
        let n = self.rows_of(x.len())?;
        if classes.len() != n {
            return Err(wrong_len("classes", n));
        }
        self.forward(x, None)?;
        let s = self.st();
        let m = s.plan.outputs;
        // SAFETY: the forward pass just wrote n x m predictions.
        let yhat = unsafe { core::slice::from_raw_parts(s.ptr(s.plan.yhat), n * m) };
        argmax_rows(yhat, m, classes);
        Ok(())
    }

    /// One optimizer step with the current gradients (plain SGD, `theta <- theta - lr *
    /// grad`, unless `set_optimizer` chose another). Refused with `NonFinite`, changing
    /// nothing, when any updated parameter or state would not be finite. Drops the kept
    /// forward.
    pub fn step(&mut self, learning_rate: f32) -> Result<(), Error> {
        check_lr(learning_rate)?;
        self.materialize_grads();
        self.apply_update(learning_rate, self.st().grads)
    }

    /// Form the current gradients in their buffer when they are kept as factors. The
    /// gradients keep their values: this changes only how they are stored.
    fn materialize_grads(&mut self) {
        if !self.st().lazy {
            return;
        }
        let s = self.st();
        let len = s.plan.int_len;
        let g = s.ptr(s.plan.grads[s.grads]);
        for int in 0..len {
            let v = self.factor_grad(int);
            // SAFETY: the current gradient buffer holds int_len floats, and
            // `factor_grad` reads only the factor sections, which it does not overlap.
            unsafe { *g.add(int) = v };
        }
        self.st_mut().lazy = false;
    }

    /// The current gradient at internal index `int` from the factors of a one-row
    /// one-hidden-layer step (`Plan::factors`): `gW[j][k] = dz[j] x[k]`, `gb = dz`,
    /// `gW_o[j] = dy h[j]`, `gb_o = dy`; padding reads as 0 (dZ and H are 0 there).
    /// The kernels form the same products, so the values match an eager step's.
    fn factor_grad(&self, int: usize) -> f32 {
        let s = self.st();
        let plan = &s.plan;
        let (lp, out) = (&plan.layers[0], &plan.layers[1]);
        let (fh, fdz, fdy) = plan.factor_offsets();
        let f = s.ptr(plan.factors[s.grads]);
        // SAFETY: the factor section holds x, H, dZ and dy at these offsets, and every
        // index below stays inside its part (units < ld, inputs < d).
        unsafe {
            let dy = *f.add(fdy);
            if int >= out.b {
                if int == out.b {
                    dy
                } else {
                    0.0
                }
            } else if int >= out.w {
                dy * *f.add(fh + (int - out.w))
            } else if int >= lp.b {
                *f.add(fdz + (int - lp.b))
            } else {
                let off = int - lp.w;
                let (panel, rem) = (off / (lp.inputs * PANEL), off % (lp.inputs * PANEL));
                *f.add(rem / PANEL) * *f.add(fdz + panel * PANEL + rem % PANEL)
            }
        }
    }

    /// Choose the optimizer used by `step` and `train_step` (plain SGD by default).
    /// Starts from fresh state (zero momentum and moments, step count 0), as a new
    /// PyTorch optimizer would; allocates nothing (the state lives in the arena).
    pub fn set_optimizer(&mut self, optimizer: Optimizer) -> Result<(), Error> {
        optimizer.validate()?;
        let s = self.st();
        let (buf, len) = (s.ptr(s.plan.state[s.state]), 2 * s.plan.int_len);
        // SAFETY: the current state buffer holds 2 * int_len floats.
        unsafe { core::ptr::write_bytes(buf, 0, len) };
        let s = self.st_mut();
        s.optimizer = optimizer;
        s.steps = 0;
        s.refresh_fusable();
        Ok(())
    }

    /// The optimizer in use.
    pub fn optimizer(&self) -> Optimizer {
        self.st().optimizer
    }

    /// Clip the gradients by their global L2 norm before each step, as
    /// `torch.nn.utils.clip_grad_norm_(max_norm)` does; 0 turns clipping off.
    pub fn set_grad_clip(&mut self, max_norm: f32) -> Result<(), Error> {
        if !(max_norm.is_finite() && max_norm >= 0.0) {
            return Err(refuse!(
                InvalidArgument,
                "max_norm must be finite and >= 0 (0: no clipping), got {max_norm}"
            ));
        }
        let s = self.st_mut();
        s.clip_norm = max_norm;
        s.refresh_fusable();
        Ok(())
    }

    /// Optimizer steps taken since the optimizer was set (Adam's `t`).
    pub fn optimizer_steps(&self) -> u64 {
        self.st().steps
    }

    /// Whether the train step may fuse the update into the backward pass.
    fn fusable(&self) -> bool {
        self.st().fusable
    }

    /// One optimizer step from gradient buffer `g` into the spare parameters (and
    /// state); make them current only if every new value is finite.
    fn apply_update(&mut self, lr: f32, g: usize) -> Result<(), Error> {
        if self.fusable() {
            return self.apply_sgd(lr, g);
        }
        let s = self.st();
        let plan = &s.plan;
        let (cur, st) = (s.params, s.state);
        let len = plan.int_len;
        let gp = s.ptr(plan.grads[g]);
        let scale = if s.clip_norm > 0.0 {
            // SAFETY: the gradient buffer holds int_len floats.
            clip_scale(s.clip_norm, unsafe { (s.kernels.sum_sq)(gp, len) })
        } else {
            1.0
        };
        let t = s.steps + 1;
        let (s1, o1) = (s.ptr(plan.state[st]), s.ptr(plan.state[1 - st]));
        let args = UpdateArgs {
            p: s.ptr(plan.params[cur]),
            g: gp,
            s1,
            // SAFETY: each state buffer holds 2 * int_len floats.
            s2: unsafe { s1.add(len) },
            out_p: s.ptr(plan.params[1 - cur]),
            out_s1: o1,
            // SAFETY: as above.
            out_s2: unsafe { o1.add(len) },
            len,
            first: t == 1,
            update: Update::new(&s.optimizer, lr, t, scale),
        };
        // SAFETY: every buffer holds len floats and the input and output buffers are
        // disjoint.
        if !unsafe { (s.kernels.update)(&args) } {
            return Err(Error::Diverged);
        }
        let s = self.st_mut();
        s.params = 1 - cur;
        s.state = 1 - st;
        s.steps = t;
        s.fwd_n = 0;
        Ok(())
    }

    /// `forward` + `backward` + `step` on one batch, fused; returns the loss. On any
    /// error parameters and gradients are unchanged; once the forward pass has run
    /// (a non-finite loss or a refused update) the kept forward is gone, except after
    /// the one-hidden-layer one-row kernel, which does not touch it.
    pub fn train_step(&mut self, x: &[f32], y: &[f32], learning_rate: f32) -> Result<f32, Error> {
        let s = self.st();
        // One row of the one-hidden-layer network (one output) with plain SGD, the embedded
        // loop's case: one kernel call, which checks x and y itself.
        if let (true, Some(one_hidden)) = (x.len() == s.plan.inputs, s.one_hidden_train) {
            if y.len() != 1 {
                return Err(wrong_len("y", 1));
            }
            check_lr(learning_rate)?;
            return self.train_one_hidden(one_hidden, x, y, learning_rate);
        }
        self.train_batch(x, y, learning_rate)
    }

    /// `train_step` past the one-hidden-layer one-row kernel; apart, so that the embedded
    /// loop's call does not pay for this path's registers.
    #[inline(never)]
    fn train_batch(&mut self, x: &[f32], y: &[f32], learning_rate: f32) -> Result<f32, Error> {
        let n = self.rows_of(x.len())?;
        if y.len() != n * self.st().plan.outputs {
            return Err(wrong_len("y", n * self.st().plan.outputs));
        }
        check_lr(learning_rate)?;
        if !self.all_finite(x) || !self.all_finite(y) {
            return Err(Error::NonFinite);
        }
        // The activations are overwritten from here on, and they belong to the caller's x.
        self.st_mut().fwd_n = 0;
        // One row with plain SGD: one row-kernel call.
        if let (1, Some(row)) = (n, self.st().row_train) {
            return self.train_row(row, x, y, learning_rate);
        }
        if !self.fusable() {
            // Gradients into the spare buffer, then the optimizer from there.
            // SAFETY: x holds n rows (n <= max_batch) and y n x m targets, both checked.
            let loss = unsafe {
                self.run_forward(x.as_ptr(), n);
                self.run_backward(x.as_ptr(), n, y.as_ptr(), None)?
            };
            let spare = 1 - self.st().grads;
            self.apply_update(learning_rate, spare)?;
            let s = self.st_mut();
            s.grads = spare;
            s.lazy = false;
            return Ok(loss);
        }
        // SAFETY: x holds n rows (n <= max_batch) and y n x m targets, both checked.
        let loss = unsafe {
            self.run_forward(x.as_ptr(), n);
            // SGD is applied as each gradient is produced, into the spare parameters.
            self.run_backward(x.as_ptr(), n, y.as_ptr(), Some(learning_rate))?
        };
        // Every new value was finite: make the new gradients and parameters current.
        self.st_mut().commit_fused(false);
        Ok(loss)
    }

    /// `train_step` for one row through the ISA's one-call row kernel.
    #[inline]
    fn train_row(&mut self, row: TrainRowFn, x: &[f32], y: &[f32], lr: f32) -> Result<f32, Error> {
        let s = self.st();
        let plan = &s.plan;
        let ctx = RowCtx {
            plan,
            base: s.base,
            params: self.params_ptr(),
            x: x.as_ptr(),
            keep: core::ptr::null_mut(),
        };
        let train = RowTrain {
            y: y.as_ptr(),
            grads: s.ptr(plan.grads[1 - s.grads]),
            fused: Some(s.fused(lr)),
        };
        // SAFETY: the arena is live, x holds one row and y its m targets (checked).
        let (loss, ok) = unsafe { row(&ctx, &train) };
        if !ok {
            return Err(self.refusal(x, y));
        }
        self.st_mut().commit_fused(false);
        Ok(loss)
    }

    /// `train_step` for one row of the one-hidden-layer network: the kernel writes only the
    /// spare parameters and factors, so a refused step changes nothing, the kept
    /// forward pass included.
    #[inline]
    fn train_one_hidden(
        &mut self,
        f: TrainOneHiddenFn,
        x: &[f32],
        y: &[f32],
        lr: f32,
    ) -> Result<f32, Error> {
        let s = self.st();
        let plan = &s.plan;
        let step = OneHiddenStep {
            plan,
            cur: s.ptr(plan.params[s.params]),
            next: s.ptr(plan.params[1 - s.params]),
            factors: s.ptr(plan.factors[1 - s.grads]),
            x: x.as_ptr(),
            y: y.as_ptr(),
            lr,
        };
        // SAFETY: the arena is live, x holds one row and y its target (checked lengths).
        let (loss, ok) = unsafe { f(&step) };
        if !ok {
            return Err(self.refusal(x, y));
        }
        let s = self.st_mut();
        s.commit_fused(true);
        // The kept activations belong to the old parameters.
        s.fwd_n = 0;
        Ok(loss)
    }

    /// Why a one-row kernel that checks the caller's row and its own results in one
    /// pass refused the step: a NaN or infinity in `x` or `y` (`NonFinite`), or else
    /// a non-finite loss, gradient or update (`Diverged`). Only refusals pay for this.
    #[cold]
    fn refusal(&self, x: &[f32], y: &[f32]) -> Error {
        if self.all_finite(x) && self.all_finite(y) {
            Error::Diverged
        } else {
            Error::NonFinite
        }
    }

    /// Copy the parameters out in the flat layout; `out.len()` must be `param_count`.
    pub fn get_params(&self, out: &mut [f32]) -> Result<(), Error> {
        self.export(self.params(), out)
    }

    /// Copy the gradients of the last `backward` out, in the flat layout.
    pub fn get_grads(&self, out: &mut [f32]) -> Result<(), Error> {
        if !self.st().lazy {
            return self.export(self.grads(), out);
        }
        if out.len() != self.param_count() {
            return Err(wrong_len("out", self.param_count()));
        }
        self.st()
            .plan
            .for_each_index(|flat, int, _, _| out[flat] = self.factor_grad(int));
        Ok(())
    }

    /// Replace the parameters (flat layout, all finite). Drops the kept forward.
    pub fn set_params(&mut self, values: &[f32]) -> Result<(), Error> {
        if values.len() != self.param_count() {
            return Err(wrong_len("values", self.param_count()));
        }
        if !self.all_finite(values) {
            return Err(Error::NonFinite);
        }
        let plan = self.st().plan;
        let p = self.params_mut();
        plan.for_each_index(|flat, int, _, _| p[int] = values[flat]);
        self.st_mut().fwd_n = 0;
        Ok(())
    }

    fn export(&self, internal: &[f32], out: &mut [f32]) -> Result<(), Error> {
        if out.len() != self.param_count() {
            return Err(wrong_len("out", self.param_count()));
        }
        self.st()
            .plan
            .for_each_index(|flat, int, _, _| out[flat] = internal[int]);
        Ok(())
    }

    /// SGD from gradient buffer `g` into the spare parameters; flip if all finite.
    fn apply_sgd(&mut self, lr: f32, g: usize) -> Result<(), Error> {
        let s = self.st();
        let (plan, cur) = (&s.plan, s.params);
        let (src, dst) = (s.ptr(plan.params[cur]), s.ptr(plan.params[1 - cur]));
        let g = s.ptr(plan.grads[g]);
        // SAFETY: the three buffers each hold int_len floats and are disjoint.
        if !unsafe { (s.kernels.sgd)(src, g, dst, plan.int_len, lr) } {
            return Err(Error::Diverged);
        }
        let s = self.st_mut();
        s.params = 1 - cur;
        s.steps += 1;
        s.fwd_n = 0;
        Ok(())
    }

    /// All layers for `n` rows of `x` (row stride d) into the activation buffers.
    ///
    /// # Safety
    /// `x` is valid for `n * d` floats and `1 <= n <= max_batch`.
    unsafe fn run_forward(&self, x: *const f32, n: usize) {
        let s = self.st();
        let plan = &s.plan;
        let p = self.params_ptr();
        if let (1, Some(row)) = (n, s.row_forward) {
            // SAFETY: the arena is live and x holds one row.
            unsafe {
                row(&RowCtx {
                    plan,
                    base: s.base,
                    params: p,
                    x,
                    keep: core::ptr::null_mut(),
                })
            };
            return;
        }
        // SAFETY: the arena's activation, prediction and scratch sections are sized for
        // max_batch >= n rows.
        unsafe {
            self.layers_forward(
                x,
                n,
                |l| s.ptr(plan.h[l]),
                s.ptr(plan.yhat),
                s.ptr(plan.part),
            )
        }
    }

    /// The layer kernels over `n` rows of `x`, writing layer `l`'s activations to
    /// `h(l)`, the predictions to `yhat` and the head's scratch to `part`. Reads the
    /// parameters only.
    ///
    /// # Safety
    /// `x` holds `n * d` floats; `h(l)` holds `n * ld_l` floats and does not overlap
    /// `h(l - 1)`; `yhat` holds `n * m` floats and `part` `n * PANEL`.
    unsafe fn layers_forward(
        &self,
        x: *const f32,
        n: usize,
        h: impl Fn(usize) -> *mut f32,
        yhat: *mut f32,
        part: *mut f32,
    ) {
        let s = self.st();
        let (plan, k) = (&s.plan, s.kernels);
        let p = self.params_ptr();
        let nh = plan.n_hidden;
        let out = plan.layers[nh];
        let fuse_head = plan.outputs == 1;
        let (mut a, mut lda) = (x, plan.inputs);
        // SAFETY (whole body): parameter offsets come from the plan; the buffers are
        // the caller's promise.
        unsafe {
            for l in 0..nh {
                let lp = plan.layers[l];
                let h = h(l);
                let head_here = fuse_head && l + 1 == nh;
                (k.dense_relu)(&DenseArgs {
                    a,
                    lda,
                    n,
                    k: lp.inputs,
                    w: p.add(lp.w),
                    b: p.add(lp.b),
                    panels: lp.panels,
                    h,
                    head: if head_here {
                        p.add(out.w)
                    } else {
                        core::ptr::null()
                    },
                    head_bias: if head_here { *p.add(out.b) } else { 0.0 },
                    yhat,
                    part,
                    mask: core::ptr::null(),
                });
                a = h;
                lda = plan.ld[l];
            }
            if !fuse_head {
                (k.head_forward)(&HeadArgs {
                    h: a,
                    ld: lda,
                    n,
                    k: out.inputs,
                    wo: p.add(out.w),
                    bo: p.add(out.b),
                    m: plan.outputs,
                    yhat,
                });
            }
        }
    }

    /// Loss and gradients for the activations in the arena, computed from input `x`.
    /// Writes nothing but scratch when the loss is not finite.
    ///
    /// # Safety
    /// The activations hold a forward pass of `n` rows of `x` (valid for `n * d`
    /// floats); `y` is valid for `n * m` floats.
    unsafe fn run_backward(
        &self,
        x: *const f32,
        n: usize,
        y: *const f32,
        sgd: Option<f32>,
    ) -> Result<f32, Error> {
        let s = self.st();
        let (plan, k) = (&s.plan, s.kernels);
        // Gradients go to the spare buffer; the caller makes it current on success.
        let gbuf = plan.grads[1 - s.grads];
        let (p, g) = (self.params_ptr(), s.ptr(gbuf));
        // With `sgd`, the update goes into the spare parameters as gradients are made.
        let fused = sgd.map(|lr| s.fused(lr));
        let mut ok = true;
        let nh = plan.n_hidden;
        let m = plan.outputs;
        let out = plan.layers[nh];
        let dy = s.ptr(plan.dy);
        let dz = |l: usize| s.ptr(plan.dz[l % 2]);
        // SAFETY (whole body): all offsets come from the plan and lie in the arena;
        // every buffer is sized for max_batch >= n rows.
        unsafe {
            let sum = match plan.loss {
                Loss::Mse => (k.loss_grad)(s.ptr(plan.yhat), y, n * m, 2.0 / n as f32, dy),
                Loss::CrossEntropy => crate::loss::softmax_xent(s.ptr(plan.yhat), y, n, m, dy),
            };
            let loss = sum / n as f32;
            if !loss.is_finite() {
                return Err(Error::Diverged);
            }
            // One output over one hidden layer whose weight gradients pack dZ: that
            // kernel forms dZ and gW_o from H as it packs (see `HeadOne`); the bias
            // gradient is the sum of dy.
            let head = (m == 1
                && nh == 1
                && k.fuses_head
                && kernels::should_pack(n, plan.layers[0].panels))
            .then(|| HeadOne {
                h: s.ptr(plan.h[0]),
                dy,
                wo: p.add(out.w),
                gwo: g.add(out.w),
            });
            if head.is_some() {
                let sum = (0..n).map(|i| *dy.add(i)).sum();
                ok &= put_grad1(g.add(out.b), sum, fused);
            } else {
                ok &= (k.head_backward)(&HeadBackArgs {
                    h: s.ptr(plan.h[nh - 1]),
                    ld: plan.ld[nh - 1],
                    n,
                    wo: p.add(out.w),
                    m,
                    dy,
                    gwo: g.add(out.w),
                    gbo: g.add(out.b),
                    dz: dz(nh - 1),
                    fused,
                });
            }
            for l in (0..nh).rev() {
                let lp = plan.layers[l];
                let (a, lda) = if l == 0 {
                    (x, plan.inputs)
                } else {
                    (s.ptr(plan.h[l - 1]) as *const f32, plan.ld[l - 1])
                };
                ok &= (k.weight_grad)(&WeightGradArgs {
                    a,
                    lda,
                    n,
                    k: lp.inputs,
                    dz: dz(l),
                    panels: lp.panels,
                    gw: g.add(lp.w),
                    gb: g.add(lp.b),
                    pack: s.ptr(plan.pack),
                    fused,
                    head,
                });
                if l > 0 {
                    (k.input_grad)(&InputGradArgs {
                        dz: dz(l),
                        n,
                        w: p.add(lp.w),
                        panels: lp.panels,
                        k: lp.inputs,
                        hp: a,
                        ldp: lda,
                        dzp: dz(l - 1),
                        wt: s.ptr(plan.wt),
                    });
                }
            }
            if ok {
                Ok(loss)
            } else {
                Err(Error::Diverged)
            }
        }
    }

    /// Visit the parameters in the flat layout without copying them all out.
    pub(crate) fn visit_params(&self, mut f: impl FnMut(usize, f32)) {
        let p = self.params();
        self.st()
            .plan
            .for_each_index(|flat, int, _, _| f(flat, p[int]));
    }

    /// The optimizer's settings and step count, for checkpoints.
    pub(crate) fn optimizer_settings(&self) -> (Optimizer, f32, u64) {
        let s = self.st();
        (s.optimizer, s.clip_norm, s.steps)
    }

    /// The current optimizer state buffer (`2 * int_len` floats).
    fn state_buf(&self) -> *mut f32 {
        let s = self.st();
        s.ptr(s.plan.state[s.state])
    }

    /// Visit optimizer state vector `which` (0: momentum buffer or first moment, 1:
    /// second moment) in the flat parameter layout.
    pub(crate) fn visit_state(&self, which: usize, mut f: impl FnMut(usize, f32)) {
        let s = self.st();
        let len = s.plan.int_len;
        // SAFETY: the current state buffer holds 2 * int_len floats.
        let v = unsafe { core::slice::from_raw_parts(self.state_buf().add(which * len), len) };
        s.plan.for_each_index(|flat, int, _, _| f(flat, v[int]));
    }

    /// Restore an optimizer with its step count and state vectors (flat layout, as
    /// `visit_state` gives them; `state(which, flat)`), as a checkpoint saved them.
    pub(crate) fn restore_optimizer(
        &mut self,
        optimizer: Optimizer,
        clip_norm: f32,
        steps: u64,
        state: impl Fn(usize, usize) -> f32,
    ) -> Result<(), Error> {
        self.set_optimizer(optimizer)?;
        self.set_grad_clip(clip_norm)?;
        let plan = self.st().plan;
        let len = plan.int_len;
        // SAFETY: the current state buffer holds 2 * int_len floats, zeroed by
        // set_optimizer; only this model uses it.
        let v = unsafe { core::slice::from_raw_parts_mut(self.state_buf(), 2 * len) };
        plan.for_each_index(|flat, int, _, _| {
            v[int] = state(0, flat);
            v[len + int] = state(1, flat);
        });
        self.st_mut().steps = steps;
        Ok(())
    }
}

impl Model {
    /// Hand the model to C: the pointer is the arena's header.
    pub(crate) fn into_raw(self) -> *mut State {
        let p = self.state.as_ptr();
        core::mem::forget(self);
        p
    }

    /// Take back a pointer made by `into_raw`.
    ///
    /// # Safety
    /// `p` came from `into_raw` and is not used through another `Model` at the same time.
    pub(crate) unsafe fn from_raw(p: NonNull<State>) -> Model {
        Model { state: p }
    }
}

/// The index of the largest of each row's `m` values (ties to the lowest index).
fn argmax_rows(values: &[f32], m: usize, classes: &mut [u32]) {
    for (c, row) in classes.iter_mut().zip(values.chunks_exact(m)) {
        let mut best = 0;
        for (j, v) in row.iter().enumerate() {
            if *v > row[best] {
                best = j;
            }
        }
        *c = best as u32;
    }
}
