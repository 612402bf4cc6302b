//! What a model chose for its shape at creation, as text for reports (the
//! performance report and the shape sweep print it). Every choice follows from the
//! topology, `max_batch` and the kernel set; only packing and the input gradient's
//! form also depend on a call's rows, so they are given as row ranges.

use core::fmt;

use super::state::{RowPath, UpdateForm};
use super::Model;
use crate::isa::Isa;
use crate::kernels::{live_vectors, narrow_weight_grad};
use crate::layout::{should_pack, transposes_input_grad, PANEL};

/// The shape-dependent choices of one model (`Model::choices`). The text is for
/// people: its wording may change between versions.
pub struct Choices<'a> {
    model: &'a Model,
}

impl Model {
    /// The choices this model made for its shape and this CPU: the kernel set, the
    /// program a one-row call runs, and per layer how its products run.
    pub fn choices(&self) -> Choices<'_> {
        Choices { model: self }
    }
}

/// The rows `n` of `1..=max` for which `pred(n)` holds, as `a..=b`, assuming it
/// switches at most once, from false to true.
fn rows_where(max: usize, pred: impl Fn(usize) -> bool) -> Option<(usize, usize)> {
    (1..=max).find(|&n| pred(n)).map(|a| (a, max))
}

impl fmt::Display for Choices<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.model.st();
        let (plan, k) = (&s.plan, s.kernels);
        let isa = k.isa;
        writeln!(f, "kernel set: {}", isa.name())?;
        let update = match s.update_form() {
            UpdateForm::FusedSgd => "plain SGD, applied as the backward makes each gradient",
            UpdateForm::Separate => "the optimizer's own pass over the gradients",
        };
        writeln!(f, "update: {update}")?;
        let row = match s.row {
            RowPath::Layers => "the layer kernels (this set has no one-row programs)",
            RowPath::AnyDepth { .. } => {
                "the any-depth one-row program (weights read in their stored layout, no packing)"
            }
            RowPath::OneHidden { .. } => {
                "the one-hidden-layer program (the hidden layer and its head in registers)"
            }
        };
        writeln!(f, "one row (n = 1): {row}")?;
        let nh = plan.n_hidden;
        let max = plan.max_batch;
        for l in 0..nh {
            let lp = &plan.layers[l];
            let last = lp.outputs - (lp.panels - 1) * PANEL;
            writeln!(
                f,
                "layer {}: {} -> {}, {} panel(s) of {PANEL}; last panel {last} live unit(s), {} of {} vectors computed",
                l + 1,
                lp.inputs,
                lp.outputs,
                lp.panels,
                live_vectors(lp.outputs, lp.panels, k.lanes),
                PANEL / k.lanes,
            )?;
            let packed = rows_where(max, |n| should_pack(n, lp.panels));
            let head = l + 1 == nh && nh == 1 && plan.outputs == 1 && k.fuses_head;
            let transposed = rows_where(max, transposes_input_grad);
            let narrow = k.isa != Isa::Scalar
                && narrow_weight_grad(lp.outputs, lp.panels, lp.inputs, k.lanes);
            match packed {
                _ if narrow => writeln!(
                    f,
                    "  weight gradients: the inputs in the vector lanes, each unit's dZ broadcast (its units would fill {} of {} lanes)",
                    lp.outputs,
                    live_vectors(lp.outputs, lp.panels, k.lanes) * k.lanes
                )?,
                Some(rows) => writeln!(
                    f,
                    "  weight gradients: packed for rows {}, direct otherwise{}",
                    RowRange(rows),
                    if head {
                        "; the output layer's backward formed while packing"
                    } else {
                        ""
                    }
                )?,
                None => writeln!(
                    f,
                    "  weight gradients: direct (packing does not pay here at max_batch = {max})"
                )?,
            }
            match transposed.filter(|_| l > 0) {
                Some(rows) => writeln!(
                    f,
                    "  input gradient (dZ W) into layer {l}: a GEMM over W laid out for rows {}, dot products otherwise",
                    RowRange(rows)
                )?,
                None if l > 0 => writeln!(
                    f,
                    "  input gradient (dZ W) into layer {l}: dot products"
                )?,
                None => {}
            }
        }
        let out = &plan.layers[nh];
        writeln!(
            f,
            "output layer: {} -> {}, {} loss",
            out.inputs,
            out.outputs,
            match plan.loss {
                crate::config::Loss::Mse => "mean squared error",
                crate::config::Loss::CrossEntropy => "softmax cross-entropy",
            }
        )
    }
}

/// The rows `a..=b`.
struct RowRange((usize, usize));

impl fmt::Display for RowRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            (a, b) if a == b => write!(f, "{a}"),
            (a, b) => write!(f, "{a}..={b}"),
        }
    }
}
