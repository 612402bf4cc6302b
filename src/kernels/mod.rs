//! Kernel sets: one module per instruction set, all with the same functions.
//!
//! `scalar` is the plain reference and the specification; the SIMD sets must agree
//! with it within the tolerances the tests state. A model picks one `Kernels` table at
//! creation; the table is `'static` and only built for sets the CPU supports, so
//! holding a `&'static Kernels` is the proof that its functions may be called.
//!
//! Two layers. The kernels proper receive raw pointers into the model's arena (or the
//! caller's buffers) through an argument struct; strides are in floats. The one-row
//! programs in `row` chain those kernels' bodies over a whole network in one call:
//! they read the arena's layout (`layout::Plan`, a leaf module below this one) and
//! never change it. The model validates all sizes before it calls either.
//!
//! On targets without a SIMD set (32-bit Arm, for one) only `scalar` runs: the
//! generic bodies and row programs still compile there (the tests run them on every
//! host through emulated lanes) but nothing calls them, and the linker drops them.
#![cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code, unused_macros, unused_imports)
)]

use crate::isa::{self, Isa};
use crate::Error;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod generic;
#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod row;
pub(crate) mod scalar;
mod simd;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub(crate) use crate::layout::{pack_rows, should_pack, PANEL};

/// One hidden layer's forward: `H = ReLU(A W^T + b)`, W panel-packed (see `layout`).
/// With `head` non-null (the m = 1 output), also `yhat[i] = head_bias + H[i] . head`.
#[derive(Clone, Copy)]
pub(crate) struct DenseArgs {
    /// Input rows, `n x k`, row stride `lda`.
    pub a: *const f32,
    pub lda: usize,
    pub n: usize,
    /// Inputs of the layer (reduction length).
    pub k: usize,
    /// `panels` panels of `k x PANEL`.
    pub w: *const f32,
    /// `panels * PANEL` biases (zero past the real width), or null for none.
    pub b: *const f32,
    pub panels: usize,
    /// The real output width (`<= panels * PANEL`): past it the weights and biases are
    /// zero, so a set may write the whole vectors there as zero without the product.
    pub units: usize,
    /// Output rows `n x panels * PANEL`; padding columns are written as zero.
    pub h: *mut f32,
    /// Output-layer row (`panels * PANEL`, zero-padded) or null.
    pub head: *const f32,
    pub head_bias: f32,
    /// `n` predictions, written when `head` is non-null.
    pub yhat: *mut f32,
    /// Scratch for the head's partial sums, `n x PANEL`, when `head` is non-null.
    pub part: *mut f32,
    /// Null for the forward; for the backward's `dZ W`, the layer below's activations
    /// (row stride as `h`), whose mask `[Hp > 0]` replaces the ReLU (and `b` is null).
    pub mask: *const f32,
}

/// The linear output layer: `yhat[i][c] = bo[c] + H[i] . wo[c]`.
#[derive(Clone, Copy)]
pub(crate) struct HeadArgs {
    /// `n x ld`, zero past column `k`.
    pub h: *const f32,
    pub ld: usize,
    pub n: usize,
    pub k: usize,
    /// `m x ld`, rows zero-padded.
    pub wo: *const f32,
    pub bo: *const f32,
    pub m: usize,
    /// `n x m`.
    pub yhat: *mut f32,
}

/// The SGD step fused into the gradient kernels (`train_step` with plain SGD): each
/// gradient value `g` stored at `q` also writes `q[next] = q[cur] - lr * g`, where
/// `cur` and `next` are the float offsets from the gradient buffer to the current and
/// the spare parameter buffer (same internal layout).
#[derive(Clone, Copy)]
pub(crate) struct Fused {
    pub lr: f32,
    pub cur: isize,
    pub next: isize,
}

/// The output layer's backward from `dy = dL/dYhat`:
/// `gwo[c] = sum_i dy[i][c] H[i]`, `gbo[c] = sum_i dy[i][c]`, and the masked
/// `dz[i] = (sum_c dy[i][c] wo[c]) * [H[i] > 0]` of the top hidden layer.
pub(crate) struct HeadBackArgs {
    pub h: *const f32,
    pub ld: usize,
    pub n: usize,
    pub wo: *const f32,
    pub m: usize,
    /// `n x m`.
    pub dy: *const f32,
    /// `m x ld` (padding written as zero).
    pub gwo: *mut f32,
    /// `m`.
    pub gbo: *mut f32,
    /// `n x ld` (padding written as zero).
    pub dz: *mut f32,
    pub fused: Option<Fused>,
    /// With `fused` and one row: the gradients stay as factors (`dy`, `h`), so
    /// `gwo` only locates the step's parameters and no gradient is stored there.
    pub factored: bool,
}

