//! Gradients kept as factors. A one-row train step with plain SGD writes each
//! layer's input `a_l` and its `dZ_l` (`Plan::factors`: a few rows of floats) instead
//! of one gradient per parameter: `gW_l = dZ_l a_l^T`, `gb_l = dZ_l`, and for the
//! output layer `gW_o = dy H_k^T`, `gb_o = dy`. They are formed only when someone
//! reads them (`get_grads`, `step`, a checkpoint), with the products the kernels
//! form, so the values match an eager step's.

use super::state::{GradForm, State};
use crate::layout::PANEL;

impl State {
    /// The current gradient at internal index `int`, formed from the current factors
    /// (`GradForm::Factors`); padding reads as 0.
    pub(super) fn factor_grad(&self, int: usize) -> f32 {
        let plan = &self.plan;
        let nh = plan.n_hidden;
        let l = (0..=nh)
            .rev()
            .find(|&l| plan.layers[l].w <= int)
            .unwrap_or(0);
        let lp = &plan.layers[l];
        let f = self.ptr(self.grads.cur().factors);
        let (fa, fz) = (plan.factor_a[l], plan.factor_dz[l]);
        // SAFETY: the factor section holds a_l and dZ_l at these offsets, and every
        // index below stays inside its part (units < outputs, inputs < inputs).
        unsafe {
            if int >= lp.b {
                let j = int - lp.b;
                return if j < lp.outputs { *f.add(fz + j) } else { 0.0 };
            }
            let off = int - lp.w;
            let (j, k) = if l < nh {
                let (panel, rem) = (off / (lp.inputs * PANEL), off % (lp.inputs * PANEL));
                (panel * PANEL + rem % PANEL, rem / PANEL)
            } else {
                (off / lp.panels, off % lp.panels)
            };
            if j >= lp.outputs || k >= lp.inputs {
                return 0.0;
            }
            let g = *f.add(fa + k) * *f.add(fz + j);
            // With several outputs the kernels form the output layer's gradient as an
            // FMA onto 0, which turns -0 into +0; so does this.
            if l == nh && plan.outputs > 1 {
                g + 0.0
            } else {
                g
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
