//! Softmax cross-entropy, shared by every kernel set (it touches only n x m values).

use crate::math;

/// Over `n` rows of `m` logits `z` and targets `y` (rows of class probabilities),
/// writes `dy = dL/dz = (sum_j y_ij * softmax(z_i) - y_i) / n` and returns
/// `sum_i sum_j y_ij (lse(z_i) - z_ij)`, the loss times n. Stable: `lse` subtracts the
/// row maximum before exponentiating.
///
/// # Safety
/// `z`, `y` and `dy` are valid for `n * m` floats.
pub(crate) unsafe fn softmax_xent(
    z: *const f32,
    y: *const f32,
    n: usize,
    m: usize,
    dy: *mut f32,
) -> f32 {
    // SAFETY: the caller guarantees n * m floats at each pointer.
    let (z, y, dy) = unsafe {
        (
            core::slice::from_raw_parts(z, n * m),
            core::slice::from_raw_parts(y, n * m),
            core::slice::from_raw_parts_mut(dy, n * m),
        )
    };
    let mut total = 0.0f64;
    for ((z, y), dy) in z
        .chunks_exact(m)
        .zip(y.chunks_exact(m))
        .zip(dy.chunks_exact_mut(m))
    {
        let max = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = z.iter().map(|&v| math::exp(f64::from(v - max))).sum();
        let lse = f64::from(max) + math::ln(sum);
        let ysum: f64 = y.iter().map(|&v| f64::from(v)).sum();
        for ((&zj, &yj), d) in z.iter().zip(y).zip(dy.iter_mut()) {
            total += f64::from(yj) * (lse - f64::from(zj));
            let p = math::exp(f64::from(zj - max)) / sum;
            *d = ((ysum * p - f64::from(yj)) / n as f64) as f32;
        }
    }
    total as f32
}
