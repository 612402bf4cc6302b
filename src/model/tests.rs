//! Every kernel set against the scalar reference, through whole models: forward,
//! backward (all gradients), step and train_step, on ragged shapes; the sets this
//! CPU runs and the emulated ones (`kernels::emulated`).
//! Tolerance: `kernels::testing::check`.

use crate::config::Config;
use crate::isa::Isa;
use crate::kernels::testing::{check, tables, Rng};
use crate::kernels::Kernels;
use crate::model::Model;
use crate::Error;

fn flat(m: &Model, grads: bool) -> Vec<f32> {
    let mut v = vec![0.0; m.param_count()];
    if grads {
        m.get_grads(&mut v).unwrap();
    } else {
        m.get_params(&mut v).unwrap();
    }
    v
}

/// One config: the same parameters and batches through each of `sets`, compared with
/// the reference (run once for all of them: its results do not depend on theirs).
fn compare(sets: &[(&str, &'static Kernels)], cfg: &Config, rng: &mut Rng) {
    let mut reference = Model::new(&cfg.isa(Isa::Scalar)).unwrap();
    let mut models: Vec<Model> = sets
        .iter()
        .map(|(_, kernels)| Model::with_kernels(cfg, kernels).unwrap())
        .collect();
    let p: Vec<f32> = flat(&reference, false)
        .iter()
        .map(|v| v + 0.1 * rng.f())
        .collect();
    reference.set_params(&p).unwrap();
    for model in &mut models {
        model.set_params(&p).unwrap();
    }
    let (d, m) = (cfg.inputs, cfg.outputs);
    let fan = cfg
        .hidden_widths()
        .iter()
        .copied()
        .chain([d, cfg.max_batch])
        .max()
        .unwrap();
    let hidden = cfg.hidden_widths();
    // Under Miri, one row (the one-row kernels) and a full batch.
    let rounds = if cfg!(miri) { 2 } else { 3 };
    for n in [1, cfg.max_batch, 1 + (rng.next() as usize) % cfg.max_batch]
        .into_iter()
        .take(rounds)
    {
        let x = rng.vec(n * d);
        let y = rng.vec(n * m);
        // The reference: forward, backward, step, train_step, step.
        let mut yb = vec![0.0; n * m];
        reference.forward(&x, Some(&mut yb)).unwrap();
        let lb = reference
            .backward(&y)
            .unwrap_or_else(|e| panic!("{d}->{hidden:?}->{m} n={n}: reference backward: {e}"));
        let gb = flat(&reference, true);
        reference.step(0.005).unwrap();
        let pb = flat(&reference, false);
        let tlb = reference.train_step(&x, &y, 0.005).unwrap();
        let (tpb, tgb) = (flat(&reference, false), flat(&reference, true));
        reference.step(0.005).unwrap();
        let pb2 = flat(&reference, false);
        for (&(name, _), model) in sets.iter().zip(&mut models) {
            let ctx = |what: &'static str| format!("{name} {d}->{hidden:?}->{m} n={n}: {what}");
            let what = |what: &'static str| LazyCtx(&ctx, what);
            let mut ya = vec![0.0; n * m];
            model.forward(&x, Some(&mut ya)).unwrap();
            check(what("forward"), &ya, &yb, fan);
            let la = model
                .backward(&y)
                .unwrap_or_else(|e| panic!("{}: {e}", ctx("backward")));
            check(what("loss"), &[la], &[lb], fan);
            check(what("gradients"), &flat(model, true), &gb, fan);
            model.step(0.005).unwrap();
            check(what("step"), &flat(model, false), &pb, fan);
            let tla = model.train_step(&x, &y, 0.005).unwrap();
            check(what("train_step loss"), &[tla], &[tlb], fan);
            check(what("train_step"), &flat(model, false), &tpb, fan);
            // The gradients a train step leaves (kept as factors on the one-hidden-layer
            // one-row path), read out and then used by a step.
            check(what("train_step gradients"), &flat(model, true), &tgb, fan);
            model.step(0.005).unwrap();
            check(
                what("step after train_step"),
                &flat(model, false),
                &pb2,
                fan,
            );
            // Re-align, so that differences do not compound across rounds.
            model.set_params(&pb2).unwrap();
        }
    }
}

/// A check's context, formatted only when the check fails.
struct LazyCtx<'a, F: Fn(&'static str) -> String>(&'a F, &'static str);

impl<F: Fn(&'static str) -> String> core::fmt::Display for LazyCtx<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&(self.0)(self.1))
    }
}

