//! `predict`: reads the model only, any number of rows in workspace-sized chunks, and
//! any number of threads at once with bit-identical results.

mod common;
use common::*;
use flowmlp::{Config, Error, Model};

fn trained(cfg: &Config, isa: flowmlp::Isa) -> Model {
    let mut m = model(cfg, isa);
    let mut rng = Rng(3);
    let (d, o, n) = (cfg.inputs, cfg.outputs, cfg.max_batch);
    for _ in 0..5 {
        m.train_step(&rng.vec(n * d), &rng.vec(n * o), 0.01)
            .unwrap();
    }
    m
}

#[test]
fn predict_matches_forward_for_any_rows_and_workspace() {
    for isa in isas() {
        for (d, hidden, m_out) in [
            (7, vec![33], 1),
            (5, vec![17, 9], 3),
            (10, vec![64, 64, 31], 4),
        ] {
            let cfg = Config::new(d, &hidden, m_out).max_batch(16).seed(9);
            let mut model = trained(&cfg, isa);
            let mut rng = Rng(17);
            // More rows than max_batch: predict is not limited by it.
            let n = 41;
            let x = rng.vec(n * d);
            let mut want = vec![0.0; n * m_out];
            for (xs, ys) in x.chunks(16 * d).zip(want.chunks_mut(16 * m_out)) {
                model.forward(xs, Some(ys)).unwrap();
            }
            for rows_per_pass in [1, 3, 16, 41, 100] {
                let mut ws = vec![0u8; model.predict_workspace_size(rows_per_pass)];
                // An unaligned workspace works too.
                let ws = &mut ws[..];
                let mut got = vec![0.0; n * m_out];
                model.predict(&x, &mut got, ws).unwrap();
                let (w, t) = worst(&got, &want, 1e-5, 1e-3);
                assert!(
                    w <= 1.0,
                    "{isa:?} {d}->{hidden:?}->{m_out}, {rows_per_pass} rows per pass: y[{t}]"
                );
            }
        }
    }
}

