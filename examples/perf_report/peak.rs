//! The peak f32 multiply-add throughput of one core, per kernel set: the ceiling that
//! the benchmark report measures flowmlp against. (Measurement code: it lives with the
//! report, not in the library.)
//!
//! ```text
//! acc[0..R] = opaque seeds                  R independent chains (R >= 12)
//! a, b      = opaque constants              a < 1: every chain stays at 1, finite
//! repeat iters times:
//!     for r in 0..R: acc[r] = acc[r] * a + b      one FMA per chain, registers only
//! opaque(acc)
//! GFLOP/s = 2 * lanes * R * iters / seconds, best of several timed repetitions
//! ```
//!
//! R chains hide the FMA latency: current cores issue two FMAs per cycle with a
//! latency of 4 or 5 cycles, so 8 to 10 chains keep both ports busy and 12 leave
//! margin. R is chosen so that the chains and the two constants fit in the register
//! file (scalar: 14 + 2 of 16 xmm; AVX2: 12 + 2 of 16 ymm; AVX-512 and NEON: 24 + 2
//! of 32; NEON's chain is `acc + a * c`, see `chains_neon`): the loop body is
//! FMAs on registers, a counter and a branch, with no loads or stores (checked in
//! the generated assembly). The seeds, constants, iteration count and results pass
//! through `black_box`, so nothing can be folded or merged.
//!
//! The scalar set's kernels are plain Rust without `mul_add` (a libm call when FMA
//! is not enabled), so its ceiling is one lane of a separate multiply and add,
//! counted as 2 FLOPs like an FMA; see `chains_scalar_sse` for how it is measured.

use core::hint::black_box;
use std::time::{Duration, Instant};

use flowmlp::{Config, Isa, Model};

/// The multiplier and addend: the fixed point of `x * A + B` is `B / (1 - A)` = 1,
/// where every chain starts.
const A: f32 = 0.999_9;
const B: f32 = 1.0 - A;

/// `iters` rounds of `acc = $step(acc)` on each named chain. `$seed` is evaluated
/// once per chain and must contain a `black_box`, so the compiler cannot tell the
/// chains equal and merge them; each chain ends in a `black_box` too. The chains are
/// locals, not an array, so that they live in registers.
macro_rules! chains {
    ($iters:expr, $seed:expr, |$x:ident| $step:expr, [$($acc:ident),+ $(,)?]) => {{
        $(let mut $acc = $seed;)+
        for _ in 0..black_box($iters) {
            $($acc = {
                let $x = $acc;
                $step
            };)+
        }
        $(black_box($acc);)+
    }};
}

/// Chains per kernel set (the names in the calls below).
const R_SCALAR: f64 = 14.0;
#[cfg(target_arch = "x86_64")]
const R_AVX2: f64 = 12.0;
#[cfg(target_arch = "x86_64")]
const R_AVX512: f64 = 24.0;
#[cfg(target_arch = "aarch64")]
const R_NEON: f64 = 24.0;

/// The scalar set's ceiling, one lane: chains of a separate multiply and add, as its
/// plain-Rust kernels compile (no FMA in the baseline target, and `mul_add` would
/// be a libm call). Plain `x * a + b` chains are not measurable as such: the SLP
/// vectorizer packs some of them into `mulps`/`addps`. So the chains are written as
/// packed SSE `mulps`/`addps` and one lane is counted: scalar `mulss`/`addss` use
/// the same ports with the same latency and throughput, so one lane of the packed
/// loop is exactly the one-lane ceiling.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "sse")]
fn chains_scalar_sse(iters: u64) {
    use core::arch::x86_64::*;
    let (a, b) = (_mm_set1_ps(black_box(A)), _mm_set1_ps(black_box(B)));
    chains!(
        iters,
        _mm_set1_ps(black_box(1.0)),
        |x| _mm_add_ps(_mm_mul_ps(x, a), b),
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13]
    );
}

/// The scalar set's ceiling on x86-64 (see `chains_scalar_sse`).
#[cfg(target_arch = "x86_64")]
fn chains_scalar(iters: u64) {
    // SAFETY: every x86-64 CPU has SSE (the target's baseline features include it).
    unsafe { chains_scalar_sse(iters) }
}

/// The scalar set's ceiling on aarch64, as `chains_scalar_sse`: separate `fmul` and
/// `fadd` on 128-bit registers, one lane counted (scalar and vector forms issue alike).
#[cfg(target_arch = "aarch64")]
#[inline(never)]
#[target_feature(enable = "neon")]
fn chains_scalar_neon(iters: u64) {
    use core::arch::aarch64::*;
    let (a, b) = (vdupq_n_f32(black_box(A)), vdupq_n_f32(black_box(B)));
    chains!(
        iters,
        vdupq_n_f32(black_box(1.0)),
        |x| vaddq_f32(vmulq_f32(x, a), b),
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13]
    );
}

/// The scalar set's ceiling on aarch64 (see `chains_scalar_neon`).
#[cfg(target_arch = "aarch64")]
fn chains_scalar(iters: u64) {
    // SAFETY: NEON is part of the aarch64 baseline target.
    unsafe { chains_scalar_neon(iters) }
}

