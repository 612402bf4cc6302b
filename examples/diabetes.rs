//! The course's network on real data: predict diabetes progression one year ahead
//! from ten baseline measurements with 10 -> 64 -> 1, trained by mini-batch SGD.
//!
//! Run: `cargo run --release --example diabetes`
//!
//! Data: `examples/data/diabetes.csv` (442 patients; Efron et al. 2004, "Least Angle
//! Regression", via scikit-learn). Features are standardised with the training
//! split's statistics, a fixed 25% of the rows is held out, and the result is
//! compared with ordinary least squares fitted on the same split.

use flowmlp::{Config, Model};

mod common;
use common::{epoch, read_csv, shuffled};

const DATA: &str = include_str!("data/diabetes.csv");
const D: usize = 10;
const HIDDEN: usize = 64;
const BATCH: usize = 32;
const EPOCHS: usize = 30;
const LEARNING_RATE: f32 = 0.01;
const SEED: u64 = 2024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (x, y) = parse(DATA)?;
    let rows = y.len();
    let order = shuffled(rows, SEED);
    let n_test = rows / 4;
    let (test, train) = order.split_at(n_test);

    // Standardise features and target with training statistics only.
    let (fmean, fstd) = column_stats(train.iter().map(|&i| &x[i * D..(i + 1) * D]), D);
    let (ymean, ystd) = column_stats(train.iter().map(|&i| std::slice::from_ref(&y[i])), 1);
    let (x, fmean, fstd) = (&x, &fmean, &fstd);
    let scale_x = |i: usize| (0..D).map(move |j| ((x[i * D + j] - fmean[j]) / fstd[j]) as f32);
    let xtr: Vec<f32> = train.iter().flat_map(|&i| scale_x(i)).collect();
    let ytr: Vec<f32> = train
        .iter()
        .map(|&i| ((y[i] - ymean[0]) / ystd[0]) as f32)
        .collect();
    let xte: Vec<f32> = test.iter().flat_map(|&i| scale_x(i)).collect();
    let yte: Vec<f64> = test.iter().map(|&i| y[i]).collect();

    let config = Config::new(D, &[HIDDEN], 1)
        .max_batch(BATCH.max(n_test))
        .seed(SEED);
    let mut model = Model::new(&config)?;
    println!(
        "flowmlp {} | kernel set: {} | {} -> {} -> 1 | {} train rows, {} held out | batch {}, lr {}",
        flowmlp::VERSION,
        model.isa().name(),
        D,
        HIDDEN,
        train.len(),
        n_test,
        BATCH,
        LEARNING_RATE
    );
    println!(
        "{:>6}  {:>12}  {:>16}",
        "epoch", "train loss", "held-out MSE"
    );

    let mut pred = vec![0.0f32; n_test];
    let start = std::time::Instant::now();
    let mut steps = 0usize;
    for e in 1..=EPOCHS {
        // Visit the training rows in a new fixed order every epoch.
        let perm = shuffled(train.len(), SEED + e as u64);
        let (loss, n) = epoch(&mut model, &xtr, &ytr, &perm, BATCH, LEARNING_RATE)?;
        steps += n;
        if e == 1 || e % 5 == 0 {
            model.forward(&xte, Some(&mut pred))?;
            let mse = mse(&pred, &yte, ymean[0], ystd[0]);
            // Train loss is on the standardised target; held-out MSE in original units.
            println!("{e:>6}  {loss:>12.4}  {mse:>16.1}");
        }
    }
    let elapsed = start.elapsed();

    model.forward(&xte, Some(&mut pred))?;
    let mlp_mse = mse(&pred, &yte, ymean[0], ystd[0]);
    let ols_pred = ols(&xtr, &ytr, &xte);
    let ols_mse = mse(&ols_pred, &yte, ymean[0], ystd[0]);
    let var = variance(&yte);
    let (r2_mlp, r2_ols) = (1.0 - mlp_mse / var, 1.0 - ols_mse / var);
    println!(
        "{steps} train steps in {:.1} ms ({:.2} us per step)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / steps as f64
    );
    println!("held-out R^2: flowmlp {r2_mlp:.3} (MSE {mlp_mse:.1}) | ordinary least squares {r2_ols:.3} (MSE {ols_mse:.1})");
    if r2_mlp < 0.40 {
        return Err(format!("held-out R^2 {r2_mlp:.3} is below 0.40").into());
    }
    Ok(())
}

/// Features (`D` per patient) and targets.
fn parse(text: &str) -> Result<(Vec<f64>, Vec<f64>), Box<dyn std::error::Error>> {
    let rows = read_csv(text, D + 1)?;
    let x = rows.chunks(D + 1).flat_map(|r| &r[..D]).copied().collect();
    let y = rows.chunks(D + 1).map(|r| r[D]).collect();
    Ok((x, y))
}

fn column_stats<'a>(rows: impl Iterator<Item = &'a [f64]>, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let rows: Vec<&[f64]> = rows.collect();
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..cols)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let std = (0..cols)
        .map(|j| {
            (rows.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-12)
        })
        .collect();
    (mean, std)
}

/// Mean squared error in the target's original units.
fn mse(pred: &[f32], y: &[f64], mean: f64, std: f64) -> f64 {
    pred.iter()
        .zip(y)
        .map(|(&p, &t)| (p as f64 * std + mean - t).powi(2))
        .sum::<f64>()
        / y.len() as f64
}

fn variance(y: &[f64]) -> f64 {
    let m = y.iter().sum::<f64>() / y.len() as f64;
    y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / y.len() as f64
}

/// Least squares with an intercept, by the normal equations in f64.
fn ols(x: &[f32], y: &[f32], x_new: &[f32]) -> Vec<f32> {
    const P: usize = D + 1;
    let mut a = [[0.0f64; P + 1]; P];
    for (row, &t) in x.chunks(D).zip(y) {
        let f: Vec<f64> = std::iter::once(1.0)
            .chain(row.iter().map(|&v| v as f64))
            .collect();
        for i in 0..P {
            for j in 0..P {
                a[i][j] += f[i] * f[j];
            }
            a[i][P] += f[i] * t as f64;
        }
    }
    // Gauss-Jordan elimination with partial pivoting.
    for c in 0..P {
        let p = (c..P)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, p);
        let pivot = a[c];
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let beta: Vec<f64> = (0..P).map(|i| a[i][P] / a[i][i]).collect();
    x_new
        .chunks(D)
        .map(|row| {
            (beta[0]
                + row
                    .iter()
                    .zip(&beta[1..])
                    .map(|(&v, b)| v as f64 * b)
                    .sum::<f64>()) as f32
        })
        .collect()
}
