//! Checkpoints: a model's topology, loss, parameters and optimizer state as bytes, and
//! back, bit for bit.
//!
//! Format version 2. Every integer and float is little-endian on every platform;
//! there is no padding:
//!
//! ```text
//! offset  bytes  field
//!      0      8  magic: 0x89 "FLOWMLP" (the high bit catches 7-bit channels)
//!      8      4  format version (u32) = 2
//!     12      4  k, the number of hidden layers (u32, 1..=8)
//!     16      8  d, inputs (u64, >= 1)
//!     24      8  m, outputs (u64, >= 1)
//!     32     64  h_1 .. h_8 (u64 each): >= 1 for the first k, 0 past k
//!     96      8  the seed the model was created with (u64; informational)
//!    104      4  number of sections (u32) = 2
//!    108      4  loss (u32): 0 mean squared error, 1 softmax cross-entropy (needs m >= 2)
//!    112         sections, in this order, each a 16-byte header and a payload:
//!                  tag (u32), flags (u32) = 0, payload length in bytes (u64)
//!                  tag 1 PARAMS:    param_count f32 values, the flat layout of get_params
//!                  tag 2 OPTIMIZER: the optimizer, below
//!  len-4      4  CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it
//! ```
//!
//! The OPTIMIZER payload: 40 bytes of settings, then the state vectors the optimizer
//! keeps, each `param_count` f32 values in the flat parameter layout:
//!
//! ```text
//! offset  bytes  field
//!      0      4  kind (u32): 0 SGD, 1 Adam, 2 AdamW (`flowmlp_optimizer_kind`)
//!      4      4  Nesterov (u32): 0 or 1; 1 only for SGD with momentum > 0
//!      8      4  SGD: momentum          Adam, AdamW: beta1   (f32, in [0, 1))
//!     12      4  SGD: 0 (all bits)      Adam, AdamW: beta2   (f32, in [0, 1))
//!     16      4  SGD: 0 (all bits)      Adam, AdamW: eps     (f32, finite, > 0)
//!     20      4  weight decay (f32, finite, >= 0)
//!     24      4  gradient clipping norm (f32, finite, >= 0; 0 = no clipping)
//!     28      4  reserved (u32) = 0
//!     32      8  optimizer steps taken (u64, < 2^63; Adam's t)
//!     40         state vectors: none for SGD with momentum 0; SGD with momentum > 0:
//!                the momentum buffer; Adam, AdamW: the first moment, then the second
//!                (finite; second moments >= 0)
//! ```
//!
//! So a checkpoint has one of three lengths, all known from the fixed header (the
//! topology): `112 + 16 + 4 param_count + 16 + 40 + v * 4 param_count + 4` for `v` =
//! 0, 1 or 2 state vectors, and the optimizer's kind must keep exactly the `v` that
//! the length implies. Hyperparameters are checked as [`Model::set_optimizer`] checks
//! them, and fields a kind does not use must be zero, so that a checkpoint that loads
//! saves back to the same bytes.
//!
//! Loading validates everything before it allocates: the magic, the version, the
//! topology (each dimension, the parameter count with checked arithmetic) and the
//! loss, that the byte length is one the topology allows (so a header claiming
//! terabytes of parameters in a short buffer is refused before anything is
//! allocated), every section header, the CRC, that every parameter is finite, and the
//! optimizer section (a known kind, hyperparameters in range, the step count, the
//! number of state vectors, finite state). Any failure is [`Error::BadCheckpoint`].
//! The kernel set and `max_batch` are not part of a checkpoint: the loader chooses
//! them, so a checkpoint written under one kernel set loads under any other. A model
//! that is loaded and trained further continues exactly as the saved one would have
//! (bit for bit on the same kernel set; other sets round differently).
//!
//! Version 1 (written before losses and optimizers existed) still loads: it is the
//! same layout with 0 at offset 108 (then reserved), and an empty OPTIMIZER section;
//! such a model gets the mean squared error and fresh plain SGD, as it was trained.
//! A reader refuses sections, lengths and versions it does not know; this build
//! writes version 2 only.
//!
//! Without `std` (see the crate docs), [`Model::save`] and [`Model::load_in`] work on
//! byte buffers as they do with it; [`Model::load`] (the heap) and files need `std`.
//!
//! Files ([`Model::save_file`]) are written to a temporary file in the same
//! directory, synced, renamed over the target, and the directory is synced, so a
//! crash or a full disk during a save leaves the previous checkpoint intact.

