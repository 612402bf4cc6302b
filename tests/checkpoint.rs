//! Checkpoints: bit-exact round trips on every kernel set (and across them) of the
//! parameters, the loss and every optimizer with its state; a run resumed from a
//! checkpoint continues bit for bit as the uninterrupted run; the format pinned byte
//! by byte (and version 1 still loading); and every kind of bad checkpoint refused
//! with `BadCheckpoint` without allocating: truncated at every length, every single
//! bit flipped, wrong magic, other versions, absurd sizes, bad optimizer sections,
//! random bytes. Files: atomic replacement, clean failures, and a save killed at
//! random moments never destroys the previous checkpoint.

mod common;
use common::*;
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};
use std::path::{Path, PathBuf};

#[path = "common/counting.rs"]
mod counting;

/// `f`'s result, the number of allocations it made on this thread, and the largest.
fn watched<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (r, seen) = counting::watched(f);
    (r, seen.allocs, seen.largest)
}

// ---------------------------------------------------------------- helpers

/// CRC-32 (IEEE), bit by bit: independent of the library's table-driven one.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Recompute the trailing CRC after editing a checkpoint.
fn reseal(b: &mut [u8]) {
    let n = b.len() - 4;
    let c = crc32(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
}

fn save(m: &Model) -> Vec<u8> {
    let mut b = vec![0u8; m.save_size()];
    assert_eq!(m.save(&mut b), Ok(b.len()));
    b
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A model of `cfg` on `isa`, trained a few steps so that every parameter (biases
/// included) is off its initial value.
fn trained(cfg: &Config, isa: Isa, seed: u64) -> Model {
    let mut m = model(cfg, isa);
    let mut rng = Rng(seed);
    let n = cfg.max_batch;
    for _ in 0..5 {
        let x = rng.vec(n * cfg.inputs);
        let y = rng.vec(n * cfg.outputs);
        m.train_step(&x, &y, 0.05).unwrap();
    }
    m
}

/// `load` must refuse `bytes` with `BadCheckpoint` and allocate nothing doing so.
#[track_caller]
fn assert_bad(bytes: &[u8], what: &str) {
    let (r, count, _) = watched(|| Model::load(bytes, 4, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::BadCheckpoint), "{what}");
    assert_eq!(
        count, 0,
        "{what}: a refused checkpoint allocated {count} times"
    );
}

fn small() -> Model {
    trained(
        &Config::new(3, &[4, 2], 2).max_batch(3).seed(5),
        Isa::Scalar,
        1,
    )
}

/// A fresh, empty directory under the target's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoint-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trip_is_bit_exact_on_and_across_every_kernel_set() {
    let isas = isas();
    for (i, cfg) in [
        Config::new(10, &[64], 1).max_batch(8).seed(3),
        Config::new(7, &[17, 33, 3], 3).max_batch(5).seed(4),
        Config::new(1, &[1], 1).max_batch(1).seed(5),
        Config::new(5, &[16, 16, 16, 16, 16, 16, 16, 9], 2)
            .max_batch(2)
            .seed(6),
    ]
    .into_iter()
    .enumerate()
    {
        for &from in &isas {
            let src = trained(&cfg, from, 100 + i as u64);
            let bytes = save(&src);
            let x = Rng(7).vec(cfg.max_batch * cfg.inputs);
            for &to in &isas {
                for max_batch in [1, cfg.max_batch, 64] {
                    let mut back = Model::load(&bytes, max_batch, to).unwrap();
                    assert_eq!(back.isa(), to);
                    let (a, b) = (back.config(), src.config());
                    assert_eq!(
                        (a.inputs, a.hidden_widths(), a.outputs, a.seed),
                        (b.inputs, b.hidden_widths(), b.outputs, b.seed)
                    );
                    assert_eq!(a.max_batch, max_batch);
                    assert_eq!(
                        bits(&params(&back)),
                        bits(&params(&src)),
                        "{from:?} -> {to:?}"
                    );
                    // Like a fresh model: zero gradients, no kept forward.
                    assert!(grads(&back).iter().all(|&g| g.to_bits() == 0));
                    assert_eq!(back.kept_rows(), None);
                    assert_eq!(back.backward(&[0.0]), Err(Error::NoForward));
                    // Saving again gives the same bytes, whatever the kernel set.
                    assert_eq!(
                        save(&back),
                        bytes,
                        "{from:?} -> {to:?}: re-saved bytes differ"
                    );
                    // Same kernel set: the same predictions, bit for bit.
                    if to == from && max_batch >= cfg.max_batch {
                        let mut src2 = Model::load(&bytes, cfg.max_batch, from).unwrap();
                        let n = cfg.max_batch;
                        let (mut p1, mut p2) =
                            (vec![0.0; n * cfg.outputs], vec![0.0; n * cfg.outputs]);
                        src2.forward(&x, Some(&mut p1)).unwrap();
                        back.forward(&x, Some(&mut p2)).unwrap();
                        assert_eq!(bits(&p1), bits(&p2));
                    }
                }
            }
        }
    }
}

/// Every optimizer a checkpoint carries, with a clipping norm and a learning rate.
fn optimizers() -> Vec<(&'static str, Optimizer, f32, f32)> {
    vec![
        ("SGD", Optimizer::SGD, 0.0, 0.05),
        (
            "SGD with weight decay",
            Optimizer::Sgd {
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.01,
            },
            0.0,
            0.05,
        ),
        ("SGD, clipped", Optimizer::SGD, 0.3, 0.05),
        ("momentum", Optimizer::momentum(0.9, false), 0.0, 0.02),
        (
            "Nesterov, weight decay, clipped",
            Optimizer::Sgd {
                momentum: 0.8,
                nesterov: true,
                weight_decay: 1e-3,
            },
            1.0,
            0.02,
        ),
        (
            "Adam with weight decay",
            Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-7,
                weight_decay: 1e-3,
            },
            0.0,
            0.01,
        ),
        ("AdamW, clipped", Optimizer::ADAMW, 0.25, 0.01),
    ]
}

/// Shapes for the optimizer tests: MSE with several outputs, cross-entropy, and one
/// output (the fused head and the one-row train kernels).
fn optimizer_configs() -> Vec<Config> {
    vec![
        Config::new(5, &[12, 7], 3).max_batch(4).seed(21),
        Config::new(6, &[16], 4)
            .max_batch(5)
            .seed(22)
            .loss(Loss::CrossEntropy),
        Config::new(4, &[9], 1).max_batch(3).seed(23),
    ]
}

/// Batch number `step` of a run: 1..=max_batch rows (the row count varies, so that
/// the one-row and batched paths both run), targets one-hot for cross-entropy.
fn batch(cfg: &Config, step: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((step as u64 + 1) * 0x1000_0001));
    let n = 1 + (step * 7 + 3) % cfg.max_batch;
    let x = rng.vec(n * cfg.inputs);
    let m = cfg.outputs;
    let y = match cfg.loss {
        Loss::Mse => rng.vec(n * m),
        Loss::CrossEntropy => (0..n)
            .flat_map(|_| {
                let c = rng.below(m);
                (0..m).map(move |j| if j == c { 1.0 } else { 0.0 })
            })
            .collect(),
    };
    (x, y)
}

