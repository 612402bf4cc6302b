//! Kernel-level tests; whole models on every kernel set are `model::tests`.

use super::simd::emulated::Emu;
use super::testing::{check, tables, Rng};
use super::Kernels;
use crate::isa::Isa;

/// The forward GEMM over more panels than one L1 chunk of weights holds (129 inputs:
/// chunks of two panels; three panels: a whole chunk and a partial one), the head's
/// partial sums kept in `part` between the chunks, on every set against the
/// reference. One row, so that it stays cheap under Miri.
#[test]
fn dense_relu_in_chunks_matches_the_reference() {
    use super::{DenseArgs, PANEL};
    let (k, panels) = (129, 3);
    let mut rng = Rng(7);
    let (a, w) = (rng.vec(k), rng.vec(panels * k * PANEL));
    let (b, head) = (rng.vec(panels * PANEL), rng.vec(panels * PANEL));
    let run = |kernels: &Kernels| {
        let mut h = vec![f32::NAN; panels * PANEL];
        let mut part = vec![f32::NAN; PANEL];
        let mut yhat = f32::NAN;
        let args = DenseArgs {
            a: a.as_ptr(),
            lda: k,
            n: 1,
            k,
            w: w.as_ptr(),
            b: b.as_ptr(),
            panels,
            // Every unit live: the weights past a real width would be zero.
            units: panels * PANEL,
            h: h.as_mut_ptr(),
            head: head.as_ptr(),
            head_bias: 0.5,
            yhat: &mut yhat,
            part: part.as_mut_ptr(),
            mask: core::ptr::null(),
        };
        // SAFETY: one row of k inputs, `panels` panels of weights, biases, outputs
        // and head weights, a row of partial sums and one prediction, as stated.
        unsafe { (kernels.dense_relu)(&args) };
        (h, yhat)
    };
    let (h0, y0) = run(&super::scalar::KERNELS);
    for (name, kernels) in tables() {
        let (h, y) = run(kernels);
        check(format_args!("{name} H"), &h, &h0, k);
        check(format_args!("{name} yhat"), &[y], &[y0], k);
    }
}

/// Miri runs no `std::arch` vector code: run-time detection reports only the
/// features enabled at compile time, so dispatch picks the scalar set.
#[cfg(miri)]
#[test]
fn miri_dispatch_picks_the_scalar_set() {
    assert_eq!(crate::isa::best(), Isa::Scalar);
}

/// `transpose16` of every set this CPU runs (and the emulated default) against the
/// definition `dst[r][c] = src[c][r]`.
#[test]
fn transpose16_transposes_every_block() {
    use super::simd::Simd;
    fn check(what: &str, run: impl Fn(*const f32, *mut f32)) {
        let src: Vec<f32> = (0..256).map(|i| i as f32 * 0.5 - 7.0).collect();
        let mut dst = vec![f32::NAN; 256];
        run(src.as_ptr(), dst.as_mut_ptr());
        for r in 0..16 {
            for c in 0..16 {
                assert_eq!(dst[r * 16 + c], src[c * 16 + r], "{what}: [{r}][{c}]");
            }
        }
    }
    // SAFETY (every call): 256 floats at each pointer; tokens made after detection.
    check("emulated", |s, d| unsafe {
        Emu::<8>::assume().transpose16(s, d)
    });
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2.is_supported() {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn t(s: *const f32, d: *mut f32) {
            unsafe { super::avx2::Avx2::assume().transpose16(s, d) }
        }
        check("avx2", |s, d| unsafe { t(s, d) });
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx512.is_supported() {
        #[target_feature(enable = "avx512f")]
        unsafe fn t(s: *const f32, d: *mut f32) {
            unsafe { super::avx512::Avx512::assume().transpose16(s, d) }
        }
        check("avx512", |s, d| unsafe { t(s, d) });
    }
    #[cfg(target_arch = "aarch64")]
    if Isa::Neon.is_supported() {
        #[target_feature(enable = "neon")]
        unsafe fn t(s: *const f32, d: *mut f32) {
            unsafe { super::neon::Neon::assume().transpose16(s, d) }
        }
        check("neon", |s, d| unsafe { t(s, d) });
    }
}

/// A narrow one-panel layer's weight gradients with A's columns in the lanes
/// (`generic::weight_grad_narrow`) equal the panel tiles' bit for bit, with and
/// without the fused SGD step, on the emulated 4-, 8- and 16-lane sets: every unit
/// count that takes that path (groups of up to 8 and two groups), column counts that
/// leave remainders, and several row counts.
#[test]
fn narrow_weight_gradients_equal_the_panel_tiles_bit_for_bit() {
    use super::generic::{weight_grad_blocks, weight_grad_narrow};
    use super::narrow_weight_grad;
    use super::simd::Simd;
    use super::{Fused, WeightGradArgs, PANEL};

    fn run<const L: usize, const NV1: usize>() {
        let s = unsafe { Emu::<L>::assume() };
        let mut rng = Rng(L as u64);
        let mut cases = 0;
        let ks: &[usize] = if cfg!(miri) {
            &[L + 3]
        } else {
            &[L, L + 3, 3 * L + 1, 70]
        };
        let ns: &[usize] = if cfg!(miri) { &[3] } else { &[1, 5, 33] };
        for units in 1..=PANEL {
            for &k in ks {
                if !narrow_weight_grad(units, 1, k, L) {
                    continue;
                }
                for &n in ns {
                    for fused in [false, true] {
                        let lda = k + 2;
                        let a = rng.vec(n * lda);
                        let mut dz = rng.vec(n * PANEL);
                        for (i, v) in dz.iter_mut().enumerate() {
                            if i % PANEL >= units {
                                *v = 0.0;
                            }
                        }
                        // Gradients, then the current and the next parameters.
                        let len = k * PANEL + PANEL;
                        let cur = rng.vec(len);
                        let go = |narrow: bool| {
                            let mut buf = vec![0.0f32; 3 * len];
                            buf[len..2 * len].copy_from_slice(&cur);
                            let args = WeightGradArgs {
                                a: a.as_ptr(),
                                lda,
                                n,
                                k,
                                dz: dz.as_ptr(),
                                panels: 1,
                                units,
                                p0: 0,
                                p1: 1,
                                gw: buf.as_mut_ptr(),
                                gb: buf.as_mut_ptr().wrapping_add(k * PANEL),
                                pack: core::ptr::null_mut(),
                                fused: fused.then_some(Fused {
                                    lr: 0.25,
                                    cur: len as isize,
                                    next: 2 * len as isize,
                                }),
                                head: core::ptr::null(),
                            };
                            let live = units.div_ceil(L);
                            let mut bad = s.zero();
                            // SAFETY: n rows of lda >= k floats, n rows of dZ, and
                            // gradients and both parameter copies in `buf`, as stated.
                            let ok = unsafe {
                                if narrow {
                                    weight_grad_narrow::<Emu<L>, 6, NV1>(s, &args)
                                } else {
                                    weight_grad_blocks::<Emu<L>, 6, NV1, NV1, true>(
                                        s, &args, false, n, live, &mut bad,
                                    );
                                    s.none_marked(bad)
                                }
                            };
                            assert!(ok);
                            buf
                        };
                        let (want, got) = (go(false), go(true));
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{L} lanes, {units} units, k {k}, n {n}, fused {fused}: \
                                 value {i}: {g} against {w}"
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases >= 2 * ks.len().min(2), "{L} lanes: {cases} cases");
    }
    run::<4, 4>();
    run::<8, 2>();
    run::<16, 1>();
}