#[cfg(feature = "std")]
use std::io::{Read, Write};
#[cfg(feature = "std")]
use std::path::Path;

use crate::config::{Config, Isa, Loss, MAX_HIDDEN};
use crate::{Error, Model, Optimizer};

/// The first eight bytes of every checkpoint.
pub(crate) const MAGIC: [u8; 8] = *b"\x89FLOWMLP";
/// The format version this build writes and the newest it reads.
pub(crate) const VERSION: u32 = 2;
/// The first format version, which had no loss and an empty OPTIMIZER section.
const VERSION_1: u32 = 1;
/// Bytes before the first section.
const FIXED: usize = 112;
/// Bytes of a section header.
const SECTION: usize = 16;
/// Bytes of the trailing CRC.
const CRC: usize = 4;
/// Section tags.
const TAG_PARAMS: u32 = 1;
const TAG_OPTIMIZER: u32 = 2;
/// Sections of a checkpoint.
const SECTIONS: u32 = 2;
/// Where the parameter payload starts.
const PARAMS_AT: usize = FIXED + SECTION;
/// Bytes of the OPTIMIZER payload before its state vectors (version 2).
const OPT_FIXED: usize = 40;
use crate::optim::{KIND_ADAM, KIND_ADAMW, KIND_SGD};
/// Most state vectors an optimizer keeps (Adam's two moments).
const MAX_VECTORS: usize = 2;
/// Step counts a checkpoint may hold: any run's, with room to go on counting.
const MAX_STEPS: u64 = i64::MAX as u64;

/// CRC-32 lookup table (reflected polynomial 0xEDB88320), built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 of `bytes` (IEEE 802.3; `crc32(b"123456789") == 0xCBF43926`).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(b, at))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(b: &mut [u8], at: usize, v: f32) {
    put_u32(b, at, v.to_bits());
}

/// State vectors `optimizer` keeps (and a checkpoint carries): none for SGD without
/// momentum (the buffer drops out of its update, `b = 0 * b + g`), the momentum
/// buffer, or Adam's two moments.
fn state_vectors(optimizer: &Optimizer) -> usize {
    match *optimizer {
        Optimizer::Sgd { momentum, .. } => usize::from(momentum > 0.0),
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
    }
}

/// The 40 bytes of OPTIMIZER settings: kind, Nesterov, three hyperparameters, weight
/// decay, clip norm, reserved, steps.
fn settings_bytes(optimizer: &Optimizer, clip_norm: f32, steps: u64) -> [u8; OPT_FIXED] {
    let (kind, nesterov, h, weight_decay) = match *optimizer {
        Optimizer::Sgd {
            momentum,
            nesterov,
            weight_decay,
        } => (KIND_SGD, nesterov, [momentum, 0.0, 0.0], weight_decay),
        Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => (KIND_ADAM, false, [beta1, beta2, eps], weight_decay),
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => (KIND_ADAMW, false, [beta1, beta2, eps], weight_decay),
    };
    let mut b = [0u8; OPT_FIXED];
    put_u32(&mut b, 0, kind);
    put_u32(&mut b, 4, u32::from(nesterov));
    for (i, v) in h.into_iter().enumerate() {
        put_f32(&mut b, 8 + 4 * i, v);
    }
    put_f32(&mut b, 20, weight_decay);
    put_f32(&mut b, 24, clip_norm);
    put_u32(&mut b, 28, 0);
    put_u64(&mut b, 32, steps);
    b
}

/// What the fixed part of a checkpoint says, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// The topology, loss and seed (`max_batch` 1, `Isa::Auto`: the loader sets those).
    pub config: Config,
    /// The format version (1 or 2).
    pub version: u32,
    /// Length of the flat parameter array.
    pub param_count: usize,
    /// Bytes of the whole checkpoint, CRC included, without optimizer state vectors.
    base_len: usize,
}