const SIZES: [usize; 13] = [1, 2, 3, 7, 9, 15, 17, 31, 33, 63, 65, 127, 129];

/// `(d, hidden, m, max_batch)` of the ragged-shape test under Miri, which interprets
/// every lane of every emulated vector: a few small shapes instead of the random
/// sweep, chosen so that each emulated set still runs every tile shape and
/// remainder path of its kernels (`scripts/miri.sh`; the forward in several chunks
/// of panels is `dense_relu_in_chunks_matches_the_reference`):
/// - 0: the one-hidden-layer one-row kernels on two panels (one panel: the tests below), and
///   three rows through the layer kernels with the head fused (m = 1);
/// - 1: 9 rows, m = 5: forward row blocks of 6 or 8 and a remainder, the output
///   layer in groups of 4 and 1 and `head_backward`'s blocks of 8 rows, and the
///   first layer's weight-gradient tiles reading the caller's input in place (9
///   inputs: a whole tile and a remainder);
/// - 2: layers of two panels and one panel (the 16-lane set's two-panel and
///   one-panel tiles; whole and remainder row tiles of the one-row kernels, whose
///   train step takes the m > 1 path), weight-gradient tiles of 6 or 8 inputs with
///   a remainder, and four rows: the transposed `input_grad` over a whole and a
///   partial 16 x 16 block, its GEMM masked;
/// - 3: three rows, `input_grad` by dot products with every (rows, columns) tile,
///   and the bias-only weight-gradient tile (6 and 8 inputs);
/// - 4, 5: packed weight gradients, with the output layer formed while packing
///   (`HeadOne`) and without.
const MIRI_SHAPES: [(usize, &[usize], usize, usize); 6] = [
    (5, &[20], 1, 3),
    (9, &[16], 5, 9),
    (1, &[17, 16], 2, 4),
    (4, &[6, 8, 7], 2, 3),
    (1, &[49], 1, 32),
    (1, &[49], 2, 32),
];

#[test]
fn every_set_matches_the_reference_on_ragged_shapes() {
    // Every set but the reference, in lockstep: one reference run per shape.
    let sets: Vec<_> = tables()
        .into_iter()
        .filter(|(_, kernels)| kernels.isa != Isa::Scalar)
        .collect();
    let mut rng = Rng(0xD1B54A32D192ED03);
    if cfg!(miri) {
        for (t, &(d, hidden, m, max_batch)) in MIRI_SHAPES.iter().enumerate() {
            let cfg = Config::new(d, hidden, m).max_batch(max_batch);
            compare(&sets, &cfg.seed(t as u64), &mut rng);
        }
        return;
    }
    // Every size as d and as a hidden width at least once, depths 1..=3, m 1..=10
    // (the output layer works in groups of 4 and 1: m = 5, 7 and 10 take both).
    for (t, &s) in SIZES.iter().enumerate() {
        let depth = 1 + t % 3;
        let hidden: Vec<usize> = (0..depth)
            .map(|l| if l == 0 { s } else { rng.pick(&SIZES[..9]) })
            .collect();
        let d = rng.pick(&SIZES);
        let m = [1, 2, 3, 4, 5, 7, 10][t % 7];
        let max_batch = rng.pick(&[1, 2, 7, 9, 17, 33]);
        let cfg = Config::new(d, &hidden, m).max_batch(max_batch);
        compare(&sets, &cfg.seed(t as u64), &mut rng);
    }
    for t in 0..12 {
        let depth = 1 + t % 3;
        let hidden: Vec<usize> = (0..depth).map(|_| rng.pick(&SIZES)).collect();
        let cfg = Config::new(rng.pick(&SIZES), &hidden, [1, 2, 4, 6, 9, 10][t % 6])
            .max_batch(rng.pick(&[1, 3, 16, 65]));
        compare(&sets, &cfg.seed(100 + t as u64), &mut rng);
    }
}

