//! The optimizer section of the report: what `step` alone costs for SGD, momentum and
//! Adam at the medium shape, against a whole `train_step` there.

use std::hint::black_box;

use flowmlp::{Isa, Optimizer};

use crate::common::{LR, SHAPES};
use crate::{calls, Calls};

/// The shape of the section (`64-256-1 n=256`).
const SHAPE: &str = "medium";

const OPTIMIZERS: [(&str, Optimizer); 3] = [
    ("SGD", Optimizer::SGD),
    ("momentum 0.9", Optimizer::momentum(0.9, false)),
    ("Adam", Optimizer::ADAM),
];

/// The section in Markdown, timing each call with `time` (the median ns per call of
/// the item it is given, which makes that many back-to-back calls).
pub fn section(sets: &[Isa], time: &mut dyn FnMut(&mut Calls) -> f64) -> String {
    let shape = SHAPES
        .iter()
        .find(|s| s.name == SHAPE)
        .expect("the medium shape");
    let (x, y) = shape.batch();
    let mut rows = String::new();
    for &isa in sets {
        // The reference: plain SGD's train_step, the update fused into the backward pass.
        let mut model = shape.model(isa);
        let sgd_train = time(&mut calls(|| {
            black_box(model.train_step(black_box(&x), black_box(&y), LR).unwrap());
        }));
        for (name, opt) in OPTIMIZERS {
            let mut model = shape.model(isa);
            model.set_optimizer(opt).unwrap();
            let train = time(&mut calls(|| {
                black_box(model.train_step(black_box(&x), black_box(&y), LR).unwrap());
            }));
            // step alone, from the gradients of the last train step (every call reuses them).
            let step = time(&mut calls(|| model.step(black_box(LR)).unwrap()));
            rows += &format!(
                "| {} | {name} | {:.0} | {:.0} | {:.1} % | {:.1} % |\n",
                isa.name(),
                step,
                train,
                100.0 * step / train,
                100.0 * step / sgd_train,
            );
        }
    }
    let params = shape.model(Isa::Scalar).param_count();
    format!(
        "\n## Optimizer step at the {SHAPE} shape ({}, {params} parameters)\n\n\
         | kernel set | optimizer | step ns | train_step ns (this optimizer) | step / its \
         train_step | step / SGD train_step |\n\
         |---|---|---:|---:|---:|---:|\n{rows}\n\
         `step` alone is the update from the gradients already there (one fused pass over \
         parameters, gradients and optimizer state, with the finite check); plain SGD's \
         `train_step` fuses its update into the backward pass instead. The last column \
         is against that fused SGD `train_step`.\n",
        shape.topology()
    )
}