/// A dimension from the file: at least 1 and representable as `usize`.
fn dim(v: u64) -> Result<usize, Error> {
    match usize::try_from(v) {
        Ok(d) if d >= 1 => Ok(d),
        _ => Err(Error::BadCheckpoint),
    }
}

impl Header {
    /// Check the first `FIXED` bytes (magic, version, topology, section count, loss)
    /// and compute the lengths the whole checkpoint may have. Allocates nothing.
    pub(crate) fn parse(b: &[u8]) -> Result<Header, Error> {
        let bad = Error::BadCheckpoint;
        if b.len() < FIXED || b[..8] != MAGIC {
            return Err(bad);
        }
        let version = u32_at(b, 8);
        if version != VERSION && version != VERSION_1 {
            return Err(bad);
        }
        let k = u32_at(b, 12) as usize;
        if !(1..=MAX_HIDDEN).contains(&k) {
            return Err(bad);
        }
        let inputs = dim(u64_at(b, 16))?;
        let outputs = dim(u64_at(b, 24))?;
        let mut hidden = [0usize; MAX_HIDDEN];
        for (i, h) in hidden.iter_mut().enumerate() {
            let v = u64_at(b, 32 + 8 * i);
            if i < k {
                *h = dim(v)?;
            } else if v != 0 {
                return Err(bad);
            }
        }
        let seed = u64_at(b, 96);
        if u32_at(b, 104) != SECTIONS {
            return Err(bad);
        }
        // Version 1 reserved this field (0, which is also mean squared error).
        let loss = match (version, Loss::from_u32(u32_at(b, 108))) {
            (VERSION_1, Some(Loss::Mse)) | (VERSION, Some(Loss::Mse)) => Loss::Mse,
            (VERSION, Some(Loss::CrossEntropy)) if outputs >= 2 => Loss::CrossEntropy,
            _ => return Err(bad),
        };
        // Parameter count, layer by layer, with every product and sum checked.
        let mut count = 0usize;
        let mut fan_in = inputs;
        for &out in hidden[..k].iter().chain(core::iter::once(&outputs)) {
            count = out
                .checked_mul(fan_in)
                .and_then(|w| w.checked_add(out))
                .and_then(|l| l.checked_add(count))
                .ok_or(bad)?;
            fan_in = out;
        }
        let settings = if version == VERSION_1 { 0 } else { OPT_FIXED };
        let base_len = count
            .checked_mul(4)
            .and_then(|p| p.checked_add(FIXED + 2 * SECTION + settings + CRC))
            .ok_or(bad)?;
        // The longest checkpoint (two state vectors) must have a length too, so that
        // every length below is computed without overflow.
        count
            .checked_mul(4 * MAX_VECTORS)
            .and_then(|s| s.checked_add(base_len))
            .ok_or(bad)?;
        Ok(Header {
            config: Config::new(inputs, &hidden[..k], outputs)
                .seed(seed)
                .loss(loss),
            version,
            param_count: count,
            base_len,
        })
    }

    /// Most state vectors a checkpoint of this version may hold.
    fn most_vectors(&self) -> usize {
        if self.version == VERSION_1 {
            0
        } else {
            MAX_VECTORS
        }
    }

    /// Bytes of the OPTIMIZER payload with `vectors` state vectors (none and no
    /// settings in version 1).
    fn optimizer_len(&self, vectors: usize) -> usize {
        let settings = if self.version == VERSION_1 {
            0
        } else {
            OPT_FIXED
        };
        settings + vectors * 4 * self.param_count
    }

    /// The number of state vectors a checkpoint of `len` bytes holds, when `len` is a
    /// length this header allows. (No overflow: `parse` checked the longest.)
    pub(crate) fn vectors_for_len(&self, len: usize) -> Option<usize> {
        (0..=self.most_vectors()).find(|&v| self.base_len + v * 4 * self.param_count == len)
    }

    /// Bytes of the longest checkpoint this header allows.
    #[cfg(any(feature = "std", test))]
    pub(crate) fn max_len(&self) -> usize {
        self.base_len + self.most_vectors() * 4 * self.param_count
    }
}