#[test]
fn course_and_benchmark_shapes_match_the_reference() {
    let (sets, mut rng) = (tables(), Rng(99));
    for (d, hidden, m, n) in [
        (8, vec![32], 1, 1),
        // The one-hidden-layer one-row path (one hidden layer of one or two panels, m = 1)
        // on ragged sizes.
        (1, vec![1], 1, 1),
        (3, vec![16], 1, 2),
        (7, vec![17], 1, 3),
        (33, vec![31], 1, 1),
        (17, vec![9], 1, 5),
        (10, vec![64], 1, 32),
        (16, vec![64], 1, 32),
        (64, vec![256], 1, 64),
        (64, vec![256, 256], 4, 16),
        (100, vec![520], 1, 20),
        // Narrow one-panel layers, whose weight gradients put the inputs in the
        // lanes (`narrow_weight_grad`): three units over 70 inputs (whole tiles of
        // column vectors and a remainder), 11 units in two groups over 150 inputs,
        // and 2 units over 11 inputs (one vector and the rest as panel tiles).
        (70, vec![3], 4, 33),
        (150, vec![11, 2], 1, 9),
        // Several packed row blocks of the weight gradients (pack_rows(300) = 109),
        // with the m = 1 head formed in them (`HeadOne`) and without.
        (300, vec![70, 65], 2, 150),
        (300, vec![70], 1, 150),
    ]
    .into_iter()
    // Under Miri two small one-hidden-layer shapes, of one panel and odd inputs (two
    // panels: `MIRI_SHAPES` and the tests below, which also take the batch paths).
    .filter(|(d, hidden, _, n)| !cfg!(miri) || d * hidden.iter().sum::<usize>() * n <= 100)
    {
        compare(
            &sets,
            &Config::new(d, &hidden, m).max_batch(n).seed(1),
            &mut rng,
        );
    }
}

#[test]
fn refused_one_hidden_steps_keep_the_factored_gradients() {
    for (name, kernels) in tables() {
        let cfg = Config::new(5, &[20], 1).max_batch(3).seed(7);
        let mut model = Model::with_kernels(&cfg, kernels).unwrap();
        let x = [0.5, -1.0, 0.25, 2.0, -0.75];
        model.train_step(&x, &[1.5], 0.01).unwrap();
        let (g, p) = (flat(&model, true), flat(&model, false));
        assert!(g.iter().any(|v| *v != 0.0), "{name}: no gradient");
        // A kept forward pass, which the refused steps below must leave in place.
        let xf = [-0.3, 0.8, 1.25, -2.0, 0.1];
        model.forward(&xf, None).unwrap();
        // A loss that overflows, non-finite targets and inputs (the one-hidden-layer kernel
        // checks them itself, in every position), a bad rate: all refused.
        assert_eq!(model.train_step(&x, &[3e19], 0.01), Err(Error::Diverged));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(model.train_step(&x, &[bad], 0.01), Err(Error::NonFinite));
            for at in 0..x.len() {
                let mut bad_x = x;
                bad_x[at] = bad;
                assert_eq!(
                    model.train_step(&bad_x, &[1.0], 0.01),
                    Err(Error::NonFinite),
                    "{name}: x[{at}] = {bad}"
                );
            }
        }
        assert_eq!(
            model.train_step(&x, &[1.0], -1.0),
            Err(Error::InvalidArgument)
        );
        // An update that overflows: refused, nothing applied.
        assert_eq!(model.train_step(&x, &[1e6], 1e35), Err(Error::Diverged));
        assert_eq!(flat(&model, true), g, "{name}: gradients changed");
        assert_eq!(flat(&model, false), p, "{name}: parameters changed");
        if kernels.row.is_some() {
            // The one-hidden-layer kernel keeps its forward in registers: the kept forward
            // survived, and backward from it is the reference's.
            let mut reference = Model::new(&cfg.isa(Isa::Scalar)).unwrap();
            reference.set_params(&p).unwrap();
            reference.forward(&xf, None).unwrap();
            let (loss, want) = (model.backward(&[0.4]), reference.backward(&[0.4]));
            check(name, &[loss.unwrap()], &[want.unwrap()], 20);
            check(name, &flat(&model, true), &flat(&reference, true), 20);
        } else {
            // The layer kernels overwrote it (documented on `Model::train_step`).
            assert_eq!(model.kept_rows(), None, "{name}");
        }
        // A batch step replaces the factored gradients (a target far from the
        // prediction, so that the error has no cancellation).
        let xb = [x, x].concat();
        model.train_step(&xb, &[-3.0, -3.0], 0.0).unwrap();
        let mut reference = Model::new(&cfg.isa(Isa::Scalar)).unwrap();
        reference.set_params(&p).unwrap();
        reference.train_step(&xb, &[-3.0, -3.0], 0.0).unwrap();
        check(name, &flat(&model, true), &flat(&reference, true), 20);
    }
}

