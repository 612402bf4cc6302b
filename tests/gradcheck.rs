//! The scalar reference against f64 finite differences, a case worked by hand,
//! train_step against its three calls, and a learning test.

mod common;
use common::*;
use flowmlp::{Config, Isa, Model};

/// Tolerance of the f32 gradients against f64 central differences:
/// |g - g_fd| <= 2e-4 * (|g_fd| + 1e-2 * max|g_fd|). The f32 gradient carries
/// relative errors of about 1e-6 * sqrt(fan-in); the central difference with
/// h = 1e-6 in f64 is accurate to about 1e-9; the margin covers both.
const FD_TOL: f64 = 2e-4;

#[test]
fn scalar_backward_matches_f64_finite_differences() {
    let sizes = [1, 2, 3, 5, 7, 17];
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for case in 0..24 {
        let k = 1 + case % 3;
        let m = 1 + (case / 3) % 3;
        let hidden: Vec<usize> = (0..k).map(|_| sizes[rng.below(sizes.len())]).collect();
        let d = sizes[rng.below(sizes.len())];
        let n = 1 + rng.below(7);
        let cfg = Config::new(d, &hidden, m).max_batch(n).seed(case as u64);
        let mut model = Model::new(&cfg.isa(Isa::Scalar)).unwrap();
        // Biases off zero, so that every parameter's gradient is exercised.
        let mut p = params(&model);
        for v in p.iter_mut() {
            *v += 0.1 * rng.f();
        }
        model.set_params(&p).unwrap();
        let x = rng.vec(n * d);
        let y = rng.vec(n * m);
        model.forward(&x, None).unwrap();
        let loss = model.backward(&y).unwrap();
        let g = grads(&model);

        let dims = dims(&cfg);
        let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        let l64 = loss_f64(&dims, &p64, &x64, &y64, n);
        assert!(
            (loss as f64 - l64).abs() <= 1e-5 * (l64 + 1e-6),
            "case {case}: loss {loss} vs {l64}"
        );
        let fd = loss_differences(&dims, &p64, &x64, &y64, n, 0..p.len());
        let max = fd.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        for (t, (&gt, &ft)) in g.iter().zip(&fd).enumerate() {
            let err = (gt as f64 - ft).abs();
            assert!(
                err <= FD_TOL * (ft.abs() + 1e-2 * max),
                "case {case} ({d} -> {hidden:?} -> {m}, n={n}): grad[{t}] = {gt}, fd = {ft}"
            );
        }
    }
}

/// The course network d=2, h=2, m=1 with numbers chosen by hand:
/// W = [[1, -1], [0.5, 2]], b = [0, -1], w = [2, -3], b0 = 0.5,
/// x = [(1, 2), (3, -1)], y = [1, -2].
///
/// Row 1: Z = (-1, 3.5), H = (0, 3.5), yhat = -10.5 + 0.5 = -10, e = -11.
/// Row 2: Z = (4, -1.5),  H = (4, 0),   yhat = 8 + 0.5 = 8.5,   e = 10.5.
/// L = (121 + 110.25) / 2 = 115.625;  dyhat = (2/2) e = (-11, 10.5).
/// db0 = -0.5;  dw = -11 (0, 3.5) + 10.5 (4, 0) = (42, -38.5).
/// dZ_1 = -11 (2, -3) * [H_1 > 0] = (0, 33);  dZ_2 = 10.5 (2, -3) * [H_2 > 0] = (21, 0).
/// db = (21, 33);  dW = [[0*1 + 21*3, 0*2 + 21*(-1)], [33*1 + 0, 33*2 + 0]] = [[63, -21], [33, 66]].
#[test]
fn course_network_by_hand() {
    for isa in isas() {
        let cfg = Config::new(2, &[2], 1).max_batch(2).isa(isa);
        let mut model = Model::new(&cfg).unwrap();
        model
            .set_params(&[1.0, -1.0, 0.5, 2.0, 0.0, -1.0, 2.0, -3.0, 0.5])
            .unwrap();
        let mut yhat = [0.0; 2];
        model
            .forward(&[1.0, 2.0, 3.0, -1.0], Some(&mut yhat))
            .unwrap();
        assert_eq!(yhat, [-10.0, 8.5], "{isa:?}");
        let loss = model.backward(&[1.0, -2.0]).unwrap();
        assert_eq!(loss, 115.625, "{isa:?}");
        let g = grads(&model);
        assert_eq!(
            g,
            [63.0, -21.0, 33.0, 66.0, 21.0, 33.0, 42.0, -38.5, -0.5],
            "{isa:?}"
        );
    }
}

