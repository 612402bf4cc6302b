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
    for isa in isas() {
        let cfg = Config::new(16, &[64, 32], 3).max_batch(32).seed(5);
        let model = trained(&cfg, isa);
        let mut rng = Rng(23);
        let inputs: Vec<Vec<f32>> = (0..8).map(|t| rng.vec((50 + t) * 16)).collect();
        let single: Vec<Vec<f32>> = inputs
            .iter()
            .map(|x| {
                let mut y = vec![0.0; x.len() / 16 * 3];
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
                    for _ in 0..200 {
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
        for (d, hidden, m_out) in [(3, vec![2], 10), (7, vec![33], 4), (5, vec![17, 9], 2)] {
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
