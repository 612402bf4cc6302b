//! The model: one arena, a fixed schedule over it, and the safe API.
//!
//! - `mod.rs` (here): creation, the public methods and the checks of their arguments;
//! - `state.rs`: the header in the arena, its double buffers and the transitions
//!   that make a spare copy current;
//! - `paths.rs`: the paths of `forward` and `train_step` (layers, one row of any
//!   depth, one hidden layer), one match arm each;
//! - `schedule.rs`: the layer schedule and the optimizer step;
//! - `factors.rs`: gradients kept as factors after a one-row step;
//! - `predict.rs`: read-only inference into the caller's workspace;
//! - `choices.rs`: the choices made for the shape, as text for reports.
//!
//! Every public method validates all of its input before it writes anything, and
//! writes only spare copies until it knows it succeeds, so a refused call leaves
//! parameters, gradients, optimizer state and the kept forward as they were. The one
//! exception is a non-finite loss or update found inside `train_step` after its
//! forward pass: parameters and gradients stay, but the kept forward is dropped
//! (except on the one-hidden-layer one-row path, whose forward stays in registers).

mod choices;
pub use choices::Choices;
mod factors;
mod paths;
#[cfg(feature = "std")]
mod pool;
/// Without `std` there are no threads: a pool that cannot exist, so the threaded
/// paths compile to the one-thread path.
#[cfg(not(feature = "std"))]
mod pool {
    use crate::Error;

    /// Most threads a model may use without `std`.
    pub(crate) const MAX_THREADS: usize = 1;

    /// Uninhabited: `State::pool` is always `None`.
    pub(crate) enum Pool {}

    impl Pool {
        pub(crate) fn threads(&self) -> usize {
            match *self {}
        }
        pub(crate) fn scratch(&self, _index: usize) -> *mut f32 {
            match *self {}
        }
        pub(crate) fn run(&self, _job: &(dyn Fn(usize) + Sync)) -> Result<(), Error> {
            match *self {}
        }
    }
}
mod predict;
mod schedule;
mod state;
#[cfg(test)]
mod tests;

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::config::{Config, Isa};
use crate::init;
use crate::kernels::{self, Kernels};
use crate::last_error::refuse;
use crate::layout::{Plan, ALIGN};
use crate::optim::Optimizer;
use crate::Error;
use state::{GradForm, RowPath, UpdateForm};

pub(crate) use state::State;

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
        // Join the workers; the pool is the only part of the header that needs
        // dropping.
        self.st_mut().pool = None;
        let s = self.st();
        // Only heap models own their memory (`owned` is always None without `std`).
        #[cfg(feature = "std")]
        if let Some(layout) = s.owned {
            let base = s.base;
            // SAFETY: `base` was returned by `alloc_zeroed(layout)` in `Model::new`.
            unsafe { std::alloc::dealloc(base, layout) };
        }
        #[cfg(not(feature = "std"))]
        let _ = s;
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

