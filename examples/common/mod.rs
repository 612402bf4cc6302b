//! What the data examples share: reading their bundled CSV files, a fixed shuffle,
//! and one epoch of mini-batch train steps.

use flowmlp::{Error, Model};

/// The rows of a CSV text with a header line, `cols` numbers per row, one after the
/// other.
pub fn read_csv(text: &str, cols: usize) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let start = out.len();
        for v in line.split(',') {
            out.push(v.trim().parse::<f64>()?);
        }
        if out.len() - start != cols {
            return Err(format!("expected {cols} columns, got {}", out.len() - start).into());
        }
    }
    Ok(out)
}

/// A fixed permutation of 0..n (Fisher-Yates driven by a 64-bit LCG).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
    }
    v
}

/// One pass over the training rows (`x`: the model's `d` inputs per row, `y`: its
/// `m` targets per row) in the order `perm`, `batch` rows per `train_step`. Returns
/// the mean loss over the batches and the number of steps.
pub fn epoch(
    model: &mut Model,
    x: &[f32],
    y: &[f32],
    perm: &[usize],
    batch: usize,
    lr: f32,
) -> Result<(f64, usize), Error> {
    let (d, m) = (model.config().inputs, model.config().outputs);
    let mut xb = Vec::with_capacity(batch * d);
    let mut yb = Vec::with_capacity(batch * m);
    let (mut loss_sum, mut steps) = (0.0f64, 0usize);
    for chunk in perm.chunks(batch) {
        xb.clear();
        yb.clear();
        for &r in chunk {
            xb.extend_from_slice(&x[r * d..(r + 1) * d]);
            yb.extend_from_slice(&y[r * m..(r + 1) * m]);
        }
        loss_sum += f64::from(model.train_step(&xb, &yb, lr)?);
        steps += 1;
    }
    Ok((loss_sum / steps.max(1) as f64, steps))
}
