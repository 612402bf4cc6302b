//! Criterion throughput of `train_step`, `forward` and `predict` (with a workspace
//! for all `n` rows) for every kernel set this machine runs, on the six benchmark
//! shapes of `common::SHAPES`.
//!
//! Benchmark ids are `group/kernel set/shape` (e.g. `train_step/avx2/course`), and
//! the throughput is `n` elements per call, so criterion reports samples/s. Inputs
//! come from a fixed seed; the timed closures only call the model, which does not
//! allocate. `cargo bench --bench throughput -- --quick` runs a short pass, and a
//! filter selects a subset (`-- train_step/avx2`). The one-table summary against
//! the measured peak and a matrixmultiply baseline is `examples/perf_report`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

mod common;
use common::{kernel_sets, Shape, LR, SHAPES};

/// Fewer samples for the shapes whose scalar calls take tens of milliseconds, so a
/// full run stays within minutes.
fn sample_size(shape: &Shape) -> usize {
    if shape.train_flops() > 100_000_000 {
        10
    } else {
        100
    }
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    for shape in &SHAPES {
        let (x, y) = shape.batch();
        group.throughput(Throughput::Elements(shape.n as u64));
        group.sample_size(sample_size(shape));
        for isa in kernel_sets() {
            let mut model = shape.model(isa);
            group.bench_function(BenchmarkId::new(isa.name(), shape.name), |b| {
                b.iter(|| model.train_step(black_box(&x), black_box(&y), LR).unwrap())
            });
        }
    }
    group.finish();
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    for shape in &SHAPES {
        let (x, _) = shape.batch();
        let mut out = vec![0.0f32; shape.n * shape.m];
        group.throughput(Throughput::Elements(shape.n as u64));
        group.sample_size(sample_size(shape));
        for isa in kernel_sets() {
            let mut model = shape.model(isa);
            group.bench_function(BenchmarkId::new(isa.name(), shape.name), |b| {
                b.iter(|| {
                    model.forward(black_box(&x), Some(&mut out)).unwrap();
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn predict(c: &mut Criterion) {
    let mut group = c.benchmark_group("predict");
    for shape in &SHAPES {
        let (x, _) = shape.batch();
        let mut out = vec![0.0f32; shape.n * shape.m];
        group.throughput(Throughput::Elements(shape.n as u64));
        group.sample_size(sample_size(shape));
        for isa in kernel_sets() {
            let model = shape.model(isa);
            let mut workspace = vec![0u8; model.predict_workspace_size(shape.n)];
            group.bench_function(BenchmarkId::new(isa.name(), shape.name), |b| {
                b.iter(|| {
                    model
                        .predict(black_box(&x), &mut out, &mut workspace)
                        .unwrap();
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_step, forward, predict);
criterion_main!(benches);
