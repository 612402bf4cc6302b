//! Softmax cross-entropy (`Loss::CrossEntropy`) on every kernel set this machine runs:
//! the loss and the gradients of `backward` against central finite differences of an
//! independent f64 softmax cross-entropy (`common/reference.rs`), on random small
//! configurations with one-hot and soft targets; stability with logits around 1e4; and
//! `predict_class` as the argmax of `forward`.
//!
//! Tolerances. The gradient of the f32 model carries the rounding of its dot products
//! (at most 9 terms per layer, through at most 4 layers, plus the n rows): about 40 u
//! = 2.4e-6 relative to the size of the gradient (u = 2^-24). The f64 central
//! difference with h = 1e-6 is off by about h^2 |L'''| + 1e-16 / h, 1e-10 here, as
//! long as no ReLU kink lies within reach of a step (configurations with a hidden
//! pre-activation closer than 1e-3 to 0 are redrawn). So `GRAD_TOL` = 1e-5 on
//! `|g - fd| <= GRAD_TOL (|fd| + rms(fd))` (the rms scale for entries near zero) is
//! 4x that estimate; the largest error seen is reported by the test. The loss, summed
//! in f64 from f32 logits, is off by the logits' rounding: `LOSS_TOL` = 1e-5
//! relative to `|L| + 1e-3`.

mod common;
#[path = "common/reference.rs"]
mod reference;

use common::{isas, Rng};
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};

const GRAD_TOL: f64 = 1e-5;
const LOSS_TOL: f64 = 1e-5;
/// Step of the central differences.
const H: f64 = 1e-6;

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn dims_of(cfg: &Config) -> Vec<usize> {
    common::dims(cfg)
}

/// Largest `|a - b| / (tol (|b| + rms(b)))` and its index (<= 1 passes).
fn within(a: &[f64], b: &[f64], tol: f64) -> (f64, usize) {
    let rms = (b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt();
    let mut w = (0.0, 0);
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let r = (x - y).abs() / (tol * (y.abs() + rms));
        if r.is_nan() || r > w.0 {
            w = (if r.is_nan() { f64::INFINITY } else { r }, i);
        }
    }
    w
}

/// Targets: one-hot rows (`kind` 0), soft rows of probabilities (1), or a mix (2).
fn targets(rng: &mut Rng, n: usize, m: usize, kind: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|i| {
            if kind == 0 || (kind == 2 && i % 2 == 0) {
                let c = rng.below(m);
                (0..m).map(|j| f32::from(j == c)).collect::<Vec<_>>()
            } else {
                let w: Vec<f32> = (0..m).map(|_| rng.f() + 1.2).collect();
                let s: f32 = w.iter().sum();
                w.iter().map(|v| v / s).collect()
            }
        })
        .collect()
}

/// Central differences of the f64 reference loss in every parameter.
fn finite_differences(dims: &[usize], p: &[f64], x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    let mut q = p.to_vec();
    (0..p.len())
        .map(|i| {
            q[i] = p[i] + H;
            let up = reference::loss(dims, &q, x, y, n, Loss::CrossEntropy);
            q[i] = p[i] - H;
            let down = reference::loss(dims, &q, x, y, n, Loss::CrossEntropy);
            q[i] = p[i];
            (up - down) / (2.0 * H)
        })
        .collect()
}

/// A random configuration: m = 2..5 outputs, 1..3 hidden layers of 1..9, d = 1..6,
/// n = 1..5 rows.
fn random_config(rng: &mut Rng, seed: u64) -> (Config, usize) {
    let m = 2 + rng.below(4);
    let depth = 1 + rng.below(3);
    let hidden: Vec<usize> = (0..depth).map(|_| 1 + rng.below(9)).collect();
    let d = 1 + rng.below(6);
    let n = 1 + rng.below(5);
    let cfg = Config::new(d, &hidden, m)
        .max_batch(n)
        .seed(seed)
        .loss(Loss::CrossEntropy);
    (cfg, n)
}