#[test]
fn a_non_finite_input_is_refused_where_no_unit_is_active() {
    // Every hidden unit dead (zero weights, negative bias) and a zero step: the one-hidden-layer
    // kernel still refuses a NaN or infinite input, through `inf * 0`.
    for (name, kernels) in tables() {
        let cfg = Config::new(4, &[7], 1).max_batch(1).seed(1);
        let mut model = Model::with_kernels(&cfg, kernels).unwrap();
        let mut p = vec![0.0; model.param_count()];
        p[28..35].fill(-1.0);
        model.set_params(&p).unwrap();
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in 0..4 {
                let mut x = [0.5; 4];
                x[at] = bad;
                for lr in [0.0, 0.1] {
                    assert_eq!(
                        model.train_step(&x, &[0.0], lr),
                        Err(Error::NonFinite),
                        "{name}: x[{at}] = {bad}, rate {lr}"
                    );
                }
                assert_eq!(model.forward(&x, None), Err(Error::NonFinite));
            }
        }
        assert_eq!(flat(&model, false), p, "{name}: parameters changed");
        assert_eq!(model.kept_rows(), None, "{name}: a refused input was kept");
    }
}

#[test]
fn factored_gradients_equal_stored_ones_on_any_topology() {
    use crate::config::Loss;
    // A one-row SGD step leaves its gradients as factors; with clipping at a bound no
    // gradient reaches, the same program stores them, then SGD applies them. The
    // gradients are the same products either way, and so are the parameters (the
    // one-hidden-layer program has its own order of sums: rounding apart there).
    let shapes: [(usize, &[usize], usize, Loss); 5] = [
        (6, &[23], 1, Loss::Mse),
        (7, &[33, 5, 17], 3, Loss::Mse),
        (3, &[40, 16], 10, Loss::CrossEntropy),
        (17, &[1, 9], 2, Loss::Mse),
        (2, &[70, 3, 20, 31], 4, Loss::CrossEntropy),
    ];
    let mut rng = Rng(11);
    // Under Miri, a deep one and one with the one-hidden-layer program.
    let shapes = if cfg!(miri) {
        &shapes[..2]
    } else {
        &shapes[..]
    };
    for (name, kernels) in tables() {
        for &(d, hidden, m, loss) in shapes {
            let cfg = Config::new(d, hidden, m).max_batch(5).loss(loss).seed(4);
            let mut factored = Model::with_kernels(&cfg, kernels).unwrap();
            let mut stored = Model::with_kernels(&cfg, kernels).unwrap();
            stored.set_grad_clip(1e30).unwrap();
            let what = format!("{name} {d}-{hidden:?}-{m} {loss:?}");
            for _ in 0..3 {
                // Each step starts from the same parameters.
                stored.set_params(&flat(&factored, false)).unwrap();
                let x = rng.vec(d);
                let y: Vec<f32> = match loss {
                    Loss::Mse => rng.vec(m),
                    Loss::CrossEntropy => {
                        let mut t = vec![0.0; m];
                        t[rng.next() as usize % m] = 1.0;
                        t
                    }
                };
                let la = factored.train_step(&x, &y, 0.05).unwrap();
                let lb = stored.train_step(&x, &y, 0.05).unwrap();
                check(&what, &[la], &[lb], 20);
                let (ga, gb) = (flat(&factored, true), flat(&stored, true));
                let (pa, pb) = (flat(&factored, false), flat(&stored, false));
                if factored.st().plan.one_hidden {
                    check(&what, &ga, &gb, 20);
                    check(&what, &pa, &pb, 20);
                } else {
                    assert_eq!(ga, gb, "{what}");
                    assert_eq!(pa, pb, "{what}");
                }
            }
            // Formed in place (a step from them) they keep their values.
            let g = flat(&factored, true);
            factored.step(0.0).unwrap();
            assert_eq!(flat(&factored, true), g, "{what}: forming changed them");
        }
    }
}