/// Train `m` on batches `steps` with `lr`; the losses.
fn run(m: &mut Model, steps: std::ops::Range<usize>, lr: f32) -> Vec<f32> {
    let cfg = *m.config();
    steps
        .map(|i| {
            let (x, y) = batch(&cfg, i);
            m.train_step(&x, &y, lr).unwrap()
        })
        .collect()
}

/// A model of `cfg` on `isa` with `opt` and `clip`, trained `steps` steps.
fn trained_with(cfg: &Config, isa: Isa, opt: Optimizer, clip: f32, lr: f32, steps: usize) -> Model {
    let mut m = model(cfg, isa);
    m.set_optimizer(opt).unwrap();
    m.set_grad_clip(clip).unwrap();
    run(&mut m, 0..steps, lr);
    m
}

/// The optimizer's settings as bits (`Optimizer`'s `==` calls 0.0 and -0.0 equal).
fn opt_bits(m: &Model) -> String {
    let bits = |v: f32| v.to_bits();
    match m.optimizer() {
        Optimizer::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => format!("sgd {} {nesterov} {}", bits(momentum), bits(weight_decay)),
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => format!(
            "adam {} {} {} {}",
            bits(beta1),
            bits(beta2),
            bits(eps),
            bits(weight_decay)
        ),
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => format!(
            "adamw {} {} {} {}",
            bits(beta1),
            bits(beta2),
            bits(eps),
            bits(weight_decay)
        ),
    }
}

