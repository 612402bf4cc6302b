//! The input format of the `api_calls` target, shared with the seed generator
//! (`fuzz/examples/seeds.rs`): a sequence of `Op`s, each preceded by a byte whose low
//! bit says whether another op follows (the `arbitrary` crate's format for a `Vec`
//! taking the rest of the input). Decoding stops after `MAX_OPS` ops, so the bytes
//! past them cost nothing.
//!
//! Sizes are bytes that the target reduces (`d % MAX_D`, ...): whatever the fuzzer
//! writes, a model stays small, so every input is cheap.

use arbitrary::{Arbitrary, Unstructured};

/// Ops run per input at most; the rest of an input is ignored.
pub const MAX_OPS: usize = 16;
/// `d` is `Create::d % MAX_D` (0, invalid, to 19: two vectors of 8 and a remainder).
pub const MAX_D: u8 = 20;
/// The first hidden width is `h % MAX_H` (0, invalid, to 35: up to three panels of
/// 16, and past the 32 units of the one-row "course" kernels).
pub const MAX_H: u8 = 36;
/// Hidden widths past this many are dropped; 9 and 10 layers are invalid (k <= 8).
pub const MAX_LAYERS: usize = 10;
/// Hidden widths past the first `WIDE_LAYERS` are `h % NARROW_H` (to 8), so that
/// deep models stay small.
pub const WIDE_LAYERS: usize = 1;
/// See `WIDE_LAYERS`.
pub const NARROW_H: u8 = 9;
/// Wide first layers take fewer inputs: when `d * h_1` would pass `MAX_W1`, `d` is
/// reduced further (`d % (MAX_W1 / h_1 + 1)`), so d = 19 comes with h_1 <= 13 and
/// h_1 = 35 with d <= 7.
pub const MAX_W1: usize = 256;
/// `m` is `m % MAX_M` (0, invalid, to 5).
pub const MAX_M: u8 = 6;
/// `max_batch` is `max_batch % MAX_BATCH` (0, invalid, to 9: a block of 8 rows and
/// a remainder).
pub const MAX_BATCH: u8 = 10;
/// Kernel sets: the C value `isa % ISA_VALUES` (0 auto .. 4 NEON; 5 is out of range).
pub const ISA_VALUES: u8 = 6;
/// Losses: the C value `loss % LOSS_VALUES` (0 MSE, 1 cross-entropy; 2 is out of range).
pub const LOSS_VALUES: u8 = 3;
/// Optimizer kinds: the C value `kind % KIND_VALUES` (0 SGD, 1 Adam, 2 AdamW; 3 and
/// 4 are unknown, 5 stands for u32::MAX).
pub const KIND_VALUES: u8 = 6;
/// Nesterov: the C value `nesterov % NESTEROV_VALUES` (0, 1; 2 and 3 stands for
/// u32::MAX are refused).
pub const NESTEROV_VALUES: u8 = 4;

/// Numbers a fuzzer rarely guesses from bits, for `Num::Pick`.
pub const PICKS: [f32; 24] = [
    0.0,
    1e-3,
    0.01,
    0.1,
    0.5,
    0.9,
    0.999,
    1.0,
    2.0,
    1e-8,
    100.0,
    1e15,
    1e30,
    f32::MAX,
    -0.1,
    -0.0,
    -1.0,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e-40,
    f32::MIN_POSITIVE,
    0.99,
    1e35,
];

/// A learning rate, hyperparameter or clipping norm.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// `PICKS[i % PICKS.len()]`.
    Pick(u8),
    /// Any bit pattern.
    Bits(u32),
}

impl Num {
    pub fn get(self) -> f32 {
        match self {
            Num::Pick(i) => PICKS[i as usize % PICKS.len()],
            Num::Bits(b) => f32::from_bits(b),
        }
    }
}

/// Where the values of a batch come from.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum Values {
    /// Small, smooth values.
    Good(u8),
    /// Arbitrary bit patterns (NaN, infinities, subnormals, huge values).
    Bits(u32),
    /// One special value everywhere (`SPECIAL[i % SPECIAL.len()]`).
    Special(u8),
    /// Good values with one special value at a position.
    OneBad(u8, u16),
}

