//! Gradients kept as factors. A one-row train step of the one-hidden-layer network
//! (`RowPath::OneHidden`) writes `x`, `H`, `dZ` and `dy` (2d + 3 ld floats) instead
//! of the (d + 2) ld + 1 gradients: `gW = dZ x^T`, `gb = dZ`, `gW_o = dy H`,
//! `gb_o = dy`. They are formed only when someone reads them (`get_grads`, `step`,
//! a checkpoint), with the same products the kernels form, so the values match an
//! eager step's.

use super::state::{GradForm, State};
use crate::layout::PANEL;

impl State {
    /// The current gradient at internal index `int`, formed from the current factors
    /// (`GradForm::Factors`); padding reads as 0 (dZ and H are 0 there).
    pub(super) fn factor_grad(&self, int: usize) -> f32 {
        let plan = &self.plan;
        let (lp, out) = (&plan.layers[0], &plan.layers[1]);
        let (fh, fdz, fdy) = plan.factor_offsets();
        let f = self.ptr(self.grads.cur().factors);
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

    /// Form the current gradients in their buffer when they are kept as factors. The
    /// gradients keep their values: this changes only how they are stored.
    pub(super) fn form_grads(&mut self) {
        if self.grad_form() == GradForm::Buffer {
            return;
        }
        let g = self.ptr(self.grads.cur().buffer);
        for int in 0..self.plan.int_len {
            let v = self.factor_grad(int);
            // SAFETY: the current gradient buffer holds int_len floats, and
            // `factor_grad` reads only the factor sections, which it does not overlap.
            unsafe { *g.add(int) = v };
        }
        self.grads_formed();
    }
}