#[test]
fn loss_and_every_optimizer_round_trip_bit_exact_on_and_across_every_kernel_set() {
    let isas = isas();
    let mut checked = 0;
    for cfg in optimizer_configs() {
        for (what, opt, clip, lr) in optimizers() {
            for &from in &isas {
                let src = trained_with(&cfg, from, opt, clip, lr, 6);
                assert_eq!(src.optimizer_steps(), 6);
                let bytes = save(&src);
                let p = 4 * src.param_count();
                let vectors = match opt {
                    Optimizer::Sgd { momentum, .. } => usize::from(momentum > 0.0),
                    _ => 2,
                };
                assert_eq!(bytes.len(), 112 + 32 + 40 + p * (1 + vectors) + 4, "{what}");
                for &to in &isas {
                    let back = Model::load(&bytes, cfg.max_batch, to).unwrap();
                    let ctx = format!("{what}, {:?} loss, {from:?} -> {to:?}", cfg.loss);
                    assert_eq!(back.isa(), to);
                    assert_eq!(back.config().loss, cfg.loss, "{ctx}");
                    assert_eq!(back.optimizer(), opt, "{ctx}");
                    assert_eq!(opt_bits(&back), opt_bits(&src), "{ctx}");
                    assert_eq!(back.optimizer_steps(), 6, "{ctx}");
                    assert_eq!(bits(&params(&back)), bits(&params(&src)), "{ctx}");
                    // The state vectors, the clipping norm and the step count are in the
                    // bytes: saving again reproduces them, bit for bit, on any set.
                    assert_eq!(save(&back), bytes, "{ctx}: re-saved bytes differ");
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} optimizer round trips");
}

/// The state is really restored: a resumed run equals the uninterrupted one bit for
/// bit (parameters, losses, step count, state), for every optimizer and loss, on
/// every kernel set; and restarting the optimizer instead would differ.
#[test]
fn a_resumed_run_continues_bit_identically_to_an_uninterrupted_one() {
    let (before, after) = (7, 9);
    let mut resumed = 0;
    for isa in isas() {
        for cfg in optimizer_configs() {
            for (what, opt, clip, lr) in optimizers() {
                let ctx = format!("{what}, {:?} loss, {isa:?}", cfg.loss);
                let mut whole = trained_with(&cfg, isa, opt, clip, lr, 0);
                let losses = run(&mut whole, 0..before + after, lr);

                let first = trained_with(&cfg, isa, opt, clip, lr, before);
                let bytes = save(&first);
                drop(first);
                let mut back = Model::load(&bytes, cfg.max_batch, isa).unwrap();
                let rest = run(&mut back, before..before + after, lr);
                assert_eq!(bits(&rest), bits(&losses[before..]), "{ctx}: losses");
                assert_eq!(bits(&params(&back)), bits(&params(&whole)), "{ctx}: params");
                assert_eq!(back.optimizer_steps(), (before + after) as u64, "{ctx}");
                assert_eq!(save(&back), save(&whole), "{ctx}: state");
                resumed += 1;

                // Teeth: the same parameters with a restarted optimizer go elsewhere
                // (SGD without momentum has no state to lose).
                let stateful = !matches!(opt, Optimizer::Sgd { momentum, .. } if momentum == 0.0);
                if stateful {
                    let mut fresh = Model::load(&bytes, cfg.max_batch, isa).unwrap();
                    fresh.set_optimizer(opt).unwrap();
                    run(&mut fresh, before..before + after, lr);
                    assert_ne!(bits(&params(&fresh)), bits(&params(&whole)), "{ctx}");
                }
            }
        }
    }
    eprintln!("{resumed} resumed runs, bit-identical");
}

/// Resuming through a file, twice, with mixed calls (forward/backward/step and
/// train_step) in between: still bit-identical.
#[test]
fn a_run_resumed_from_files_twice_is_bit_identical() {
    let dir = temp_dir("resume");
    let path = dir.join("run.ckpt");
    let cfg = Config::new(6, &[16], 4)
        .max_batch(5)
        .seed(31)
        .loss(Loss::CrossEntropy);
    let lr = 0.01;
    let leg = |m: &mut Model, steps: std::ops::Range<usize>| {
        for i in steps {
            let (x, y) = batch(&cfg, i);
            if i % 3 == 0 {
                m.forward(&x, None).unwrap();
                m.backward(&y).unwrap();
                m.step(lr).unwrap();
            } else {
                m.train_step(&x, &y, lr).unwrap();
            }
        }
    };
    for isa in isas() {
        for (what, opt, clip, _) in optimizers() {
            let mut whole = trained_with(&cfg, isa, opt, clip, lr, 0);
            leg(&mut whole, 0..15);
            let mut m = trained_with(&cfg, isa, opt, clip, lr, 0);
            leg(&mut m, 0..4);
            m.save_file(&path).unwrap();
            let mut m = Model::load_file(&path, cfg.max_batch, isa).unwrap();
            leg(&mut m, 4..9);
            m.save_file(&path).unwrap();
            let mut m = Model::load_file(&path, cfg.max_batch, isa).unwrap();
            leg(&mut m, 9..15);
            assert_eq!(save(&m), save(&whole), "{what} on {isa:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint written under one kernel set and resumed under another continues
/// the same optimizer (same step count and state), close to the run on the first
/// set: the sets round differently, so not bit for bit.
#[test]
fn a_run_resumed_under_another_kernel_set_stays_close() {
    let isas = isas();
    if isas.len() < 2 {
        eprintln!("one kernel set here: nothing to cross");
        return;
    }
    let (before, after) = (6, 6);
    for cfg in optimizer_configs() {
        for (what, opt, clip, lr) in optimizers() {
            for &from in &isas {
                let first = trained_with(&cfg, from, opt, clip, lr, before);
                let bytes = save(&first);
                let mut here = Model::load(&bytes, cfg.max_batch, from).unwrap();
                run(&mut here, before..before + after, lr);
                for &to in isas.iter().filter(|&&i| i != from) {
                    let mut there = Model::load(&bytes, cfg.max_batch, to).unwrap();
                    run(&mut there, before..before + after, lr);
                    assert_eq!(there.optimizer_steps(), (before + after) as u64);
                    let (w, at) = worst(&params(&there), &params(&here), 1e-4, 1e-2);
                    assert!(
                        w <= 1.0,
                        "{what} {from:?} -> {to:?}: param {at} off by {w}x"
                    );
                }
            }
        }
    }
}

#[test]
fn saving_optimizer_state_allocates_nothing() {
    for isa in isas() {
        for (what, opt, clip, lr) in optimizers() {
            let m = trained_with(&optimizer_configs()[0], isa, opt, clip, lr, 3);
            let mut buf = vec![0u8; m.save_size()];
            let (r, count, _) = watched(|| {
                let n = m.save_size();
                m.save(&mut buf).map(|w| (w, n))
            });
            assert_eq!(r, Ok((buf.len(), buf.len())));
            assert_eq!(count, 0, "{what} on {isa:?}: save allocated");
        }
    }
}

/// Extreme but finite state values (put in by hand: no run makes them) come back bit
/// for bit.
#[test]
fn extreme_but_finite_optimizer_state_round_trips() {
    let m = trained_with(
        &Config::new(3, &[4, 2], 2).max_batch(3).seed(5),
        Isa::Scalar,
        Optimizer::ADAM,
        0.0,
        0.01,
        2,
    );
    let b = save(&m);
    let n = m.param_count();
    let state = 128 + 4 * n + 16 + 40;
    let first = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x8000_0001),
        f32::MAX,
        f32::MIN,
    ];
    let second = [
        0.0,
        -0.0,
        f32::from_bits(1),
        f32::MIN_POSITIVE,
        f32::MAX,
        1e30,
    ];
    let mut c = b.clone();
    for i in 0..n {
        let (a, v) = (first[i % first.len()], second[i % second.len()]);
        c[state + 4 * i..state + 4 * i + 4].copy_from_slice(&a.to_le_bytes());
        c[state + 4 * (n + i)..state + 4 * (n + i) + 4].copy_from_slice(&v.to_le_bytes());
    }
    reseal(&mut c);
    for isa in isas() {
        let back = Model::load(&c, 3, isa).unwrap();
        assert_eq!(save(&back), c, "{isa:?}");
    }
}

#[test]
fn extreme_but_finite_parameters_round_trip() {
    let mut m = small();
    let n = m.param_count();
    let specials = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1), // smallest subnormal
        f32::from_bits(0x8000_0001),
        f32::MAX,
        f32::MIN,
        1.0,
        -1.0,
        std::f32::consts::PI,
    ];
    let p: Vec<f32> = (0..n).map(|i| specials[i % specials.len()]).collect();
    m.set_params(&p).unwrap();
    let back = Model::load(&save(&m), 1, Isa::Scalar).unwrap();
    assert_eq!(bits(&params(&back)), bits(&p));
}

/// The fixed header of a 1 -> 1 -> 1 model with `seed`, format version 2, `loss`.
fn header_1_1_1(seed: u64, loss: u32) -> Vec<u8> {
    let mut want = Vec::new();
    want.extend_from_slice(b"\x89FLOWMLP");
    want.extend_from_slice(&2u32.to_le_bytes()); // version
    want.extend_from_slice(&1u32.to_le_bytes()); // k
    want.extend_from_slice(&1u64.to_le_bytes()); // d
    want.extend_from_slice(&1u64.to_le_bytes()); // m
    want.extend_from_slice(&1u64.to_le_bytes()); // h_1
    want.extend_from_slice(&[0u8; 7 * 8]); // h_2..h_8
    want.extend_from_slice(&seed.to_le_bytes()); // seed
    want.extend_from_slice(&2u32.to_le_bytes()); // sections
    want.extend_from_slice(&loss.to_le_bytes()); // loss
    want
}

/// The format, pinned byte by byte for a 1 -> 1 -> 1 model, little-endian.
#[test]
fn the_format_is_little_endian_and_versioned() {
    let mut m = Model::new(&Config::new(1, &[1], 1).seed(0x0102_0304_0506_0708)).unwrap();
    m.set_params(&[1.0, -2.0, 0.5, 3.0]).unwrap();
    let b = save(&m);
    assert_eq!(m.save_size(), 112 + 16 + 16 + 16 + 40 + 4);
    let mut want = header_1_1_1(0x0102_0304_0506_0708, 0);
    assert_eq!(&want[96..104], &[8, 7, 6, 5, 4, 3, 2, 1]);
    want.extend_from_slice(&1u32.to_le_bytes()); // PARAMS
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&16u64.to_le_bytes());
    for v in [1.0f32, -2.0, 0.5, 3.0] {
        want.extend_from_slice(&v.to_le_bytes());
    }
    want.extend_from_slice(&2u32.to_le_bytes()); // OPTIMIZER
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&40u64.to_le_bytes());
    // Plain SGD, no clipping, no steps: kind 0 and every field 0, no state vectors.
    want.extend_from_slice(&[0u8; 40]);
    want.extend_from_slice(&crc32(&want).to_le_bytes());
    assert_eq!(b, want);
    assert_eq!(&b[128..132], &[0x00, 0x00, 0x80, 0x3F]); // 1.0f32, little-endian

    // The step count is counted for plain SGD too, at offset 32 of the section.
    let mut rng = Rng(5);
    for _ in 0..3 {
        let (x, y) = (rng.vec(1), rng.vec(1));
        m.train_step(&x, &y, 0.01).unwrap();
    }
    let b = save(&m);
    assert_eq!(b.len(), 204);
    assert_eq!(&b[192..200], &3u64.to_le_bytes());

    // Cross-entropy: loss 1 at offset 108 (it needs two outputs).
    let ce = Model::new(&Config::new(1, &[1], 2).loss(Loss::CrossEntropy)).unwrap();
    let b = save(&ce);
    assert_eq!(&b[104..112], &[2, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(
        Model::load(&b, 1, Isa::Scalar).unwrap().config().loss,
        Loss::CrossEntropy
    );
}

/// The OPTIMIZER section pinned byte by byte: Adam's settings and its two moments,
/// SGD with Nesterov momentum and its buffer.
#[test]
fn the_optimizer_section_is_pinned_byte_by_byte() {
    let mut m = Model::new(&Config::new(1, &[1], 1).seed(9).isa(Isa::Scalar)).unwrap();
    let p0 = [1.0f32, 2.0, 0.5, -3.0];
    m.set_params(&p0).unwrap();
    let (beta1, beta2, eps) = (0.875f32, 0.996_093_75f32, 1e-8f32);
    m.set_optimizer(Optimizer::Adam {
        beta1,
        beta2,
        eps,
        weight_decay: 0.0,
    })
    .unwrap();
    m.set_grad_clip(0.5).unwrap();
    let b = save(&m);
    assert_eq!(b.len(), 112 + 16 + 16 + 16 + 40 + 2 * 16 + 4);
    let mut want = header_1_1_1(9, 0);
    want.extend_from_slice(&1u32.to_le_bytes()); // PARAMS
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&16u64.to_le_bytes());
    for v in p0 {
        want.extend_from_slice(&v.to_le_bytes());
    }
    want.extend_from_slice(&2u32.to_le_bytes()); // OPTIMIZER
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&(40u64 + 2 * 16).to_le_bytes());
    want.extend_from_slice(&1u32.to_le_bytes()); // kind: Adam
    want.extend_from_slice(&0u32.to_le_bytes()); // Nesterov
    for v in [beta1, beta2, eps, 0.0, 0.5] {
        want.extend_from_slice(&v.to_le_bytes()); // beta1, beta2, eps, decay, clip
    }
    want.extend_from_slice(&0u32.to_le_bytes()); // reserved
    want.extend_from_slice(&0u64.to_le_bytes()); // steps
    want.extend_from_slice(&[0u8; 32]); // fresh moments
    want.extend_from_slice(&crc32(&want).to_le_bytes());
    assert_eq!(b, want);

    // One step (clipping off; it keeps the state): steps 1, then m = (1 - b1) g and
    // v = (1 - b2) g^2, each vector in the flat layout, first moment first.
    m.set_grad_clip(0.0).unwrap();
    let (x, y) = ([0.75f32], [-1.5f32]);
    m.train_step(&x, &y, 0.01).unwrap();
    let g = grads(&m);
    assert!(g.iter().all(|&v| v != 0.0));
    let b = save(&m);
    assert_eq!(&b[160 + 24..160 + 28], &0f32.to_le_bytes()); // clip
    assert_eq!(&b[160 + 32..160 + 40], &1u64.to_le_bytes()); // steps
    let state = |i: usize| f32::from_le_bytes(b[200 + 4 * i..204 + 4 * i].try_into().unwrap());
    for (i, (&gi, &pi)) in g.iter().zip(&p0).enumerate() {
        let gi = gi + 0.0 * pi;
        assert_eq!(state(i).to_bits(), ((1.0 - beta1) * gi).to_bits(), "m[{i}]");
        assert_eq!(
            state(4 + i).to_bits(),
            ((1.0 - beta2) * gi * gi).to_bits(),
            "v[{i}]"
        );
    }

    // SGD with Nesterov momentum and weight decay: kind 0, Nesterov 1, momentum,
    // two zero fields, decay, clip, reserved, steps; then the momentum buffer.
    let mut m = Model::new(&Config::new(1, &[1], 1).isa(Isa::Scalar)).unwrap();
    m.set_optimizer(Optimizer::Sgd {
        momentum: 0.5,
        nesterov: true,
        weight_decay: 0.25,
    })
    .unwrap();
    m.set_grad_clip(2.0).unwrap();
    m.train_step(&x, &y, 0.01).unwrap();
    m.train_step(&x, &y, 0.01).unwrap();
    let b = save(&m);
    assert_eq!(b.len(), 112 + 16 + 16 + 16 + 40 + 16 + 4);
    assert_eq!(&b[152..160], &(40u64 + 16).to_le_bytes());
    let mut settings = Vec::new();
    settings.extend_from_slice(&0u32.to_le_bytes());
    settings.extend_from_slice(&1u32.to_le_bytes());
    for v in [0.5f32, 0.0, 0.0, 0.25, 2.0] {
        settings.extend_from_slice(&v.to_le_bytes());
    }
    settings.extend_from_slice(&0u32.to_le_bytes());
    settings.extend_from_slice(&2u64.to_le_bytes());
    assert_eq!(&b[160..200], &settings[..]);
    // The buffer is not zero after two steps (and it is what comes back).
    assert!(b[200..216].iter().any(|&v| v != 0));
}

/// A version-1 checkpoint of `m` (format of the first release: reserved 0 where the
/// loss is, and an empty OPTIMIZER section).
fn as_version_1(m: &Model) -> Vec<u8> {
    let b = save(m);
    let n = 4 * m.param_count();
    let opt = 128 + n;
    let mut v1 = b[..opt + 16].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[108..112].copy_from_slice(&0u32.to_le_bytes());
    v1[opt + 8..opt + 16].copy_from_slice(&0u64.to_le_bytes());
    v1.extend_from_slice(&[0; 4]);
    reseal(&mut v1);
    v1
}

#[test]
fn version_1_checkpoints_still_load() {
    // The committed fuzz seed is a version-1 checkpoint written by the first release.
    let seed = include_bytes!("../fuzz/corpus/checkpoint_load/seed-1-1-1");
    let old = &seed[1..];
    assert_eq!(&old[8..12], &1u32.to_le_bytes());
    let back = Model::load(old, 1, Isa::Scalar).unwrap();
    assert_eq!(back.config().loss, Loss::Mse);
    assert_eq!(back.optimizer(), Optimizer::SGD);
    assert_eq!(back.optimizer_steps(), 0);
    let p: Vec<f32> = old[128..144]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(bits(&params(&back)), bits(&p));
    // Saved again, it is version 2, and the version-1 form of that is the original.
    let again = save(&back);
    assert_eq!(&again[8..12], &2u32.to_le_bytes());
    assert_eq!(as_version_1(&back), old);

    for isa in isas() {
        let m = trained(&Config::new(4, &[6, 5], 2).max_batch(3).seed(8), isa, 2);
        let v1 = as_version_1(&m);
        assert_eq!(v1.len(), save(&m).len() - 40);
        let back = Model::load(&v1, 3, isa).unwrap();
        assert_eq!(bits(&params(&back)), bits(&params(&m)));
        assert_eq!(back.optimizer(), Optimizer::SGD);
        // Every bit flip and truncation of a version-1 checkpoint is refused too.
        let mut c = v1.clone();
        for i in (0..c.len() * 8).step_by(BIT_STEP) {
            c[i / 8] ^= 1 << (i % 8);
            assert_bad(&c, &format!("v1: bit {} of byte {} flipped", i % 8, i / 8));
            c[i / 8] ^= 1 << (i % 8);
        }
        for len in 0..v1.len() {
            assert_bad(&v1[..len], &format!("v1 truncated to {len}"));
        }
        // Version 1 had no loss (the field was reserved) and no optimizer state.
        assert_bad(&edit(&v1, 108, &1u32.to_le_bytes()), "v1 with loss 1");
        let v2_body_as_v1 = edit(&save(&m), 8, &1u32.to_le_bytes());
        assert_bad(&v2_body_as_v1, "v1 with a v2 OPTIMIZER section");
    }
}

#[test]
fn save_needs_a_large_enough_buffer_and_writes_nothing_else() {
    let m = small();
    let n = m.save_size();
    for cap in [0, 1, 111, 112, n - 4, n - 1] {
        let mut buf = vec![0xA5u8; cap];
        assert_eq!(m.save(&mut buf), Err(Error::InvalidArgument));
        assert!(buf.iter().all(|&b| b == 0xA5), "cap {cap}: buffer written");
    }
    let mut buf = vec![0xA5u8; n + 10];
    assert_eq!(m.save(&mut buf), Ok(n));
    assert!(buf[n..].iter().all(|&b| b == 0xA5));
    assert_eq!(buf[..n], save(&m)[..]);
}

// ---------------------------------------------------------------- bad checkpoints

#[test]
fn truncated_at_every_length_is_refused() {
    let b = save(&small());
    for len in 0..b.len() {
        assert_bad(
            &b[..len],
            &format!("truncated to {len} of {} bytes", b.len()),
        );
    }
    // One byte too many is refused too.
    let mut longer = b.clone();
    longer.push(0);
    assert_bad(&longer, "one trailing byte");
    longer.truncate(b.len());
    longer.extend_from_slice(&[0; 4]);
    reseal(&mut longer);
    assert_bad(&longer, "four trailing bytes with a matching CRC");
}

/// Every bit is flipped; under Miri every 61st (a prime: every bit position of
/// bytes all along the checkpoint), as a full pass takes an hour (scripts/miri.sh).
const BIT_STEP: usize = if cfg!(miri) { 61 } else { 1 };

#[test]
fn every_single_bit_flip_is_refused() {
    let b = save(&small());
    let mut c = b.clone();
    for i in (0..b.len() * 8).step_by(BIT_STEP) {
        c[i / 8] ^= 1 << (i % 8);
        assert_bad(&c, &format!("bit {} of byte {} flipped", i % 8, i / 8));
        c[i / 8] ^= 1 << (i % 8);
    }
    assert_eq!(c, b);
    assert!(Model::load(&b, 4, Isa::Scalar).is_ok());
}

#[test]
fn wrong_magic_and_other_versions_are_refused() {
    let b = save(&small());
    for magic in [
        *b"FLOWMLP\0",
        *b"\x89FLOWMLp",
        *b"\x09FLOWMLP",
        [0; 8],
        [0xFF; 8],
    ] {
        let mut c = b.clone();
        c[..8].copy_from_slice(&magic);
        reseal(&mut c);
        assert_bad(&c, &format!("magic {magic:?}"));
    }
    for version in [0u32, 3, 4, 0x100, 0x0200_0000, u32::MAX] {
        let mut c = b.clone();
        c[8..12].copy_from_slice(&version.to_le_bytes());
        reseal(&mut c);
        assert_bad(&c, &format!("version {version}"));
    }
    // Big-endian version 2 is a different version number.
    let mut c = b.clone();
    c[8..12].copy_from_slice(&2u32.to_be_bytes());
    reseal(&mut c);
    assert_bad(&c, "version 2 written big-endian");
}

/// Put `v` at byte `at` and fix the CRC.
fn edit(b: &[u8], at: usize, v: &[u8]) -> Vec<u8> {
    let mut c = b.to_vec();
    c[at..at + v.len()].copy_from_slice(v);
    reseal(&mut c);
    c
}

#[test]
fn impossible_topologies_and_absurd_sizes_are_refused_without_allocating() {
    // A 1 -> 1 -> 1 model with plain SGD: 204 bytes.
    let b = save(&Model::new(&Config::new(1, &[1], 1)).unwrap());
    let le64 = |v: u64| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("k = 0".into(), edit(&b, 12, &le32(0))),
        ("k = 9".into(), edit(&b, 12, &le32(9))),
        ("k = u32::MAX".into(), edit(&b, 12, &le32(u32::MAX))),
        ("d = 0".into(), edit(&b, 16, &le64(0))),
        ("m = 0".into(), edit(&b, 24, &le64(0))),
        ("h_1 = 0".into(), edit(&b, 32, &le64(0))),
        ("h_2 != 0 past k".into(), edit(&b, 40, &le64(1))),
        ("h_8 != 0 past k".into(), edit(&b, 88, &le64(7))),
        // Terabytes of parameters claimed by a 160-byte buffer.
        (
            "d = 2^40 (4 TiB of W_1)".into(),
            edit(&b, 16, &le64(1 << 40)),
        ),
        ("h_1 = 2^38".into(), edit(&b, 32, &le64(1 << 38))),
        ("m = 2^50".into(), edit(&b, 24, &le64(1 << 50))),
        // Counts whose products or sums overflow 64 bits.
        ("d = u64::MAX".into(), edit(&b, 16, &le64(u64::MAX))),
        (
            "d = h_1 = 2^32".into(),
            edit(&edit(&b, 16, &le64(1 << 32)), 32, &le64(1 << 32)),
        ),
        (
            "d = h_1 = m = 2^32 - 1".into(),
            edit(
                &edit(
                    &edit(&b, 16, &le64(u32::MAX as u64)),
                    24,
                    &le64(u32::MAX as u64),
                ),
                32,
                &le64(u32::MAX as u64),
            ),
        ),
        ("count * 4 overflows".into(), edit(&b, 16, &le64(1 << 62))),
        ("sections = 1".into(), edit(&b, 104, &le32(1))),
        ("sections = 3".into(), edit(&b, 104, &le32(3))),
        ("loss = 2".into(), edit(&b, 108, &le32(2))),
        ("loss = u32::MAX".into(), edit(&b, 108, &le32(u32::MAX))),
        (
            "cross-entropy with one output".into(),
            edit(&b, 108, &le32(1)),
        ),
        ("PARAMS tag".into(), edit(&b, 112, &le32(2))),
        ("PARAMS flags".into(), edit(&b, 116, &le32(1))),
        ("PARAMS length short".into(), edit(&b, 120, &le64(12))),
        ("PARAMS length long".into(), edit(&b, 120, &le64(20))),
        ("PARAMS length huge".into(), edit(&b, 120, &le64(u64::MAX))),
        ("OPTIMIZER tag".into(), edit(&b, 144, &le32(1))),
        ("unknown section tag".into(), edit(&b, 144, &le32(77))),
        ("OPTIMIZER flags".into(), edit(&b, 148, &le32(0x8000_0000))),
        ("OPTIMIZER length".into(), edit(&b, 152, &le64(4))),
        (
            "OPTIMIZER length huge".into(),
            edit(&b, 152, &le64(1 << 60)),
        ),
    ];
    // A state vector that plain SGD does not keep, consistent and sealed.
    let mut opt = b[..200].to_vec();
    opt[152..160].copy_from_slice(&le64(40 + 16));
    opt.extend_from_slice(&[0; 16]);
    opt.extend_from_slice(&[0; 4]);
    reseal(&mut opt);
    let mut cases = cases;
    cases.push(("a momentum buffer for plain SGD".into(), opt));
    // An empty OPTIMIZER section (version 1's) in version 2.
    let mut empty = b[..160].to_vec();
    empty[152..160].copy_from_slice(&le64(0));
    empty.extend_from_slice(&[0; 4]);
    reseal(&mut empty);
    cases.push(("an empty OPTIMIZER section".into(), empty));
    // The header of a huge model followed by nothing.
    cases.push((
        "a 2^20-unit header without its parameters".into(),
        edit(&b, 32, &le64(1 << 20))[..112].to_vec(),
    ));
    for (what, c) in &cases {
        assert_bad(c, what);
    }
    assert!(Model::load(&b, 1, Isa::Scalar).is_ok());
}