#[test]
fn loss_and_gradients_match_f64_finite_differences() {
    let (mut checked, mut redrawn) = (0, 0);
    let (mut worst_g, mut worst_l, mut worst_ref): (f64, f64, f64) = (0.0, 0.0, 0.0);
    for isa in isas() {
        let mut rng = Rng(0xC0FF_EE00_1234_5678);
        for case in 0..40u64 {
            let (cfg, n) = random_config(&mut rng, case);
            let dims = dims_of(&cfg);
            let mut model = common::model(&cfg, isa);
            let p32 = common::params(&model);
            let p = to_f64(&p32);
            // Inputs whose hidden pre-activations all keep away from the ReLU kink.
            let x = loop {
                let x = rng.vec(n * cfg.inputs);
                if reference::kink_distance(&dims, &p, &to_f64(&x), n) > 1e-3 {
                    break x;
                }
                redrawn += 1;
                assert!(redrawn < 10_000, "{dims:?}: no input away from the kinks");
            };
            let y = targets(&mut rng, n, cfg.outputs, case as usize % 3);
            let (xd, yd) = (to_f64(&x), to_f64(&y));
            let what = format!("{} case {case}: dims {dims:?}, n = {n}", isa.name());

            model.forward(&x, None).unwrap();
            let loss = model.backward(&y).unwrap();
            let grads = to_f64(&common::grads(&model));

            let fd = finite_differences(&dims, &p, &xd, &yd, n);
            let (loss_ref, g_ref) =
                reference::loss_grad(&dims, &p, &xd, &yd, n, Loss::CrossEntropy);
            let lw = (f64::from(loss) - loss_ref).abs() / (LOSS_TOL * (loss_ref.abs() + 1e-3));
            assert!(lw <= 1.0, "{what}: loss {loss} vs f64 {loss_ref}");
            let (gw, i) = within(&grads, &fd, GRAD_TOL);
            assert!(
                gw <= 1.0,
                "{what}: gradient {i} is {} vs finite difference {} ({gw:.2}x the tolerance)",
                grads[i],
                fd[i]
            );
            // The f64 backward the optimizer tests use agrees with the differences too
            // (to their own error, about 1e-10 absolute on gradients of 1e-3 and up).
            let (rw, j) = within(&g_ref, &fd, 1e-6);
            assert!(rw <= 1.0, "{what}: reference backward, entry {j}");
            (worst_g, worst_l, worst_ref) = (worst_g.max(gw), worst_l.max(lw), worst_ref.max(rw));
            checked += 1;
        }
    }
    eprintln!(
        "{checked} configurations ({redrawn} input draws near a kink redrawn); largest \
         gradient error {:.1e} ({:.3} of the tolerance), loss {:.1e}, f64 backward vs \
         differences {:.1e}",
        worst_g * GRAD_TOL,
        worst_g,
        worst_l * LOSS_TOL,
        worst_ref * 1e-6
    );
}

#[test]
fn train_step_applies_the_cross_entropy_gradient() {
    // train_step (fused SGD, and the one-row kernel for n = 1) moves the parameters by
    // -lr times the gradient that backward reports for the same batch.
    for isa in isas() {
        for n in [1, 3] {
            let cfg = Config::new(4, &[6, 5], 3)
                .max_batch(n)
                .seed(3)
                .loss(Loss::CrossEntropy);
            let mut rng = Rng(77 + n as u64);
            let mut a = common::model(&cfg, isa);
            let mut b = common::model(&cfg, isa);
            for step in 0..5 {
                let x = rng.vec(n * 4);
                let y = targets(&mut rng, n, 3, 2);
                let p = common::params(&a);
                b.forward(&x, None).unwrap();
                let lb = b.backward(&y).unwrap();
                let g = common::grads(&b);
                b.step(0.1).unwrap();
                let la = a.train_step(&x, &y, 0.1).unwrap();
                let what = format!("{} n = {n} step {step}", isa.name());
                assert!(
                    (la - lb).abs() <= 1e-6 * (lb.abs() + 1e-3),
                    "{what}: {la} vs {lb}"
                );
                let want: Vec<f64> = p
                    .iter()
                    .zip(&g)
                    .map(|(&p, &g)| f64::from(p) - 0.1 * f64::from(g))
                    .collect();
                let (w, i) = within(&to_f64(&common::params(&a)), &want, 1e-6);
                assert!(w <= 1.0, "{what}: parameter {i}");
            }
        }
    }
}

/// Replace the output layer of `cfg`'s model by `scale * W_o` and `bias`.
fn with_head(model: &mut Model, cfg: &Config, scale: f32, bias: &[f32]) -> Vec<f32> {
    let mut p = common::params(model);
    let (m, h) = (cfg.outputs, *cfg.hidden_widths().last().unwrap());
    let len = p.len();
    let (w, b) = p[len - m - m * h..].split_at_mut(m * h);
    w.iter_mut().for_each(|v| *v *= scale);
    b.copy_from_slice(bias);
    model.set_params(&p).unwrap();
    p
}