#[test]
fn factored_gradients_feed_every_optimizer_and_clipping() {
    use crate::optim::Optimizer;
    for (name, kernels) in tables() {
        for (opt, clip, hidden) in [
            (Optimizer::ADAM, 0.0, &[23][..]),
            (Optimizer::momentum(0.9, true), 0.0, &[23]),
            (Optimizer::SGD, 0.05, &[23]),
            (Optimizer::ADAM, 0.0, &[40, 9, 33]),
            (Optimizer::SGD, 0.05, &[40, 9, 33]),
        ] {
            let cfg = Config::new(6, hidden, 1).max_batch(4).seed(3);
            let mut model = Model::with_kernels(&cfg, kernels).unwrap();
            let mut reference = Model::new(&cfg.isa(Isa::Scalar)).unwrap();
            let x = [0.3, -0.8, 1.1, 0.05, -0.4, 0.9];
            // Plain SGD: the one-row one-hidden-layer step, which leaves factored gradients...
            model.train_step(&x, &[-1.0], 0.01).unwrap();
            reference.train_step(&x, &[-1.0], 0.01).unwrap();
            // ...then another optimizer's step from them.
            for m in [&mut model, &mut reference] {
                m.set_optimizer(opt).unwrap();
                m.set_grad_clip(clip).unwrap();
                m.step(0.01).unwrap();
            }
            let what = format!("{name} {opt:?} clip {clip} {hidden:?}");
            check(&what, &flat(&model, false), &flat(&reference, false), 23);
            check(&what, &flat(&model, true), &flat(&reference, true), 23);
        }
    }
}

/// Set by a test to the address of a model's header: every worker's share of that
/// model's jobs panics (other tests' models, running at the same time, do not).
pub(super) static PANIC_IN_WORKER: core::sync::atomic::AtomicUsize =
    core::sync::atomic::AtomicUsize::new(0);

/// The kernel tables of the thread tests: all of them, or under Miri the last
/// emulated one.
fn sets_under_threads() -> Vec<(&'static str, &'static Kernels)> {
    let mut sets = tables();
    if cfg!(miri) {
        sets.drain(..sets.len() - 1);
    }
    sets
}

/// Everything a model's calls return and keep, as bits: the loss and predictions of
/// each call, then the gradients, the parameters and the checkpoint (parameters,
/// optimizer state and step count) after each step; refused calls must change none
/// of it.
fn threaded_run(
    cfg: &Config,
    kernels: &'static Kernels,
    threads: usize,
    optimizer: crate::Optimizer,
    clip: f32,
) -> Vec<u32> {
    let mut model = Model::with_kernels(cfg, kernels).unwrap();
    assert_eq!(model.set_threads(threads), Ok(threads));
    model.set_optimizer(optimizer).unwrap();
    model.set_grad_clip(clip).unwrap();
    let (d, m, nb) = (cfg.inputs, cfg.outputs, cfg.max_batch);
    let mut rng = Rng(0x5eed ^ (d * 31 + m) as u64);
    let mut out: Vec<u32> = Vec::new();
    let bits = |v: &[f32], out: &mut Vec<u32>| out.extend(v.iter().map(|x| x.to_bits()));
    let mut ckpt = vec![0u8; model.save_size()];
    let targets = |rng: &mut Rng, n: usize| -> Vec<f32> {
        if cfg.loss == crate::Loss::CrossEntropy {
            (0..n * m)
                .map(|i| f32::from(i % m == (i / m) % m))
                .collect()
        } else {
            rng.vec(n * m)
        }
    };
    for (step, n) in [nb, 1, nb.div_ceil(2), nb].into_iter().enumerate() {
        let x = rng.vec(n * d);
        let y = targets(&mut rng, n);
        let lr = 0.05;
        let loss = model.train_step(&x, &y, lr).unwrap();
        bits(&[loss], &mut out);
        let mut yhat = vec![0.0; n * m];
        model.forward(&x, Some(&mut yhat)).unwrap();
        bits(&yhat, &mut out);
        let loss = model.backward(&y).unwrap();
        bits(&[loss], &mut out);
        let before = (flat(&model, true), flat(&model, false));
        // Refused: a NaN in the input, then an update that overflows.
        let mut bad = x.clone();
        let at = (step * 7) % bad.len();
        bad[at] = f32::NAN;
        assert_eq!(model.train_step(&bad, &y, lr), Err(Error::NonFinite));
        if cfg.loss == crate::Loss::Mse {
            // The loss overflows.
            let huge: Vec<f32> = y.iter().map(|v| v * 1e30 + 1e30).collect();
            assert_eq!(model.train_step(&x, &huge, lr), Err(Error::Diverged));
        }
        assert_eq!((flat(&model, true), flat(&model, false)), before);
        model.step(lr).unwrap();
        bits(&flat(&model, true), &mut out);
        bits(&flat(&model, false), &mut out);
        model.save(&mut ckpt).unwrap();
        out.extend(ckpt.iter().map(|&b| u32::from(b)));
    }
    out
}