/// The optimizer of a checkpoint, checked.
pub(crate) struct SavedOptimizer<'a> {
    pub optimizer: Optimizer,
    pub clip_norm: f32,
    pub steps: u64,
    /// State vectors in `state` (0..=2).
    pub vectors: usize,
    /// `vectors * param_count` little-endian f32 values, all finite.
    pub state: &'a [u8],
}

impl SavedOptimizer<'_> {
    /// Entry `flat` of state vector `which` (0 past the vectors the checkpoint holds).
    pub(crate) fn state(&self, which: usize, flat: usize, param_count: usize) -> f32 {
        if which < self.vectors {
            f32_at(self.state, 4 * (which * param_count + flat))
        } else {
            0.0
        }
    }
}

/// Check an OPTIMIZER payload (version 2) that holds `vectors` state vectors of
/// `param_count` values. Allocates nothing.
fn check_optimizer(p: &[u8], vectors: usize) -> Result<SavedOptimizer<'_>, Error> {
    let bad = Error::BadCheckpoint;
    let nesterov = match u32_at(p, 4) {
        0 => false,
        1 => true,
        _ => return Err(bad),
    };
    let h = [f32_at(p, 8), f32_at(p, 12), f32_at(p, 16)];
    let weight_decay = f32_at(p, 20);
    let optimizer = match u32_at(p, 0) {
        // Unused fields are zero, every bit, so that the bytes save back the same.
        KIND_SGD if h[1].to_bits() == 0 && h[2].to_bits() == 0 => Optimizer::Sgd {
            momentum: h[0],
            nesterov,
            weight_decay,
        },
        KIND_ADAM if !nesterov => Optimizer::Adam {
            beta1: h[0],
            beta2: h[1],
            eps: h[2],
            weight_decay,
        },
        KIND_ADAMW if !nesterov => Optimizer::AdamW {
            beta1: h[0],
            beta2: h[1],
            eps: h[2],
            weight_decay,
        },
        _ => return Err(bad),
    };
    // The same ranges as set_optimizer and set_grad_clip.
    optimizer.validate().map_err(|_| bad)?;
    let clip_norm = f32_at(p, 24);
    let steps = u64_at(p, 32);
    if !(clip_norm.is_finite() && clip_norm >= 0.0) || u32_at(p, 28) != 0 || steps > MAX_STEPS {
        return Err(bad);
    }
    if state_vectors(&optimizer) != vectors {
        return Err(bad);
    }
    let state = &p[OPT_FIXED..];
    let n = state.len() / 4;
    let values = state
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    // Adam's second moments (the second half) are sums of squares.
    let ok = values
        .enumerate()
        .all(|(i, v)| v.is_finite() && (vectors < 2 || i < n / 2 || v >= 0.0));
    if !ok {
        return Err(bad);
    }
    Ok(SavedOptimizer {
        optimizer,
        clip_norm,
        steps,
        vectors,
        state,
    })
}

/// A checkpoint whose every byte has been checked.
pub(crate) struct Checked<'a> {
    pub header: Header,
    /// The PARAMS payload: `param_count` little-endian f32 values, all finite.
    pub params: &'a [u8],
    /// The OPTIMIZER section (fresh plain SGD for version 1).
    pub optimizer: SavedOptimizer<'a>,
}

/// Validate a whole checkpoint: header, exact length, sections, CRC, finite values,
/// the optimizer. Allocates nothing.
pub(crate) fn check(b: &[u8]) -> Result<Checked<'_>, Error> {
    let bad = Error::BadCheckpoint;
    let header = Header::parse(b)?;
    let vectors = header.vectors_for_len(b.len()).ok_or(bad)?;
    let params_len = header.param_count * 4; // cannot overflow: base_len did not
    let mut at = FIXED;
    let mut payloads: [&[u8]; 2] = [&[], &[]];
    for (i, (tag, want)) in [
        (TAG_PARAMS, params_len),
        (TAG_OPTIMIZER, header.optimizer_len(vectors)),
    ]
    .into_iter()
    .enumerate()
    {
        let len = u64_at(b, at + 8);
        if u32_at(b, at) != tag || u32_at(b, at + 4) != 0 || len != want as u64 {
            return Err(bad);
        }
        at += SECTION;
        payloads[i] = &b[at..at + want];
        at += want;
    }
    debug_assert_eq!(at + CRC, b.len());
    if crc32(&b[..at]) != u32_at(b, at) {
        return Err(bad);
    }
    let params = payloads[0];
    let finite = params
        .chunks_exact(4)
        .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite());
    if !finite {
        return Err(bad);
    }
    let optimizer = if header.version == VERSION_1 {
        SavedOptimizer {
            optimizer: Optimizer::SGD,
            clip_norm: 0.0,
            steps: 0,
            vectors: 0,
            state: &[],
        }
    } else {
        check_optimizer(payloads[1], vectors)?
    };
    Ok(Checked {
        header,
        params,
        optimizer,
    })
}