/// Most threads `set_threads(0)` picks (one per core, up to this).
const MAX_THREADS_AUTO: usize = 64;

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
    /// Validate `config`, allocate the arena, and initialize the parameters. (Needs
    /// `std`; without it, see [`Model::new_in`].)
    #[cfg(feature = "std")]
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
        let state = State::new(plan, config, kernels, base, owned);
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

    #[inline(always)]
    fn st(&self) -> &State {
        // SAFETY: the header was written at creation and lives as long as `self`.
        unsafe { self.state.as_ref() }
    }

    #[inline(always)]
    fn st_mut(&mut self) -> &mut State {
        // SAFETY: as in `st`; `&mut self` makes the access exclusive.
        unsafe { self.state.as_mut() }
    }

    fn params(&self) -> &[f32] {
        let s = self.st();
        // SAFETY: the current parameter buffer holds `int_len` floats.
        unsafe { core::slice::from_raw_parts(s.params_ptr(), s.plan.int_len) }
    }

    fn params_mut(&mut self) -> &mut [f32] {
        let s = self.st();
        // SAFETY: as in `params`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(s.params_ptr(), s.plan.int_len) }
    }

    /// The current gradient buffer (stale while the gradients are factors).
    fn grad_buffer(&self) -> &[f32] {
        let s = self.st();
        // SAFETY: the current gradient buffer holds `int_len` floats.
        unsafe { core::slice::from_raw_parts(s.ptr(s.grads.cur().buffer), s.plan.int_len) }
    }

    /// The current optimizer state, `2 * int_len` floats.
    fn opt_state_ptr(&self) -> *mut f32 {
        let s = self.st();
        s.ptr(s.opt_state.cur())
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
        Some(self.st().kept_rows()).filter(|&n| n > 0)
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
        match s.row.forward() {
            // One row, the embedded loop's case: one program call.
            Some(row) if x.len() == s.plan.inputs => self.forward_one(row, x, y_out),
            _ => self.forward_layers(x, y_out),
        }
    }

    /// Gradients of the loss of the kept forward against targets `y` (`n x m`);
    /// returns the loss. Replaces the gradients only on success.
    pub fn backward(&mut self, y: &[f32]) -> Result<f32, Error> {
        let s = self.st();
        let n = s.kept_rows();
        if n == 0 {
            return Err(Error::NoForward);
        }
        if y.len() != n * s.plan.outputs {
            return Err(wrong_len("y", n * s.plan.outputs));
        }
        if !self.all_finite(y) {
            return Err(Error::NonFinite);
        }
        let x = s.ptr(s.x.cur());
        // SAFETY: the kept forward's input and activations are in the arena for n rows.
        let loss = unsafe { s.run_backward(x, n, y.as_ptr(), None)? };
        self.st_mut().commit_grads(GradForm::Buffer);
        Ok(loss)
    }

    /// One optimizer step with the current gradients (plain SGD, `theta <- theta - lr *
    /// grad`, unless `set_optimizer` chose another). Refused with `Diverged`, changing
    /// nothing, when any updated parameter or state would not be finite. Drops the kept
    /// forward.
    pub fn step(&mut self, learning_rate: f32) -> Result<(), Error> {
        check_lr(learning_rate)?;
        let s = self.st_mut();
        s.form_grads();
        s.apply_update(learning_rate, s.grads.cur().buffer)
    }

    /// `forward` + `backward` + `step` on one batch, fused; returns the loss. On any
    /// error parameters and gradients are unchanged; once the forward pass has run
    /// (a non-finite loss or a refused update) the kept forward is gone, except after
    /// the one-hidden-layer one-row program, which does not touch it.
    pub fn train_step(&mut self, x: &[f32], y: &[f32], learning_rate: f32) -> Result<f32, Error> {
        let s = self.st();
        let one_row = x.len() == s.plan.inputs;
        match (s.row, s.update_form()) {
            // One row with plain SGD, the embedded loop's case: one program call.
            (RowPath::OneHidden { train, .. }, UpdateForm::FusedSgd) if one_row => {
                self.train_one_hidden(train, x, y, learning_rate)
            }
            (RowPath::AnyDepth { train, .. }, UpdateForm::FusedSgd) if one_row => {
                self.train_row(train, x, y, learning_rate, true)
            }
            // Other optimizers: the gradients of one row by the one-row program, then
            // the optimizer's pass.
            (
                RowPath::AnyDepth { train, .. }
                | RowPath::OneHidden {
                    any_depth: train, ..
                },
                UpdateForm::Separate,
            ) if one_row => self.train_row(train, x, y, learning_rate, false),
            _ => self.train_layers(x, y, learning_rate),
        }
    }

    /// Choose the optimizer used by `step` and `train_step` (plain SGD by default).
    /// Starts from fresh state (zero momentum and moments, step count 0), as a new
    /// PyTorch optimizer would; allocates nothing (the state lives in the arena).
    pub fn set_optimizer(&mut self, optimizer: Optimizer) -> Result<(), Error> {
        optimizer.validate()?;
        let len = 2 * self.st().plan.int_len;
        // SAFETY: the current state buffer holds 2 * int_len floats.
        unsafe { core::ptr::write_bytes(self.opt_state_ptr(), 0, len) };
        self.st_mut().set_optimizer(optimizer, 0);
        Ok(())
    }

    /// The optimizer in use.
    pub fn optimizer(&self) -> Optimizer {
        self.st().optimizer()
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
        self.st_mut().set_clip_norm(max_norm);
        Ok(())
    }

    /// Optimizer steps taken since the optimizer was set (Adam's `t`).
    pub fn optimizer_steps(&self) -> u64 {
        self.st().steps()
    }

    /// Use `n` threads (the calling thread and `n - 1` workers) for `forward`,
    /// `backward`, `step` and `train_step`; `n = 0`: one per core available to the
    /// process; `n = 1` (the default) joins the workers. Returns the count in use.
    /// Results are bit-identical for every count. Allocates (the threads and their
    /// packing scratch); refused with `InvalidArgument` above `MAX_THREADS` (256),
    /// changing nothing. Checkpoints do not carry the count. Without `std` there are
    /// no threads: `n` 0 and 1 give 1, more is `InvalidArgument`.
    pub fn set_threads(&mut self, n: usize) -> Result<usize, Error> {
        let n = match n {
            #[cfg(feature = "std")]
            0 => std::thread::available_parallelism().map_or(1, |c| c.get()),
            #[cfg(not(feature = "std"))]
            0 => 1,
            n => n,
        }
        .min(MAX_THREADS_AUTO.max(n));
        if n > pool::MAX_THREADS {
            return Err(refuse!(
                InvalidArgument,
                "n = {n} threads is more than flowmlp's maximum, {}",
                pool::MAX_THREADS
            ));
        }
        if n == self.threads() {
            return Ok(n);
        }
        // The new workers first: a refusal keeps the old ones.
        #[cfg(feature = "std")]
        let new = match n {
            1 => None,
            n => Some(pool::Pool::new(n, self.st().plan.pack_len)?),
        };
        #[cfg(not(feature = "std"))]
        let new = None;
        self.st_mut().pool = new;
        Ok(n)
    }

    /// The number of threads in use (1: the calling thread only).
    pub fn threads(&self) -> usize {
        self.st().pool.as_ref().map_or(1, |p| p.threads())
    }

    /// Copy the parameters out in the flat layout; `out.len()` must be `param_count`.
    pub fn get_params(&self, out: &mut [f32]) -> Result<(), Error> {
        self.export(self.params(), out)
    }

    /// Copy the gradients of the last `backward` out, in the flat layout.
    pub fn get_grads(&self, out: &mut [f32]) -> Result<(), Error> {
        let s = self.st();
        if s.grad_form() == GradForm::Buffer {
            return self.export(self.grad_buffer(), out);
        }
        if out.len() != self.param_count() {
            return Err(wrong_len("out", self.param_count()));
        }
        s.plan
            .for_each_index(|flat, int, _, _| out[flat] = s.factor_grad(int));
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
        self.st_mut().drop_forward();
        Ok(())
    }

    /// `set_params` from `value(flat)`, for checkpoints (whose values are checked
    /// finite before the model is created).
    pub(crate) fn restore_params(&mut self, value: impl Fn(usize) -> f32) {
        let plan = self.st().plan;
        let p = self.params_mut();
        plan.for_each_index(|flat, int, _, _| p[int] = value(flat));
        self.st_mut().drop_forward();
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
        (s.optimizer(), s.clip_norm(), s.steps())
    }

    /// Visit optimizer state vector `which` (0: momentum buffer or first moment, 1:
    /// second moment) in the flat parameter layout.
    pub(crate) fn visit_state(&self, which: usize, mut f: impl FnMut(usize, f32)) {
        let s = self.st();
        let len = s.plan.int_len;
        // SAFETY: the current state buffer holds 2 * int_len floats.
        let v = unsafe { core::slice::from_raw_parts(self.opt_state_ptr().add(which * len), len) };
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
        let v = unsafe { core::slice::from_raw_parts_mut(self.opt_state_ptr(), 2 * len) };
        plan.for_each_index(|flat, int, _, _| {
            v[int] = state(0, flat);
            v[len + int] = state(1, flat);
        });
        self.st_mut().set_optimizer(optimizer, steps);
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