/// Threads change no bit: for 2, 3, 4 and 8 threads every result and every kept
/// value equals one thread's, on every kernel set (the emulated ones included), on
/// shapes whose rows, panels and parameters split unevenly, for SGD (fused and
/// clipped), momentum and Adam, and both losses. Under `cfg(test)` every product is
/// shared among the threads, however small.
#[test]
fn every_thread_count_gives_bit_identical_results() {
    use crate::{Loss, Optimizer};
    let shapes: &[(usize, &[usize], usize, usize)] = if cfg!(miri) {
        &[(3, &[40], 1, 9)]
    } else {
        &[
            (3, &[40], 1, 20),
            (7, &[50, 33], 3, 19),
            (17, &[70, 24, 40], 4, 33),
            (5, &[36, 36, 36, 36], 2, 25),
            (9, &[100], 2, 9),
            (1, &[1], 1, 1),
        ]
    };
    let optimizers: &[(Optimizer, f32)] = if cfg!(miri) {
        // Miri checks the hand-offs for data races: every kind of share (forward
        // rows, weight-gradient panels, update values).
        &[(Optimizer::ADAM, 1.0)]
    } else {
        &[
            (Optimizer::SGD, 0.0),
            (Optimizer::SGD, 0.5),
            (Optimizer::momentum(0.9, true), 0.0),
            (Optimizer::ADAM, 1.0),
        ]
    };
    // The emulated sets share the generic bodies with the real ones: one count each.
    let counts = |set: &str| -> &[usize] {
        if cfg!(miri) || set.starts_with("emulated") {
            &[3]
        } else {
            &[2, 3, 4, 8]
        }
    };
    let sets = sets_under_threads();
    for (name, kernels) in sets {
        for &(d, hidden, m, nb) in shapes {
            for loss in [Loss::Mse, Loss::CrossEntropy] {
                if loss == Loss::CrossEntropy && m < 2 {
                    continue;
                }
                let cfg = Config::new(d, hidden, m).max_batch(nb).seed(3).loss(loss);
                for &(optimizer, clip) in optimizers {
                    let one = threaded_run(&cfg, kernels, 1, optimizer, clip);
                    for &threads in counts(name) {
                        let many = threaded_run(&cfg, kernels, threads, optimizer, clip);
                        assert!(
                            one == many,
                            "{name} {d}-{hidden:?}-{m} n<={nb} {loss:?} {optimizer:?} clip \
                             {clip}: {threads} threads differ from one"
                        );
                    }
                }
            }
        }
    }
}

/// A worker that panics: the call returns `Internal` and the model is as before it;
/// the model then trains on as usual.
#[test]
fn a_panicking_worker_changes_nothing() {
    use core::sync::atomic::Ordering;
    let cfg = Config::new(5, &[40, 40], 2).max_batch(17).seed(9);
    let sets = sets_under_threads();
    for (name, kernels) in sets {
        let mut model = Model::with_kernels(&cfg, kernels).unwrap();
        model.set_threads(3).unwrap();
        let mut rng = Rng(4);
        let (x, y) = (rng.vec(17 * 5), rng.vec(17 * 2));
        model.train_step(&x, &y, 0.01).unwrap();
        let before = (
            flat(&model, true),
            flat(&model, false),
            model.optimizer_steps(),
        );
        PANIC_IN_WORKER.store(model.st() as *const _ as usize, Ordering::Relaxed);
        let got = model.train_step(&x, &y, 0.01);
        PANIC_IN_WORKER.store(0, Ordering::Relaxed);
        assert_eq!(got, Err(Error::Internal), "{name}");
        let after = (
            flat(&model, true),
            flat(&model, false),
            model.optimizer_steps(),
        );
        assert!(before == after, "{name}: a failed step changed the model");
        model.train_step(&x, &y, 0.01).unwrap();
        assert_eq!(model.optimizer_steps(), before.2 + 1, "{name}");
    }
}

