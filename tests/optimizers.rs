//! Optimizers against an independent float64 reimplementation of the update rules
//! PyTorch documents (`torch.optim.SGD` without dampening, `Adam`, `AdamW`, and
//! `torch.nn.utils.clip_grad_norm_`), on every kernel set this machine runs.
//!
//! Each case runs 20 steps from the same initial parameters in flowmlp (f32) and in
//! `common/reference.rs` (f64, with its own f64 backward pass at its own parameters),
//! through `train_step` and through `forward` + `backward` + `step`, and compares the
//! parameters after every step (and the returned loss against the reference's).
//!
//! Tolerance (`TOL`, `within`): f32 keeps 24 bits (u = 2^-24 = 6e-8). One step rounds
//! every parameter a few times (the update, the decay, the moments), and its gradient
//! carries the rounding of dot products over at most 8 terms and n rows: about 8 u of
//! relative error per step. The small learning rates here barely amplify earlier
//! errors, so 20 steps stay below 20 x 8 u = 160 u = 1e-5 = `TOL`. The error of a
//! parameter is judged relative to `|p| + rms(p)` ("relative, scaled"): biases start at
//! 0, and their error is set by the size of the updates, which scale with the other
//! parameters, not by their own value. The largest error seen (scalar and AVX2) is
//! 4.6e-7, 5 % of `TOL`. `deliberate_mistakes_in_the_reference_are_caught` shows the
//! comparison failing, by factors of 1000 and more, for plausible wrong rules (no
//! bias correction, eps inside the correction, dampening, heavy-ball instead of
//! Nesterov, coupled instead of decoupled decay, no clipping, no cap on clipping, no
//! weight decay).

mod common;
#[path = "common/reference.rs"]
mod reference;

use common::{isas, Rng};
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};
use reference::{Mistake, RefOptimizer};

/// Steps per trajectory.
const STEPS: usize = 20;
/// Relative tolerance of a parameter against the f64 reference (see the module docs).
const TOL: f64 = 1e-5;

/// A small model with odd sizes.
struct Shape {
    name: &'static str,
    d: usize,
    hidden: &'static [usize],
    m: usize,
    n: usize,
    loss: Loss,
}

const SHAPES: [Shape; 4] = [
    // Two hidden layers, m > 1 (the separate head), n = 4.
    Shape {
        name: "5-7-3-2 n=4 mse",
        d: 5,
        hidden: &[7, 3],
        m: 2,
        n: 4,
        loss: Loss::Mse,
    },
    // One row (the one-call row kernels) and m = 1 (the head fused into the layer).
    Shape {
        name: "3-6-1 n=1 mse",
        d: 3,
        hidden: &[6],
        m: 1,
        n: 1,
        loss: Loss::Mse,
    },
    // Cross-entropy with soft and one-hot targets.
    Shape {
        name: "4-5-3 n=3 xent",
        d: 4,
        hidden: &[5],
        m: 3,
        n: 3,
        loss: Loss::CrossEntropy,
    },
    // Cross-entropy through the one-row kernels.
    Shape {
        name: "2-9-4 n=1 xent",
        d: 2,
        hidden: &[9],
        m: 4,
        n: 1,
        loss: Loss::CrossEntropy,
    },
];

impl Shape {
    fn config(&self, isa: Isa) -> Config {
        Config::new(self.d, self.hidden, self.m)
            .max_batch(self.n)
            .seed(7)
            .isa(isa)
            .loss(self.loss)
    }

    fn dims(&self) -> Vec<usize> {
        let mut v = vec![self.d];
        v.extend_from_slice(self.hidden);
        v.push(self.m);
        v
    }