#[test]
fn non_finite_parameters_are_refused_even_with_a_matching_crc() {
    let m = small();
    let b = save(&m);
    let n = m.param_count();
    for v in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for i in [0, n / 2, n - 1] {
            let at = 128 + 4 * i;
            assert_bad(&edit(&b, at, &v.to_le_bytes()), &format!("param {i} = {v}"));
        }
    }
    // Signalling NaN payloads too.
    assert_bad(
        &edit(&b, 128, &0x7F80_0001u32.to_le_bytes()),
        "signalling NaN",
    );
}

fn small_with(opt: Optimizer, clip: f32) -> Model {
    trained_with(
        &Config::new(3, &[4, 2], 2).max_batch(3).seed(5),
        Isa::Scalar,
        opt,
        clip,
        0.01,
        4,
    )
}

/// Where the OPTIMIZER payload of `m`'s checkpoint starts.
fn settings_at(m: &Model) -> usize {
    128 + 4 * m.param_count() + 16
}

/// A checkpoint of `m` with its OPTIMIZER payload replaced by `payload` (section
/// length and CRC fixed up): a consistent, sealed file with a bad optimizer.
fn with_payload(m: &Model, payload: &[u8]) -> Vec<u8> {
    let b = save(m);
    let at = settings_at(m);
    let mut c = b[..at].to_vec();
    c[at - 8..at].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    c.extend_from_slice(payload);
    c.extend_from_slice(&[0; 4]);
    reseal(&mut c);
    c
}