/// The thread count: 1 by default, `set_threads` returns what it set, refuses more
/// than the maximum without changing anything, and 1 joins the workers.
#[test]
fn set_threads_counts_and_refuses() {
    let cfg = Config::new(4, &[8], 1).max_batch(4);
    let mut model = Model::new(&cfg).unwrap();
    assert_eq!(model.threads(), 1);
    assert_eq!(model.set_threads(3), Ok(3));
    assert_eq!(model.threads(), 3);
    assert_eq!(
        model.set_threads(super::pool::MAX_THREADS + 1),
        Err(Error::InvalidArgument)
    );
    assert_eq!(model.threads(), 3);
    assert!(model.set_threads(0).unwrap() >= 1);
    assert_eq!(model.set_threads(1), Ok(1));
    assert_eq!(model.threads(), 1);
}

#[test]
fn padding_stays_zero_through_training() {
    use crate::config::Loss;
    // Internal layouts pad every layer to whole panels; the padding must stay zero
    // (dead units, no gradient), or it would leak into the outputs of later steps.
    // Deep ragged nets with batches large enough for the transposed input gradients,
    // whose dZ buffers are reused with other row strides, and one row per call.
    let shapes: [(usize, &[usize], usize, Loss); 3] = [
        (5, &[17, 3, 33, 7], 3, Loss::Mse),
        (7, &[40, 9, 20], 1, Loss::Mse),
        (3, &[21, 50, 5], 4, Loss::CrossEntropy),
    ];
    let shapes = if cfg!(miri) {
        &shapes[..1]
    } else {
        &shapes[..]
    };
    let mut rng = Rng(5);
    for (name, kernels) in tables() {
        for &(d, hidden, m, loss) in shapes {
            let cfg = Config::new(d, hidden, m).max_batch(9).loss(loss).seed(2);
            let mut model = Model::with_kernels(&cfg, kernels).unwrap();
            for n in [9, 6, 1, 9, 1, 4] {
                let x = rng.vec(n * d);
                let y: Vec<f32> = match loss {
                    Loss::Mse => rng.vec(n * m),
                    Loss::CrossEntropy => (0..n * m)
                        .map(|t| if t % m == (t / m) % m { 1.0 } else { 0.0 })
                        .collect(),
                };
                model.train_step(&x, &y, 0.1).unwrap();
            }
            // Form factored gradients into the buffer, then read both buffers whole.
            model.st_mut().form_grads();
            let s = model.st();
            let len = s.plan.int_len;
            let mut live = vec![false; len];
            s.plan.for_each_index(|_, int, _, _| live[int] = true);
            let g = s.ptr(s.grads.cur().buffer);
            // SAFETY: both buffers hold int_len floats.
            let (p, g) = unsafe {
                (
                    core::slice::from_raw_parts(s.params_ptr(), len),
                    core::slice::from_raw_parts(g, len),
                )
            };
            for t in (0..len).filter(|&t| !live[t]) {
                assert!(
                    p[t] == 0.0 && g[t] == 0.0,
                    "{name} {d}-{hidden:?}-{m}: padding at {t}: param {} grad {}",
                    p[t],
                    g[t]
                );
            }
        }
    }
}