/// A hidden layer's parameter gradients from its masked `dZ` (`n x panels*PANEL`):
/// `gW = dZ^T A` in the panel layout and `gb = column sums of dZ`.
#[derive(Clone, Copy)]
pub(crate) struct WeightGradArgs {
    pub a: *const f32,
    pub lda: usize,
    pub n: usize,
    pub k: usize,
    pub dz: *const f32,
    pub panels: usize,
    /// The layer's real width (`<= panels * PANEL`): past it dZ is zero and so are
    /// the gradients, which a set may leave unwritten (they stay zero).
    pub units: usize,
    /// The panels `p0..p1` to compute (all: `0..panels`): a thread's share. Each
    /// gradient is summed over the rows in the same order whatever the range.
    pub p0: usize,
    pub p1: usize,
    pub gw: *mut f32,
    pub gb: *mut f32,
    /// Scratch for packed columns of A and a block of dZ
    /// (`pack_rows(k).min(n) * (k + 2 * PANEL)` floats), or null.
    pub pack: *mut f32,
    pub fused: Option<Fused>,
    /// With the output layer of a one-output network on top of this layer (see
    /// `HeadOne`): `dz` is not read but formed from it while dZ is packed. Only where
    /// the table's `fuses_head` is set, and only with packing (`should_pack`). Null
    /// without. A pointer rather than an `Option`: the `None` of an `Option<HeadOne>`
    /// leaves its payload uninitialised, and LLVM hoists its overlap checks on those
    /// pointers out of the `Some` branch, which memcheck reports as branches on
    /// uninitialised memory.
    pub head: *const HeadOne,
}

/// The output layer's backward pass for m = 1, done by the weight-gradient kernel of
/// the hidden layer below it as it packs each block of dZ: `dZ = (dy w_o) * [H > 0]`
/// and `gW_o = dy^T H`, so that H is read once and dZ never goes to memory (the
/// one-hidden-layer network at batch sizes; its head would otherwise be a pass over H and dZ
/// as long as a GEMM's).
#[derive(Clone, Copy)]
pub(crate) struct HeadOne {
    /// The layer's activations, `n x (panels * PANEL)`.
    pub h: *const f32,
    /// `dL/dYhat`, n values.
    pub dy: *const f32,
    /// The output weights, `panels * PANEL` values (zero-padded).
    pub wo: *const f32,
    /// Their gradients (and with the fused step, the parameters at its offsets).
    pub gwo: *mut f32,
}

/// Store gradient `g` at `at`; with a fused SGD step also store the updated
/// parameter at `at + next` (the one-float form of `generic::put_grad`). Returns
/// whether the update is finite.
///
/// # Safety
/// `at`, and with `fused` `at + cur` and `at + next`, are valid for one float.
#[inline(always)]
pub(crate) unsafe fn put_grad1(at: *mut f32, g: f32, fused: Option<Fused>) -> bool {
    // SAFETY: the caller's contract.
    unsafe {
        *at = g;
        match fused {
            None => true,
            Some(f) => {
                let v = *at.offset(f.cur) - f.lr * g;
                *at.offset(f.next) = v;
                v.is_finite()
            }
        }
    }
}

impl DenseArgs {
    /// Rows `i0..i1` only (a thread's share; every row is computed alone).
    ///
    /// # Safety
    /// `i0 <= i1 <= n`.
    pub(crate) unsafe fn rows(&self, i0: usize, i1: usize) -> DenseArgs {
        let ld = self.panels * PANEL;
        // A null pointer stays null: it says "none" (the mask, and the head's outputs
        // when there is no head).
        fn at<T>(p: *const T, off: usize) -> *const T {
            if p.is_null() {
                p
            } else {
                p.wrapping_add(off)
            }
        }
        // SAFETY: offsets of rows <= n inside A and H.
        unsafe {
            DenseArgs {
                a: self.a.add(i0 * self.lda),
                n: i1 - i0,
                h: self.h.add(i0 * ld),
                yhat: at(self.yhat, i0) as *mut f32,
                part: at(self.part, i0 * PANEL) as *mut f32,
                mask: at(self.mask, i0 * ld),
                ..*self
            }
        }
    }
}