#[test]
fn bad_optimizer_sections_are_refused_without_allocating() {
    let le32 = |v: u32| v.to_le_bytes();
    let f = |v: f32| v.to_le_bytes();
    let adam = small_with(Optimizer::ADAM, 0.5);
    let mom = small_with(Optimizer::momentum(0.9, true), 0.0);
    let sgd = small_with(Optimizer::SGD, 0.0);
    let n = adam.param_count();
    let (a, b_adam) = (settings_at(&adam), save(&adam));
    let (s, b_mom) = (settings_at(&mom), save(&mom));
    let b_sgd = save(&sgd);
    let (st_adam, st_mom) = (a + 40, s + 40);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut case = |what: &str, c: Vec<u8>| cases.push((what.to_string(), c));
    // Kinds and flags.
    for kind in [3u32, 4, 77, 0x100, u32::MAX] {
        case(&format!("kind {kind}"), edit(&b_adam, a, &le32(kind)));
    }
    case("Nesterov = 2", edit(&b_mom, s + 4, &le32(2)));
    case("Nesterov = u32::MAX", edit(&b_mom, s + 4, &le32(u32::MAX)));
    case("Nesterov on Adam", edit(&b_adam, a + 4, &le32(1)));
    let adamw = small_with(Optimizer::ADAMW, 0.0);
    case(
        "Nesterov on AdamW",
        edit(&save(&adamw), settings_at(&adamw) + 4, &le32(1)),
    );
    case(
        "Nesterov without momentum",
        edit(&b_sgd, settings_at(&sgd) + 4, &le32(1)),
    );
    case("reserved != 0", edit(&b_adam, a + 28, &le32(1)));
    case("SGD's beta2 field set", edit(&b_mom, s + 12, &f(0.5)));
    case("SGD's eps field -0.0", edit(&b_mom, s + 16, &f(-0.0)));
    // Hyperparameters out of range: what set_optimizer refuses.
    for (what, v) in [
        ("1", 1.0),
        ("1.5", 1.5),
        ("-0.1", -0.1),
        ("NaN", f32::NAN),
        ("inf", f32::INFINITY),
    ] {
        case(&format!("momentum {what}"), edit(&b_mom, s + 8, &f(v)));
        case(&format!("beta1 {what}"), edit(&b_adam, a + 8, &f(v)));
        case(&format!("beta2 {what}"), edit(&b_adam, a + 12, &f(v)));
    }
    for (what, v) in [
        ("0", 0.0),
        ("-0", -0.0),
        ("-1e-8", -1e-8),
        ("NaN", f32::NAN),
        ("inf", f32::INFINITY),
    ] {
        case(&format!("eps {what}"), edit(&b_adam, a + 16, &f(v)));
    }
    for (what, v) in [("-1", -1.0), ("NaN", f32::NAN), ("inf", f32::INFINITY)] {
        case(
            &format!("weight decay {what}"),
            edit(&b_adam, a + 20, &f(v)),
        );
        case(
            &format!("momentum's weight decay {what}"),
            edit(&b_mom, s + 20, &f(v)),
        );
        case(&format!("clip norm {what}"), edit(&b_adam, a + 24, &f(v)));
    }
    case("momentum 0 with a buffer", edit(&b_mom, s + 8, &f(0.0)));
    // Step counts no run reaches (the next step would overflow the count).
    for steps in [1u64 << 63, u64::MAX - 1, u64::MAX] {
        case(
            &format!("steps {steps}"),
            edit(&b_adam, a + 32, &steps.to_le_bytes()),
        );
    }
    // Non-finite state, and negative second moments.
    for (what, v) in [
        ("NaN", f32::NAN),
        ("-NaN", -f32::NAN),
        ("inf", f32::INFINITY),
        ("-inf", f32::NEG_INFINITY),
        ("signalling NaN", f32::from_bits(0x7F80_0001)),
    ] {
        for i in [0, n - 1] {
            case(
                &format!("m[{i}] = {what}"),
                edit(&b_adam, st_adam + 4 * i, &f(v)),
            );
            case(
                &format!("v[{i}] = {what}"),
                edit(&b_adam, st_adam + 4 * (n + i), &f(v)),
            );
            case(
                &format!("momentum[{i}] = {what}"),
                edit(&b_mom, st_mom + 4 * i, &f(v)),
            );
        }
    }
    for v in [-1.0f32, -f32::MIN_POSITIVE, -f32::from_bits(1)] {
        case(
            &format!("v[3] = {v}"),
            edit(&b_adam, st_adam + 4 * (n + 3), &f(v)),
        );
    }
    // State vectors that do not match the kind, each file consistent and sealed.
    let settings = |b: &[u8], at: usize| b[at..at + 40].to_vec();
    let (set_adam, set_mom) = (settings(&b_adam, a), settings(&b_mom, s));
    let vector = vec![0u8; 4 * n];
    let mut one = set_adam.clone();
    one.extend_from_slice(&b_adam[st_adam..st_adam + 4 * n]);
    case("Adam with one vector", with_payload(&adam, &one));
    case("Adam with no vector", with_payload(&adam, &set_adam));
    let three = [&b_adam[a..b_adam.len() - 4], &vector[..]].concat();
    case("Adam with three vectors", with_payload(&adam, &three));
    case("momentum with no buffer", with_payload(&mom, &set_mom));
    let two = [&b_mom[s..b_mom.len() - 4], &vector[..]].concat();
    case("momentum with two vectors", with_payload(&mom, &two));
    let half = [&set_adam[..], &vector[..2 * n], &vector[..]].concat();
    case(
        "Adam with one and a half vectors",
        with_payload(&adam, &half),
    );
    let mut short = set_adam.clone();
    short.truncate(36);
    case("settings cut short", with_payload(&adam, &short));
    // The section length disagreeing with the file's length.
    let len_at = a - 8;
    for len in [
        40u64,
        40 + 4 * n as u64,
        40 + 12 * n as u64,
        0,
        39,
        u64::MAX,
    ] {
        case(
            &format!("OPTIMIZER length {len}"),
            edit(&b_adam, len_at, &len.to_le_bytes()),
        );
    }
    // Kinds swapped with everything else kept.
    case("Adam relabelled SGD", edit(&b_adam, a, &le32(0)));
    case("momentum relabelled AdamW", edit(&b_mom, s, &le32(2)));
    for (what, c) in &cases {
        assert_bad(c, what);
    }
    eprintln!("{} bad optimizer sections refused", cases.len());
    // And the originals load.
    for b in [&b_adam, &b_mom, &b_sgd] {
        assert!(Model::load(b, 3, Isa::Scalar).is_ok());
    }
}