pub const SPECIAL: [f32; 11] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    0.0,
    -0.0,
    1e-40,
    1e15,
];

/// Where `Op::Create` puts the models.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub enum Memory {
    /// `Model::new`, `flowmlp_create`.
    Boxed,
    /// `Model::new_in`, `flowmlp_create_in` on exactly the arena size, 64-byte aligned.
    Caller,
    /// As `Caller`, `1 + o % 63` bytes past the alignment (refused).
    Misaligned(u8),
    /// As `Caller`, `1 + s % size` bytes short (refused; `s % size == size - 1` is 0
    /// bytes).
    Short(u16),
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Op {
    /// A new pair of models (Rust and C); `in_place`: in caller memory.
    Create {
        d: u8,
        hidden: Vec<u8>,
        m: u8,
        max_batch: u8,
        seed: u64,
        isa: u8,
        memory: Memory,
        loss: u8,
    },
    Forward {
        rows: u8,
        /// Odd: one value more than whole rows (Rust only; C cannot say it).
        extra: u8,
        x: Values,
        want_y: bool,
        /// Predictions this many values longer than the rows need (Rust only when
        /// not 0).
        y_delta: i8,
    },
    Backward {
        /// Targets this many values longer than the kept rows need (Rust only when
        /// not 0).
        len_delta: i8,
        y: Values,
        want_loss: bool,
    },
    Step {
        lr: Num,
    },
    TrainStep {
        rows: u8,
        x: Values,
        /// Inputs and targets this many values longer than `rows` rows (Rust only,
        /// unless the lengths make whole rows that agree).
        x_delta: i8,
        y: Values,
        y_delta: i8,
        lr: Num,
        want_loss: bool,
    },
    GetParams {
        len_delta: i8,
    },
    GetGrads {
        len_delta: i8,
    },
    SetParams {
        values: Values,
        len_delta: i8,
        /// Small changes to the current parameters instead of `values` alone.
        perturb: bool,
    },
    Save {
        cap_delta: i16,
    },
    /// Load the last saved checkpoint, maybe with a bit flipped or cut short.
    Load {
        max_batch: u8,
        isa: u8,
        flip: Option<u16>,
        cut: Option<u16>,
    },
    /// A C call with a NULL pointer where one is required.
    Null {
        which: u8,
    },
    /// `set_optimizer` and `set_grad_clip` (Rust), `flowmlp_set_optimizer` (C).
    SetOptimizer {
        kind: u8,
        nesterov: u8,
        momentum: Num,
        beta1: Num,
        beta2: Num,
        eps: Num,
        weight_decay: Num,
        clip: Num,
    },
    /// `predict` (Rust), `flowmlp_predict` (C): `rows % MAX_PREDICT_ROWS` rows (any
    /// number, not bounded by max_batch), a workspace of
    /// `predict_workspace_size(ws_rows % MAX_PREDICT_ROWS) + ws_delta` bytes.
    Predict {
        rows: u8,
        x: Values,
        ws_rows: u8,
        ws_delta: i8,
    },
}

/// Rows of a `Predict` (and of the workspace it is given): below this.
pub const MAX_PREDICT_ROWS: u8 = 20;

/// The shape `(d, [h_1, ..], m)` that `Op::Create`'s bytes stand for.
pub fn shape(d: u8, hidden: &[u8], m: u8) -> (usize, Vec<usize>, usize) {
    let hidden: Vec<usize> = hidden
        .iter()
        .take(MAX_LAYERS)
        .enumerate()
        .map(|(l, &h)| (h % if l < WIDE_LAYERS { MAX_H } else { NARROW_H }) as usize)
        .collect();
    let mut d = (d % MAX_D) as usize;
    if let Some(&h1) = hidden.first() {
        if d * h1 > MAX_W1 {
            d %= MAX_W1 / h1 + 1;
        }
    }
    (d, hidden, (m % MAX_M) as usize)
}

/// The ops of an input: at most `MAX_OPS`, in the format of `Vec<Op>`'s
/// `arbitrary_take_rest` (a continuation byte before each op).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::with_capacity(MAX_OPS);
    while ops.len() < MAX_OPS && u.arbitrary::<bool>().unwrap_or(false) {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}