#[test]
fn predict_refuses_bad_input_without_touching_the_model() {
    let cfg = Config::new(3, &[8], 2).max_batch(4).seed(1);
    let model = Model::new(&cfg).unwrap();
    let before = params(&model);
    let mut ws = vec![0u8; model.predict_workspace_size(4)];
    let mut y = vec![0.0; 4];
    assert_eq!(
        model.predict(&[0.0; 6], &mut y[..3], &mut ws),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        model.predict(&[0.0; 5], &mut y, &mut ws),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        model.predict(&[], &mut [], &mut ws),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        model.predict(&[0.0; 6], &mut y, &mut [0u8; 8]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        model.predict(&[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0], &mut y, &mut ws),
        Err(Error::NonFinite)
    );
    assert_eq!(params(&model), before);
}

/// Eight threads predict on one shared model at once; every result is bit-identical
/// to the single-threaded one. (ThreadSanitizer does not build here: it needs
/// -Zbuild-std without a rust-src component. This test and the `&self` API, checked
/// by the compiler for Sync, cover the rule instead.)
#[test]
fn eight_threads_predict_on_one_model_bit_identically() {
    // Under Miri, which also checks the threads' accesses for data races: a smaller
    // model, fewer rows, threads and rounds (scripts/miri.sh).
    let (d, hidden, batch, rows, threads, rounds) = if cfg!(miri) {
        (4, [12, 9], 4, 5, 3, 2)
    } else {
        (16, [64, 32], 32, 50, 8, 200)
    };
    for isa in isas() {
        let cfg = Config::new(d, &hidden, 3).max_batch(batch).seed(5);
        let model = trained(&cfg, isa);
        let mut rng = Rng(23);
        let inputs: Vec<Vec<f32>> = (0..threads).map(|t| rng.vec((rows + t) * d)).collect();
        let single: Vec<Vec<f32>> = inputs
            .iter()
            .map(|x| {
                let mut y = vec![0.0; x.len() / d * 3];
                let mut ws = vec![0u8; model.predict_workspace_size(7)];
                model.predict(x, &mut y, &mut ws).unwrap();
                y
            })
            .collect();
        std::thread::scope(|scope| {
            for (x, want) in inputs.iter().zip(&single) {
                let model = &model;
                scope.spawn(move || {
                    let mut ws = vec![0u8; model.predict_workspace_size(7)];
                    let mut y = vec![0.0; want.len()];
                    for _ in 0..rounds {
                        model.predict(x, &mut y, &mut ws).unwrap();
                        assert!(
                            y.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{isa:?}"
                        );
                    }
                });
            }
        });
    }
}

/// `classify` (read-only) gives `predict_class`'s classes, for outputs wider than the
/// hidden layers too, with the smallest workspace and workspaces at every alignment,
/// leaving the bytes after `classes` alone; refused calls write no class.
#[test]
fn classify_matches_predict_class_without_changing_the_model() {
    for isa in isas() {
        // Under Miri the first shape only (scripts/miri.sh).
        let shapes = [(3, vec![2], 10), (7, vec![33], 4), (5, vec![17, 9], 2)];
        for (d, hidden, m_out) in shapes.into_iter().take(if cfg!(miri) { 1 } else { 3 }) {
            let cfg = Config::new(d, &hidden, m_out).max_batch(16).seed(4);
            let mut model = trained(&cfg, isa);
            let before = params(&model);
            let mut rng = Rng(29);
            let n = 37;
            let x = rng.vec(n * d);
            let mut want = vec![0u32; n];
            for (xs, cs) in x.chunks(16 * d).zip(want.chunks_mut(16)) {
                model.predict_class(xs, cs).unwrap();
            }
            for rows_per_pass in [1, 5, 37, 64] {
                let size = model.predict_workspace_size(rows_per_pass);
                let mut buf = vec![0u8; size + 3];
                for offset in 0..4 {
                    let ws = &mut buf[offset..offset + size];
                    let mut got = vec![u32::MAX; n + 2];
                    model.classify(&x, &mut got[..n], ws).unwrap();
                    assert_eq!(
                        &got[..n],
                        &want[..],
                        "{isa:?} {d}->{hidden:?}->{m_out}, {rows_per_pass} rows per pass, \
                         workspace offset {offset}"
                    );
                    assert_eq!(&got[n..], &[u32::MAX; 2], "classify wrote past classes");
                }
            }
            assert_eq!(params(&model), before);
            // Refusals leave `classes` as it was.
            let mut ws = vec![0u8; model.predict_workspace_size(4)];
            let mut classes = vec![7u32; n];
            let mut bad = x.clone();
            bad[n * d - 1] = f32::NAN;
            assert_eq!(
                model.classify(&bad, &mut classes, &mut ws),
                Err(Error::NonFinite)
            );
            assert_eq!(
                model.classify(&x, &mut classes[..n - 1], &mut ws),
                Err(Error::InvalidArgument)
            );
            let small = model.predict_workspace_size(1) - 1;
            assert_eq!(
                model.classify(&x, &mut classes, &mut ws[..small]),
                Err(Error::InvalidArgument)
            );
            assert_eq!(
                model.classify(&[], &mut [], &mut ws),
                Err(Error::InvalidArgument)
            );
            assert!(classes.iter().all(|&c| c == 7));
        }
    }
}

/// The network in f64 from the flat parameters: `n x m` outputs.
fn forward_f64(dims: &[usize], p: &[f32], x: &[f32]) -> Vec<f64> {
    let p: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
    x.chunks(dims[0])
        .flat_map(|row| {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            forward_row_f64(dims, &p, &row)
        })
        .collect()
}

const CANARY: u8 = 0xA5;

/// `predict`, `forward` and `classify` against an independent f64 reference, with
/// canary bytes after every output and after the workspace, and the workspace 4 bytes
/// past a 64-byte boundary: a call that reads or writes one row too many, or past its
/// workspace, fails here by assertion, not by luck.
#[test]
fn outputs_and_workspaces_are_written_exactly_and_match_f64() {
    for isa in isas() {
        for (d, hidden, m_out, n) in [
            (3, vec![5], 1, 1),
            (7, vec![33], 10, 13),
            (17, vec![9, 4], 3, 40),
            (2, vec![16, 16, 16], 7, 6),
        ]
        .into_iter()
        // Under Miri the shapes of a few rows (scripts/miri.sh).
        .filter(|&(.., n)| !cfg!(miri) || n <= 6)
        {
            let max_batch = n.min(16);
            let cfg = Config::new(d, &hidden, m_out).max_batch(max_batch).seed(11);
            let mut model = trained(&cfg, isa);
            let dims = dims(&cfg);
            let p = params(&model);
            let x = Rng(41).vec(n * d);
            let want = forward_f64(&dims, &p, &x);
            let scale = (want.iter().map(|v| v * v).sum::<f64>() / want.len() as f64).sqrt();
            let close = |got: &[f32], what: &str| {
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    let tol = 1e-4 * (w.abs() + scale + 1e-3);
                    assert!(
                        (f64::from(g) - w).abs() <= tol,
                        "{isa:?} {d}->{hidden:?}->{m_out}, n = {n}, {what}: y[{i}] = {g}, \
                         f64 {w}"
                    );
                }
            };
            for rows_per_pass in [1, 3, n] {
                let size = model.predict_workspace_size(rows_per_pass);
                // 4 bytes past a 64-byte boundary, canaries after.
                let mut raw = vec![CANARY; size + 128];
                let start = (64 - raw.as_ptr() as usize % 64) % 64 + 4;
                let mut y = vec![f32::from_bits(0x7FC0_0BAD); n * m_out + 3];
                {
                    let ws = &mut raw[start..start + size];
                    model.predict(&x, &mut y[..n * m_out], ws).unwrap();
                }
                close(
                    &y[..n * m_out],
                    &format!("predict, {rows_per_pass} rows a pass"),
                );
                assert!(
                    y[n * m_out..].iter().all(|v| v.to_bits() == 0x7FC0_0BAD),
                    "{isa:?}: predict wrote past y_out"
                );
                assert!(
                    raw[start + size..].iter().all(|&b| b == CANARY),
                    "{isa:?}: predict wrote past its workspace"
                );
                assert!(
                    raw[..start].iter().all(|&b| b == CANARY),
                    "{isa:?}: predict wrote before its workspace"
                );
                let mut classes = vec![u32::MAX; n + 2];
                model
                    .classify(&x, &mut classes[..n], &mut raw[start..start + size])
                    .unwrap();
                assert!(
                    classes[n..].iter().all(|&c| c == u32::MAX),
                    "classify overran"
                );
                assert!(raw[start + size..].iter().all(|&b| b == CANARY));
                for (r, &c) in classes[..n].iter().enumerate() {
                    let row = &want[r * m_out..(r + 1) * m_out];
                    let best = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    // The class's f64 output is the row's maximum up to rounding.
                    assert!(
                        best - row[c as usize] <= 1e-4 * (best.abs() + scale + 1e-3),
                        "{isa:?}: classify row {r} picked {c}"
                    );
                }
            }
            // forward, in batches of max_batch, with a canary after each y_out.
            for (xs, ws) in x.chunks(max_batch * d).zip(want.chunks(max_batch * m_out)) {
                let rows = xs.len() / d;
                let mut y = vec![f32::from_bits(0x7FC0_0BAD); rows * m_out + 2];
                model.forward(xs, Some(&mut y[..rows * m_out])).unwrap();
                assert!(y[rows * m_out..].iter().all(|v| v.to_bits() == 0x7FC0_0BAD));
                for (g, w) in y[..rows * m_out].iter().zip(ws) {
                    assert!((f64::from(*g) - w).abs() <= 1e-4 * (w.abs() + scale + 1e-3));
                }
            }
        }
    }
}