impl HeadArgs {
    /// Rows `i0..i1` only.
    ///
    /// # Safety
    /// `i0 <= i1 <= n`.
    pub(crate) unsafe fn rows(&self, i0: usize, i1: usize) -> HeadArgs {
        // SAFETY: offsets of rows <= n inside H and yhat.
        unsafe {
            HeadArgs {
                h: self.h.add(i0 * self.ld),
                n: i1 - i0,
                yhat: self.yhat.add(i0 * self.m),
                ..*self
            }
        }
    }
}

impl InputGradArgs {
    /// Rows `i0..i1` only.
    ///
    /// # Safety
    /// `i0 <= i1 <= n`.
    pub(crate) unsafe fn rows(&self, i0: usize, i1: usize) -> InputGradArgs {
        // SAFETY: offsets of rows <= n inside dZ, Hp and dZp.
        unsafe {
            InputGradArgs {
                dz: self.dz.add(i0 * self.panels * PANEL),
                n: i1 - i0,
                hp: self.hp.add(i0 * self.ldp),
                dzp: self.dzp.add(i0 * self.ldp),
                ..*self
            }
        }
    }
}

impl UpdateArgs {
    /// Values `i0..i1` only.
    ///
    /// # Safety
    /// `i0 <= i1 <= len`.
    pub(crate) unsafe fn range(&self, i0: usize, i1: usize) -> UpdateArgs {
        // SAFETY: offsets <= len inside every buffer.
        unsafe {
            UpdateArgs {
                p: self.p.add(i0),
                g: self.g.add(i0),
                s1: self.s1.add(i0),
                s2: self.s2.add(i0),
                out_p: self.out_p.add(i0),
                out_s1: self.out_s1.add(i0),
                out_s2: self.out_s2.add(i0),
                len: i1 - i0,
                ..*self
            }
        }
    }
}

/// The masked gradient of the layer below: `dzp = (dZ W) * [Hp > 0]`, where `Hp` are
/// that layer's activations (`n x ldp`, `k` real columns). Padding written as zero.
#[derive(Clone, Copy)]
pub(crate) struct InputGradArgs {
    pub dz: *const f32,
    pub n: usize,
    pub w: *const f32,
    pub panels: usize,
    /// The layer's live outputs (`<= panels * PANEL`): dZ is zero past them, and the
    /// GEMM's reduction stops there.
    pub units: usize,
    pub k: usize,
    pub hp: *const f32,
    pub ldp: usize,
    pub dzp: *mut f32,
    /// Scratch for W laid out for this product (`ldp * units` floats), or
    /// null for the dot-product kernel. The caller chooses by the whole batch's rows
    /// (`layout::transposes_input_grad`), so that a share of the rows takes the same
    /// path as the whole batch.
    pub wt: *mut f32,
    /// `wt` already holds W's layout (a call with `n = 0` only lays it out).
    pub wt_ready: bool,
}

/// One optimizer step over a whole parameter buffer: reads the parameters `p`, the
/// gradients `g` and the state `s1` (momentum buffer or first moment) and `s2`
/// (second moment), and writes the new values to the spare buffers `out_*`.
#[derive(Clone, Copy)]
pub(crate) struct UpdateArgs {
    pub p: *const f32,
    pub g: *const f32,
    pub s1: *const f32,
    pub s2: *const f32,
    pub out_p: *mut f32,
    pub out_s1: *mut f32,
    pub out_s2: *mut f32,
    pub len: usize,
    /// The first step since the state was reset (momentum starts from `g`).
    pub first: bool,
    pub update: crate::optim::Update,
}

/// A kernel set's one-row train step: the loss, and whether it and every update
/// were finite.
pub(crate) type TrainRowFn = unsafe fn(&row::RowCtx, &row::RowTrain) -> (f32, bool);

/// A kernel set's one-row forward pass: false when `RowCtx::keep` is set and the
/// input is not finite.
pub(crate) type ForwardRowFn = unsafe fn(&row::RowCtx) -> bool;

/// A kernel set's one-row SGD train step for the one-hidden-layer network (`Plan::one_hidden`):
/// the loss, and whether it and every update were finite.
pub(crate) type TrainOneHiddenFn = unsafe fn(&row::OneHiddenStep) -> (f32, bool);

