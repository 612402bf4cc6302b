//! Each finite guard of the train step, tripped alone: inputs whose step overflows in
//! exactly one place, through `step` and `train_step`, one row and a batch, on every
//! kernel set. Each must be refused with `Diverged` and leave the model bit-identical
//! (parameters, gradients, step count, and the optimizer state as a checkpoint holds
//! it), and the model must go on exactly as one that never saw the refused call: a
//! guard that lets an infinity through fails here even when every other guard holds.
//!
//! The guards: the hidden layer's fused weight tiles, the output layer's weights and
//! its bias (the head), the loss, momentum's velocity, Adam's second moment, Adam's
//! parameter update, and the clipped (never fused) SGD update. Two cannot fire alone,
//! and their cases say so: a non-finite momentum velocity `b` makes the new parameter
//! `p - lr b` non-finite too (`lr >= 0`; `0 * inf` is NaN), and Adam's first moment
//! `m = b1 m + (1 - b1) g` is a convex combination of the previous (finite) moment and
//! `g`, so it overflows only with a non-finite `g` (a weight decay term `wd p` that
//! overflows), which makes `v` and the parameter non-finite too.

mod common;
use common::*;
use flowmlp::{Config, Error, Isa, Model, Optimizer};

/// Parameters and gradients as bits, the optimizer's step count, and the model as a
/// checkpoint (parameters, optimizer settings and state).
#[derive(PartialEq)]
struct Snapshot {
    params: Vec<u32>,
    grads: Vec<u32>,
    steps: u64,
    saved: Vec<u8>,
}

/// Where two snapshots first differ (the derived `Debug` would print them whole).
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot {{ steps: {}, params[0..4]: {:?}, saved: {} bytes }}",
            self.steps,
            &self.params[..4.min(self.params.len())],
            self.saved.len()
        )
    }
}

/// Panics with the first difference between `a` and `b`.
fn assert_same(a: &Snapshot, b: &Snapshot, grads_too: bool, what: &str) {
    let first = |x: &[u32], y: &[u32]| x.iter().zip(y).position(|(p, q)| p != q);
    assert_eq!(a.steps, b.steps, "{what}: step count");
    assert_eq!(a.params.len(), b.params.len(), "{what}");
    if let Some(i) = first(&a.params, &b.params) {
        let (p, q) = (f32::from_bits(a.params[i]), f32::from_bits(b.params[i]));
        panic!("{what}: parameter {i} is {p:e}, not {q:e}");
    }
    if let Some(i) = first(&a.grads, &b.grads).filter(|_| grads_too) {
        let (p, q) = (f32::from_bits(a.grads[i]), f32::from_bits(b.grads[i]));
        panic!("{what}: gradient {i} is {p:e}, not {q:e}");
    }
    if let Some(i) = a.saved.iter().zip(&b.saved).position(|(p, q)| p != q) {
        panic!(
            "{what}: checkpoint byte {i} of {} differs (optimizer state)",
            a.saved.len()
        );
    }
    assert_eq!(a.saved.len(), b.saved.len(), "{what}: checkpoint length");
}

fn snapshot(m: &Model) -> Snapshot {
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect();
    let mut saved = vec![0u8; m.save_size()];
    let n = m.save(&mut saved).unwrap();
    saved.truncate(n);
    Snapshot {
        params: bits(params(m)),
        grads: bits(grads(m)),
        steps: m.optimizer_steps(),
        saved,
    }
}

/// The network's widths, and flat indices into its parameters: the first layer's
/// `W_1[j][k]` and `b_1[j]`, the last hidden layer's weights and bias, and the
/// output layer's `W_o[c][j]` and `b_o[c]`.
struct Net {
    d: usize,
    hidden: &'static [usize],
    m: usize,
}

impl Net {
    /// Start of layer `l`'s weights (`l = hidden.len()`: the output layer).
    fn layer(&self, l: usize) -> usize {
        let mut at = 0;
        let mut fan_in = self.d;
        for &h in &self.hidden[..l] {
            at += h * fan_in + h;
            fan_in = h;
        }
        at
    }
    fn fan_in(&self, l: usize) -> usize {
        if l == 0 {
            self.d
        } else {
            self.hidden[l - 1]
        }
    }
    fn width(&self, l: usize) -> usize {
        self.hidden.get(l).copied().unwrap_or(self.m)
    }
    fn w(&self, l: usize, j: usize, k: usize) -> usize {
        self.layer(l) + j * self.fan_in(l) + k
    }
    fn b(&self, l: usize, j: usize) -> usize {
        self.layer(l) + self.width(l) * self.fan_in(l) + j
    }
    fn last(&self) -> usize {
        self.hidden.len()
    }
    fn h1(&self) -> usize {
        self.hidden[0]
    }
}