#[test]
fn checkpoints_with_optimizer_state_truncated_or_flipped_are_refused() {
    for (opt, clip) in [
        (Optimizer::ADAMW, 0.5),
        (Optimizer::momentum(0.5, false), 0.0),
    ] {
        let b = save(&small_with(opt, clip));
        for len in 0..b.len() {
            assert_bad(&b[..len], &format!("{opt:?}: truncated to {len}"));
        }
        let mut c = b.clone();
        for i in 0..b.len() * 8 {
            c[i / 8] ^= 1 << (i % 8);
            assert_bad(
                &c,
                &format!("{opt:?}: bit {} of byte {} flipped", i % 8, i / 8),
            );
            c[i / 8] ^= 1 << (i % 8);
        }
        let mut longer = b.clone();
        longer.extend_from_slice(&[0; 4]);
        reseal(&mut longer);
        assert_bad(&longer, "four trailing bytes with a matching CRC");
        assert!(Model::load(&b, 1, Isa::Scalar).is_ok());
    }
}

/// The committed seeds of the `checkpoint_load` fuzz target (a control byte, then a
/// checkpoint; control bit 0: recompute the CRC) load as their names say: all but
/// the huge header, version 1 and 2, and version 2 ones save back to themselves.
#[test]
#[cfg_attr(miri, ignore = "Miri is isolated from the file system")]
fn the_fuzz_seeds_are_valid_checkpoints() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/checkpoint_load");
    let (mut v1, mut v2, mut adam) = (0, 0, 0);
    for name in entries(&dir) {
        if !name.starts_with("seed") {
            continue;
        }
        let data = std::fs::read(dir.join(&name)).unwrap();
        let mut b = data[1..].to_vec();
        if data[0] & 1 != 0 {
            reseal(&mut b);
        }
        let r = Model::load(&b, 1 + ((data[0] >> 3) & 7) as usize, Isa::Scalar);
        // The generated seeds (fuzz/examples/seeds.rs) name what they hold: a shape
        // ("seed-gen-10-32-1-sgd") is a valid checkpoint, anything else a corruption.
        if let Some(rest) = name.strip_prefix("seed-gen-") {
            if !rest.starts_with(|c: char| c.is_ascii_digit()) {
                assert_eq!(r.err(), Some(Error::BadCheckpoint), "{name}");
                continue;
            }
        }
        if name.contains("huge") {
            assert_eq!(r.err(), Some(Error::BadCheckpoint), "{name}");
            continue;
        }
        let m = r.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        match b[8] {
            1 => v1 += 1,
            _ => {
                assert_eq!(save(&m), b, "{name}");
                v2 += 1;
                adam += usize::from(matches!(m.optimizer(), Optimizer::Adam { .. }));
            }
        }
    }
    assert!(
        v1 >= 1 && v2 >= 3 && adam >= 1,
        "seeds: {v1} v1, {v2} v2, {adam} Adam"
    );
}

