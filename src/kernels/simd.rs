//! The primitives every SIMD kernel set provides, so that the kernel bodies in
//! `generic` are written once (memchr's `Vector`, matrixmultiply's `SMultiplyAdd`).
//!
//! A value of a type implementing `Simd` is a token proving that the CPU supports its
//! instructions: tokens are only made inside `#[target_feature]` entry points that are
//! reached through a table built after detection. Arithmetic is therefore safe to
//! call with a token; only the memory operations are `unsafe` (pointer validity).
//! Every method is `#[inline(always)]` so that it is compiled inside the entry point,
//! with the entry point's target features.

pub(crate) trait Simd: Copy {
    /// One vector of `LANES` f32.
    type V: Copy;
    const LANES: usize;

    fn splat(self, x: f32) -> Self::V;
    fn zero(self) -> Self::V;
    /// # Safety
    /// `p` is valid for reading `LANES` floats (no alignment needed).
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// # Safety
    /// `p` is valid for writing `LANES` floats (no alignment needed).
    unsafe fn store(self, p: *mut f32, v: Self::V);
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused where the ISA has it.
    fn fmadd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a * b`, fused where the ISA has it.
    fn fnmadd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `max(a, 0)`, with NaN mapped to 0.
    fn max0(self, a: Self::V) -> Self::V;
    /// `v` where `h > 0`, else 0: the ReLU mask.
    fn select_pos(self, h: Self::V, v: Self::V) -> Self::V;
    /// Sum of the lanes.
    fn hsum(self, a: Self::V) -> f32;
    /// Bitwise or.
    fn or(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise division.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise square root.
    fn sqrt(self, a: Self::V) -> Self::V;

    /// Transpose one 16 x 16 block: `dst[r][c] = src[c][r]`, both row-major with rows
    /// of 16 floats (a weight panel's block, see `generic::transpose_panels`). Plain
    /// loops unless the set has a shuffle network for it.
    ///
    /// # Safety
    /// `src` is valid for reading and `dst` for writing 256 floats; they do not overlap.
    #[inline(always)]
    unsafe fn transpose16(self, src: *const f32, dst: *mut f32) {
        // SAFETY: the caller's contract.
        unsafe {
            for r in 0..16 {
                for c in 0..16 {
                    *dst.add(r * 16 + c) = *src.add(c * 16 + r);
                }
            }
        }
    }

    /// Whether a non-finite marker (`mark`, `generic::put_grad`) still says "all
    /// finite". Markers start at +0 and stay +0 bit for bit while every folded value
    /// is finite, else hold a NaN; `hsum` is then 0 or NaN, and a set may test the
    /// bits directly instead.
    #[inline(always)]
    fn none_marked(self, marker: Self::V) -> bool {
        self.hsum(marker) == 0.0
    }

    /// Fold `v` into a non-finite marker: `acc | (v - v)` stays all-zero bits while
    /// every value is finite (x - x is +0), and becomes NaN once one is not; `hsum`
    /// of the marker is then 0 or NaN. Independent subtractions and a one-cycle `or`
    /// keep the check off the critical path.
    #[inline(always)]
    fn mark(self, acc: Self::V, v: Self::V) -> Self::V {
        self.or(acc, self.sub(v, v))
    }
}

/// Portable vectors of N lanes, used by unit tests to run the generic bodies with the
/// tile shapes of every ISA (AVX-512 included) on any machine.
#[cfg(test)]
pub(crate) mod emulated {
    use super::Simd;

    #[derive(Clone, Copy)]
    pub(crate) struct Emu<const N: usize>;

    impl<const N: usize> Emu<N> {
        /// # Safety
        /// Always safe; `unsafe` only to match the real tokens.
        pub(crate) unsafe fn assume() -> Self {
            Emu
        }
    }

    /// `[e(0), .., e(N - 1)]` by a plain loop, no closure: under Miri, which
    /// interprets every lane, several times cheaper than `core::array::from_fn`.
    macro_rules! lanes {
        (|$i:ident| $e:expr) => {{
            let mut v = [0.0f32; N];
            let mut $i = 0;
            while $i < N {
                v[$i] = $e;
                $i += 1;
            }
            v
        }};
    }

    impl<const N: usize> Simd for Emu<N> {
        type V = [f32; N];
        const LANES: usize = N;
        fn splat(self, x: f32) -> [f32; N] {
            [x; N]
        }
        fn zero(self) -> [f32; N] {
            [0.0; N]
        }
        // One typed access of N floats each (the same bytes as N float accesses).
        unsafe fn load(self, p: *const f32) -> [f32; N] {
            // SAFETY: the caller guarantees N readable floats (no alignment needed).
            unsafe { p.cast::<[f32; N]>().read_unaligned() }
        }
        unsafe fn store(self, p: *mut f32, v: [f32; N]) {
            // SAFETY: the caller guarantees N writable floats (no alignment needed).
            unsafe { p.cast::<[f32; N]>().write_unaligned(v) }
        }
        fn add(self, a: [f32; N], b: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i] + b[i])
        }
        fn sub(self, a: [f32; N], b: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i] - b[i])
        }
        fn mul(self, a: [f32; N], b: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i] * b[i])
        }
        fn fmadd(self, a: [f32; N], b: [f32; N], c: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i].mul_add(b[i], c[i]))
        }
        fn fnmadd(self, a: [f32; N], b: [f32; N], c: [f32; N]) -> [f32; N] {
            lanes!(|i| (-a[i]).mul_add(b[i], c[i]))
        }
        fn max0(self, a: [f32; N]) -> [f32; N] {
            lanes!(|i| if a[i] > 0.0 { a[i] } else { 0.0 })
        }
        fn select_pos(self, h: [f32; N], v: [f32; N]) -> [f32; N] {
            lanes!(|i| if h[i] > 0.0 { v[i] } else { 0.0 })
        }
        fn hsum(self, a: [f32; N]) -> f32 {
            // From -0.0, as `Iterator::sum` of floats.
            let (mut sum, mut i) = (-0.0, 0);
            while i < N {
                sum += a[i];
                i += 1;
            }
            sum
        }
        fn or(self, a: [f32; N], b: [f32; N]) -> [f32; N] {
            lanes!(|i| f32::from_bits(a[i].to_bits() | b[i].to_bits()))
        }
        fn div(self, a: [f32; N], b: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i] / b[i])
        }
        fn sqrt(self, a: [f32; N]) -> [f32; N] {
            lanes!(|i| a[i].sqrt())
        }
    }
}