/// Check `bytes` and the loader's choices: the checkpoint and the model's config.
fn checked_config(
    bytes: &[u8],
    max_batch: usize,
    isa: Isa,
) -> Result<(Checked<'_>, Config), Error> {
    if max_batch == 0 {
        return Err(crate::last_error::refuse!(
            InvalidConfig,
            "max_batch must be >= 1, got 0"
        ));
    }
    let ck = check(bytes)?;
    let config = ck.header.config.max_batch(max_batch).isa(isa);
    Ok((ck, config))
}

impl Model {
    /// Bytes of this model's checkpoint ([`Model::save`]). It depends on the optimizer
    /// (see [`Model::set_optimizer`]), whose state vectors the checkpoint carries.
    pub fn save_size(&self) -> usize {
        let (optimizer, _, _) = self.optimizer_settings();
        let floats = (1 + state_vectors(&optimizer)) * self.param_count();
        // Cannot overflow: the arena already holds two parameter and four state buffers.
        FIXED + 2 * SECTION + OPT_FIXED + 4 * floats + CRC
    }

    /// Write the model's checkpoint (format version 2; see the module docs) into the
    /// start of `buf`: topology, loss, parameters, and the optimizer with its
    /// hyperparameters, clipping norm, step count and state. Returns the bytes
    /// written ([`Model::save_size`]). Refuses a buffer shorter than that with
    /// `InvalidArgument`, writing nothing. Does not allocate.
    pub fn save(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.save_size();
        let cap = buf.len();
        let out = buf.get_mut(..n).ok_or_else(|| {
            crate::last_error::refuse!(
                InvalidArgument,
                "cap = {cap} bytes is too small for the checkpoint: flowmlp_save_size is {n}"
            )
        })?;
        let cfg = self.config();
        out[..8].copy_from_slice(&MAGIC);
        put_u32(out, 8, VERSION);
        put_u32(out, 12, cfg.n_hidden as u32);
        put_u64(out, 16, cfg.inputs as u64);
        put_u64(out, 24, cfg.outputs as u64);
        for i in 0..MAX_HIDDEN {
            let h = cfg.hidden_widths().get(i).copied().unwrap_or(0);
            put_u64(out, 32 + 8 * i, h as u64);
        }
        put_u64(out, 96, cfg.seed);
        put_u32(out, 104, SECTIONS);
        put_u32(out, 108, cfg.loss as u32);
        let count = self.param_count();
        let params_len = 4 * count;
        put_u32(out, FIXED, TAG_PARAMS);
        put_u32(out, FIXED + 4, 0);
        put_u64(out, FIXED + 8, params_len as u64);
        {
            let p = &mut out[PARAMS_AT..PARAMS_AT + params_len];
            self.visit_params(|flat, v| {
                p[4 * flat..4 * flat + 4].copy_from_slice(&v.to_le_bytes());
            });
        }
        let (optimizer, clip_norm, steps) = self.optimizer_settings();
        let vectors = state_vectors(&optimizer);
        let opt = PARAMS_AT + params_len;
        put_u32(out, opt, TAG_OPTIMIZER);
        put_u32(out, opt + 4, 0);
        put_u64(out, opt + 8, (OPT_FIXED + vectors * params_len) as u64);
        let settings = opt + SECTION;
        out[settings..settings + OPT_FIXED]
            .copy_from_slice(&settings_bytes(&optimizer, clip_norm, steps));
        for which in 0..vectors {
            let at = settings + OPT_FIXED + which * params_len;
            let s = &mut out[at..at + params_len];
            self.visit_state(which, |flat, v| {
                s[4 * flat..4 * flat + 4].copy_from_slice(&v.to_le_bytes());
            });
        }
        let end = n - CRC;
        let crc = crc32(&out[..end]);
        put_u32(out, end, crc);
        Ok(n)
    }