#[test]
fn huge_logits_give_a_finite_loss_and_correct_gradients() {
    // Logits around 1e4: exp overflows f32 (and f64) unless the row maximum is taken
    // out first. Two regimes: (a) output weights x 1e4, logits spread by thousands,
    // the softmax saturated and the loss of a wrong class in the thousands; (b) biases
    // near 1e4 with ordinary weights, logits within a few units of each other at 1e4,
    // the softmax far from saturated. The f32 logits are rounded to ulp(1e4) = 2^-10
    // ~ 1e-3, so against the f64 reference at the same parameters the loss may be
    // off by about 2e-3 per row and the gradients by about that relative to their
    // size: tolerance 1e-2, scaled. The output-bias gradient, sum over rows of
    // (softmax(z) - y) / n, is checked tightly against f64 on flowmlp's own logits.
    let cfg = Config::new(3, &[5], 4)
        .max_batch(4)
        .seed(9)
        .loss(Loss::CrossEntropy);
    let dims = dims_of(&cfg);
    let n = 4;
    let regimes: [(&str, f32, [f32; 4]); 2] = [
        ("saturated", 1e4, [0.0, 0.0, 0.0, 0.0]),
        ("near 1e4", 1.0, [1e4, 1e4 + 1.0, 1e4 - 2.0, -1e4]),
    ];
    for isa in isas() {
        for (name, scale, bias) in regimes {
            for kind in [0, 1] {
                let what = format!("{} / {name} / targets {kind}", isa.name());
                let mut model = common::model(&cfg, isa);
                let p = to_f64(&with_head(&mut model, &cfg, scale, &bias));
                let mut rng = Rng(5 + kind as u64);
                let x = rng.vec(n * 3);
                let y = targets(&mut rng, n, 4, kind);
                let (xd, yd) = (to_f64(&x), to_f64(&y));
                let z_ref = reference::outputs(&dims, &p, &xd, n);
                let zmax = z_ref.iter().fold(0.0f64, |a, b| a.max(b.abs()));
                assert!(zmax > 5e3, "{what}: logits only reach {zmax}");

                let mut z = vec![0.0f32; n * 4];
                model.forward(&x, Some(&mut z)).unwrap();
                let loss = model.backward(&y).expect("a finite loss");
                assert!(loss.is_finite(), "{what}");
                let g = to_f64(&common::grads(&model));
                assert!(g.iter().all(|v| v.is_finite()), "{what}: gradients");

                let (loss_ref, g_ref) =
                    reference::loss_grad(&dims, &p, &xd, &yd, n, Loss::CrossEntropy);
                assert!(
                    (f64::from(loss) - loss_ref).abs() <= 1e-6 * loss_ref.abs() + 2e-3,
                    "{what}: loss {loss} vs f64 {loss_ref}"
                );
                let (w, i) = within(&g, &g_ref, 1e-2);
                assert!(w <= 1.0, "{what}: gradient {i}: {} vs {}", g[i], g_ref[i]);

                // Output-bias gradient against f64 softmax of flowmlp's own logits.
                let m = 4;
                let gb: Vec<f64> = (0..m)
                    .map(|j| {
                        (0..n)
                            .map(|r| {
                                let zr = to_f64(&z[r * m..(r + 1) * m]);
                                let lse = reference::logsumexp(&zr);
                                let ysum: f64 = yd[r * m..(r + 1) * m].iter().sum();
                                (ysum * (zr[j] - lse).exp() - yd[r * m + j]) / n as f64
                            })
                            .sum()
                    })
                    .collect();
                let (w, j) = within(&g[g.len() - m..], &gb, 1e-5);
                assert!(w <= 1.0, "{what}: output-bias gradient {j}");

                // A train step from there stays finite, with every optimizer.
                for opt in [
                    Optimizer::SGD,
                    Optimizer::momentum(0.9, true),
                    Optimizer::ADAM,
                ] {
                    let mut t = common::model(&cfg, isa);
                    with_head(&mut t, &cfg, scale, &bias);
                    t.set_optimizer(opt).unwrap();
                    let l = t.train_step(&x, &y, 1e-3).unwrap();
                    assert!((f64::from(l) - loss_ref).abs() <= 1e-6 * loss_ref.abs() + 2e-3);
                    assert!(common::params(&t).iter().all(|v| v.is_finite()));
                }
            }
        }
    }
}

