//! Writes the generated seed corpus of both fuzz targets (`fuzz/corpus/<target>/seed-*`,
//! a few hundred bytes each), from the error rows of the test suite (tests/errors.rs,
//! tests/optimizers.rs, tests/checkpoint.rs) and a few good runs:
//!
//! ```sh
//! cd fuzz && cargo run --release --example seeds            # (re)write the seeds
//! cd fuzz && cargo run --release --example seeds -- --print FILE   # an api_calls input's ops
//! ```
//!
//! `api_calls` seeds are `Op` sequences encoded in the target's input format
//! (`fuzz_targets/api_input.rs`); every one is decoded again and compared. The
//! `checkpoint_load` seeds are one control byte (see that target) and the bytes of a
//! checkpoint saved by `Model::save`, or a corrupted one; each is loaded here and must
//! give the verdict its name states.

#[path = "../fuzz_targets/api_input.rs"]
#[allow(dead_code)]
mod api_input;

use api_input::{decode, Memory, Num, Op, Values, MAX_OPS, PICKS, SPECIAL};
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};
use std::path::Path;

// ------------------------------------------------------------- api_calls encoding

/// Bytes in the format `arbitrary` reads (little-endian integers, a `u32` choosing an
/// enum variant as `(x * variants) >> 32`, a continuation byte before each element
/// of a `Vec`).
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.0.push(v as u8);
    }
    fn le(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn variant(&mut self, i: u64, n: u64) {
        // The smallest x with (x * n) >> 32 == i.
        let x = (i << 32).div_ceil(n);
        assert_eq!((x * n) >> 32, i);
        self.le(&(x as u32).to_le_bytes());
    }
    fn num(&mut self, v: Num) {
        match v {
            Num::Pick(i) => {
                self.variant(0, 2);
                self.u8(i);
            }
            Num::Bits(b) => {
                self.variant(1, 2);
                self.le(&b.to_le_bytes());
            }
        }
    }
    fn values(&mut self, v: Values) {
        match v {
            Values::Good(s) => {
                self.variant(0, 4);
                self.u8(s);
            }
            Values::Bits(b) => {
                self.variant(1, 4);
                self.le(&b.to_le_bytes());
            }
            Values::Special(i) => {
                self.variant(2, 4);
                self.u8(i);
            }
            Values::OneBad(i, at) => {
                self.variant(3, 4);
                self.u8(i);
                self.le(&at.to_le_bytes());
            }
        }
    }
    fn memory(&mut self, m: Memory) {
        match m {
            Memory::Boxed => self.variant(0, 4),
            Memory::Caller => self.variant(1, 4),
            Memory::Misaligned(o) => {
                self.variant(2, 4);
                self.u8(o);
            }
            Memory::Short(s) => {
                self.variant(3, 4);
                self.le(&s.to_le_bytes());
            }
        }
    }
    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            f(self, v);
        }
    }
    fn op(&mut self, op: &Op) {
        const N: u64 = 13; // the variants of Op
        match op.clone() {
            Op::Create {
                d,
                hidden,
                m,
                max_batch,
                seed,
                isa,
                memory,
                loss,
            } => {
                self.variant(0, N);
                self.u8(d);
                for h in hidden {
                    self.bool(true);
                    self.u8(h);
                }
                self.bool(false);
                self.u8(m);
                self.u8(max_batch);
                self.le(&seed.to_le_bytes());
                self.u8(isa);
                self.memory(memory);
                self.u8(loss);
            }
            Op::Forward {
                rows,
                extra,
                x,
                want_y,
                y_delta,
            } => {
                self.variant(1, N);
                self.u8(rows);
                self.u8(extra);
                self.values(x);
                self.bool(want_y);
                self.u8(y_delta as u8);
            }
            Op::Backward {
                len_delta,
                y,
                want_loss,
            } => {
                self.variant(2, N);
                self.u8(len_delta as u8);
                self.values(y);
                self.bool(want_loss);
            }
            Op::Step { lr } => {
                self.variant(3, N);
                self.num(lr);
            }
            Op::TrainStep {
                rows,
                x,
                x_delta,
                y,
                y_delta,
                lr,
                want_loss,
            } => {
                self.variant(4, N);
                self.u8(rows);
                self.values(x);
                self.u8(x_delta as u8);
                self.values(y);
                self.u8(y_delta as u8);
                self.num(lr);
                self.bool(want_loss);
            }
            Op::GetParams { len_delta } => {
                self.variant(5, N);
                self.u8(len_delta as u8);
            }
            Op::GetGrads { len_delta } => {
                self.variant(6, N);
                self.u8(len_delta as u8);
            }
            Op::SetParams {
                values,
                len_delta,
                perturb,
            } => {
                self.variant(7, N);
                self.values(values);
                self.u8(len_delta as u8);
                self.bool(perturb);
            }
            Op::Save { cap_delta } => {
                self.variant(8, N);
                self.le(&cap_delta.to_le_bytes());
            }
            Op::Load {
                max_batch,
                isa,
                flip,
                cut,
            } => {
                self.variant(9, N);
                self.u8(max_batch);
                self.u8(isa);
                self.opt(flip, |e, v| e.le(&v.to_le_bytes()));
                self.opt(cut, |e, v| e.le(&v.to_le_bytes()));
            }
            Op::Null { which } => {
                self.variant(10, N);
                self.u8(which);
            }
            Op::SetOptimizer {
                kind,
                nesterov,
                momentum,
                beta1,
                beta2,
                eps,
                weight_decay,
                clip,
            } => {
                self.variant(11, N);
                self.u8(kind);
                self.u8(nesterov);
                for v in [momentum, beta1, beta2, eps, weight_decay, clip] {
                    self.num(v);
                }
            }
            Op::Predict {
                rows,
                x,
                ws_rows,
                ws_delta,
            } => {
                self.variant(12, N);
                self.u8(rows);
                self.values(x);
                self.u8(ws_rows);
                self.u8(ws_delta as u8);
            }
        }
    }
}