    /// A model from a checkpoint written by [`Model::save`], with room for
    /// `max_batch` rows and kernel set `isa` (any set: checkpoints do not depend on
    /// it). The loss, the parameters, the optimizer (hyperparameters, clipping norm,
    /// step count and state) come back bit for bit, so that training goes on as it
    /// would have in the saved model (bit for bit on the same kernel set); gradients
    /// are zero and there is no kept forward, as after [`Model::new`]. A version-1
    /// checkpoint gives mean squared error and fresh plain SGD. (Needs `std`; without
    /// it, see [`Model::load_in`].)
    ///
    /// Errors: `max_batch` 0 is `InvalidConfig` (as in [`Model::new`]: it becomes the
    /// model's `config().max_batch`); anything wrong with the bytes
    /// (truncated, corrupted, another format version, an impossible topology or loss,
    /// non-finite parameters, an unknown optimizer, hyperparameters out of range,
    /// non-finite optimizer state) is `BadCheckpoint`, found before anything is
    /// allocated; then as [`Model::new`] (`UnsupportedIsa`, `InvalidConfig` when
    /// `max_batch` makes the arena overflow, `OutOfMemory`).
    #[cfg(feature = "std")]
    pub fn load(bytes: &[u8], max_batch: usize, isa: Isa) -> Result<Model, Error> {
        let (ck, config) = checked_config(bytes, max_batch, isa)?;
        // Sizes first, so that an overflowing max_batch allocates nothing.
        Model::arena_size_for(&config)?;
        let mut model = Model::new(&config)?;
        model.restore(&ck)?;
        Ok(model)
    }

    /// The configuration of the model [`Model::load_in`] would build from `bytes`
    /// with `max_batch` rows and kernel set `isa` (checked as `load` checks them):
    /// pass it to [`Model::arena_size_for`] for the memory `load_in` needs.
    pub fn checkpoint_config(bytes: &[u8], max_batch: usize, isa: Isa) -> Result<Config, Error> {
        Ok(checked_config(bytes, max_batch, isa)?.1)
    }

    /// [`Model::load`] into caller-owned memory, as [`Model::new_in`]: the model lives
    /// in `memory[..size]`, which must be 64-byte aligned and at least
    /// `Model::arena_size_for(&Model::checkpoint_config(bytes, max_batch, isa)?)`
    /// bytes. Allocates nothing; works without `std`.
    ///
    /// Errors: as [`Model::load`], then as [`Model::new_in`].
    ///
    /// # Safety
    /// As [`Model::new_in`]: `memory` is valid for reads and writes of `size` bytes,
    /// is used by nothing else while the model lives, and outlives it.
    pub unsafe fn load_in(
        bytes: &[u8],
        max_batch: usize,
        isa: Isa,
        memory: *mut u8,
        size: usize,
    ) -> Result<Model, Error> {
        let (ck, config) = checked_config(bytes, max_batch, isa)?;
        // SAFETY: the caller's promise, passed on.
        let mut model = unsafe { Model::new_in(&config, memory, size) }?;
        model.restore(&ck)?;
        Ok(model)
    }

    /// Write a checked checkpoint's parameters and optimizer into a fresh model of its
    /// topology.
    fn restore(&mut self, ck: &Checked<'_>) -> Result<(), Error> {
        let p = ck.params;
        self.restore_params(|flat| f32_at(p, 4 * flat));
        let (o, count) = (&ck.optimizer, ck.header.param_count);
        self.restore_optimizer(o.optimizer, o.clip_norm, o.steps, |which, flat| {
            o.state(which, flat, count)
        })
        .map_err(|_| Error::BadCheckpoint)
    }

