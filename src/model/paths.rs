//! The paths of `forward` and `train_step`: the layer kernels over a batch, the
//! one-row programs of any depth, and the one-hidden-layer program. Each checks
//! what its kernels do not, runs them on spare copies, and ends in one transition
//! of `State` on success.

use super::state::GradForm;
use super::{check_lr, wrong_len, Model};
use crate::kernels::row::{OneHiddenStep, RowCtx, RowTrain};
use crate::kernels::{ForwardRowFn, TrainOneHiddenFn, TrainRowFn};
use crate::Error;

impl Model {
    /// `forward` through the layer kernels; apart, so that the embedded loop's call
    /// does not pay for this path's registers.
    #[inline(never)]
    pub(super) fn forward_layers(
        &mut self,
        x: &[f32],
        y_out: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        let n = self.rows_of(x.len())?;
        let s = self.st();
        let m = s.plan.outputs;
        if y_out.as_ref().is_some_and(|y| y.len() != n * m) {
            return Err(wrong_len("y_out", n * m));
        }
        // Copy into the spare input buffer, checking as we go: the kept forward stays
        // intact if x is refused.
        let xbuf = s.ptr(s.x.spare());
        // SAFETY: the spare x section holds max_batch * d >= x.len() floats and does not
        // overlap the caller's slice.
        if !unsafe { (s.kernels.copy_finite)(x.as_ptr(), xbuf, x.len()) } {
            return Err(Error::NonFinite);
        }
        // SAFETY: x has been copied into the arena; n <= max_batch.
        unsafe { s.run_forward(xbuf, n)? };
        self.st_mut().keep_forward(n);
        if let Some(y) = y_out {
            let s = self.st();
            // SAFETY: yhat holds n * m values just written.
            y.copy_from_slice(unsafe { core::slice::from_raw_parts(s.ptr(s.plan.yhat), n * m) });
        }
        Ok(())
    }

    /// `forward` of one row (`x.len() == d`) through a one-row program, which also
    /// copies x into the spare input buffer, checking it first.
    #[inline]
    pub(super) fn forward_one(
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
        let ctx = RowCtx {
            plan: &s.plan,
            base: s.base,
            params: s.params_ptr(),
            x: x.as_ptr(),
            keep: s.ptr(s.x.spare()),
        };
        // SAFETY: the arena is live; x holds one row, and the spare x section as much,
        // apart from the caller's slice.
        if !unsafe { row(&ctx) } {
            return Err(Error::NonFinite);
        }
        self.st_mut().keep_forward(1);
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

    /// `train_step` through the layer kernels (any batch; also one row when there is
    /// no one-row program or the update is not fused SGD); apart, so that the embedded
    /// loop's call does not pay for this path's registers.
    #[inline(never)]
    pub(super) fn train_layers(
        &mut self,
        x: &[f32],
        y: &[f32],
        learning_rate: f32,
    ) -> Result<f32, Error> {
        let n = self.rows_of(x.len())?;
        let m = self.st().plan.outputs;
        if y.len() != n * m {
            return Err(wrong_len("y", n * m));
        }
        check_lr(learning_rate)?;
        if !self.all_finite(x) || !self.all_finite(y) {
            return Err(Error::NonFinite);
        }
        let s = self.st_mut();
        // The activations are overwritten from here on, and they belong to the caller's x.
        s.drop_forward();
        let fused = s.update_form() == super::state::UpdateForm::FusedSgd;
        // SAFETY: x holds n rows (n <= max_batch) and y n x m targets, both checked.
        let loss = unsafe {
            s.run_forward(x.as_ptr(), n)?;
            // Fused: SGD is applied as each gradient is made, into the spare parameters.
            s.run_backward(x.as_ptr(), n, y.as_ptr(), fused.then_some(learning_rate))?
        };
        s.finish_train(fused.then_some(GradForm::Buffer), learning_rate)?;
        Ok(loss)
    }

    /// `train_step` of one row through the any-depth program: with `fused`, the SGD
    /// step as each gradient is made, the gradients left as factors; else the
    /// gradients into the spare buffer, then the optimizer's pass from there.
    #[inline]
    pub(super) fn train_row(
        &mut self,
        row: TrainRowFn,
        x: &[f32],
        y: &[f32],
        lr: f32,
        fused: bool,
    ) -> Result<f32, Error> {
        let m = self.st().plan.outputs;
        if y.len() != m {
            return Err(wrong_len("y", m));
        }
        check_lr(lr)?;
        if !self.all_finite(x) || !self.all_finite(y) {
            return Err(Error::NonFinite);
        }
        let s = self.st_mut();
        // The program overwrites the activations.
        s.drop_forward();
        let ctx = RowCtx {
            plan: &s.plan,
            base: s.base,
            params: s.params_ptr(),
            x: x.as_ptr(),
            keep: core::ptr::null_mut(),
        };
        let train = RowTrain {
            y: y.as_ptr(),
            grads: s.ptr(s.grads.spare().buffer),
            fused: fused.then(|| s.fused(lr)),
            factors: if fused {
                s.ptr(s.grads.spare().factors)
            } else {
                core::ptr::null_mut()
            },
        };
        // SAFETY: the arena is live, x holds one row and y its m targets (checked).
        let (loss, ok) = unsafe { row(&ctx, &train) };
        if !ok {
            return Err(self.refusal(x, y));
        }
        self.st_mut()
            .finish_train(fused.then_some(GradForm::Factors), lr)?;
        Ok(loss)
    }

    /// `train_step` of one row of the one-hidden-layer network: the program checks x
    /// and y itself and writes only the spare parameters and factors, so a refused
    /// step changes nothing, the kept forward pass included.
    #[inline]
    pub(super) fn train_one_hidden(
        &mut self,
        f: TrainOneHiddenFn,
        x: &[f32],
        y: &[f32],
        lr: f32,
    ) -> Result<f32, Error> {
        if y.len() != 1 {
            return Err(wrong_len("y", 1));
        }
        check_lr(lr)?;
        let s = self.st();
        let step = OneHiddenStep {
            plan: &s.plan,
            cur: s.params_ptr(),
            next: s.ptr(s.params.spare()),
            factors: s.ptr(s.grads.spare().factors),
            x: x.as_ptr(),
            y: y.as_ptr(),
            lr,
        };
        // SAFETY: the arena is live, x holds one row and y its target (checked lengths).
        let (loss, ok) = unsafe { f(&step) };
        if !ok {
            return Err(self.refusal(x, y));
        }
        self.st_mut().commit_fused(GradForm::Factors);
        Ok(loss)
    }

    /// Why a one-row program that checks the caller's row and its own results in one
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
}