fn encode(ops: &[Op]) -> Vec<u8> {
    assert!(
        ops.len() <= MAX_OPS,
        "{} ops: the target runs {MAX_OPS}",
        ops.len()
    );
    let mut e = Enc::default();
    for op in ops {
        e.bool(true);
        e.op(op);
    }
    let bytes = e.0;
    assert_eq!(
        decode(&bytes),
        ops,
        "the encoding does not decode to the ops"
    );
    bytes
}

// ------------------------------------------------------------- api_calls seeds

/// A number as the input format says it: one of `PICKS` if it is one, else its bits.
fn num(v: f32) -> Num {
    match PICKS.iter().position(|p| p.to_bits() == v.to_bits()) {
        Some(i) => Num::Pick(i as u8),
        None => Num::Bits(v.to_bits()),
    }
}

/// Index of a value in `SPECIAL`.
fn special(v: f32) -> u8 {
    SPECIAL
        .iter()
        .position(|p| p.to_bits() == v.to_bits())
        .expect("a SPECIAL value") as u8
}

/// The tests' model: 3 -> 8 -> 5 -> 2, max_batch 4, seed 5 (tests/errors.rs `cfg`).
fn base() -> Op {
    create(3, &[8, 5], 2, 4, 0, Memory::Boxed, 0)
}
const D: i32 = 3;
const M: i32 = 2;
const MB: u8 = 4;

fn base_config() -> Config {
    Config::new(3, &[8, 5], 2).max_batch(4).seed(5)
}

fn create(d: u8, hidden: &[u8], m: u8, max_batch: u8, isa: u8, memory: Memory, loss: u8) -> Op {
    Op::Create {
        d,
        hidden: hidden.to_vec(),
        m,
        max_batch,
        seed: 5,
        isa,
        memory,
        loss,
    }
}

fn fwd(rows: u8) -> Op {
    Op::Forward {
        rows,
        extra: 0,
        x: Values::Good(1),
        want_y: true,
        y_delta: 0,
    }
}

fn fwd_x(rows: u8, x: Values) -> Op {
    Op::Forward {
        rows,
        extra: 0,
        x,
        want_y: false,
        y_delta: 0,
    }
}

fn bwd(len_delta: i8, y: Values) -> Op {
    Op::Backward {
        len_delta,
        y,
        want_loss: true,
    }
}

fn train(rows: u8, x: Values, y: Values, lr: f32) -> Op {
    Op::TrainStep {
        rows,
        x,
        x_delta: 0,
        y,
        y_delta: 0,
        lr: num(lr),
        want_loss: true,
    }
}

fn train_len(rows: u8, x_delta: i8, y_delta: i8) -> Op {
    Op::TrainStep {
        rows,
        x: Values::Good(2),
        x_delta,
        y: Values::Good(3),
        y_delta,
        lr: num(0.1),
        want_loss: false,
    }
}

fn step(lr: f32) -> Op {
    Op::Step { lr: num(lr) }
}

fn save(cap_delta: i16) -> Op {
    Op::Save { cap_delta }
}

fn load(max_batch: u8, isa: u8, flip: Option<u16>, cut: Option<u16>) -> Op {
    Op::Load {
        max_batch,
        isa,
        flip,
        cut,
    }
}