    /// Save the checkpoint to the file `path`, atomically: written to a temporary
    /// file in the same directory, synced, renamed over `path`, and the directory
    /// synced. A crash, a full disk or an error at any point leaves a previous file
    /// at `path` intact (a crash may leave a `.<name>.*.tmp` file behind). Errors:
    /// `Io` (the details are not kept; use [`Model::save`] and your own I/O for
    /// them), `OutOfMemory`. Unlike the other calls of a model this one allocates
    /// (the checkpoint's bytes and the temporary file's name).
    #[cfg(feature = "std")]
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let n = self.save_size();
        let mut bytes: Vec<u8> = Vec::new();
        bytes.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
        bytes.resize(n, 0);
        self.save(&mut bytes)?;
        write_atomically(path.as_ref(), &bytes).map_err(|_| Error::Io)
    }

    /// [`Model::load`] from the file `path`. The file is read only as far as its
    /// header justifies: a header that does not match the file's length is
    /// `BadCheckpoint` before the rest is read. `Io` when the file cannot be opened or
    /// read.
    #[cfg(feature = "std")]
    pub fn load_file(path: impl AsRef<Path>, max_batch: usize, isa: Isa) -> Result<Model, Error> {
        if max_batch == 0 {
            return Err(crate::last_error::refuse!(
                InvalidConfig,
                "max_batch must be >= 1, got 0"
            ));
        }
        let mut file = std::fs::File::open(path.as_ref()).map_err(|_| Error::Io)?;
        let mut head = [0u8; FIXED];
        read_full(&mut file, &mut head)?;
        let header = Header::parse(&head)?;
        // Never trust the header's length for an allocation: a regular file must have
        // one of the lengths the header allows, and anything else is read as far as it
        // goes (growing with the bytes that actually arrive), to at most one byte more
        // than the longest.
        let meta = file.metadata().map_err(|_| Error::Io)?;
        let allowed = |len: u64| {
            usize::try_from(len)
                .ok()
                .and_then(|len| header.vectors_for_len(len))
                .is_some()
        };
        if meta.is_file() && !allowed(meta.len()) {
            return Err(Error::BadCheckpoint);
        }
        let mut bytes: Vec<u8> = Vec::new();
        bytes.extend_from_slice(&head);
        let rest = (header.max_len() - FIXED) as u64 + 1;
        (&mut file)
            .take(rest)
            .read_to_end(&mut bytes)
            .map_err(|_| Error::Io)?;
        if !allowed(bytes.len() as u64) {
            return Err(Error::BadCheckpoint);
        }
        Model::load(&bytes, max_batch, isa)
    }
}

/// Fill `buf` from `r`: a short file is `BadCheckpoint`, a read error `Io`.
#[cfg(feature = "std")]
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), Error> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::BadCheckpoint,
        _ => Error::Io,
    })
}

/// Write `bytes` to `path` through a synced temporary file in the same directory.
#[cfg(feature = "std")]
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Error as IoError, ErrorKind};
    let name = path
        .file_name()
        .ok_or_else(|| IoError::new(ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A fresh name (create_new never reuses a file, so concurrent saves and files
    // left by a crash are safe): ".<name>.<pid>.<nanos>.<attempt>.tmp".
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{nanos}.{attempt}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable. (Directories cannot be opened for this on
    // every platform; where they can, a failure is reported.)
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn header_offsets_are_consistent() {
        assert_eq!(FIXED, 32 + 8 * MAX_HIDDEN + 8 + 4 + 4);
        let model = Model::new(&Config::new(3, &[5, 4], 2).isa(Isa::Scalar)).unwrap();
        let mut buf = vec![0u8; model.save_size()];
        assert_eq!(model.save(&mut buf), Ok(buf.len()));
        let ck = check(&buf).unwrap();
        assert_eq!(ck.header.param_count, model.param_count());
        assert_eq!(ck.header.vectors_for_len(buf.len()), Some(0));
        assert_eq!(ck.header.max_len(), buf.len() + 8 * model.param_count());
        assert_eq!(ck.header.config.hidden_widths(), &[5, 4]);
        assert_eq!(ck.optimizer.optimizer, Optimizer::SGD);
        assert!(ck.optimizer.state.is_empty());
        assert_eq!(settings_bytes(&Optimizer::SGD, 0.0, 0), [0; OPT_FIXED]);
    }
}