/// The weights of input 0 (`W_1[.][0]`) set to `w`, and input 0 of every row set to
/// `x0`: with `w = 0` the forward ignores `x0`, with `x0 = 0` it ignores `w`.
fn input0(net: &Net, p: &mut [f32], x: &mut [f32], w: f32, x0: f32) {
    for j in 0..net.h1() {
        p[net.w(0, j, 0)] = w;
    }
    for row in x.chunks_mut(net.d) {
        row[0] = x0;
    }
}

struct Case {
    what: &'static str,
    /// Makes the parameters, the input rows and the targets (0.25 unless changed);
    /// returns the learning rate.
    setup: fn(net: &Net, p: &mut [f32], x: &mut [f32], y: &mut [f32]) -> f32,
    optimizer: Optimizer,
    /// Gradient clipping (0: off); with clipping the step is never fused.
    clip: f32,
}

const fn sgd(momentum: f32, weight_decay: f32) -> Optimizer {
    Optimizer::Sgd {
        momentum,
        nesterov: false,
        weight_decay,
    }
}

const fn adam(weight_decay: f32) -> Optimizer {
    Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
    }
}

const CASES: &[Case] = &[
    // Input 0 is 1e30 but its weights are 0, so the forward is tame; its weight
    // gradients are dZ * 1e30, and lr * 1e30-ish overflows in W_1 only.
    Case {
        what: "hidden weight tiles (SGD)",
        setup: |net, p, x, _y| {
            input0(net, p, x, 0.0, 1e30);
            1e12
        },
        optimizer: Optimizer::SGD,
        clip: 0.0,
    },
    // The output weights are 0 and the hidden units large: dY is tame, the hidden
    // layers' gradients are 0 (dZ is 0 below W_o = 0), and W_o's gradient dY * H
    // overflows.
    Case {
        what: "output weights (SGD)",
        setup: |net, p, x, _y| {
            for j in 0..net.h1() {
                for k in 0..net.d {
                    p[net.w(0, j, k)] = 1e14;
                }
                p[net.b(0, j)] = 1.0;
            }
            for c in 0..net.m {
                for j in 0..net.hidden[net.last() - 1] {
                    p[net.w(net.last(), c, j)] = 0.0;
                }
            }
            for v in x.iter_mut() {
                *v = v.abs() * 1e14 + 1e14;
            }
            1e15
        },
        optimizer: Optimizer::SGD,
        clip: 0.0,
    },
    // The last hidden layer is dead (weights 0, bias -1), so every weight gradient
    // and the hidden biases' are 0; the output bias's gradient is dY summed, about
    // -2e10 for targets 1e10 (loss 1e20, finite), and lr * 2e10 overflows in b_o only.
    Case {
        what: "output bias (SGD)",
        setup: |net, p, _x, y| {
            let l = net.last() - 1;
            for j in 0..net.hidden[l] {
                for k in 0..net.fan_in(l) {
                    p[net.w(l, j, k)] = 0.0;
                }
                p[net.b(l, j)] = -1.0;
            }
            for c in 0..net.m {
                p[net.b(net.last(), c)] = 0.0;
            }
            y.fill(1e10);
            1e30
        },
        optimizer: Optimizer::SGD,
        clip: 0.0,
    },
    // Targets 1e20: every (Yhat - Y)^2 is 1e40, so the loss overflows, while the
    // gradients (about 2e20 * H) times lr = 1e-30 leave every update finite.
    Case {
        what: "loss (SGD)",
        setup: |_net, _p, _x, y| {
            y.fill(1e20);
            1e-30
        },
        optimizer: Optimizer::SGD,
        clip: 0.0,
    },
    Case {
        what: "loss (Adam)",
        setup: |_net, _p, _x, y| {
            y.fill(1e20);
            1e-30
        },
        optimizer: Optimizer::ADAM,
        clip: 0.0,
    },
    // W_1[.][0] = 1e9 with input 0 at 0 (a tame forward, gradient 0): the weight-decay
    // term 1e30 * 1e9 overflows, so the velocity b = g is infinite in those weights
    // (and so, necessarily, is p - lr b); elsewhere 1e30 * |p| * lr stays finite.
    Case {
        what: "momentum velocity (SGD, momentum 0.9, weight decay 1e30)",
        setup: |net, p, x, _y| {
            input0(net, p, x, 1e9, 0.0);
            1e-3
        },
        optimizer: sgd(0.9, 1e30),
        clip: 0.0,
    },
    // Gradients near 1e21: (1 - beta2) g^2 overflows, so v is infinite while the new
    // parameter p - step * m / (sqrt(v) + eps) stays finite: only v's guard sees it.
    Case {
        what: "Adam's second moment",
        setup: |net, p, x, _y| {
            input0(net, p, x, 0.0, 1e23);
            1e-3
        },
        optimizer: Optimizer::ADAM,
        clip: 0.0,
    },
    // As the velocity case: g = grad + 1e30 * 1e9 is infinite, and with it m (which
    // cannot overflow alone), v and the parameter.
    Case {
        what: "Adam's first moment (with v and the parameter; weight decay 1e30)",
        setup: |net, p, x, _y| {
            input0(net, p, x, 1e9, 0.0);
            1e-3
        },
        optimizer: adam(1e30),
        clip: 0.0,
    },
    // AdamW's decoupled decay p * (1 - lr wd) = p * -1e37: W_1[.][0] = 100 (input 0 at
    // 0, gradient 0, so m = v = 0) overflows; every other |p| < 30 stays finite, and the
    // moments are those of tame gradients: only the parameter's guard sees it.
    Case {
        what: "Adam's parameter update (AdamW, weight decay 1e37)",
        setup: |net, p, x, _y| {
            input0(net, p, x, 100.0, 0.0);
            1.0
        },
        optimizer: Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e37,
        },
        clip: 0.0,
    },
    // Gradients near 1e15 clipped to norm 1e10 (scale near 1e-5, squares far from the
    // float range), then lr = 1e30: the clipped SGD update (the optimizer kernel, not
    // the fused tiles) overflows.
    Case {
        what: "clipped SGD update (clip 1e10)",
        setup: |net, p, x, _y| {
            input0(net, p, x, 0.0, 1e15);
            1e30
        },
        optimizer: Optimizer::SGD,
        clip: 1e10,
    },
];

