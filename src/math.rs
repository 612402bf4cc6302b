//! The float functions `core` lacks, in one place: with `std` its methods (each
//! wrapper inlines to exactly the call it replaces), without `std` the `libm` crate's
//! (a port of musl's; `sqrt` is correctly rounded, as the hardware's) and `powi` by
//! binary powering as compiler-rt's `__powidf2`, the routine `f64::powi` calls, so
//! that results match a `std` build's to the last bit or so:
//!
//! ```text
//! powi(a, n): r = 1; loop { if n odd: r *= a; n /= 2 (toward 0); if n == 0: break; a *= a }
//!             return n < 0 ? 1 / r : r
//! ```

pub(crate) use imp::{cos, exp, ln, powi, sqrt, sqrtf};

#[cfg(feature = "std")]
mod imp {
    /// `x.sqrt()` for `f32`.
    #[inline(always)]
    pub(crate) fn sqrtf(x: f32) -> f32 {
        x.sqrt()
    }

    /// `x.sqrt()`.
    #[inline(always)]
    pub(crate) fn sqrt(x: f64) -> f64 {
        x.sqrt()
    }

    /// `x.exp()`.
    #[inline(always)]
    pub(crate) fn exp(x: f64) -> f64 {
        x.exp()
    }

    /// `x.ln()`.
    #[inline(always)]
    pub(crate) fn ln(x: f64) -> f64 {
        x.ln()
    }

    /// `x.cos()`.
    #[inline(always)]
    pub(crate) fn cos(x: f64) -> f64 {
        x.cos()
    }

    /// `a.powi(n)`.
    #[inline(always)]
    pub(crate) fn powi(a: f64, n: i32) -> f64 {
        a.powi(n)
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    pub(crate) use super::powi_binary as powi;
    pub(crate) use libm::{cos, exp, log as ln, sqrt, sqrtf};
}

/// compiler-rt's `__powidf2` (see the module docs).
#[cfg(any(not(feature = "std"), test))]
pub(crate) fn powi_binary(a: f64, n: i32) -> f64 {
    let (mut a, mut b, mut r) = (a, n, 1.0);
    loop {
        if b & 1 != 0 {
            r *= a;
        }
        b /= 2;
        if b == 0 {
            break;
        }
        a *= a;
    }
    if n < 0 {
        1.0 / r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_powering_matches_std_powi() {
        for &a in &[0.9f64, 0.999, 0.5, 1.5, -2.0, 1e-3, 0.0] {
            for n in [
                -7,
                -1,
                0,
                1,
                2,
                3,
                17,
                100,
                1000,
                123_456,
                i32::MAX,
                i32::MIN,
            ] {
                let (got, want) = (powi_binary(a, n), a.powi(n));
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{a}^{n}: {got} vs {want}"
                );
            }
        }
    }
}