/// `Model::choices` reports what the shape, `max_batch` and the kernel set decided:
/// the set, the update, the one-row program, each layer's live units and vectors in
/// its last panel, the rows for which its weight gradients are packed, and the input
/// gradient's form.
#[test]
fn choices_follow_the_shape() {
    let text = |cfg: Config| Model::new(&cfg).unwrap().choices().to_string();
    let scalar = text(Config::new(20, &[128], 10).max_batch(64).isa(Isa::Scalar));
    for line in [
        "kernel set: scalar\n",
        "update: plain SGD, applied as the backward makes each gradient\n",
        "one row (n = 1): the layer kernels",
        "layer 1: 20 -> 128, 8 panel(s) of 16; last panel 16 live unit(s), 1 of 1 vectors",
        "weight gradients: packed for rows 32..=64, direct otherwise\n",
        "output layer: 128 -> 10, mean squared error loss\n",
    ] {
        assert!(scalar.contains(line), "{line:?} not in\n{scalar}");
    }
    // One hidden layer: no input gradient to form, whatever max_batch is.
    assert!(!scalar.contains("input gradient"), "{scalar}");
    let one_row = text(Config::new(5, &[9], 1).max_batch(3).isa(Isa::Scalar));
    assert!(!one_row.contains("input gradient"), "{one_row}");
    let mut adam = Model::new(&Config::new(3, &[70], 1).max_batch(32).isa(Isa::Scalar)).unwrap();
    adam.set_optimizer(crate::Optimizer::ADAM).unwrap();
    let adam = adam.choices().to_string();
    assert!(adam.contains("update: the optimizer's own pass"), "{adam}");
    assert!(
        adam.contains("packed for rows 32, direct otherwise\n"),
        "{adam}"
    );
    let xent = text(
        Config::new(3, &[5], 2)
            .loss(crate::Loss::CrossEntropy)
            .isa(Isa::Scalar),
    );
    assert!(
        xent.contains("output layer: 5 -> 2, softmax cross-entropy loss"),
        "{xent}"
    );
    for isa in Isa::ALL
        .into_iter()
        .filter(|i| *i != Isa::Auto && i.is_supported())
    {
        let small = text(Config::new(3, &[20, 5], 1).max_batch(31).isa(isa));
        // Vectors computed in the last panel for 4 and for 5 live units.
        let (four, five) = match isa {
            Isa::Avx2 => ("1 of 2 vectors", "1 of 2 vectors"),
            Isa::Neon => ("1 of 4 vectors", "2 of 4 vectors"),
            _ => ("1 of 1 vectors", "1 of 1 vectors"),
        };
        for line in [
            format!("kernel set: {}\n", isa.name()),
            format!("layer 1: 3 -> 20, 2 panel(s) of 16; last panel 4 live unit(s), {four}"),
            format!("layer 2: 20 -> 5, 1 panel(s) of 16; last panel 5 live unit(s), {five}"),
            "weight gradients: direct (packing".to_string(),
            "input gradient (dZ W) into layer 1: a GEMM over W laid out for rows 4..=31, dot products otherwise".to_string(),
        ] {
            assert!(small.contains(&line), "{line:?} not in\n{small}");
        }
        let few = text(Config::new(3, &[20, 5], 1).max_batch(3).isa(isa));
        assert!(few.contains("into layer 1: dot products\n"), "{few}");
        let (one, deep) = (
            text(Config::new(10, &[32], 1).isa(isa)),
            text(Config::new(10, &[32, 40], 3).isa(isa)),
        );
        let (one_p, deep_p) = match isa {
            Isa::Scalar => ("the layer kernels", "the layer kernels"),
            _ => (
                "the one-hidden-layer program",
                "the any-depth one-row program",
            ),
        };
        assert!(one.contains(one_p), "{isa:?}: {one}");
        let packed = text(Config::new(10, &[64], 1).max_batch(40).isa(isa));
        assert_eq!(
            packed.contains("packed for rows 32..=40, direct otherwise; the output layer's backward formed while packing"),
            isa != Isa::Scalar,
            "{packed}"
        );
        assert!(deep.contains(deep_p), "{isa:?}: {deep}");
    }
    // Which one-panel layers take the narrow weight gradients: 2 units over 20 inputs
    // on every SIMD set; 6 units over 16 inputs only with 16 lanes (6 of 8 lanes, or
    // of two 4-lane vectors, is three quarters); never 6 units over 2 inputs (less
    // than a vector) nor a full panel.
    for (name, kernels) in tables() {
        let cfg = Config::new(20, &[2, 6, 16, 6], 1).max_batch(8);
        let text = Model::with_kernels(&cfg, kernels)
            .unwrap()
            .choices()
            .to_string();
        let simd = kernels.isa != Isa::Scalar;
        for (header, narrow) in [
            ("layer 1: 20 -> 2,", simd),
            ("layer 2: 2 -> 6,", false),
            ("layer 3: 6 -> 16,", false),
            ("layer 4: 16 -> 6,", simd && kernels.lanes == 16),
        ] {
            let next = text
                .split(header)
                .nth(1)
                .and_then(|rest| rest.lines().nth(1))
                .unwrap_or_else(|| panic!("{name}: no {header:?} in\n{text}"));
            assert_eq!(
                next.contains("weight gradients: the inputs in the vector lanes"),
                narrow,
                "{name}, {header:?}:\n{text}"
            );
        }
        if simd {
            let line = format!("its units would fill 2 of {} lanes)", kernels.lanes);
            assert!(text.contains(&line), "{name}: {line:?} not in\n{text}");
        }
    }
}