#[test]
fn each_update_guard_refuses_alone_and_changes_nothing() {
    let mut checked = 0;
    for isa in isas() {
        // 24 hidden units: the one-row path of one hidden layer; 40: the batch kernels'
        // ragged tiles; two outputs: no fused head; two hidden layers: the general
        // one-row train kernel (one output and two) and the layer loop; 64 and 72 units
        // (4 and 5 panels) with 33 rows: the packed weight gradients, and with one
        // output the head fused into them.
        let nets: [(usize, &'static [usize], usize); 7] = [
            (3, &[24], 1),
            (5, &[40], 1),
            (4, &[40], 2),
            (3, &[24, 16], 1),
            (5, &[40, 24], 2),
            (5, &[64], 1),
            (4, &[72], 2),
        ];
        for (d, hidden, m) in nets {
            let net = Net { d, hidden, m };
            for n in [1, 4, 33] {
                for case in CASES {
                    for fused in [true, false] {
                        let cfg = Config::new(d, hidden, m).max_batch(33).seed(2);
                        let mut model = Model::new(&cfg.isa(isa)).unwrap();
                        model.set_optimizer(case.optimizer).unwrap();
                        model.set_grad_clip(case.clip).unwrap();
                        let mut p = params(&model);
                        let mut x = Rng(5).vec(n * d);
                        let mut y = vec![0.25f32; n * m];
                        let lr = (case.setup)(&net, &mut p, &mut x, &mut y);
                        model.set_params(&p).unwrap();
                        // Gradients from a tame batch first, so a leak would show.
                        let tame_y = vec![0.25f32; n * m];
                        model.forward(&Rng(6).vec(n * d), None).unwrap();
                        model.backward(&tame_y).unwrap();
                        let what = format!(
                            "{isa:?} {d}->{hidden:?}->{m}, n = {n}, {}, {}",
                            case.what,
                            if fused { "train_step" } else { "step" }
                        );
                        let mut before = snapshot(&model);
                        let got = if fused {
                            model.train_step(&x, &y, lr).map(|_| ())
                        } else {
                            model.forward(&x, None).unwrap();
                            // The loss's guard refuses in backward, the others in step.
                            match model.backward(&y) {
                                Err(e) => Err(e),
                                Ok(_) => {
                                    before = snapshot(&model);
                                    model.step(lr)
                                }
                            }
                        };
                        assert_eq!(got, Err(Error::Diverged), "{what}");
                        assert_same(
                            &snapshot(&model),
                            &before,
                            true,
                            &format!("{what}: changed"),
                        );
                        // The model goes on exactly as one restored from before the
                        // refused call (same parameters, optimizer state and steps).
                        let mut twin = Model::load(&before.saved, 33, isa).unwrap();
                        let (x2, y2) = (Rng(7).vec(n * d), tame_y);
                        let a = model.train_step(&x2, &y2, 1e-3).map(f32::to_bits);
                        let b = twin.train_step(&x2, &y2, 1e-3).map(f32::to_bits);
                        assert_eq!(a, b, "{what}: the next step");
                        // A refused next step leaves each its own old gradients (the
                        // twin's are zero after loading); a taken one, the same new ones.
                        let after = format!("{what}: after the next step");
                        assert_same(&snapshot(&model), &snapshot(&twin), a.is_ok(), &after);
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= 42 * CASES.len(), "{checked} cases");
    let _ = Isa::Scalar;
}

/// One SGD step with clipping `clip` (active: the clip scale below 1), through
/// `train_step` and through `step`, on every kernel set, one row and a batch, from
/// the parameters, rows and targets `setup` makes (targets 0.25 unless changed). The
/// step must be taken and equal `p - lr * s * g` within `rel * |p'| + abs`, with the
/// scale `s = clip / (||g|| + 1e-6)` of `clip_grad_norm_` from the gradients the step
/// reports.
fn clipped_step_matches(
    setup: fn(&Net, &mut [f32], &mut [f32], &mut [f32]),
    clip: f32,
    lr: f32,
    (rel, abs): (f64, f64),
) {
    for isa in isas() {
        for (d, hidden, m) in [(3, &[24][..], 1), (5, &[40][..], 2), (3, &[24, 16][..], 1)] {
            let net = Net { d, hidden, m };
            for n in [1, 4] {
                for fused in [true, false] {
                    let cfg = Config::new(d, hidden, m).max_batch(4).seed(2).isa(isa);
                    let mut model = Model::new(&cfg).unwrap();
                    model.set_grad_clip(clip).unwrap();
                    let mut p = params(&model);
                    let mut x = Rng(5).vec(n * d);
                    let mut y = vec![0.25f32; n * m];
                    setup(&net, &mut p, &mut x, &mut y);
                    model.set_params(&p).unwrap();
                    let what = format!(
                        "{isa:?} {d}->{hidden:?}->{m}, n = {n}, clip {clip:e}, {}",
                        if fused { "train_step" } else { "step" }
                    );
                    if fused {
                        model.train_step(&x, &y, lr).map(|_| ())
                    } else {
                        model.forward(&x, None).unwrap();
                        model.backward(&y).unwrap();
                        model.step(lr)
                    }
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let g = grads(&model);
                    let norm = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                    let s = f64::from(clip) / (norm + 1e-6);
                    assert!(s < 0.9, "{what}: clipping inactive (|g| = {norm:e})");
                    let got = params(&model);
                    for (i, ((&p0, &g0), &p1)) in p.iter().zip(&g).zip(&got).enumerate() {
                        let want = f64::from(p0) - f64::from(lr) * s * f64::from(g0);
                        let err = (f64::from(p1) - want).abs();
                        assert!(
                            err <= rel * want.abs() + abs,
                            "{what}: parameter {i} is {p1:e}, not {want:e} (gradient {g0:e}, \
                             scale {s:e})"
                        );
                    }
                    assert_eq!(model.optimizer_steps(), 1, "{what}");
                }
            }
        }
    }
}

/// Gradients near 1e15 (norm far above the clip 1e10, squares well inside f32):
/// lr = 1e25 overflows unclipped but not clipped (scale near 1e-5).
#[test]
fn clipping_applies_before_the_update_guard() {
    clipped_step_matches(
        |net, p, x, _y| input0(net, p, x, 0.0, 1e15),
        1e10,
        1e25,
        (1e-5, 0.0),
    );
}

/// A gradient norm of 2e-6 (targets 1e-6 below the output bias; the last hidden layer
/// dead, so only b_o has a gradient) under a clip of 1e-6: the scale is
/// 1e-6 / (2e-6 + 1e-6) = 1/3, where dropping or flipping the 1e-6 would give 1/2 or 1.
#[test]
fn clip_scale_adds_1e6_to_the_norm() {
    let setup = |net: &Net, p: &mut [f32], _x: &mut [f32], y: &mut [f32]| {
        let l = net.last() - 1;
        for j in 0..net.hidden[l] {
            for k in 0..net.fan_in(l) {
                p[net.w(l, j, k)] = 0.0;
            }
            p[net.b(l, j)] = -1.0;
        }
        for c in 0..net.m {
            p[net.b(net.last(), c)] = 1e-6;
        }
        y.fill(0.0);
    };
    clipped_step_matches(setup, 1e-6, 1.0, (1e-4, 1e-12));
}

/// Gradients near 1e24: their squares overflow f32 (> 3.4e38) though the norm is
/// finite in f64. The scalar set sums the squares in f64 and clips to scale ~1e-14;
/// the SIMD sets square in f32 lanes and, where those overflow, sum that block again
/// in f64: every set takes the same clipped step (an infinite norm gave scale 0).
#[test]
fn clipping_a_gradient_whose_squares_overflow_f32() {
    clipped_step_matches(
        |net, p, x, _y| input0(net, p, x, 0.0, 1e25),
        1e10,
        1e25,
        (1e-5, 0.0),
    );
}
