//! NEON kernels (aarch64): 4 lanes, four vectors per panel; forward tiles of 6 rows
//! x 16 columns, weight-gradient tiles of 6 x 16, input-gradient tiles of 2 x 3.

use super::simd::Simd;
use crate::isa::Isa;
use core::arch::aarch64::*;

/// Proof that NEON is available (always on aarch64; detected anyway).
#[derive(Clone, Copy)]
pub(crate) struct Neon(());

impl Neon {
    /// # Safety
    /// The CPU supports NEON.
    #[inline(always)]
    pub(crate) unsafe fn assume() -> Self {
        Neon(())
    }
}

// SAFETY (every method): a token exists only when NEON is available, and the methods
// are inlined into `#[target_feature(enable = "neon")]` entry points.
impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn zero(self) -> float32x4_t {
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn fnmadd(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        unsafe { vfmsq_f32(c, a, b) }
    }
    #[inline(always)]
    fn max0(self, a: float32x4_t) -> float32x4_t {
        // vmaxnm would return the number for NaN; keep the x86 convention instead:
        // select a where a > 0 (false for NaN), else 0.
        unsafe { vreinterpretq_f32_u32(vandq_u32(vcgtzq_f32(a), vreinterpretq_u32_f32(a))) }
    }
    #[inline(always)]
    fn select_pos(self, h: float32x4_t, v: float32x4_t) -> float32x4_t {
        unsafe { vreinterpretq_f32_u32(vandq_u32(vcgtzq_f32(h), vreinterpretq_u32_f32(v))) }
    }
    #[inline(always)]
    fn or(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe {
            vreinterpretq_f32_u32(vorrq_u32(
                vreinterpretq_u32_f32(a),
                vreinterpretq_u32_f32(b),
            ))
        }
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, a: float32x4_t) -> float32x4_t {
        unsafe { vsqrtq_f32(a) }
    }
    #[inline(always)]
    fn hsum(self, a: float32x4_t) -> f32 {
        unsafe { vaddvq_f32(a) }
    }
    #[inline(always)]
    unsafe fn transpose16(self, src: *const f32, dst: *mut f32) {
        // Sixteen 4 x 4 transposes: block (i, j) of dst is block (j, i) of src transposed.
        for bi in 0..4 {
            for bj in 0..4 {
                // SAFETY: every row read or written lies in the caller's 16 x 16 blocks.
                unsafe {
                    let s0 = src.add(bj * 4 * 16 + bi * 4);
                    let r: [float32x4_t; 4] = core::array::from_fn(|i| vld1q_f32(s0.add(i * 16)));
                    let o = transpose4(r);
                    let d0 = dst.add(bi * 4 * 16 + bj * 4);
                    for (i, v) in o.iter().enumerate() {
                        vst1q_f32(d0.add(i * 16), *v);
                    }
                }
            }
        }
    }
}

/// Transpose 4 rows of 4 floats: `trn` of 32-bit pairs, then of 64-bit halves.
#[inline(always)]
fn transpose4(r: [float32x4_t; 4]) -> [float32x4_t; 4] {
    // SAFETY: only called from `transpose16`, inside NEON entry points.
    unsafe {
        let t0 = vtrn1q_f32(r[0], r[1]);
        let t1 = vtrn2q_f32(r[0], r[1]);
        let t2 = vtrn1q_f32(r[2], r[3]);
        let t3 = vtrn2q_f32(r[2], r[3]);
        [lo64(t0, t2), lo64(t1, t3), hi64(t0, t2), hi64(t1, t3)]
    }
}

/// The low 64-bit halves of `a` and `b`, in that order.
#[inline(always)]
fn lo64(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    // SAFETY: as `transpose4`.
    unsafe {
        vreinterpretq_f32_f64(vtrn1q_f64(
            vreinterpretq_f64_f32(a),
            vreinterpretq_f64_f32(b),
        ))
    }
}

/// The high 64-bit halves of `a` and `b`, in that order.
#[inline(always)]
fn hi64(a: float32x4_t, b: float32x4_t) -> float32x4_t {
    // SAFETY: as `transpose4`.
    unsafe {
        vreinterpretq_f32_f64(vtrn2q_f64(
            vreinterpretq_f64_f32(a),
            vreinterpretq_f64_f32(b),
        ))
    }
}

super::generic::simd_kernel_set! {
    isa: Isa::Neon,
    attrs: [#[target_feature(enable = "neon")]],
    token: Neon,
    dense: (6, 4),
    weight_grad: (6, 4),
    input_grad: (2, 3),
    row: 8,
    panel_vectors: 4,
}