/// Index of the first largest entry.
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best as u32
}

#[test]
fn predict_class_is_the_argmax_of_forward() {
    for isa in isas() {
        let mut rng = Rng(0xA5A5_5A5A_0F0F_F0F0);
        for case in 0..20u64 {
            let (cfg, n) = random_config(&mut rng, 100 + case);
            let (d, m) = (cfg.inputs, cfg.outputs);
            let mut model = common::model(&cfg, isa);
            let x: Vec<f32> = rng.vec(n * d).iter().map(|v| 3.0 * v).collect();
            let mut z = vec![0.0f32; n * m];
            model.forward(&x, Some(&mut z)).unwrap();
            let want: Vec<u32> = z.chunks(m).map(argmax).collect();
            let mut classes = vec![u32::MAX; n];
            model.predict_class(&x, &mut classes).unwrap();
            assert_eq!(classes, want, "{} case {case}: {z:?}", isa.name());

            // The forward is kept: backward after predict_class is backward after forward.
            let y = targets(&mut rng, n, m, 2);
            let l1 = model.backward(&y).unwrap();
            let g1 = common::grads(&model);
            model.forward(&x, None).unwrap();
            let l2 = model.backward(&y).unwrap();
            assert_eq!(l1.to_bits(), l2.to_bits());
            assert_eq!(g1, common::grads(&model));
        }

        // Ties go to the lowest index: zero output weights, biases [0.5, 2, 2, -1].
        let cfg = Config::new(3, &[5], 4)
            .max_batch(6)
            .seed(1)
            .loss(Loss::CrossEntropy);
        let mut model = common::model(&cfg, isa);
        with_head(&mut model, &cfg, 0.0, &[0.5, 2.0, 2.0, -1.0]);
        let mut classes = vec![u32::MAX; 6];
        model.predict_class(&rng.vec(18), &mut classes).unwrap();
        assert_eq!(classes, vec![1; 6], "{}", isa.name());

        // Refused calls write nothing.
        let mut out = vec![7u32; 6];
        let x = rng.vec(18);
        assert_eq!(
            model.predict_class(&x, &mut out[..5]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            model.predict_class(&x[..17], &mut out[..5]),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            model.predict_class(&[], &mut []),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            model.predict_class(&rng.vec(21), &mut [0; 7]),
            Err(Error::BatchTooLarge)
        );
        let mut bad = x.clone();
        bad[4] = f32::NAN;
        assert_eq!(model.predict_class(&bad, &mut out), Err(Error::NonFinite));
        assert_eq!(out, vec![7; 6]);
    }
}

#[test]
fn the_loss_field_defaults_to_mse_and_converts_from_c() {
    assert_eq!(Config::new(2, &[3], 1).loss, Loss::Mse);
    assert_eq!(Loss::default(), Loss::Mse);
    assert_eq!(Loss::from_u32(0), Some(Loss::Mse));
    assert_eq!(Loss::from_u32(1), Some(Loss::CrossEntropy));
    assert_eq!(Loss::from_u32(2), None);
    assert_eq!(Loss::from_u32(u32::MAX), None);
    // The same model and batch give different losses under MSE and cross-entropy, and
    // MSE is what the f64 reference loss computes.
    let cfg = Config::new(2, &[3], 2)
        .max_batch(2)
        .seed(4)
        .isa(Isa::Scalar);
    let mut mse = Model::new(&cfg).unwrap();
    let mut xent = Model::new(&cfg.loss(Loss::CrossEntropy)).unwrap();
    let (x, y) = ([0.3, -0.2, 0.9, 0.1], [1.0, 0.0, 0.0, 1.0]);
    mse.forward(&x, None).unwrap();
    xent.forward(&x, None).unwrap();
    let (lm, lx) = (mse.backward(&y).unwrap(), xent.backward(&y).unwrap());
    let p = to_f64(&common::params(&mse));
    let want = common::loss_f64(&common::dims(&cfg), &p, &to_f64(&x), &to_f64(&y), 2);
    assert!((f64::from(lm) - want).abs() <= 1e-6 * want);
    let want_x = reference::loss(
        &common::dims(&cfg),
        &p,
        &to_f64(&x),
        &to_f64(&y),
        2,
        Loss::CrossEntropy,
    );
    assert!((f64::from(lx) - want_x).abs() <= 1e-6 * want_x);
}
