//! NEON kernels (aarch64): 4 lanes, four vectors per panel; forward tiles of 6 rows
//! x 16 columns, weight-gradient tiles of 6 x 16, input-gradient tiles of 2 x 3.

use super::simd::Simd;
use crate::config::Isa;
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

/// Whether this CPU runs the set.
pub(crate) fn detected() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
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
