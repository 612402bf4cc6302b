//! Test-only: kernel tables running the generic SIMD bodies on portable emulated
//! vectors with the lane counts and tile shapes of NEON (4), AVX2 (8) and AVX-512
//! (16), so every tile and remainder path runs on any machine; the list of tables
//! under test; a small generator and the tolerance every comparison uses.
//!
//! Tolerance: kernel sets sum in different orders, so each value may differ from the
//! reference by rounding that grows with the length of the sums feeding it:
//! `|v - ref| <= 1e-5 * sqrt(fan) * (|ref| + rms(ref))`, where `fan` is the longest
//! reduction (max of d, the hidden widths and n) and `rms(ref)` the root-mean-square
//! of the compared array (which absorbs cancellation in values near zero).

use super::simd::emulated::Emu;
use super::Kernels;
use crate::isa::Isa;

mod emu4 {
    super::super::generic::simd_kernel_set! {
        isa: crate::isa::Isa::Neon,
        attrs: [],
        token: crate::kernels::simd::emulated::Emu<4>,
        dense: (6, 4),
        weight_grad: (6, 4),
        input_grad: (2, 3),
        row: 8,
        panel_vectors: 4,
    }
}
mod emu8 {
    super::super::generic::simd_kernel_set! {
        isa: crate::isa::Isa::Avx2,
        attrs: [],
        token: crate::kernels::simd::emulated::Emu<8>,
        dense: (6, 2),
        weight_grad: (6, 2),
        input_grad: (2, 3),
        row: 4,
        panel_vectors: 2,
    }
}
mod emu16 {
    super::super::generic::simd_kernel_set! {
        isa: crate::isa::Isa::Avx512,
        attrs: [],
        token: crate::kernels::simd::emulated::Emu<16>,
        dense: (8, 2),
        weight_grad: (8, 2),
        input_grad: (4, 4),
        row: 2,
        panel_vectors: 1,
    }
}

// Keep the emulated token type in use even if a macro stops naming it.
const _: Option<Emu<4>> = None;

/// The kernel sets this CPU runs, then the emulated ones. A set that
/// `FLOWMLP_REQUIRE_ISA` (comma-separated names) names but the CPU lacks fails the
/// test rather than being skipped, so that CI cannot skip silently.
pub(crate) fn tables() -> Vec<(&'static str, &'static Kernels)> {
    if let Ok(required) = std::env::var("FLOWMLP_REQUIRE_ISA") {
        for name in required.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown isa {name}"));
            assert!(
                super::table(isa).is_some(),
                "FLOWMLP_REQUIRE_ISA names {name}, which this CPU/build lacks"
            );
        }
    }
    let mut t: Vec<(&'static str, &'static Kernels)> = Isa::ALL
        .into_iter()
        .filter_map(|isa| super::table(isa).map(|k| (isa.name(), k)))
        .collect();
    t.push(("emulated-4-lanes", &emu4::KERNELS));
    t.push(("emulated-8-lanes", &emu8::KERNELS));
    t.push(("emulated-16-lanes", &emu16::KERNELS));
    t
}

pub(crate) struct Rng(pub u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn f(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub(crate) fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    pub(crate) fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// `what` is formatted only when the check fails.
pub(crate) fn check(what: impl core::fmt::Display, got: &[f32], want: &[f32], fan: usize) {
    assert_eq!(got.len(), want.len());
    let rms =
        (want.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / want.len().max(1) as f64).sqrt();
    let tol = 1e-5 * (fan as f64).sqrt();
    for (t, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= tol * ((w as f64).abs() + rms),
            "{what}[{t}]: {g} vs reference {w} (err {err:e}, allowed {:e})",
            tol * ((w as f64).abs() + rms)
        );
    }
}