/// The functions of one kernel set. All are `unsafe fn`: the caller guarantees that
/// every pointer in the arguments is valid for the sizes they state.
pub(crate) struct Kernels {
    pub isa: Isa,
    pub dense_relu: unsafe fn(&DenseArgs),
    pub head_forward: unsafe fn(&HeadArgs),
    /// With `fused`, false when an updated parameter is not finite.
    pub head_backward: unsafe fn(&HeadBackArgs) -> bool,
    /// With `fused`, false when an updated parameter is not finite.
    pub weight_grad: unsafe fn(&WeightGradArgs) -> bool,
    /// `weight_grad` for a layer where `narrow_weight_grad` holds, unpacked: the
    /// same values bit for bit, with A's columns in the lanes.
    pub weight_grad_narrow: unsafe fn(&WeightGradArgs) -> bool,
    pub input_grad: unsafe fn(&InputGradArgs),
    /// `dy = scale * (yhat - y)` over `len` values; returns `sum (yhat - y)^2`.
    pub loss_grad: unsafe fn(*const f32, *const f32, usize, f32, *mut f32) -> f32,
    /// `out = p - lr * g` over `len` values; true when every result is finite.
    pub sgd: unsafe fn(*const f32, *const f32, *mut f32, usize, f32) -> bool,
    /// True when all `len` values are finite.
    pub all_finite: unsafe fn(*const f32, usize) -> bool,
    /// Copy `len` values from the first pointer to the second; true when all finite.
    pub copy_finite: unsafe fn(*const f32, *mut f32, usize) -> bool,
    /// An optimizer step (see `UpdateArgs`); true when every new value is finite.
    pub update: unsafe fn(&UpdateArgs) -> bool,
    /// Sum of squares of `len` values (for gradient clipping).
    pub sum_sq: unsafe fn(*const f32, usize) -> f64,
    /// Floats per vector (the scalar set: a whole panel).
    pub lanes: usize,
    /// Whether `weight_grad` takes `WeightGradArgs::head`.
    pub fuses_head: bool,
    /// The one-row programs (`None`: one row goes through the layer kernels).
    pub row: Option<RowPrograms>,
}

/// The vectors of `lanes` floats that the live units of a layer's last panel fill
/// (a layer of `units` in `panels` panels); the rest of that panel's vectors are
/// dead, and the products skip them.
pub(crate) fn live_vectors(units: usize, panels: usize, lanes: usize) -> usize {
    units
        .saturating_sub(panels.saturating_sub(1) * PANEL)
        .div_ceil(lanes)
}

/// Whether a layer's weight gradients take `Kernels::weight_grad_narrow`: one panel
/// whose units fill under three quarters of its live vectors of `lanes` floats (a
/// panel tile would leave the rest of each vector idle), at least one vector of
/// inputs, and no packing (`should_pack`: one panel never packs).
pub(crate) fn narrow_weight_grad(units: usize, panels: usize, k: usize, lanes: usize) -> bool {
    let live = live_vectors(units, panels, lanes);
    panels == 1 && units <= PANEL && 4 * units < 3 * live * lanes && k >= lanes
}

/// A kernel set's one-call programs for one row.
#[derive(Clone, Copy)]
pub(crate) struct RowPrograms {
    /// The forward pass, any topology.
    pub forward: ForwardRowFn,
    /// The fused SGD train step, any topology: loss, and whether all was finite.
    pub train: TrainRowFn,
    /// `forward` for a plan with `one_hidden` set (everything in registers).
    pub forward_one_hidden: ForwardRowFn,
    /// The fused SGD train step for a plan with `one_hidden` set; leaves the
    /// gradients as factors (`OneHiddenStep::factors`).
    pub train_one_hidden: TrainOneHiddenFn,
}

/// The table of `isa`, or `None` when this CPU or build cannot run it.
pub(crate) fn table(isa: Isa) -> Option<&'static Kernels> {
    if !isa.is_supported() {
        return None;
    }
    match isa {
        Isa::Scalar => Some(&scalar::KERNELS),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(&avx2::KERNELS),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(&avx512::KERNELS),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(&neon::KERNELS),
        _ => None,
    }
}

/// The table a model asking for `requested` gets (see `isa::resolve`).
pub(crate) fn select(requested: Isa) -> Result<&'static Kernels, Error> {
    table(isa::resolve(requested)?).ok_or(Error::UnsupportedIsa)
}
