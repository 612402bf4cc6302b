//! The layer schedule over the arena, and the optimizer step.
//!
//! For k hidden layers (`A_0 = X`, `A_l = H_l`):
//!
//! ```text
//! forward   for l in 1..=k:  H_l = ReLU(A_{l-1} W_l^T + b_l)        dense_relu
//!           Yhat = H_k W_o^T + b_o        (m = 1: fused into layer k's pass, else head_forward)
//! backward  dY = (2/n)(Yhat - Y), L = sum (Yhat - Y)^2 / n          loss_grad
//!           gW_o, gb_o, dZ_k = (dY W_o) * [H_k > 0]                head_backward
//!           for l in k..=1:  gW_l = dZ_l^T A_{l-1}, gb_l = sum dZ_l  weight_grad
//!                            dZ_{l-1} = (dZ_l W_l) * [H_{l-1} > 0]  input_grad (l > 1)
//! step      theta' = theta - lr * g into the spare parameters; current if all finite
//! ```
//!
//! Everything here writes only activations, scratch and spare copies; the updates
//! end in a transition of `State` when every new value is finite.

use core::sync::atomic::{AtomicBool, Ordering};

use super::state::{GradForm, State, UpdateForm};
#[cfg(test)]
use super::tests;
use crate::config::Loss;
use crate::kernels::row::RowCtx;
use crate::kernels::{
    narrow_weight_grad, put_grad1, should_pack, DenseArgs, Fused, HeadArgs, HeadBackArgs, HeadOne,
    InputGradArgs, UpdateArgs, WeightGradArgs, PANEL,
};
use crate::layout::transposes_input_grad;
use crate::optim::{clip_scale, Update};
use crate::Error;

/// Shares are whole blocks of this many rows (the largest row tile), panels (the
/// AVX-512 tiles pair panels, and make a share's odd panel alone: the values do not
/// change), and values of an optimizer step (16 cache lines).
const ROWS: usize = 8;
const PANELS: usize = 1;
const VALUES: usize = 256;

/// Work below which a product stays on the calling thread: waking a worker costs
/// microseconds, which this much work repays (about 30 us on one core). The unit
/// tests share every product, so that small ragged shapes cover the shares' edges.
const PARALLEL_FLOPS: usize = if cfg!(test) { 1 } else { 1 << 20 };
/// Floating-point operations per value of an optimizer step, for the same threshold.
const UPDATE_FLOPS: usize = 8;

/// Kernel arguments (raw pointers) shared with the worker threads of one job: each
/// thread writes a disjoint part of the outputs and only reads the inputs.
struct Shared<T>(T);
// SAFETY: see above; the job ends before the buffers do (`Pool::run` waits).
unsafe impl<T> Sync for Shared<T> {}
impl<T: Copy> Shared<T> {
    /// Used as a method so that closures capture the wrapper, not its field.
    fn get(&self) -> T {
        self.0
    }
}

/// Share `i` of `parts` of `0..total`, cut at multiples of `unit`.
fn share_of(total: usize, unit: usize, parts: usize, i: usize) -> (usize, usize) {
    let units = total.div_ceil(unit);
    let at = |j: usize| (units * j / parts * unit).min(total);
    (at(i), at(i + 1))
}

impl State {
    /// The current parameters.
    #[inline(always)]
    pub(super) fn params_ptr(&self) -> *mut f32 {
        self.ptr(self.params.cur())
    }

    /// The fused SGD step: the update of each gradient goes from the current into the
    /// spare parameters, at offsets from the spare gradient buffer (see `Fused`).
    pub(super) fn fused(&self, lr: f32) -> Fused {
        let gbuf = self.grads.spare().buffer as isize;
        // Sections are 64-byte aligned: the byte difference divides exactly.
        let off = |buf: usize| (buf as isize - gbuf) >> 2;
        Fused {
            lr,
            cur: off(self.params.cur()),
            next: off(self.params.spare()),
        }
    }

