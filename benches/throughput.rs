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
//!
//! The optimizers: `optimizer_step/<optimizer>/<kernel set>/<shape>` times `step`
//! alone (the update from gradients already there; throughput in parameters), and
//! `optimizer_train_step/<optimizer>/<kernel set>/<shape>` the whole `train_step`
//! with that optimizer (plain SGD's is `train_step` above), for SGD, momentum 0.9 and
//! Adam on the `OPTIMIZER_SHAPES`.
//!
//! Threads: `threads/<call>/<kernel set>/<shape>/<threads>` times `train_step` and
//! `forward` on the best kernel set with 1, 2, 4, ... threads up to the cores this
//! process may use (`Model::set_threads`), on every shape.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowmlp::Optimizer;

mod common;
use common::{kernel_sets, Shape, LR, SHAPES};

/// The optimizers of the optimizer groups.
const OPTIMIZERS: [(&str, Optimizer); 3] = [
    ("sgd", Optimizer::SGD),
    ("momentum", Optimizer::momentum(0.9, false)),
    ("adam", Optimizer::ADAM),
];

/// The shapes of the optimizer groups (by name in `SHAPES`).
const OPTIMIZER_SHAPES: [&str; 3] = ["course", "medium", "deep"];

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

fn optimizer_shapes() -> impl Iterator<Item = &'static Shape> {
    SHAPES.iter().filter(|s| OPTIMIZER_SHAPES.contains(&s.name))
}

fn optimizer_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer_step");
    for shape in optimizer_shapes() {
        let (x, y) = shape.batch();
        for isa in kernel_sets() {
            for (name, opt) in OPTIMIZERS {
                let mut model = shape.model(isa);
                model.set_optimizer(opt).unwrap();
                // Gradients to step with; every step reuses them.
                model.forward(&x, None).unwrap();
                model.backward(&y).unwrap();
                group.throughput(Throughput::Elements(model.param_count() as u64));
                let id = BenchmarkId::new(format!("{name}/{}", isa.name()), shape.name);
                group.bench_function(id, |b| b.iter(|| model.step(black_box(LR)).unwrap()));
            }
        }
    }
    group.finish();
}

fn optimizer_train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer_train_step");
    for shape in optimizer_shapes() {
        let (x, y) = shape.batch();
        group.throughput(Throughput::Elements(shape.n as u64));
        group.sample_size(sample_size(shape));
        for isa in kernel_sets() {
            for (name, opt) in OPTIMIZERS.iter().skip(1) {
                let mut model = shape.model(isa);
                model.set_optimizer(*opt).unwrap();
                let id = BenchmarkId::new(format!("{name}/{}", isa.name()), shape.name);
                group.bench_function(id, |b| {
                    b.iter(|| model.train_step(black_box(&x), black_box(&y), LR).unwrap())
                });
            }
        }
    }
    group.finish();
}

/// The thread counts of the `threads` group: powers of two below the core count,
/// and the core count.
fn thread_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let mut v: Vec<usize> = (0..)
        .map(|k| 1usize << k)
        .take_while(|&t| t < cores)
        .collect();
    v.push(cores);
    v
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    let Some(isa) = kernel_sets().last().copied() else {
        return;
    };
    for shape in &SHAPES {
        let (x, y) = shape.batch();
        let mut out = vec![0.0f32; shape.n * shape.m];
        group.throughput(Throughput::Elements(shape.n as u64));
        group.sample_size(sample_size(shape));
        for t in thread_counts() {
            let mut model = shape.model(isa);
            model.set_threads(t).unwrap();
            let id = format!("train_step/{}/{}", isa.name(), shape.name);
            group.bench_function(BenchmarkId::new(id, t), |b| {
                b.iter(|| model.train_step(black_box(&x), black_box(&y), LR).unwrap())
            });
            let id = format!("forward/{}/{}", isa.name(), shape.name);
            group.bench_function(BenchmarkId::new(id, t), |b| {
                b.iter(|| {
                    model.forward(black_box(&x), Some(&mut out)).unwrap();
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    train_step,
    forward,
    threads,
    predict,
    optimizer_step,
    optimizer_train_step
);
criterion_main!(benches);
