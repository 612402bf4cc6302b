//! Each finite guard of the update, tripped alone: inputs whose step overflows in
//! exactly one place (the hidden layer's fused weight tiles, the output layer's
//! weights, Adam's second moment), through `step` and `train_step`, one row and a
//! batch, on every kernel set. Each must be refused with `Diverged` and leave the
//! model bit-identical: a guard that lets an infinity through fails here even when
//! every other guard holds.

mod common;
use common::*;
use flowmlp::{Config, Error, Isa, Model, Optimizer};

/// Parameters, gradients and the optimizer's step count, as bits.
fn snapshot(m: &Model) -> (Vec<u32>, Vec<u32>, u64) {
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect();
    (bits(params(m)), bits(grads(m)), m.optimizer_steps())
}

/// Flat index of `W_1[j][k]` and of `W_o[c][j]` (one hidden layer).
fn w1(d: usize, j: usize, k: usize) -> usize {
    j * d + k
}
fn w_out(d: usize, h: usize, c: usize, j: usize) -> usize {
    h * d + h + c * h + j
}

struct Case {
    what: &'static str,
    /// Makes the parameters, the input rows and the learning rate.
    setup: fn(d: usize, h: usize, m: usize, p: &mut [f32], x: &mut [f32]) -> f32,
    optimizer: Optimizer,
}

const CASES: &[Case] = &[
    // Input 0 is 1e30 but its weights are 0, so the forward is tame; its weight
    // gradients are dZ * 1e30, and lr * 1e30-ish overflows in W_1 only.
    Case {
        what: "hidden weight tiles (SGD)",
        setup: |d, h, _m, p, x| {
            for j in 0..h {
                p[w1(d, j, 0)] = 0.0;
            }
            for row in x.chunks_mut(d) {
                row[0] = 1e30;
            }
            1e12
        },
        optimizer: Optimizer::SGD,
    },
    // The output weights are 0 and the hidden units large: dY is tame, W_1's and the
    // biases' gradients are 0 or small, and W_o's gradient dY * H overflows.
    Case {
        what: "output weights (SGD)",
        setup: |d, h, m, p, x| {
            for j in 0..h {
                for k in 0..d {
                    p[w1(d, j, k)] = 1e14;
                }
                p[h * d + j] = 1.0;
                for c in 0..m {
                    p[w_out(d, h, c, j)] = 0.0;
                }
            }
            for v in x.iter_mut() {
                *v = v.abs() * 1e14 + 1e14;
            }
            1e15
        },
        optimizer: Optimizer::SGD,
    },
    // Gradients near 1e21: (1 - beta2) g^2 overflows, so v is infinite while the new
    // parameter p - step * m / (sqrt(v) + eps) stays finite: only v's guard sees it.
    Case {
        what: "Adam's second moment",
        setup: |d, h, _m, p, x| {
            for j in 0..h {
                p[w1(d, j, 0)] = 0.0;
            }
            for row in x.chunks_mut(d) {
                row[0] = 1e23;
            }
            1e-3
        },
        optimizer: Optimizer::ADAM,
    },
];

#[test]
fn each_update_guard_refuses_alone_and_changes_nothing() {
    let mut checked = 0;
    for isa in isas() {
        // 24 hidden units: the one-row path of one hidden layer; 40: the batch kernels'
        // ragged tiles; two outputs: no fused head.
        for (d, h, m) in [(3, 24, 1), (5, 40, 1), (4, 40, 2)] {
            for n in [1, 4] {
                for case in CASES {
                    for fused in [true, false] {
                        let cfg = Config::new(d, &[h], m).max_batch(4).seed(2);
                        let mut model = Model::new(&cfg.isa(isa)).unwrap();
                        model.set_optimizer(case.optimizer).unwrap();
                        let mut p = params(&model);
                        let mut x = Rng(5).vec(n * d);
                        let lr = (case.setup)(d, h, m, &mut p, &mut x);
                        model.set_params(&p).unwrap();
                        let y = vec![0.25f32; n * m];
                        // Gradients from a tame batch first, so a leak would show.
                        model.forward(&Rng(6).vec(n * d), None).unwrap();
                        model.backward(&y).unwrap();
                        let what = format!(
                            "{isa:?} {d}->{h}->{m}, n = {n}, {}, {}",
                            case.what,
                            if fused { "train_step" } else { "step" }
                        );
                        let before = snapshot(&model);
                        let got = if fused {
                            model.train_step(&x, &y, lr).map(|_| ())
                        } else {
                            model.forward(&x, None).unwrap();
                            model.backward(&y).unwrap();
                            let before = snapshot(&model);
                            let r = model.step(lr);
                            assert_eq!(snapshot(&model), before, "{what}: changed");
                            r
                        };
                        assert_eq!(got, Err(Error::Diverged), "{what}");
                        if fused {
                            assert_eq!(snapshot(&model), before, "{what}: changed");
                        }
                        // The model trains on afterwards.
                        model.train_step(&Rng(7).vec(n * d), &y, 1e-3).unwrap();
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 36, "{checked} cases");
    let _ = Isa::Scalar;
}