    /// All layers for `n` rows of `x` (row stride d) into the activation buffers.
    /// `Internal` only when a worker thread panicked.
    ///
    /// # Safety
    /// `x` is valid for `n * d` floats and `1 <= n <= max_batch`.
    pub(super) unsafe fn run_forward(&self, x: *const f32, n: usize) -> Result<(), Error> {
        let plan = &self.plan;
        if let (1, Some(row)) = (n, self.row.forward()) {
            // SAFETY: the arena is live and x holds one row.
            unsafe {
                row(&RowCtx {
                    plan,
                    base: self.base,
                    params: self.params_ptr(),
                    x,
                    keep: core::ptr::null_mut(),
                })
            };
            return Ok(());
        }
        // SAFETY: the arena's activation, prediction and scratch sections are sized for
        // max_batch >= n rows.
        unsafe {
            self.layers_forward(
                x,
                n,
                |l| self.ptr(plan.h[l]),
                self.ptr(plan.yhat),
                self.ptr(plan.part),
                true,
            )
        }
    }

    /// The layer kernels over `n` rows of `x`, writing layer `l`'s activations to
    /// `h(l)`, the predictions to `yhat` and the head's scratch to `part`. Reads the
    /// parameters only. `threaded`: rows shared among the model's threads when the
    /// whole pass pays for it; a row depends only on itself, so each thread takes its
    /// rows through every layer in one job (no wait between layers), and the results
    /// do not change.
    ///
    /// # Safety
    /// `x` holds `n * d` floats; `h(l)` holds `n * ld_l` floats and does not overlap
    /// `h(l - 1)`; `yhat` holds `n * m` floats and `part` `n * PANEL`.
    pub(super) unsafe fn layers_forward(
        &self,
        x: *const f32,
        n: usize,
        h: impl Fn(usize) -> *mut f32,
        yhat: *mut f32,
        part: *mut f32,
        threaded: bool,
    ) -> Result<(), Error> {
        let plan = &self.plan;
        let flops: usize = (0..=plan.n_hidden)
            .map(|l| 2 * n * plan.layers[l].inputs * plan.layers[l].outputs)
            .sum();
        // `h` only computes addresses from the plan or the caller's workspace.
        let ptrs = Shared((x, &h, yhat, part));
        self.share(threaded, n, ROWS, flops, |i0, i1, _| {
            let (x, h, yhat, part) = ptrs.get();
            // SAFETY: rows i0..i1 of the caller's buffers (the caller's promise).
            unsafe { self.forward_rows(x, n, h, yhat, part, i0, i1) }
        })
    }