#[test]
fn random_bytes_are_refused() {
    let mut rng = Rng(0xC0FFEE);
    let goods = [save(&small()), save(&small_with(Optimizer::ADAM, 0.5))];
    // Under Miri, a hundred (scripts/miri.sh).
    for case in 0..if cfg!(miri) { 100 } else { 6000 } {
        let good = &goods[case % 2];
        let len = rng.below(400);
        let mut c: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the cases start with a valid magic and version, to get past the door.
        if case % 2 == 1 && len >= 12 {
            c[..12].copy_from_slice(&good[..12]);
        }
        // A quarter are a good checkpoint with random bytes overwritten.
        if case % 4 >= 2 {
            c = good.clone();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(c.len());
                c[i] = rng.next() as u8;
            }
            if c == *good {
                continue;
            }
        }
        assert_bad(&c, &format!("random case {case}"));
    }
}

#[test]
fn load_arguments_are_checked() {
    let b = save(&small());
    assert_eq!(
        Model::load(&b, 0, Isa::Scalar).err(),
        Some(Error::InvalidConfig)
    );
    // Bad bytes and a bad max_batch: the config field is reported (as in Model::new).
    assert_eq!(
        Model::load(&b[..10], 0, Isa::Scalar).err(),
        Some(Error::InvalidConfig)
    );
    for isa in Isa::ALL {
        let r = Model::load(&b, 1, isa);
        if isa.is_supported() {
            assert_eq!(r.unwrap().isa(), isa);
        } else {
            assert_eq!(r.err(), Some(Error::UnsupportedIsa), "{isa:?}");
        }
    }
    assert!(Model::load(&b, 1, Isa::Auto).is_ok());
    // max_batch whose arena overflows: refused before allocating.
    let (r, count, _) = watched(|| Model::load(&b, usize::MAX, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::InvalidConfig));
    assert_eq!(count, 0);
}

#[test]
fn a_valid_load_allocates_only_what_the_checkpoint_justifies() {
    let m = small();
    let b = save(&m);
    let (r, _, largest) = watched(|| Model::load(&b, 3, Isa::Scalar));
    let back = r.unwrap();
    assert!(
        largest <= back.arena_size().max(b.len()),
        "largest allocation {largest} > arena {} / checkpoint {}",
        back.arena_size(),
        b.len()
    );
}

// ---------------------------------------------------------------- files

#[test]
#[cfg_attr(miri, ignore = "Miri is isolated from the file system")]
fn files_round_trip_and_replace_atomically() {
    let dir = temp_dir("files");
    let path = dir.join("model.ckpt");
    let a = small();
    a.save_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save(&a));
    let back = Model::load_file(&path, 3, Isa::Scalar).unwrap();
    assert_eq!(bits(&params(&back)), bits(&params(&a)));
    for isa in isas() {
        let back = Model::load_file(&path, 1, isa).unwrap();
        assert_eq!(bits(&params(&back)), bits(&params(&a)));
    }
    // With optimizer state (a longer file): the same bytes and state come back.
    let adam = small_with(Optimizer::ADAMW, 0.5);
    adam.save_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save(&adam));
    for isa in isas() {
        let back = Model::load_file(&path, 3, isa).unwrap();
        assert_eq!(save(&back), save(&adam));
    }
    // Overwrite with another model: the file is replaced, no temporary is left.
    let b = trained(&Config::new(2, &[3], 1).max_batch(2), Isa::Scalar, 9);
    b.save_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save(&b));
    assert_eq!(entries(&dir), ["model.ckpt"]);
    // A relative path in the current directory works too (parent "").
    let here = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let r = b.save_file("relative.ckpt");
    let l = Model::load_file("relative.ckpt", 1, Isa::Scalar);
    std::env::set_current_dir(here).unwrap();
    r.unwrap();
    assert_eq!(bits(&params(&l.unwrap())), bits(&params(&b)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "Miri is isolated from the file system")]
