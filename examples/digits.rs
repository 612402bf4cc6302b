//! Classify handwritten digits with 64 -> 64 -> 10, softmax cross-entropy and Adam.
//!
//! Run: `cargo run --release --example digits`
//!
//! Data: `examples/data/digits.csv` (1797 images of 8 x 8 pixels with grey levels
//! 0..16 and their labels 0..9; the UCI "Optical Recognition of Handwritten Digits"
//! test set, via scikit-learn's `load_digits`). Pixels are scaled to [0, 1], labels
//! become one-hot target rows, a fixed 25% of the rows is held out, and the model
//! trains on mini-batches. Exits with an error when the held-out accuracy is below
//! 95%.

use flowmlp::{Config, Loss, Model, Optimizer};

mod common;
use common::{epoch, read_csv, shuffled};

const DATA: &str = include_str!("data/digits.csv");
const D: usize = 64;
const HIDDEN: usize = 64;
const CLASSES: usize = 10;
const BATCH: usize = 32;
const EPOCHS: usize = 30;
const LEARNING_RATE: f32 = 2e-3;
const SEED: u64 = 2024;
/// The accuracy the example must reach on the held-out rows.
const REQUIRED: f64 = 0.95;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (x, labels) = parse(DATA)?;
    let rows = labels.len();
    let order = shuffled(rows, SEED);
    let n_test = rows / 4;
    let (test, train) = order.split_at(n_test);

    // Grey levels 0..16 to [0, 1]; labels to one-hot rows.
    let scale = |i: usize| x[i * D..(i + 1) * D].iter().map(|&v| v / 16.0);
    let xtr: Vec<f32> = train.iter().flat_map(|&i| scale(i)).collect();
    let ytr: Vec<f32> = train
        .iter()
        .flat_map(|&i| {
            let label = labels[i] as usize;
            (0..CLASSES).map(move |c| f32::from(c == label))
        })
        .collect();
    let xte: Vec<f32> = test.iter().flat_map(|&i| scale(i)).collect();
    let yte: Vec<u32> = test.iter().map(|&i| labels[i]).collect();

    let config = Config::new(D, &[HIDDEN], CLASSES)
        .max_batch(BATCH.max(n_test))
        .seed(SEED)
        .loss(Loss::CrossEntropy);
    let mut model = Model::new(&config)?;
    model.set_optimizer(Optimizer::ADAM)?;
    println!(
        "flowmlp {} | kernel set: {} | {} -> {} -> {}, cross-entropy, Adam | {} train rows, \
         {} held out | batch {}, lr {}",
        flowmlp::VERSION,
        model.isa().name(),
        D,
        HIDDEN,
        CLASSES,
        train.len(),
        n_test,
        BATCH,
        LEARNING_RATE
    );
    println!(
        "{:>6}  {:>12}  {:>18}",
        "epoch", "train loss", "held-out accuracy"
    );

    let mut pred = vec![0u32; n_test];
    let start = std::time::Instant::now();
    let mut steps = 0usize;
    for e in 1..=EPOCHS {
        // Visit the training rows in a new fixed order every epoch.
        let perm = shuffled(train.len(), SEED + e as u64);
        let (loss, n) = epoch(&mut model, &xtr, &ytr, &perm, BATCH, LEARNING_RATE)?;
        steps += n;
        model.predict_class(&xte, &mut pred)?;
        println!(
            "{e:>6}  {loss:>12.4}  {:>17.2}%",
            100.0 * accuracy(&pred, &yte)
        );
    }
    let elapsed = start.elapsed();

    model.predict_class(&xte, &mut pred)?;
    let acc = accuracy(&pred, &yte);
    println!(
        "{steps} train steps in {:.1} ms ({:.2} us per step)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / steps as f64
    );
    let wrong = pred.iter().zip(&yte).filter(|(p, t)| p != t).count();
    println!(
        "held-out accuracy: {:.2}% ({} of {n_test} wrong)",
        100.0 * acc,
        wrong
    );
    if acc < REQUIRED {
        return Err(format!(
            "held-out accuracy {:.2}% is below {:.0}%",
            100.0 * acc,
            100.0 * REQUIRED
        )
        .into());
    }
    Ok(())
}

/// Pixels (row-major, `D` per image) and labels.
fn parse(text: &str) -> Result<(Vec<f32>, Vec<u32>), Box<dyn std::error::Error>> {
    let rows = read_csv(text, D + 1)?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for r in rows.chunks(D + 1) {
        let label = r[D];
        if !(0.0..CLASSES as f64).contains(&label) || label.fract() != 0.0 {
            return Err(format!("label {label} is not one of 0..{CLASSES}").into());
        }
        x.extend(r[..D].iter().map(|&v| v as f32));
        y.push(label as u32);
    }
    Ok((x, y))
}

/// Share of predictions equal to the labels.
fn accuracy(pred: &[u32], labels: &[u32]) -> f64 {
    let right = pred.iter().zip(labels).filter(|(p, t)| p == t).count();
    right as f64 / labels.len() as f64
}