    /// Rows `i0..i1` of `layers_forward` (its buffers hold `n` rows), through every
    /// layer.
    ///
    /// # Safety
    /// As `layers_forward`; `i0 <= i1 <= n`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_rows(
        &self,
        x: *const f32,
        n: usize,
        h: &impl Fn(usize) -> *mut f32,
        yhat: *mut f32,
        part: *mut f32,
        i0: usize,
        i1: usize,
    ) {
        let (plan, k) = (&self.plan, self.kernels);
        let p = self.params_ptr();
        let nh = plan.n_hidden;
        let out = plan.layers[nh];
        let fuse_head = plan.outputs == 1;
        let (mut a, mut lda) = (x, plan.inputs);
        // SAFETY (whole body): parameter offsets come from the plan; the buffers are
        // the caller's promise, and the rows of this share are inside them.
        unsafe {
            for l in 0..nh {
                let lp = plan.layers[l];
                let h = h(l);
                let head_here = fuse_head && l + 1 == nh;
                let args = DenseArgs {
                    a,
                    lda,
                    n,
                    k: lp.inputs,
                    w: p.add(lp.w),
                    b: p.add(lp.b),
                    panels: lp.panels,
                    units: lp.outputs,
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
                };
                (k.dense_relu)(&args.rows(i0, i1));
                a = h;
                lda = plan.ld[l];
            }
            if !fuse_head {
                let args = HeadArgs {
                    h: a,
                    ld: lda,
                    n,
                    k: out.inputs,
                    wo: p.add(out.w),
                    bo: p.add(out.b),
                    m: plan.outputs,
                    yhat,
                };
                (k.head_forward)(&args.rows(i0, i1));
            }
        }
    }

    /// Loss and gradients, into the spare gradient buffer, for the activations in the
    /// arena, computed from input `x`; with `sgd`, also the fused SGD step into the
    /// spare parameters. `Diverged` when the loss or an update is not finite.
    ///
    /// With threads, each weight gradient and each row of an input gradient is made
    /// by one thread, in the order one thread would make it; the loss and the output
    /// layer's sums stay on the calling thread.
    ///
    /// # Safety
    /// The activations hold a forward pass of `n` rows of `x` (valid for `n * d`
    /// floats); `y` is valid for `n * m` floats.
    pub(super) unsafe fn run_backward(
        &self,
        x: *const f32,
        n: usize,
        y: *const f32,
        sgd: Option<f32>,
    ) -> Result<f32, Error> {
        let (plan, k) = (&self.plan, self.kernels);
        let (p, g) = (self.params_ptr(), self.ptr(self.grads.spare().buffer));
        let fused = sgd.map(|lr| self.fused(lr));
        let mut ok = true;
        let nh = plan.n_hidden;
        let m = plan.outputs;
        let out = plan.layers[nh];
        let dy = self.ptr(plan.dy);
        let dz = |l: usize| self.ptr(plan.dz[l % 2]);
        // SAFETY (whole body): all offsets come from the plan and lie in the arena;
        // every buffer is sized for max_batch >= n rows; threads write disjoint
        // panels or rows, each with its own packing scratch.
        unsafe {
            let sum = match plan.loss {
                Loss::Mse => (k.loss_grad)(self.ptr(plan.yhat), y, n * m, 2.0 / n as f32, dy),
                Loss::CrossEntropy => crate::loss::softmax_xent(self.ptr(plan.yhat), y, n, m, dy),
            };
            let loss = sum / n as f32;
            if !loss.is_finite() {
                return Err(Error::Diverged);
            }
            // One output over one hidden layer whose weight gradients pack dZ: that
            // kernel forms dZ and gW_o from H as it packs (see `HeadOne`); the bias
            // gradient is the sum of dy.
            let head = (m == 1 && nh == 1 && k.fuses_head && should_pack(n, plan.layers[0].panels))
                .then(|| HeadOne {
                    h: self.ptr(plan.h[0]),
                    dy,
                    wo: p.add(out.w),
                    gwo: g.add(out.w),
                });
            if head.is_some() {
                let sum = (0..n).map(|i| *dy.add(i)).sum();
                ok &= put_grad1(g.add(out.b), sum, fused);
            } else {
                ok &= (k.head_backward)(&HeadBackArgs {
                    h: self.ptr(plan.h[nh - 1]),
                    ld: plan.ld[nh - 1],
                    n,
                    wo: p.add(out.w),
                    m,
                    dy,
                    gwo: g.add(out.w),
                    gbo: g.add(out.b),
                    dz: dz(nh - 1),
                    fused,
                    factored: false,
                });
            }
            for l in (0..nh).rev() {
                ok &= self.layer_backward(l, x, n, g, fused, head)?;
            }
            if ok {
                Ok(loss)
            } else {
                Err(Error::Diverged)
            }
        }
    }

    /// Layer `l`'s weight and bias gradients (shared by panels) and, above the
    /// first layer, the masked gradient of the layer below (shared by rows). False
    /// when a fused update is not finite.
    ///
    /// # Safety
    /// As `run_backward`, whose `x`, `n`, spare gradients `g`, `fused` and `head` these
    /// are, with dZ of layer `l` made.
    unsafe fn layer_backward(
        &self,
        l: usize,
        x: *const f32,
        n: usize,
        g: *mut f32,
        fused: Option<Fused>,
        head: Option<HeadOne>,
    ) -> Result<bool, Error> {
        let (plan, k) = (&self.plan, self.kernels);
        let p = self.params_ptr();
        let dz = |l: usize| self.ptr(plan.dz[l % 2]);
        let all_ok = AtomicBool::new(true);
        // SAFETY (whole body): offsets from the plan, buffers sized for max_batch >= n
        // rows; threads write disjoint panels or rows, each with its own scratch.
        unsafe {
            let lp = plan.layers[l];
            let (a, lda) = if l == 0 {
                (x, plan.inputs)
            } else {
                (self.ptr(plan.h[l - 1]) as *const f32, plan.ld[l - 1])
            };
            let args = Shared(WeightGradArgs {
                a,
                lda,
                n,
                k: lp.inputs,
                dz: dz(l),
                panels: lp.panels,
                units: lp.outputs,
                p0: 0,
                p1: lp.panels,
                gw: g.add(lp.w),
                gb: g.add(lp.b),
                pack: self.ptr(plan.pack),
                fused,
                head: head
                    .as_ref()
                    .map_or(core::ptr::null(), |h| h as *const HeadOne),
            });
            // A one-panel layer is one thread's share and never packs.
            let wg = if narrow_weight_grad(lp.outputs, lp.panels, lp.inputs, k.lanes) {
                k.weight_grad_narrow
            } else {
                k.weight_grad
            };
            let flops = 2 * n * lp.inputs * lp.panels * PANEL;
            // The input gradient of the layer below needs W laid out once, first.
            let ig = (l > 0).then(|| InputGradArgs {
                dz: dz(l),
                n,
                w: p.add(lp.w),
                panels: lp.panels,
                units: lp.outputs,
                k: lp.inputs,
                hp: a,
                ldp: lda,
                dzp: dz(l - 1),
                wt: if transposes_input_grad(n) {
                    self.ptr(plan.wt)
                } else {
                    core::ptr::null_mut()
                },
                wt_ready: false,
            });
            if let Some(ig) = ig.as_ref().filter(|ig| !ig.wt.is_null()) {
                (k.input_grad)(&ig.rows(0, 0));
            }
            let ig = Shared(ig.map(|ig| InputGradArgs {
                wt_ready: true,
                ..ig
            }));
            // One job: each thread makes its panels' weight gradients, then its rows
            // of the input gradient (both read dZ_l; they write apart).
            let flops = if l > 0 { 2 * flops } else { flops };
            self.each_thread(flops, |thread, threads| {
                let (p0, p1) = share_of(lp.panels, PANELS, threads, thread);
                if p0 < p1 {
                    let args = WeightGradArgs {
                        p0,
                        p1,
                        pack: self.scratch(thread),
                        ..args.get()
                    };
                    if !(wg)(&args) {
                        all_ok.store(false, Ordering::Relaxed);
                    }
                }
                if let Some(ig) = ig.get() {
                    let (i0, i1) = share_of(n, ROWS, threads, thread);
                    if i0 < i1 {
                        (k.input_grad)(&ig.rows(i0, i1));
                    }
                }
            })?;
        }
        Ok(all_ok.into_inner())
    }

    /// Run `job(i0, i1, thread)` over `0..total` cut into shares of whole `unit`s, one
    /// per thread, when the model has threads, `threaded` is set and the work
    /// (`flops`) pays for the hand-off; else `job(0, total, 0)` on this thread.
    fn share(
        &self,
        threaded: bool,
        total: usize,
        unit: usize,
        flops: usize,
        job: impl Fn(usize, usize, usize) + Sync,
    ) -> Result<(), Error> {
        if !threaded || total <= unit {
            job(0, total, 0);
            return Ok(());
        }
        self.each_thread(flops, |thread, threads| {
            let (i0, i1) = share_of(total, unit, threads, thread);
            if i0 < i1 {
                job(i0, i1, thread);
            }
        })
    }

    /// Run `job(thread, threads)` on every thread of the model when the work
    /// (`flops`) pays for the hand-off, else `job(0, 1)` on this thread.
    fn each_thread(&self, flops: usize, job: impl Fn(usize, usize) + Sync) -> Result<(), Error> {
        match &self.pool {
            Some(pool) if flops >= PARALLEL_FLOPS => {
                let t = pool.threads();
                pool.run(&|i| {
                    #[cfg(test)]
                    if i > 0
                        && tests::PANIC_IN_WORKER.load(Ordering::Relaxed)
                            == self as *const State as usize
                    {
                        panic!("a worker's share panics (test)");
                    }
                    job(i, t)
                })
            }
            _ => {
                job(0, 1);
                Ok(())
            }
        }
    }

    /// Packing scratch of thread `thread` (0: the arena's).
    fn scratch(&self, thread: usize) -> *mut f32 {
        match (&self.pool, thread) {
            (Some(pool), 1..) => pool.scratch(thread),
            _ => self.ptr(self.plan.pack),
        }
    }

    /// The end of a train step whose gradients are in the spare copy: with `fused`
    /// (the backward pass already wrote the updated parameters, and the gradients in
    /// that form), make both current; else the optimizer's pass from the spare
    /// buffer, and the gradients become current only if it succeeds.
    pub(super) fn finish_train(&mut self, fused: Option<GradForm>, lr: f32) -> Result<(), Error> {
        if let Some(form) = fused {
            self.commit_fused(form);
        } else {
            self.apply_update(lr, self.grads.spare().buffer)?;
            self.commit_grads(GradForm::Buffer);
        }
        Ok(())
    }

    /// One optimizer step from the gradient buffer at byte offset `g` into the spare
    /// parameters (and state); they become current only if every new value is finite.
    pub(super) fn apply_update(&mut self, lr: f32, g: usize) -> Result<(), Error> {
        if self.update_form() == UpdateForm::FusedSgd {
            return self.apply_sgd(lr, g);
        }
        let plan = &self.plan;
        let len = plan.int_len;
        let gp = self.ptr(g);
        let clip = self.clip_norm();
        let scale = if clip > 0.0 {
            // SAFETY: the gradient buffer holds int_len floats.
            clip_scale(clip, unsafe { (self.kernels.sum_sq)(gp, len) })
        } else {
            1.0
        };
        let t = self.steps() + 1;
        let (s1, o1) = (
            self.ptr(self.opt_state.cur()),
            self.ptr(self.opt_state.spare()),
        );
        let args = UpdateArgs {
            p: self.params_ptr(),
            g: gp,
            s1,
            // SAFETY: each state buffer holds 2 * int_len floats.
            s2: unsafe { s1.add(len) },
            out_p: self.ptr(self.params.spare()),
            out_s1: o1,
            // SAFETY: as above.
            out_s2: unsafe { o1.add(len) },
            len,
            first: t == 1,
            update: Update::new(&self.optimizer(), lr, t, scale),
        };
        let (args, ok) = (Shared(args), AtomicBool::new(true));
        self.share(true, len, VALUES, UPDATE_FLOPS * len, |i0, i1, _| {
            // SAFETY: every buffer holds len floats, the input and output buffers are
            // disjoint, and threads take disjoint ranges.
            if !unsafe { (self.kernels.update)(&args.get().range(i0, i1)) } {
                ok.store(false, Ordering::Relaxed);
            }
        })?;
        if !ok.into_inner() {
            return Err(Error::Diverged);
        }
        self.commit_step(true);
        Ok(())
    }

    /// SGD from the gradient buffer at byte offset `g` into the spare parameters;
    /// they become current only if every new value is finite.
    fn apply_sgd(&mut self, lr: f32, g: usize) -> Result<(), Error> {
        let ptrs = Shared((
            self.params_ptr(),
            self.ptr(g),
            self.ptr(self.params.spare()),
        ));
        let (len, ok) = (self.plan.int_len, AtomicBool::new(true));
        self.share(true, len, VALUES, 2 * len, |i0, i1, _| {
            let (src, g, dst) = ptrs.get();
            // SAFETY: the three buffers each hold int_len floats and are disjoint;
            // threads take disjoint ranges.
            if !unsafe { (self.kernels.sgd)(src.add(i0), g.add(i0), dst.add(i0), i1 - i0, lr) } {
                ok.store(false, Ordering::Relaxed);
            }
        })?;
        if !ok.into_inner() {
            return Err(Error::Diverged);
        }
        self.commit_step(false);
        Ok(())
    }
}