/// ReLU maps a pre-activation of -0.0 to +0.0 on every kernel set (`max(z, 0)` returns
/// its second operand for two zeros, and the scalar set's `z > 0 ? z : 0` matches), so
/// the sets agree on the sign of a zero output bit for bit. Here every pre-activation
/// is exactly -0.0 (weights -1 on zero inputs, biases -0.0) and the output is
/// `-0.0 + sum(1 * H)`: +0.0 when H is +0.0, -0.0 if a set let -0.0 through its ReLU.
#[test]
fn relu_of_negative_zero_is_positive_zero_on_every_set() {
    for isa in isas() {
        for (d, h, m) in [(2usize, 16usize, 1usize), (2, 16, 2), (2, 40, 3)] {
            for n in [1usize, 3] {
                let cfg = Config::new(d, &[h], m).max_batch(4).seed(2).isa(isa);
                let mut model = Model::new(&cfg).unwrap();
                let (w_end, wo) = (h * d, h * d + h);
                let mut p = vec![0.0f32; model.param_count()];
                p[..w_end].fill(-1.0);
                p[w_end..wo].fill(-0.0);
                p[wo..wo + m * h].fill(1.0);
                p[wo + m * h..].fill(-0.0);
                model.set_params(&p).unwrap();
                let x = vec![0.0f32; n * d];
                let what = format!("{isa:?} {d}->{h}->{m}, n = {n}");
                let mut y = vec![9.0f32; n * m];
                model.forward(&x, Some(&mut y)).unwrap();
                let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                assert_eq!(bits, vec![0; n * m], "{what}: forward");
                let mut ws = vec![0u8; model.predict_workspace_size(n)];
                y.fill(9.0);
                model.predict(&x, &mut y, &mut ws).unwrap();
                let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                assert_eq!(bits, vec![0; n * m], "{what}: predict");
            }
        }
    }
}