#[test]
fn train_step_equals_forward_backward_step() {
    let mut rng = Rng(42);
    for isa in isas() {
        for (d, hidden, m, n) in [
            (10, vec![64], 1, 32),
            (3, vec![7, 17], 2, 5),
            (9, vec![33, 3, 15], 4, 1),
        ] {
            let cfg = Config::new(d, &hidden, m)
                .max_batch(n.max(2))
                .seed(5)
                .isa(isa);
            let mut a = Model::new(&cfg).unwrap();
            let mut b = Model::new(&cfg).unwrap();
            for _ in 0..3 {
                let x = rng.vec(n * d);
                let y = rng.vec(n * m);
                let la = a.train_step(&x, &y, 0.05).unwrap();
                b.forward(&x, None).unwrap();
                let lb = b.backward(&y).unwrap();
                b.step(0.05).unwrap();
                assert!(
                    (la - lb).abs() <= 1e-6 * lb.abs(),
                    "{isa:?}: loss {la} vs {lb}"
                );
                let (w, t) = worst(&params(&a), &params(&b), 1e-6, 1e-3);
                assert!(
                    w <= 1.0,
                    "{isa:?} {d}->{hidden:?}->{m}: param {t} differs ({w})"
                );
                let (w, t) = worst(&grads(&a), &grads(&b), 1e-6, 1e-3);
                assert!(
                    w <= 1.0,
                    "{isa:?} {d}->{hidden:?}->{m}: grad {t} differs ({w})"
                );
            }
        }
    }
}

/// y = sin(2 x1) cos(1.5 x2) + 0.5 x1 x2 on [-1, 1]^2, 2 -> 32 -> 32 -> 1, full-batch SGD.
#[test]
fn learning_lowers_the_loss_a_hundredfold() {
    let n = 128;
    let mut rng = Rng(7);
    let x = rng.vec(n * 2);
    let y: Vec<f32> = (0..n)
        .map(|i| {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            (2.0 * a).sin() * (1.5 * b).cos() + 0.5 * a * b
        })
        .collect();
    for isa in isas() {
        let cfg = Config::new(2, &[32, 32], 1).max_batch(n).seed(3).isa(isa);
        let mut model = Model::new(&cfg).unwrap();
        let first = model.train_step(&x, &y, 0.05).unwrap();
        let mut last = first;
        for _ in 0..4000 {
            last = model.train_step(&x, &y, 0.05).unwrap();
        }
        assert!(last * 100.0 <= first, "{isa:?}: loss {first} -> {last}");
    }
}

/// Every kernel set, not only the reference, against f64 central differences, on
/// shapes that take the packed weight-gradient path (n >= 32 rows, 4 or more panels)
/// and the deep input-gradient re-layout, with m up to 10. A sample of parameters
/// from every layer (weights and biases) is differenced.
#[test]
fn every_set_matches_f64_finite_differences_on_packed_shapes() {
    let mut rng = Rng(0xD1B54A32D192ED03);
    for isa in isas() {
        for (d, hidden, m, n) in [(37, vec![70], 1, 40), (9, vec![66, 33], 10, 33)] {
            let cfg = Config::new(d, &hidden, m).max_batch(n).seed(17);
            let mut model = Model::new(&cfg.isa(isa)).unwrap();
            let mut p = params(&model);
            for v in p.iter_mut() {
                *v += 0.05 * rng.f();
            }
            model.set_params(&p).unwrap();
            let x = rng.vec(n * d);
            let y = rng.vec(n * m);
            model.forward(&x, None).unwrap();
            model.backward(&y).unwrap();
            let g = grads(&model);
            let dims = dims(&cfg);
            let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            let mut picks: Vec<usize> = (0..160).map(|_| rng.below(p.len())).collect();
            // Every bias of every layer too (few, and easy to miss by sampling).
            let mut off = 0;
            for l in 0..dims.len() - 1 {
                off += dims[l] * dims[l + 1];
                picks.extend(off..off + dims[l + 1]);
                off += dims[l + 1];
            }
            let fd = loss_differences(&dims, &p64, &x64, &y64, n, picks.iter().copied());
            let max = fd.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
            for (&t, &ft) in picks.iter().zip(&fd) {
                let err = (g[t] as f64 - ft).abs();
                assert!(
                    err <= FD_TOL * (ft.abs() + 1e-2 * max),
                    "{isa:?} {d} -> {hidden:?} -> {m}, n = {n}: grad[{t}] = {}, fd = {ft}",
                    g[t]
                );
            }
        }
    }
}