#[allow(clippy::too_many_arguments)]
fn optimizer(
    kind: u8,
    nesterov: u8,
    mu: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    clip: f32,
) -> Op {
    Op::SetOptimizer {
        kind,
        nesterov,
        momentum: num(mu),
        beta1: num(b1),
        beta2: num(b2),
        eps: num(eps),
        weight_decay: num(wd),
        clip: num(clip),
    }
}

fn sgd(mu: f32, nesterov: u8, wd: f32) -> Op {
    optimizer(0, nesterov, mu, 0.0, 0.0, 0.0, wd, 0.0)
}

fn adam(kind: u8, b1: f32, b2: f32, eps: f32, wd: f32) -> Op {
    optimizer(kind, 0, 0.0, b1, b2, eps, wd, 0.0)
}

const GOOD: Values = Values::Good(7);

fn api_seeds() -> Vec<(String, Vec<Op>)> {
    let mut s: Vec<(String, Vec<Op>)> = Vec::new();
    let mut add = |name: &str, ops: Vec<Op>| s.push((name.to_string(), ops));
    let bad = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    let (np, save_size, arena) = {
        let m = Model::new(&base_config()).unwrap();
        (
            m.param_count() as i32,
            m.save_size() as i32,
            m.arena_size() as i32,
        )
    };

    // Configs (tests/errors.rs rust_config_rows, c_config_rows), each followed by a
    // call that needs a model.
    let f = fwd(1);
    let configs: [(&str, Op); 17] = [
        ("d0", create(0, &[8, 5], 2, MB, 0, Memory::Boxed, 0)),
        ("m0", create(3, &[8, 5], 0, MB, 0, Memory::Boxed, 0)),
        ("h1-0", create(3, &[0, 5], 2, MB, 0, Memory::Boxed, 0)),
        ("hk-0", create(3, &[8, 0], 2, MB, 0, Memory::Boxed, 0)),
        (
            "h8-0-of-8",
            create(3, &[2, 2, 2, 2, 2, 2, 2, 0], 2, MB, 0, Memory::Boxed, 0),
        ),
        ("max-batch-0", create(3, &[8, 5], 2, 0, 0, Memory::Boxed, 0)),
        ("k0", create(3, &[], 2, MB, 0, Memory::Boxed, 0)),
        ("k9", create(3, &[2; 9], 2, MB, 0, Memory::Boxed, 0)),
        ("k10", create(3, &[2; 10], 2, MB, 0, Memory::Boxed, 0)),
        ("all-dims-0", create(0, &[0], 0, 0, 0, Memory::Boxed, 0)),
        ("isa-5", create(3, &[8, 5], 2, MB, 5, Memory::Boxed, 0)),
        ("isa-avx512", create(3, &[8, 5], 2, MB, 3, Memory::Boxed, 0)),
        ("isa-neon", create(3, &[8, 5], 2, MB, 4, Memory::Boxed, 0)),
        (
            "isa-neon-and-k0",
            create(3, &[], 2, MB, 4, Memory::Boxed, 0),
        ),
        ("loss-2", create(3, &[8, 5], 2, MB, 0, Memory::Boxed, 2)),
        (
            "cross-entropy-m1",
            create(3, &[8, 5], 1, MB, 0, Memory::Boxed, 1),
        ),
        (
            "caller-memory-max-batch-0",
            create(3, &[8, 5], 2, 0, 0, Memory::Caller, 0),
        ),
    ];
    for (name, c) in configs {
        add(&format!("config-{name}"), vec![c, f.clone()]);
    }
    // Caller memory (rust_caller_memory_rows, c_caller_memory_rows).
    let short_to_0 = (arena - 1) as u16; // 1 + s % size = size
    for (name, mem) in [
        ("misaligned-1", Memory::Misaligned(0)),
        ("misaligned-8", Memory::Misaligned(7)),
        ("misaligned-32", Memory::Misaligned(31)),
        ("misaligned-63", Memory::Misaligned(62)),
        ("size-minus-1", Memory::Short(0)),
        ("size-0", Memory::Short(short_to_0)),
    ] {
        add(
            &format!("create-in-{name}"),
            vec![create(3, &[8, 5], 2, MB, 0, mem, 0), f.clone()],
        );
    }
    add(
        "create-in-isa-neon-misaligned",
        vec![create(3, &[8, 5], 2, MB, 4, Memory::Misaligned(0), 0)],
    );
    add(
        "create-in-good",
        vec![
            create(3, &[8, 5], 2, MB, 1, Memory::Caller, 0),
            train(4, GOOD, GOOD, 0.1),
            save(0),
            load(MB, 2, None, None),
            train(4, GOOD, GOOD, 0.1),
        ],
    );

    // A model's error rows (rust_model_rows, c_model_rows).
    let b = base();
    add("backward-before-forward", vec![b.clone(), bwd(0, GOOD)]);
    add(
        "forward-shapes",
        vec![
            b.clone(),
            fwd(0),
            Op::Forward {
                rows: 2,
                extra: 1,
                x: GOOD,
                want_y: true,
                y_delta: 0,
            },
            fwd(MB + 1),
            fwd(MB),
        ],
    );
    add(
        "forward-y-out-lengths",
        [-1i8, 1, -(2 * M as i8)]
            .into_iter()
            .map(|y_delta| Op::Forward {
                rows: 2,
                extra: 0,
                x: GOOD,
                want_y: true,
                y_delta,
            })
            .fold(vec![b.clone()], |mut v, op| {
                v.push(op);
                v
            }),
    );
    add(
        "train-step-shapes",
        vec![
            b.clone(),
            train_len(0, 0, 0),
            train_len(2, -1, 0),
            train_len(2, 0, -(M as i8)),
            train_len(MB + 1, 0, 0),
            train_len(2, 0, -1),
            train_len(2, 0, 1),
            train_len(2, 0, -2 * M as i8),
            train_len(2, D as i8, M as i8),
        ],
    );
    for (i, &v) in bad.iter().enumerate() {
        let mut ops = vec![b.clone()];
        for at in [0, (MB as i32 * D - 1) as u16] {
            let x = Values::OneBad(special(v), at);
            ops.push(fwd_x(MB, x));
            ops.push(train(MB, x, GOOD, 0.1));
        }
        ops.push(bwd(0, GOOD)); // after only refused forwards
        add(&format!("non-finite-x-{i}"), ops);
    }
    add(
        "param-lengths",
        [0, np - 1, np + 1]
            .into_iter()
            .flat_map(|l| {
                let delta = (l - np) as i8;
                [
                    Op::GetParams { len_delta: delta },
                    Op::GetGrads { len_delta: delta },
                    Op::SetParams {
                        values: Values::Special(special(0.0)),
                        len_delta: delta,
                        perturb: false,
                    },
                ]
            })
            .fold(vec![b.clone()], |mut v, op| {
                v.push(op);
                v
            }),
    );
    for (i, &v) in bad.iter().enumerate() {
        let mut ops = vec![b.clone()];
        for at in [0, np / 2, np - 1] {
            ops.push(Op::SetParams {
                values: Values::OneBad(special(v), at as u16),
                len_delta: 0,
                perturb: true,
            });
        }
        add(&format!("set-params-non-finite-{i}"), ops);
    }
    add(
        "save-capacity",
        vec![
            b.clone(),
            save(-save_size as i16),
            save(1 - save_size as i16),
            save(-1),
            save(0),
            save(100),
        ],
    );
    add(
        "backward-y-lengths",
        vec![
            b.clone(),
            fwd(MB),
            bwd(-1, GOOD),
            bwd(1, GOOD),
            bwd(-(MB as i8) * M as i8, GOOD),
            bwd(0, GOOD),
        ],
    );
    for (i, &v) in bad.iter().enumerate() {
        let mut ops = vec![b.clone(), fwd(MB)];
        for at in [0, (MB as i32 * M - 1) as u16] {
            let y = Values::OneBad(special(v), at);
            ops.push(bwd(0, y));
            ops.push(train(MB, GOOD, y, 0.1));
        }
        add(&format!("non-finite-y-{i}"), ops);
    }
    let huge = Values::Special(special(1e30));
    add(
        "loss-overflows",
        vec![
            b.clone(),
            fwd(MB),
            bwd(0, huge),
            train(MB, GOOD, huge, 0.1),
            bwd(0, GOOD),
        ],
    );
    let bad_lr = [
        -1.0,
        -f32::MIN_POSITIVE,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -f32::MAX,
    ];
    let mut ops = vec![b.clone(), fwd(MB), bwd(0, GOOD)];
    for lr in bad_lr {
        ops.push(step(lr));
        ops.push(train(MB, GOOD, GOOD, lr));
    }
    ops.push(bwd(0, GOOD)); // every refusal kept the forward
    add("bad-learning-rates", ops);
    let big = Values::Special(special(1e15));
    add(
        "update-overflows",
        vec![
            b.clone(),
            fwd(MB),
            bwd(0, big),
            step(1e30),
            step(f32::MAX),
            train(MB, GOOD, big, 1e30),
            train(MB, GOOD, big, f32::MAX),
            step(1e35),
        ],
    );
    add(
        "no-forward-after-set-params",
        vec![
            b.clone(),
            fwd(MB),
            Op::SetParams {
                values: Values::Special(special(0.0)), // the same values
                len_delta: 0,
                perturb: true,
            },
            bwd(0, GOOD),
        ],
    );
    add(
        "no-forward-after-step",
        vec![b.clone(), fwd(MB), bwd(0, GOOD), step(0.0), bwd(0, GOOD)],
    );
    add(
        "no-forward-after-train-step",
        vec![
            b.clone(),
            fwd(MB),
            train(MB, GOOD, GOOD, 0.01),
            bwd(0, GOOD),
        ],
    );
    // NULL pointers: every case of Op::Null.
    for part in 0..3u8 {
        let mut ops = vec![b.clone(), fwd(MB)];
        ops.extend((part * 11..(part * 11 + 11).min(32)).map(|which| Op::Null { which }));
        add(&format!("null-pointers-{part}"), ops);
    }

    // Optimizers (tests/optimizers.rs set_optimizer_refuses_bad_hyperparameters...).
    let mut bad_opts = vec![
        optimizer(3, 0, 0.0, 0.9, 0.999, 1e-8, 0.0, 0.0), // kind 3
        optimizer(4, 0, 0.0, 0.9, 0.999, 1e-8, 0.0, 0.0), // kind 4
        optimizer(5, 0, 0.0, 0.9, 0.999, 1e-8, 0.0, 0.0), // kind u32::MAX
        sgd(0.9, 2, 0.0),                                 // nesterov 2
        sgd(0.9, 3, 0.0),                                 // nesterov u32::MAX
        sgd(-0.1, 0, 0.0),
        sgd(1.0, 0, 0.0),
        sgd(f32::NAN, 0, 0.0),
        sgd(f32::INFINITY, 0, 0.0),
        sgd(0.0, 1, 0.0), // nesterov without momentum
        sgd(0.9, 0, -1e-3),
        sgd(0.9, 0, f32::NAN),
        sgd(0.0, 0, f32::INFINITY),
    ];
    bad_opts.extend([
        adam(1, 1.0, 0.999, 1e-8, 0.0),
        adam(1, -0.1, 0.999, 1e-8, 0.0),
        adam(1, f32::NAN, 0.999, 1e-8, 0.0),
        adam(1, 0.9, 1.0, 1e-8, 0.0),
        adam(1, 0.9, 1.5, 1e-8, 0.0),
        adam(1, 0.9, 0.999, -1e-8, 0.0),
        adam(1, 0.9, 0.999, 0.0, 0.0),
        adam(1, 0.9, 0.999, f32::NAN, 0.0),
        adam(1, 0.9, 0.999, f32::INFINITY, 0.0),
        adam(1, 0.9, 0.999, 1e-8, -0.01),
        adam(2, 1.0, 0.999, 1e-8, 0.01),
        adam(2, 0.9, -0.5, 1e-8, 0.01),
        adam(2, 0.9, 0.999, -1e-8, 0.01),
        adam(2, 0.9, 0.999, 1e-8, f32::NAN),
    ]);
    for clip in [-1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        bad_opts.push(optimizer(1, 0, 0.0, 0.9, 0.999, 1e-8, 0.0, clip));
    }
    // After three Adam steps, so that a refusal has moments and a step count to keep.
    let trained = vec![
        b.clone(),
        adam(1, 0.85, 0.99, 1e-6, 0.01),
        train(MB, GOOD, GOOD, 0.5),
        train(MB, Values::Good(8), Values::Good(9), 0.5),
        train(MB, Values::Good(10), Values::Good(11), 0.5),
    ];
    for (i, chunk) in bad_opts.chunks(MAX_OPS - trained.len() - 1).enumerate() {
        let mut ops = trained.clone();
        ops.extend_from_slice(chunk);
        ops.push(train(MB, GOOD, GOOD, 0.5)); // the same future as without them
        add(&format!("optimizer-refused-{i}"), ops);
    }
    // Good optimizers, trained, saved and loaded (the state goes into the checkpoint).
    for (name, opt) in [
        ("sgd-momentum", sgd(0.9, 0, 0.0)),
        ("sgd-nesterov-decay", sgd(0.7, 1, 0.1)),
        ("adam", adam(1, 0.9, 0.999, 1e-8, 0.0)),
        (
            "adamw-clip",
            optimizer(2, 0, 0.0, 0.9, 0.999, 1e-8, 0.01, 0.5),
        ),
        (
            "adam-ignores-nesterov",
            optimizer(1, 3, 0.0, 0.9, 0.999, 1e-8, 0.0, 0.0),
        ),
    ] {
        add(
            &format!("optimizer-{name}"),
            vec![
                b.clone(),
                opt,
                train(MB, GOOD, GOOD, 0.1),
                fwd(2),
                bwd(0, GOOD),
                step(0.1),
                save(0),
                load(MB, 0, None, None),
                train(MB, GOOD, GOOD, 0.1),
                Op::GetGrads { len_delta: 0 },
            ],
        );
    }

    // Checkpoints (c_model_rows' load rows, tests/checkpoint.rs): corrupted bits in
    // the magic, the version, the header, the parameters and the CRC, cuts, bad
    // max_batch and isa values.
    let ck = vec![
        b.clone(),
        adam(1, 0.9, 0.999, 1e-8, 0.0),
        train(MB, GOOD, GOOD, 0.1),
        save(0),
    ];
    let bits = 8 * save_size as u16;
    let with = |more: Vec<Op>| {
        let mut v = ck.clone();
        v.extend(more);
        v
    };
    add(
        "load-bit-flips",
        with(
            [
                0u16,
                3 * 8,
                8 * 8,
                8 * 8 + 1,
                12 * 8,
                16 * 8,
                108 * 8,
                112 * 8,
                130 * 8,
                bits - 1,
                bits - 30,
            ]
            .into_iter()
            .map(|at| load(MB, 0, Some(at), None))
            .collect(),
        ),
    );
    add(
        "load-cuts",
        with(
            [
                0u16,
                1,
                8,
                111,
                112,
                128,
                save_size as u16 / 2,
                save_size as u16 - 4,
                save_size as u16 - 1,
            ]
            .into_iter()
            .map(|at| load(MB, 0, None, Some(at)))
            .collect(),
        ),
    );
    add(
        "load-arguments",
        with(vec![
            load(0, 0, None, None),
            load(MB, 5, None, None),
            load(MB, 3, None, None),
            load(MB, 4, None, None),
            load(0, 5, None, Some(0)),
            load(MB, 5, None, Some(4)),
            load(9, 1, None, None),
            fwd(9),
            train(9, GOOD, GOOD, 0.1),
        ]),
    );
    add(
        "load-before-save",
        vec![
            b.clone(),
            load(MB, 0, None, None),
            load(MB, 0, Some(3), None),
        ],
    );

    // Predict (any number of rows, a workspace per call).
    add(
        "predict",
        vec![
            b.clone(),
            Op::Predict {
                rows: 0,
                x: GOOD,
                ws_rows: 1,
                ws_delta: 0,
            },
            Op::Predict {
                rows: 19,
                x: GOOD,
                ws_rows: 19,
                ws_delta: 0,
            },
            Op::Predict {
                rows: 19,
                x: GOOD,
                ws_rows: 3,
                ws_delta: 0,
            },
            Op::Predict {
                rows: 5,
                x: GOOD,
                ws_rows: 0,
                ws_delta: -1,
            },
            Op::Predict {
                rows: 1,
                x: GOOD,
                ws_rows: 0,
                ws_delta: -128,
            },
            Op::Predict {
                rows: 7,
                x: Values::OneBad(special(f32::NAN), 20),
                ws_rows: 7,
                ws_delta: 0,
            },
        ],
    );

    // Good runs on other shapes: the one-row "course" kernels (h <= 32, m = 1), past
    // them (h = 33), cross-entropy, deep and wide, every kernel set here.
    let run = |c: Op, rows: u8| {
        vec![
            c,
            train(rows, GOOD, GOOD, 0.05),
            train(1, Values::Good(3), Values::Good(4), 0.05),
            fwd(rows),
            bwd(0, GOOD),
            Op::GetGrads { len_delta: 0 },
            step(0.05),
            fwd(1),
            Op::Predict {
                rows: 13,
                x: GOOD,
                ws_rows: 4,
                ws_delta: 0,
            },
            save(0),
            load(rows, 1, None, None),
            train(rows, GOOD, GOOD, 0.05),
        ]
    };
    for (name, c, rows) in [
        (
            "course-10-32-1",
            create(10, &[32], 1, 1, 0, Memory::Boxed, 0),
            1,
        ),
        (
            "course-2-16-1-scalar",
            create(2, &[16], 1, 4, 1, Memory::Boxed, 0),
            4,
        ),
        (
            "wide-3-33-1",
            create(3, &[33], 1, 9, 0, Memory::Caller, 0),
            9,
        ),
        (
            "cross-entropy-4-16-3",
            create(4, &[16], 3, 8, 2, Memory::Boxed, 1),
            8,
        ),
        (
            "deep-5-8x8-2",
            create(5, &[35, 8, 8, 8, 8, 8, 8, 8], 2, 9, 0, Memory::Boxed, 0),
            9,
        ),
        (
            "wide-19-13-5",
            create(19, &[13], 5, 9, 0, Memory::Boxed, 0),
            9,
        ),
    ] {
        add(&format!("run-{name}"), run(c, rows));
    }
    s
}