fn file_errors_leave_the_previous_checkpoint_intact() {
    let dir = temp_dir("file-errors");
    let path = dir.join("keep.ckpt");
    let m = small();
    m.save_file(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let other = trained(&Config::new(2, &[3], 1), Isa::Scalar, 3);

    // A directory that does not exist.
    assert_eq!(
        other.save_file(dir.join("missing").join("x.ckpt")),
        Err(Error::Io)
    );
    // The target is a directory: the rename fails, the temporary file is removed.
    std::fs::create_dir(dir.join("sub")).unwrap();
    assert_eq!(other.save_file(dir.join("sub")), Err(Error::Io));
    assert!(dir.join("sub").is_dir());
    // Paths that name no file.
    assert_eq!(other.save_file(""), Err(Error::Io));
    assert_eq!(other.save_file(dir.join("..")), Err(Error::Io));
    assert_eq!(entries(&dir), ["keep.ckpt", "sub"]);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Loading: missing file, a directory, an empty file, truncated, trailing bytes.
    assert_eq!(
        Model::load_file(dir.join("nope"), 1, Isa::Scalar).err(),
        Some(Error::Io)
    );
    assert_eq!(
        Model::load_file(dir.join("sub"), 1, Isa::Scalar).err(),
        Some(Error::Io)
    );
    assert_eq!(
        Model::load_file(&path, 0, Isa::Scalar).err(),
        Some(Error::InvalidConfig)
    );
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("header-only", before[..112].to_vec()),
        ("short", before[..before.len() - 1].to_vec()),
        ("long", [&before[..], &[0]].concat()),
        ("flipped", {
            let mut f = before.clone();
            f[130] ^= 0x10;
            f
        }),
    ] {
        let p = write(name, &bytes);
        let (r, _, largest) = watched(|| Model::load_file(&p, 1, Isa::Scalar));
        assert_eq!(r.err(), Some(Error::BadCheckpoint), "{name}");
        assert!(
            largest <= before.len().max(4096),
            "{name}: allocated {largest}"
        );
    }
    // A file of a length the header allows, but for another optimizer: Adam's
    // settings with one state vector; and two vectors with a clipped CRC.
    let adam = small_with(Optimizer::ADAM, 0.0);
    let full = save(&adam);
    let one_vector = full.len() - 4 * adam.param_count();
    for (name, bytes) in [
        ("adam-one-vector", full[..one_vector].to_vec()),
        ("adam-short", full[..full.len() - 1].to_vec()),
        ("adam-long", [&full[..], &[0; 4]].concat()),
    ] {
        let p = write(name, &bytes);
        let (r, _, largest) = watched(|| Model::load_file(&p, 1, Isa::Scalar));
        assert_eq!(r.err(), Some(Error::BadCheckpoint), "{name}");
        assert!(
            largest <= full.len().max(4096),
            "{name}: allocated {largest}"
        );
    }
    // A header claiming 2^40 inputs in a tiny file: refused before reading or
    // allocating for the rest.
    let p = write("huge", &edit(&before, 16, &(1u64 << 40).to_le_bytes()));
    let (r, _, largest) = watched(|| Model::load_file(&p, 1, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::BadCheckpoint));
    assert!(largest <= 4096, "allocated {largest}");
    // A header claiming 64 MiB of parameters, in a short file: refused (short).
    let p = write(
        "claims-more",
        &edit(&before, 16, &(1u64 << 22).to_le_bytes()),
    );
    assert_eq!(
        Model::load_file(&p, 1, Isa::Scalar).err(),
        Some(Error::BadCheckpoint)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model big enough that a save takes a little while (about 4 MB).
fn crash_config() -> Config {
    Config::new(64, &[1024, 512, 256], 4).max_batch(1)
}

fn crash_model(variant: u64) -> Model {
    let mut m = Model::new(&crash_config().isa(Isa::Scalar).seed(variant)).unwrap();
    let p: Vec<f32> = (0..m.param_count())
        .map(|i| (i as f32 * 1e-3 + variant as f32).sin())
        .collect();
    m.set_params(&p).unwrap();
    m
}

/// The child of `a_save_killed_at_any_moment_never_destroys_the_checkpoint`: saves
/// two models alternately to `$FLOWMLP_CRASH_PATH` until it is killed.
#[test]
#[ignore = "run by a_save_killed_at_any_moment_never_destroys_the_checkpoint"]
fn crash_child_saves_forever() {
    let Ok(path) = std::env::var("FLOWMLP_CRASH_PATH") else {
        return;
    };
    let models = [crash_model(1), crash_model(2)];
    for i in 0.. {
        models[i % 2].save_file(&path).unwrap();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes, which Miri cannot")]
fn a_save_killed_at_any_moment_never_destroys_the_checkpoint() {
    let dir = temp_dir("crash");
    let path = dir.join("live.ckpt");
    let variants = [crash_model(1), crash_model(2)];
    let known: Vec<Vec<u8>> = variants.iter().map(save).collect();
    variants[0].save_file(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0xDEAD_BEEF);
    let mut seen = [false; 2];
    for round in 0..12 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child_saves_forever",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("FLOWMLP_CRASH_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 + rng.below(150) as u64));
        child.kill().unwrap(); // SIGKILL: no destructors, no cleanup
        child.wait().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let which = known.iter().position(|k| *k == bytes);
        assert!(
            which.is_some(),
            "round {round}: the checkpoint is neither of the saved models ({} bytes)",
            bytes.len()
        );
        seen[which.unwrap()] = true;
        assert!(Model::load_file(&path, 1, Isa::Scalar).is_ok());
    }
    // Leftover temporaries are allowed (a crash cannot clean up), but only as such.
    for name in entries(&dir) {
        assert!(
            name == "live.ckpt" || (name.starts_with(".live.ckpt.") && name.ends_with(".tmp")),
            "unexpected file {name}"
        );
    }
    eprintln!("crash test: final checkpoints seen: {seen:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A zero input, hidden or output count is refused by the header check itself, not
/// only by a length that no longer matches: here each checkpoint's PARAMS section
/// holds exactly the parameter count its zero dimension implies (a 1 -> 1 -> 1 model
/// rewritten as 0 -> 1 -> 1, 1 -> 0 -> 1 and 1 -> 1 -> 0: 3, 1 and 2 values), sealed
/// with a matching CRC, so only the dimension check can refuse it.
#[test]
fn zero_dimensions_are_refused_even_with_consistent_lengths() {
    let b = save(&Model::new(&Config::new(1, &[1], 1)).unwrap());
    // Header (112 bytes), PARAMS (16-byte section header, 4 values), OPTIMIZER (16 +
    // 40 bytes of plain SGD settings), CRC.
    assert_eq!(b.len(), 112 + 16 + 16 + 16 + 40 + 4);
    for (what, at, count) in [("d = 0", 16, 3usize), ("h_1 = 0", 32, 1), ("m = 0", 24, 2)] {
        let mut c = b[..112].to_vec();
        c[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
        c.extend_from_slice(&b[112..120]);
        c.extend_from_slice(&(4 * count as u64).to_le_bytes());
        c.extend_from_slice(&b[128..128 + 4 * count]);
        c.extend_from_slice(&b[144..200]);
        c.extend_from_slice(&[0; 4]);
        reseal(&mut c);
        assert_bad(&c, what);
    }
}