/// The scalar set's ceiling elsewhere: plain one-lane chains (which the vectorizer
/// may pack; no other target has a kernel set of its own to compare with).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(never)]
fn chains_scalar(iters: u64) {
    let (a, b) = (black_box(A), black_box(B));
    chains!(
        iters,
        black_box(1.0f32),
        |x| x * a + b,
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13]
    );
}

/// Twelve chains of `vfmadd` on ymm registers (plus the two constants: 14 of 16).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
fn chains_avx2(iters: u64) {
    use core::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(black_box(A)), _mm256_set1_ps(black_box(B)));
    chains!(
        iters,
        _mm256_set1_ps(black_box(1.0)),
        |x| _mm256_fmadd_ps(x, a, b),
        [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
    );
}

/// Twenty-four chains of `vfmadd` on zmm registers (26 of 32).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
#[target_feature(enable = "avx512f")]
fn chains_avx512(iters: u64) {
    use core::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(black_box(A)), _mm512_set1_ps(black_box(B)));
    chains!(
        iters,
        _mm512_set1_ps(black_box(1.0)),
        |x| _mm512_fmadd_ps(x, a, b),
        [
            c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18,
            c19, c20, c21, c22, c23
        ]
    );
}

/// Twenty-four chains of `fmla` on 128-bit registers (26 of 32). `fmla` adds into
/// its accumulator, so the chain is `x = x + a * c` rather than `x * a + b` (which
/// would need a register copy per step); `a * c` (about 1e-7) stops changing `x`
/// once `x` reaches 2, so the chains stay finite.
#[cfg(target_arch = "aarch64")]
#[inline(never)]
#[target_feature(enable = "neon")]
fn chains_neon(iters: u64) {
    use core::arch::aarch64::*;
    let (a, c) = (vdupq_n_f32(black_box(A)), vdupq_n_f32(black_box(1e-7)));
    chains!(
        iters,
        vdupq_n_f32(black_box(1.0)),
        |x| vfmaq_f32(x, a, c),
        [
            c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18,
            c19, c20, c21, c22, c23
        ]
    );
}

/// Seconds of one call of `run(iters)`.
fn time(run: &dyn Fn(u64), iters: u64) -> f64 {
    let t = Instant::now();
    run(iters);
    t.elapsed().as_secs_f64()
}

/// Best GFLOP/s of `run`, which does `flops_per_iter` per iteration: ramp the
/// iteration count up until one call lasts `REP`, run for `WARM` more, then report
/// the best of `REPS` calls. About 12 ms in all.
fn best_gflops(run: &dyn Fn(u64), flops_per_iter: f64) -> f64 {
    const REP: Duration = Duration::from_millis(1);
    const WARM: Duration = Duration::from_millis(3);
    const REPS: usize = 7;
    let mut iters = 1u64 << 10;
    while time(run, iters) < REP.as_secs_f64() && iters < 1 << 40 {
        iters *= 2;
    }
    let warm = Instant::now();
    while warm.elapsed() < WARM {
        run(iters);
    }
    let best = (0..REPS)
        .map(|_| time(run, iters))
        .fold(f64::INFINITY, f64::min);
    flops_per_iter * iters as f64 / best / 1e9
}

/// The peak loop of one kernel set, for callers that time it themselves (the
/// benchmark report times it in rounds with the workloads, so that each ratio to the
/// peak is measured under the same conditions).
#[derive(Clone, Copy, Debug)]
pub struct PeakLoop {
    /// A set this CPU runs: a `PeakLoop` is only made after detection.
    isa: Isa,
}

impl PeakLoop {
    /// The loop of `isa` (`Auto` resolved as `Model::new` would), or `None` when
    /// this CPU or build cannot run it.
    pub fn new(isa: Isa) -> Option<PeakLoop> {
        // A model of the set is the proof that the CPU supports it (the library
        // detects the features before it hands out a kernel set).
        let isa = Model::new(&Config::new(1, &[1], 1).isa(isa)).ok()?.isa();
        let known = match isa {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => true,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            _ => false,
        };
        known.then_some(PeakLoop { isa })
    }

    /// Floating-point operations of one iteration (an FMA counts 2).
    pub fn flops_per_iter(&self) -> f64 {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 2.0 * 8.0 * R_AVX2,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 2.0 * 16.0 * R_AVX512,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => 2.0 * 4.0 * R_NEON,
            _ => 2.0 * R_SCALAR,
        }
    }

    /// Run `iters` iterations.
    pub fn run(&self, iters: u64) {
        match self.isa {
            // SAFETY: `new` made this loop only for a set the library created a model
            // with, which it does only when detection found the set's features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { chains_avx2(iters) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { chains_avx512(iters) },
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => unsafe { chains_neon(iters) },
            _ => chains_scalar(iters),
        }
    }
}

/// Measured peak GFLOP/s of one core for kernel set `isa` (`Auto` resolved as
/// `Model::new` would), or `None` when this CPU or build cannot run it.
pub fn measure_gflops(isa: Isa) -> Option<f64> {
    let peak = PeakLoop::new(isa)?;
    Some(best_gflops(&|iters| peak.run(iters), peak.flops_per_iter()))
}