// ------------------------------------------------------------- checkpoint_load seeds

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

fn reseal(b: &mut [u8]) {
    let n = b.len() - 4;
    let c = crc32(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
}

/// A checkpoint of `config` after `steps` train steps with `opt`.
fn checkpoint(config: Config, opt: Optimizer, clip: f32, steps: usize) -> Vec<u8> {
    let mut m = Model::new(&config).unwrap();
    m.set_optimizer(opt).unwrap();
    m.set_grad_clip(clip).unwrap();
    let (d, o) = (config.inputs, config.outputs);
    for s in 0..steps {
        let x: Vec<f32> = (0..d).map(|i| ((i + s) as f32 * 0.37).sin()).collect();
        let mut y: Vec<f32> = vec![0.0; o];
        y[s % o] = 1.0;
        m.train_step(&x, &y, 0.05).unwrap();
    }
    let mut b = vec![0u8; m.save_size()];
    m.save(&mut b).unwrap();
    b
}

/// The verdict `Model::load` gives a checkpoint_load input (control byte first).
fn verdict(input: &[u8]) -> Result<(), Error> {
    let (control, rest) = input.split_first().unwrap();
    let mut b = rest.to_vec();
    if control & 1 != 0 && b.len() >= 4 {
        reseal(&mut b);
    }
    let isa = [Isa::Auto, Isa::Scalar, Isa::Avx2, Isa::Avx512][(control >> 1) as usize & 3];
    Model::load(&b, 1 + ((control >> 3) & 7) as usize, isa).map(drop)
}

fn checkpoint_seeds() -> Vec<(String, Vec<u8>, Result<(), Error>)> {
    let mut s = Vec::new();
    let mut add = |name: &str, control: u8, bytes: &[u8], want: Result<(), Error>| {
        let mut v = vec![control];
        v.extend_from_slice(bytes);
        s.push((name.to_string(), v, want));
    };
    let ok = Ok(());
    let bad = Err(Error::BadCheckpoint);
    // Valid checkpoints of a few shapes and optimizers.
    let adam = Optimizer::ADAM;
    let base = checkpoint(base_config(), adam, 0.0, 3);
    add("gen-3-8-5-2-adam", 0, &base, ok);
    add(
        "gen-10-32-1-sgd",
        1 << 3,
        &checkpoint(Config::new(10, &[32], 1), Optimizer::SGD, 0.0, 2),
        ok,
    );
    add(
        "gen-2-4-4-4-3-momentum-clip",
        2 | (3 << 3),
        &checkpoint(
            Config::new(2, &[4, 4, 4], 3),
            Optimizer::momentum(0.9, true),
            1.0,
            2,
        ),
        ok,
    );
    let avx2 = if Isa::Avx2.is_supported() {
        ok
    } else {
        Err(Error::UnsupportedIsa)
    };
    add(
        "gen-4-6-3-ce-adamw-avx2",
        4,
        &checkpoint(
            Config::new(4, &[6], 3).loss(Loss::CrossEntropy),
            Optimizer::ADAMW,
            0.0,
            3,
        ),
        avx2,
    );
    // Corrupt variants of `base` (3 -> 8 -> 5 -> 2 with Adam: 89 parameters).
    let n = base.len();
    let np = 89;
    let opt_at = 112 + 16 + 4 * np + 16; // the OPTIMIZER payload
    let corrupt = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    add("gen-truncated-by-1", 0, &base[..n - 1], bad);
    add("gen-truncated-to-header", 0, &base[..112], bad);
    add("gen-truncated-half", 1, &base[..n / 2], bad);
    add("gen-empty", 0, &[], bad);
    add("gen-bad-crc", 0, &corrupt(&|b| b[200] ^= 4), bad);
    add(
        "gen-bad-crc-in-crc",
        0,
        &corrupt(&|b| b[n - 1] ^= 0x80),
        bad,
    );
    add("gen-bad-magic", 1, &corrupt(&|b| b[1] = b'f'), bad);
    add("gen-bad-magic-high-bit", 1, &corrupt(&|b| b[0] = 0x09), bad);
    for (name, v) in [("0", 0u32), ("3", 3), ("max", u32::MAX)] {
        add(
            &format!("gen-bad-version-{name}"),
            1,
            &corrupt(&|b| b[8..12].copy_from_slice(&v.to_le_bytes())),
            bad,
        );
    }
    add(
        "gen-version-1-with-v2-body",
        1,
        &corrupt(&|b| b[8..12].copy_from_slice(&1u32.to_le_bytes())),
        bad,
    );
    for (name, k) in [("0", 0u32), ("9", 9)] {
        add(
            &format!("gen-k-{name}"),
            1,
            &corrupt(&|b| b[12..16].copy_from_slice(&k.to_le_bytes())),
            bad,
        );
    }
    add(
        "gen-width-past-k",
        1,
        &corrupt(&|b| b[48..56].copy_from_slice(&7u64.to_le_bytes())),
        bad,
    );
    add(
        "gen-d-huge",
        1,
        &corrupt(&|b| b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes())),
        bad,
    );
    add(
        "gen-loss-2",
        1,
        &corrupt(&|b| b[108..112].copy_from_slice(&2u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-sections-3",
        1,
        &corrupt(&|b| b[104..108].copy_from_slice(&3u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-params-tag",
        1,
        &corrupt(&|b| b[112..116].copy_from_slice(&9u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-params-flags",
        1,
        &corrupt(&|b| b[116..120].copy_from_slice(&1u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-param-nan",
        1,
        &corrupt(&|b| b[132..136].copy_from_slice(&f32::NAN.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-kind-3",
        1,
        &corrupt(&|b| b[opt_at..opt_at + 4].copy_from_slice(&3u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-kind-sgd-with-adam-state",
        1,
        &corrupt(&|b| b[opt_at..opt_at + 4].copy_from_slice(&0u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-nesterov-for-adam",
        1,
        &corrupt(&|b| b[opt_at + 4..opt_at + 8].copy_from_slice(&1u32.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-beta1-1",
        1,
        &corrupt(&|b| b[opt_at + 8..opt_at + 12].copy_from_slice(&1f32.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-eps-0",
        1,
        &corrupt(&|b| b[opt_at + 16..opt_at + 20].copy_from_slice(&0f32.to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-clip-negative",
        1,
        &corrupt(&|b| b[opt_at + 24..opt_at + 28].copy_from_slice(&(-1f32).to_le_bytes())),
        bad,
    );
    add(
        "gen-optimizer-reserved",
        1,
        &corrupt(&|b| b[opt_at + 28] = 1),
        bad,
    );
    add(
        "gen-optimizer-steps-2-63",
        1,
        &corrupt(&|b| b[opt_at + 32..opt_at + 40].copy_from_slice(&(1u64 << 63).to_le_bytes())),
        bad,
    );
    add(
        "gen-adam-moment-inf",
        1,
        &corrupt(&|b| b[opt_at + 40..opt_at + 44].copy_from_slice(&f32::INFINITY.to_le_bytes())),
        bad,
    );
    let second = opt_at + 40 + 4 * np;
    add(
        "gen-adam-second-moment-negative",
        1,
        &corrupt(&|b| b[second..second + 4].copy_from_slice(&(-1f32).to_le_bytes())),
        bad,
    );
    // Valid bytes, refused arguments: a kernel set this CPU may lack.
    add(
        "gen-3-8-5-2-adam-avx512-mb8",
        6 | (7 << 3),
        &base,
        if Isa::Avx512.is_supported() {
            ok
        } else {
            Err(Error::UnsupportedIsa)
        },
    );
    s
}

// ------------------------------------------------------------- main

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, file] = &args[..] {
        assert_eq!(flag, "--print", "usage: seeds [--print FILE]");
        let data = std::fs::read(file).unwrap();
        for op in decode(&data) {
            println!("{op:?}");
        }
        return;
    }
    assert!(args.is_empty(), "usage: seeds [--print FILE]");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (api, ck) = (root.join("api_calls"), root.join("checkpoint_load"));
    std::fs::create_dir_all(&api).unwrap();
    std::fs::create_dir_all(&ck).unwrap();
    let (mut count, mut bytes) = (0, 0);
    for (name, ops) in api_seeds() {
        let b = encode(&ops);
        write(&api, &name, &b);
        (count, bytes) = (count + 1, bytes + b.len());
    }
    println!("api_calls: {count} seeds, {bytes} bytes");
    let (mut count, mut bytes) = (0, 0);
    for (name, b, want) in checkpoint_seeds() {
        assert_eq!(verdict(&b), want, "checkpoint seed {name}");
        write(&ck, &name, &b);
        (count, bytes) = (count + 1, bytes + b.len());
    }
    println!("checkpoint_load: {count} seeds, {bytes} bytes");
}
