//! Throughput of `train_step` per kernel set on the course network
//! (d = 10, h = 64, m = 1, n = 32). The full suite is `benches/throughput.rs`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flowmlp::{Config, Isa, Model};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn course(c: &mut Criterion) {
    let (d, h, m, n) = (10, 64, 1, 32);
    let mut rng = StdRng::seed_from_u64(1);
    let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<f32> = (0..n * m).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(n as u64));
    for isa in Isa::ALL.into_iter().filter(|i| i.is_supported()) {
        let mut model = Model::new(&Config::new(d, &[h], m).max_batch(n).seed(1).isa(isa)).unwrap();
        group.bench_function(BenchmarkId::new(isa.name(), "course d10 h64 m1 n32"), |b| {
            b.iter(|| model.train_step(&x, &y, 1e-4).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, course);
criterion_main!(benches);
