//! Threads through the public API, with the thresholds of a release build: every
//! result and every kept value is bit-identical for 1, 2, 3, 4 and 8 threads on
//! every kernel set this machine runs, on shapes whose products are shared (and
//! whose rows and panels split unevenly), for SGD, momentum and Adam, with clipping,
//! for both losses, with refused calls in between. (`model::tests` does the same on
//! small ragged shapes with every product shared, emulated sets included.)

mod common;
use common::*;
use flowmlp::{Config, Error, Loss, Model, Optimizer};

/// Everything the calls return and keep, as bits (see `model::tests::threaded_run`).
fn run(cfg: &Config, isa: flowmlp::Isa, threads: usize, opt: Optimizer, clip: f32) -> Vec<u32> {
    let mut m = model(cfg, isa);
    assert_eq!(m.set_threads(threads), Ok(threads));
    m.set_optimizer(opt).unwrap();
    m.set_grad_clip(clip).unwrap();
    let (d, o, nb) = (cfg.inputs, cfg.outputs, cfg.max_batch);
    let mut rng = Rng(77);
    let mut out = Vec::new();
    let mut ck = vec![0u8; m.save_size()];
    let bits = |v: &[f32], out: &mut Vec<u32>| out.extend(v.iter().map(|x| x.to_bits()));
    for n in [nb, 1, nb - 3, nb] {
        let x = rng.vec(n * d);
        let y: Vec<f32> = match cfg.loss {
            Loss::CrossEntropy => (0..n * o)
                .map(|i| f32::from(i % o == (i / o) % o))
                .collect(),
            Loss::Mse => rng.vec(n * o),
        };
        bits(&[m.train_step(&x, &y, 0.01).unwrap()], &mut out);
        let mut yhat = vec![0.0; n * o];
        m.forward(&x, Some(&mut yhat)).unwrap();
        bits(&yhat, &mut out);
        bits(&[m.backward(&y).unwrap()], &mut out);
        let before = (grads(&m), params(&m), m.optimizer_steps());
        let mut bad = x.clone();
        bad[n * d / 2] = f32::INFINITY;
        assert_eq!(m.train_step(&bad, &y, 0.01), Err(Error::NonFinite));
        if cfg.loss == Loss::Mse {
            let huge: Vec<f32> = y.iter().map(|v| v + 1e30).collect();
            assert_eq!(m.train_step(&x, &huge, 0.01), Err(Error::Diverged));
        }
        assert!((grads(&m), params(&m), m.optimizer_steps()) == before);
        m.step(0.01).unwrap();
        bits(&grads(&m), &mut out);
        bits(&params(&m), &mut out);
        m.save(&mut ck).unwrap();
        out.extend(ck.iter().map(|&b| u32::from(b)));
    }
    out
}

#[test]
fn results_are_bit_identical_for_every_thread_count() {
    let shapes: [(usize, &[usize], usize, usize, Loss); 4] = [
        (64, &[256], 1, 67, Loss::Mse),
        (33, &[130, 70, 50], 3, 45, Loss::Mse),
        (17, &[200, 200], 4, 50, Loss::CrossEntropy),
        (300, &[90], 2, 41, Loss::Mse),
    ];
    let opts = [
        (Optimizer::SGD, 0.0),
        (Optimizer::momentum(0.9, false), 0.0),
        (Optimizer::ADAM, 0.0),
        (Optimizer::SGD, 0.1),
    ];
    for isa in isas() {
        for (d, h, m, nb, loss) in shapes {
            let cfg = Config::new(d, h, m).max_batch(nb).seed(5).loss(loss);
            for (opt, clip) in opts {
                let one = run(&cfg, isa, 1, opt, clip);
                for t in [2, 3, 4, 8] {
                    assert!(
                        one == run(&cfg, isa, t, opt, clip),
                        "{isa:?} {d}-{h:?}-{m} {loss:?} {opt:?} clip {clip}: {t} threads differ"
                    );
                }
            }
        }
    }
}

/// The thread count is the model's, not the checkpoint's: a loaded model has one.
#[test]
fn checkpoints_do_not_carry_the_thread_count() {
    let cfg = Config::new(8, &[32], 2).max_batch(4);
    let mut m = Model::new(&cfg).unwrap();
    m.set_threads(3).unwrap();
    let mut buf = vec![0u8; m.save_size()];
    m.save(&mut buf).unwrap();
    let back = Model::load(&buf, 4, flowmlp::Isa::Auto).unwrap();
    assert_eq!(back.threads(), 1);
    assert_eq!(m.threads(), 3);
}

/// Models with workers are independent: two trained at once from two threads, each
/// with two workers, end where each would alone.
#[test]
fn models_with_workers_train_side_by_side() {
    let cfg = Config::new(64, &[256], 2).max_batch(64).seed(2);
    let alone = run(&cfg, flowmlp::Isa::Auto, 1, Optimizer::ADAM, 0.0);
    let both: Vec<Vec<u32>> = std::thread::scope(|s| {
        let a = s.spawn(|| run(&cfg, flowmlp::Isa::Auto, 3, Optimizer::ADAM, 0.0));
        let b = s.spawn(|| run(&cfg, flowmlp::Isa::Auto, 2, Optimizer::ADAM, 0.0));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert!(both.iter().all(|r| *r == alone));
}
