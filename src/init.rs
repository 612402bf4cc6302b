//! Portable, seeded parameter initialization.
//!
//! The generator is SplitMix64 (Steele, Lea, Flood 2014), spelled out here so that
//! the same seed gives the same weights on every platform and every release:
//!
//! ```text
//! state += 0x9E3779B97F4A7C15
//! z = state; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB
//! next_u64 = z ^ z>>31
//! uniform in (0, 1]: ((next_u64 >> 11) + 1) * 2^-53
//! normal: Box-Muller in f64, sqrt(-2 ln u1) * cos(2 pi u2), one value per two uniforms
//! ```
//!
//! Weights are drawn in the flat parameter order (layer by layer, row-major), each
//! `N(0, 2 / fan_in)` for ReLU layers (He) and `N(0, 1 / fan_in)` for the linear
//! output layer; every bias starts at zero. (We do not use `rand`'s generators here:
//! they are documented as not value-stable across platforms or releases.)

use crate::math;

/// SplitMix64: tiny, fast, and the same everywhere.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1], so that `ln` below never sees zero.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller (the cosine branch only, for simplicity).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        math::sqrt(-2.0 * math::ln(u1)) * math::cos(core::f64::consts::TAU * u2)
    }
}

/// Standard deviation of a layer's initial weights: He for ReLU layers, LeCun for
/// the linear output layer.
pub(crate) fn weight_std(fan_in: usize, output_layer: bool) -> f64 {
    let gain = if output_layer { 1.0 } else { 2.0 };
    math::sqrt(gain / fan_in as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation
        // (Vigna, splitmix64.c).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        assert_eq!(r.next_u64(), 9817491932198370423);
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = SplitMix64::new(7);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let v = r.normal();
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