    /// A batch: inputs in [-1, 1); targets in [-1, 1) (MSE) or rows of class
    /// probabilities, every other row one-hot (cross-entropy).
    fn batch(&self, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        let x = rng.vec(self.n * self.d);
        let y = match self.loss {
            Loss::Mse => rng.vec(self.n * self.m),
            Loss::CrossEntropy => (0..self.n)
                .flat_map(|i| {
                    if i % 2 == 0 {
                        let c = rng.below(self.m);
                        (0..self.m).map(|j| f32::from(j == c)).collect::<Vec<_>>()
                    } else {
                        let w: Vec<f32> = (0..self.m).map(|_| rng.f() + 1.5).collect();
                        let s: f32 = w.iter().sum();
                        w.iter().map(|v| v / s).collect()
                    }
                })
                .collect(),
        };
        (x, y)
    }
}

/// An optimizer setting under test.
struct Case {
    name: &'static str,
    opt: Optimizer,
    lr: f32,
    clip: f32,
}

fn sgd(momentum: f32, nesterov: bool, weight_decay: f32) -> Optimizer {
    Optimizer::Sgd {
        momentum,
        nesterov,
        weight_decay,
    }
}

fn adam(beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Optimizer {
    Optimizer::Adam {
        beta1,
        beta2,
        eps,
        weight_decay,
    }
}

fn adamw(beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Optimizer {
    Optimizer::AdamW {
        beta1,
        beta2,
        eps,
        weight_decay,
    }
}

fn cases() -> Vec<Case> {
    let case = |name, opt, lr, clip| Case {
        name,
        opt,
        lr,
        clip,
    };
    vec![
        case("sgd", Optimizer::SGD, 0.05, 0.0),
        case("sgd momentum", Optimizer::momentum(0.9, false), 0.05, 0.0),
        case("sgd nesterov", Optimizer::momentum(0.8, true), 0.05, 0.0),
        case("sgd weight decay", sgd(0.0, false, 0.2), 0.05, 0.0),
        case("sgd nesterov weight decay", sgd(0.7, true, 0.1), 0.05, 0.0),
        case("adam", Optimizer::ADAM, 0.01, 0.0),
        // eps large enough to matter, so its place in the rule is tested.
        case("adam weight decay", adam(0.8, 0.99, 1e-3, 0.1), 0.01, 0.0),
        case("adamw", adamw(0.9, 0.999, 1e-8, 0.5), 0.01, 0.0),
        // Clipping active on every step (limits below every gradient norm here; asserted).
        case(
            "sgd momentum clipped",
            Optimizer::momentum(0.9, false),
            0.05,
            0.05,
        ),
        case("sgd clipped", Optimizer::SGD, 0.05, 0.1),
        case("adamw clipped", adamw(0.9, 0.99, 1e-3, 0.1), 0.01, 0.02),
        // Clipping set but inactive (the norm never reaches it).
        case(
            "sgd momentum clip inactive",
            Optimizer::momentum(0.5, true),
            0.05,
            1e3,
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `train_step`.
    Fused,
    /// `forward`, `backward`, `step`.
    Separate,
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Largest `|a - b| / (TOL (|b| + rms(b)))` and its index (<= 1 passes).
fn within(a: &[f32], b: &[f64]) -> (f64, usize) {
    let rms = (b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt();
    let mut w = (0.0, 0);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let r = (f64::from(x) - y).abs() / (TOL * (y.abs() + rms));
        if r.is_nan() || r > w.0 {
            w = (if r.is_nan() { f64::INFINITY } else { r }, i);
        }
    }
    w
}

/// Outcome of one trajectory: the worst ratio over steps and parameters, where, and
/// the smallest clipping coefficient the reference used.
#[derive(Debug)]
struct Outcome {
    worst: f64,
    step: usize,
    index: usize,
    loss_worst: f64,
    min_clip: f64,
    max_clip: f64,
}

/// Run `STEPS` steps of `case` on `shape` in flowmlp and in the reference (with
/// `mistake`), comparing after every step.
fn trajectory(isa: Isa, shape: &Shape, case: &Case, path: Path, mistake: Mistake) -> Outcome {
    let dims = shape.dims();
    let mut model = Model::new(&shape.config(isa)).unwrap();
    model.set_optimizer(case.opt).unwrap();
    model.set_grad_clip(case.clip).unwrap();
    let mut p_ref = to_f64(&common::params(&model));
    assert_eq!(p_ref.len(), reference::param_count(&dims));
    let mut opt = RefOptimizer::new(case.opt, case.clip, p_ref.len(), mistake);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (shape.d * 31 + shape.m) as u64);
    let mut out = Outcome {
        worst: 0.0,
        step: 0,
        index: 0,
        loss_worst: 0.0,
        min_clip: 1.0,
        max_clip: 0.0,
    };
    for step in 1..=STEPS {
        let (x, y) = shape.batch(&mut rng);
        let (loss_ref, g_ref) =
            reference::loss_grad(&dims, &p_ref, &to_f64(&x), &to_f64(&y), shape.n, shape.loss);
        let loss = match path {
            Path::Fused => model.train_step(&x, &y, case.lr).unwrap(),
            Path::Separate => {
                model.forward(&x, None).unwrap();
                let l = model.backward(&y).unwrap();
                model.step(case.lr).unwrap();
                l
            }
        };
        opt.step(&mut p_ref, &g_ref, case.lr);
        out.min_clip = out.min_clip.min(opt.last_clip);
        out.max_clip = out.max_clip.max(opt.last_clip);
        let lw = (f64::from(loss) - loss_ref).abs() / (TOL * (loss_ref.abs() + 1e-3));
        out.loss_worst = out
            .loss_worst
            .max(if lw.is_nan() { f64::INFINITY } else { lw });
        let (w, i) = within(&common::params(&model), &p_ref);
        if w > out.worst {
            (out.worst, out.step, out.index) = (w, step, i);
        }
    }
    out
}

#[test]
fn trajectories_match_the_f64_reference_on_every_kernel_set() {
    let mut runs = 0;
    let mut largest: f64 = 0.0;
    for isa in isas() {
        for shape in &SHAPES {
            for case in cases() {
                for path in [Path::Fused, Path::Separate] {
                    let o = trajectory(isa, shape, &case, path, Mistake::None);
                    let what =
                        format!("{} / {} / {} / {path:?}", isa.name(), shape.name, case.name);
                    assert!(
                        o.worst <= 1.0,
                        "{what}: parameter {} after step {} is {:.2}x past the tolerance ({o:?})",
                        o.index,
                        o.step,
                        o.worst
                    );
                    assert!(
                        o.loss_worst <= 1.0,
                        "{what}: loss off the reference ({o:?})"
                    );
                    if case.clip > 0.0 && case.clip < 1.0 {
                        assert!(
                            o.max_clip < 1.0,
                            "{what}: clipping was meant to be active on every step ({o:?})"
                        );
                    }
                    if case.clip >= 1.0 {
                        assert_eq!(o.min_clip, 1.0, "{what}: clipping was meant to be inactive");
                    }
                    largest = largest.max(o.worst);
                    runs += 1;
                }
            }
        }
    }
    eprintln!(
        "{runs} trajectories of {STEPS} steps; largest error {:.2e} relative ({:.3} of the tolerance)",
        largest * TOL,
        largest
    );
}

#[test]
fn deliberate_mistakes_in_the_reference_are_caught() {
    // (mistake, case name): the rule a wrong implementation would follow.
    let pairs = [
        (Mistake::NoBiasCorrection1, "adam"),
        (Mistake::EpsInsideCorrection, "adam weight decay"),
        (Mistake::NoWeightDecay, "adam weight decay"),
        (Mistake::NoWeightDecay, "sgd weight decay"),
        (Mistake::NoNesterov, "sgd nesterov"),
        (Mistake::Dampening, "sgd momentum"),
        (Mistake::CoupledDecay, "adamw"),
        (Mistake::NoClip, "sgd momentum clipped"),
        (Mistake::NoClip, "adamw clipped"),
        (Mistake::ClipAlways, "sgd momentum clip inactive"),
    ];
    let all = cases();
    for (mistake, name) in pairs {
        let case = all.iter().find(|c| c.name == name).unwrap();
        for shape in &SHAPES {
            let o = trajectory(Isa::Scalar, shape, case, Path::Fused, mistake);
            assert!(
                o.worst > 10.0,
                "{mistake:?} in the reference went unnoticed on {name} / {} ({o:?})",
                shape.name
            );
        }
    }
}

/// A model with `opt`, trained `steps` steps on batches from `rng`.
fn trained(isa: Isa, opt: Optimizer, clip: f32, steps: usize, rng: &mut Rng) -> Model {
    let shape = &SHAPES[0];
    let mut model = Model::new(&shape.config(isa)).unwrap();
    model.set_optimizer(opt).unwrap();
    model.set_grad_clip(clip).unwrap();
    for _ in 0..steps {
        let (x, y) = shape.batch(rng);
        model.train_step(&x, &y, 0.01).unwrap();
    }
    model
}

/// Train both models `steps` more steps on the same batches; they must stay
/// bit-identical (same kernels, same parameters, same optimizer state).
fn assert_same_future(a: &mut Model, b: &mut Model, rng: &mut Rng, what: &str) {
    let shape = &SHAPES[0];
    for step in 0..5 {
        let (x, y) = shape.batch(rng);
        let la = a.train_step(&x, &y, 0.01).unwrap();
        let lb = b.train_step(&x, &y, 0.01).unwrap();
        assert_eq!(la.to_bits(), lb.to_bits(), "{what}: loss of step {step}");
        assert_eq!(
            bits(&common::params(a)),
            bits(&common::params(b)),
            "{what}: parameters after step {step}"
        );
    }
    assert_eq!(a.optimizer_steps(), b.optimizer_steps(), "{what}");
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn set_optimizer_refuses_bad_hyperparameters_and_changes_nothing() {
    let bad = [
        ("momentum -0.1", sgd(-0.1, false, 0.0)),
        ("momentum 1", sgd(1.0, false, 0.0)),
        ("momentum NaN", sgd(f32::NAN, false, 0.0)),
        ("momentum inf", sgd(f32::INFINITY, false, 0.0)),
        ("nesterov without momentum", sgd(0.0, true, 0.0)),
        ("sgd weight decay -1e-3", sgd(0.9, false, -1e-3)),
        ("sgd weight decay NaN", sgd(0.9, false, f32::NAN)),
        ("sgd weight decay inf", sgd(0.0, false, f32::INFINITY)),
        ("adam beta1 1", adam(1.0, 0.999, 1e-8, 0.0)),
        ("adam beta1 -0.1", adam(-0.1, 0.999, 1e-8, 0.0)),
        ("adam beta1 NaN", adam(f32::NAN, 0.999, 1e-8, 0.0)),
        ("adam beta2 1", adam(0.9, 1.0, 1e-8, 0.0)),
        ("adam beta2 1.5", adam(0.9, 1.5, 1e-8, 0.0)),
        ("adam eps -1e-8", adam(0.9, 0.999, -1e-8, 0.0)),
        ("adam eps 0", adam(0.9, 0.999, 0.0, 0.0)),
        ("adam eps NaN", adam(0.9, 0.999, f32::NAN, 0.0)),
        ("adam eps inf", adam(0.9, 0.999, f32::INFINITY, 0.0)),
        ("adam weight decay -0.01", adam(0.9, 0.999, 1e-8, -0.01)),
        ("adamw beta1 1", adamw(1.0, 0.999, 1e-8, 0.01)),
        ("adamw beta2 -0.5", adamw(0.9, -0.5, 1e-8, 0.01)),
        ("adamw eps -1e-8", adamw(0.9, 0.999, -1e-8, 0.01)),
        ("adamw weight decay NaN", adamw(0.9, 0.999, 1e-8, f32::NAN)),
    ];
    for isa in isas() {
        let current = adam(0.85, 0.99, 1e-6, 0.01);
        let mut a = trained(isa, current, 0.5, 3, &mut Rng(11));
        let mut b = trained(isa, current, 0.5, 3, &mut Rng(11));
        let before = bits(&common::params(&a));
        let grads = bits(&common::grads(&a));
        for (what, opt) in bad {
            assert_eq!(a.set_optimizer(opt), Err(Error::InvalidArgument), "{what}");
            assert_eq!(a.optimizer(), current, "{what}: optimizer replaced");
            assert_eq!(a.optimizer_steps(), 3, "{what}: step count reset");
            assert_eq!(bits(&common::params(&a)), before, "{what}: parameters");
            assert_eq!(bits(&common::grads(&a)), grads, "{what}: gradients");
        }
        for clip in [-1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(
                a.set_grad_clip(clip),
                Err(Error::InvalidArgument),
                "clip {clip}"
            );
        }
        // The moments, step count and clipping survived: the same future as the twin.
        assert_same_future(&mut a, &mut b, &mut Rng(12), isa.name());
    }
}

#[test]
fn switching_optimizers_starts_from_fresh_state() {
    let switches = [
        (Optimizer::ADAM, Optimizer::momentum(0.9, false)),
        (Optimizer::ADAM, Optimizer::ADAM),
        (
            Optimizer::momentum(0.9, true),
            Optimizer::momentum(0.9, true),
        ),
        (Optimizer::momentum(0.9, false), Optimizer::ADAMW),
        (adamw(0.9, 0.99, 1e-3, 0.1), Optimizer::SGD),
        (Optimizer::SGD, Optimizer::ADAM),
    ];
    for isa in isas() {
        for (first, second) in switches {
            let what = format!("{}: {first:?} -> {second:?}", isa.name());
            let mut a = trained(isa, first, 0.0, 4, &mut Rng(21));
            a.set_optimizer(second).unwrap();
            assert_eq!(a.optimizer(), second, "{what}");
            assert_eq!(a.optimizer_steps(), 0, "{what}: step count not reset");
            // A fresh model at the same parameters with a new optimizer.
            let mut b = Model::new(&SHAPES[0].config(isa)).unwrap();
            b.set_params(&common::params(&a)).unwrap();
            b.set_optimizer(second).unwrap();
            assert_same_future(&mut a, &mut b, &mut Rng(22), &what);
        }
    }
}

#[test]
fn a_refused_step_changes_nothing() {
    let opts = [
        ("sgd", Optimizer::SGD, 0.0),
        ("sgd momentum", Optimizer::momentum(0.9, false), 0.0),
        ("sgd nesterov weight decay", sgd(0.9, true, 0.01), 0.0),
        ("adam", Optimizer::ADAM, 0.0),
        ("adamw clipped", Optimizer::ADAMW, 0.5),
    ];
    let shape = &SHAPES[0];
    for isa in isas() {
        for (name, opt, clip) in opts {
            let what = format!("{} / {name}", isa.name());
            let mut a = trained(isa, opt, clip, 3, &mut Rng(31));
            let mut b = trained(isa, opt, clip, 3, &mut Rng(31));
            let steps = a.optimizer_steps();
            // Targets far away give gradients well above 1, and f32::MAX times any of
            // them overflows (Adam's lr / (1 - beta1^t) overflows by itself).
            let (x, mut y) = shape.batch(&mut Rng(32));
            y.iter_mut().for_each(|v| *v *= 1e4);
            let params = bits(&common::params(&a));

            // forward + backward + step.
            a.forward(&x, None).unwrap();
            a.backward(&y).unwrap();
            let grads = bits(&common::grads(&a));
            assert_eq!(a.step(f32::MAX), Err(Error::Diverged), "{what}: step");
            assert_eq!(bits(&common::params(&a)), params, "{what}: parameters");
            assert_eq!(bits(&common::grads(&a)), grads, "{what}: gradients");
            assert_eq!(a.optimizer_steps(), steps, "{what}: step count");

            // train_step.
            assert_eq!(
                a.train_step(&x, &y, f32::MAX),
                Err(Error::Diverged),
                "{what}: train_step"
            );
            assert_eq!(bits(&common::params(&a)), params, "{what}: parameters");
            assert_eq!(bits(&common::grads(&a)), grads, "{what}: gradients");
            assert_eq!(a.optimizer_steps(), steps, "{what}: step count");

            // The optimizer state is as it was: the same step as the twin's.
            b.forward(&x, None).unwrap();
            b.backward(&y).unwrap();
            a.step(1e-4).unwrap();
            b.step(1e-4).unwrap();
            assert_eq!(
                bits(&common::params(&a)),
                bits(&common::params(&b)),
                "{what}"
            );
            assert_same_future(&mut a, &mut b, &mut Rng(33), &what);
        }
    }
}

#[test]
fn optimizer_steps_counts_every_step() {
    for isa in isas() {
        for (name, opt, clip) in [
            ("adam", Optimizer::ADAM, 0.0),
            ("sgd momentum", Optimizer::momentum(0.9, false), 0.0),
            ("sgd clipped", Optimizer::SGD, 1.0),
        ] {
            let m = trained(isa, opt, clip, 5, &mut Rng(41));
            assert_eq!(m.optimizer_steps(), 5, "{} / {name}", isa.name());
        }
    }
}

/// `optimizer_steps` counts the steps taken since the optimizer was set on every path,
/// the fused plain-SGD ones included (`apply_sgd`, the update fused into `train_step`'s
/// backward pass, and the one-row kernel).
#[test]
fn plain_sgd_steps_are_counted_too() {
    for isa in isas() {
        let mut m = trained(isa, Optimizer::SGD, 0.0, 5, &mut Rng(41));
        assert_eq!(m.optimizer_steps(), 5, "{}: train_step", isa.name());
        let (x, y) = SHAPES[0].batch(&mut Rng(42));
        m.forward(&x, None).unwrap();
        m.backward(&y).unwrap();
        m.step(0.01).unwrap();
        assert_eq!(m.optimizer_steps(), 6, "{}: step", isa.name());
    }
}

/// Gradients near 1e20, where g * g overflows but (1 - beta2) * g * g does not: every
/// kernel set accepts or refuses the same Adam steps as the scalar reference (2 -> 40
/// -> 1, a batch of two rows of inputs near 1e10, one row, through step and
/// train_step), and an accepted step leaves finite moments.
#[test]
fn every_set_refuses_exactly_what_the_reference_refuses_near_the_float_range() {
    let cfg = flowmlp::Config::new(2, &[40], 1).max_batch(2).seed(3);
    let run =
        |isa: Isa, x: &[f32], y: &[f32], fused: bool| -> (Result<(), flowmlp::Error>, Vec<u32>) {
            let mut m = Model::new(&cfg.isa(isa)).unwrap();
            m.set_optimizer(Optimizer::ADAM).unwrap();
            let r = if fused {
                m.train_step(x, y, 1e-3).map(|_| ())
            } else {
                m.forward(x, None).unwrap();
                m.backward(y).unwrap();
                m.step(1e-3)
            };
            let mut p = vec![0.0; m.param_count()];
            m.get_params(&mut p).unwrap();
            (r, bits(&p))
        };
    let mut accepted = 0;
    for (scale, rows) in [(1e10f32, 2), (3e9, 2), (1e10, 1), (3e11, 1), (1e12, 2)] {
        let x: Vec<f32> = [0.9, 1.1, -0.7, 1.3][..2 * rows]
            .iter()
            .map(|v| v * scale)
            .collect();
        let y = vec![0.5f32; rows];
        for fused in [false, true] {
            let (want, _) = run(Isa::Scalar, &x, &y, fused);
            accepted += usize::from(want.is_ok());
            for isa in common::isas() {
                let (got, p) = run(isa, &x, &y, fused);
                assert_eq!(
                    got, want,
                    "{isa:?}, inputs near {scale:e}, {rows} rows, fused {fused}: the scalar \
                     reference gives {want:?}"
                );
                if got.is_ok() {
                    assert!(p.iter().all(|&b| f32::from_bits(b).is_finite()));
                }
            }
        }
    }
    // The magnitudes straddle the edge: some steps are accepted, some refused.
    assert!(accepted > 0 && accepted < 10, "{accepted} of 10 accepted");
}
