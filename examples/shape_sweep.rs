//! Shape sweep: `train_step` and `forward` on shapes the benchmarks do not cover, on
//! the best kernel set, one thread, against this core's measured FMA peak; for one
//! row per call, also the bytes the call moves per second against the L1 and L2
//! read bandwidth measured in the same process.
//!
//! ```text
//! cargo run --release --example shape_sweep              about 3 minutes
//! cargo run --release --example shape_sweep -- --quick   fewer rounds
//! ```
//!
//! Shapes: 30 drawn with a fixed seed (d and every hidden width log-uniform in
//! 1..=2048, depth 1..=3, m in 1..=10, n log-uniform in 1..=1024), the n = 1 versions
//! of the six benchmark shapes, and 784-128-10 at n = 1. FLOPs count multiply-adds of
//! the matrix products (2 each): forward 2·n·Σ in·out, train step three times that
//! less the first layer's input gradient. Bytes of a one-row call: every weight is
//! read once by `forward`; the fused SGD `train_step` reads it twice (forward and
//! update) and writes the new value (its gradient stays as factors), 12 bytes per
//! weight, and 4 more for the input gradient of each hidden layer above the first. Each
//! shape's calls are timed in rounds beside the peak loop (the % is the median of
//! the per-round ratios), in this thread's CPU time where Linux has it. Every other
//! kernel set the CPU runs times its train step in the same rounds (shapes under 5
//! GFLOP per step), to show whether a set other than AUTO's choice would be faster
//! for a shape; the end of the report gives each model's `Model::choices`.
//!
//! Classes and the targets of issue 16 (train_step; forward too for one row):
//! `row` one row, 5,000 or more weights that fit in L2 (train 50 %, forward 60 %);
//! `wide` n >= 64 and every input and hidden width >= 64 (88 %); `short` n >= 16
//! and some layer's input width <= 32 (75 %); `-` no target.

use std::hint::black_box;
use std::time::{Duration, Instant};

use flowmlp::{Config, Isa, Model};

#[path = "perf_report/clock.rs"]
mod clock;
#[path = "perf_report/peak.rs"]
mod peak;

use clock::median;

/// A shape of the sweep.
struct Shape {
    d: usize,
    hidden: Vec<usize>,
    m: usize,
    n: usize,
}

impl Shape {
    fn dims(&self) -> Vec<usize> {
        let mut v = vec![self.d];
        v.extend(&self.hidden);
        v.push(self.m);
        v
    }
    fn name(&self) -> String {
        let d: Vec<String> = self.dims().iter().map(|v| v.to_string()).collect();
        format!("{} n={}", d.join("-"), self.n)
    }
    fn macs(&self, skip_first: bool) -> f64 {
        let d = self.dims();
        d.windows(2)
            .skip(usize::from(skip_first))
            .map(|w| (w[0] * w[1]) as f64)
            .sum()
    }
    fn forward_flops(&self) -> f64 {
        2.0 * self.n as f64 * self.macs(false)
    }
    fn train_flops(&self) -> f64 {
        self.forward_flops() + 2.0 * self.n as f64 * (self.macs(false) + self.macs(true))
    }
    /// The class and its targets (train, forward) in % of peak, for an L2 of `l2`
    /// bytes (see the module docs).
    fn class(&self, l2: usize) -> (&'static str, Option<(f64, f64)>) {
        let widths = || core::iter::once(self.d).chain(self.hidden.iter().copied());
        let weights = self.macs(false);
        if self.n == 1 {
            if weights >= 5000.0 && 4.0 * weights <= l2 as f64 {
                ("row", Some((50.0, 60.0)))
            } else {
                ("-", None)
            }
        } else if self.n >= 64 && widths().all(|w| w >= 64) {
            ("wide", Some((88.0, 0.0)))
        } else if self.n >= 16 && widths().any(|w| w <= 32) {
            ("short", Some((75.0, 0.0)))
        } else {
            ("-", None)
        }
    }
}

/// This core's L2 in bytes (Linux's cache description), else 512 KiB.
fn l2_bytes() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size")
        .ok()
        .and_then(|s| s.trim().strip_suffix('K')?.parse::<usize>().ok())
        .map_or(512 << 10, |k| k << 10)
}

/// SplitMix64: the sweep's shapes are the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Log-uniform in `1..=max`.
    fn log_uniform(&mut self, max: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((max as f64).powf(u).round() as usize).clamp(1, max)
    }
}

fn shapes() -> Vec<Shape> {
    let mut rng = Rng(2026);
    let mut v: Vec<Shape> = (0..30)
        .map(|_| {
            let depth = 1 + (rng.next() % 3) as usize;
            Shape {
                d: rng.log_uniform(2048),
                hidden: (0..depth).map(|_| rng.log_uniform(2048)).collect(),
                m: 1 + (rng.next() % 10) as usize,
                n: rng.log_uniform(1024),
            }
        })
        .collect();
    for (d, hidden, m) in [
        (8, vec![32], 1),
        (16, vec![64], 1),
        (10, vec![64], 1),
        (64, vec![256], 1),
        (256, vec![1024], 1),
        (64, vec![256, 256, 256], 4),
        (784, vec![128], 10),
    ] {
        v.push(Shape { d, hidden, m, n: 1 });
    }
    v
}

/// This thread's CPU time in ns, or the wall clock where there is none.
fn now_ns(origin: Instant) -> f64 {
    clock::thread_cpu_ns().unwrap_or_else(|| origin.elapsed().as_nanos() as f64)
}

/// Median ns per call of each item over `rounds` rounds of batches of about
/// `batch`, the items of a round back to back.
fn timed(rounds: usize, batch: Duration, items: &mut [&mut dyn FnMut()]) -> Vec<Vec<f64>> {
    let origin = Instant::now();
    let sizes: Vec<usize> = items
        .iter_mut()
        .map(|f| {
            let t = Instant::now();
            let mut k = 0usize;
            while k < 2 || t.elapsed() < batch / 4 {
                f();
                k += 1;
            }
            ((batch.as_secs_f64() * k as f64 / t.elapsed().as_secs_f64()) as usize).max(1)
        })
        .collect();
    let mut out = vec![Vec::new(); items.len()];
    for _ in 0..rounds {
        for (i, f) in items.iter_mut().enumerate() {
            f();
            let t = now_ns(origin);
            for _ in 0..sizes[i] {
                f();
            }
            out[i].push((now_ns(origin) - t) / sizes[i] as f64);
        }
    }
    out
}

/// Sum of `v` by 32-float blocks (the compiler vectorizes the lanes).
#[inline(always)]
fn sum_blocks(v: &[f32]) -> [f32; 32] {
    let mut acc = [0.0f32; 32];
    for c in v.chunks_exact(32) {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc
}

/// `sum_blocks` compiled for AVX2 (32-byte loads, as the kernels use).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_blocks_avx2(v: &[f32]) -> [f32; 32] {
    sum_blocks(v)
}

/// Read bandwidth (bytes/ns) over a buffer of `bytes`, best of several passes.
fn read_bandwidth(bytes: usize) -> f64 {
    let v = vec![1.0f32; bytes / 4];
    let passes = (64 << 20) / bytes;
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..passes {
            let v = black_box(&v[..]);
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx2.is_supported() {
                // SAFETY: AVX2 was detected.
                black_box(unsafe { sum_blocks_avx2(v) });
                continue;
            }
            black_box(sum_blocks(v));
        }
        best = best.min(t.elapsed().as_nanos() as f64);
    }
    (bytes * passes) as f64 / best
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, batch) = if quick {
        (5, Duration::from_millis(10))
    } else {
        (11, Duration::from_millis(30))
    };
    let isa = Isa::ALL
        .into_iter()
        .rfind(|i| i.is_supported())
        .unwrap_or(Isa::Scalar);
    let peak_loop = peak::PeakLoop::new(isa).expect("a supported set");
    const PEAK_ITERS: u64 = 1 << 12;
    let peak_flops = peak_loop.flops_per_iter() * PEAK_ITERS as f64;
    let (l1, l2) = (read_bandwidth(16 << 10), read_bandwidth(256 << 10));
    println!("# flowmlp shape sweep ({}, one thread)\n", isa.name());
    println!(
        "Peak: {:.1} GFLOP/s (best of the peak loop); read bandwidth: L1 (16 KiB) {l1:.0} \
         GB/s, L2 (256 KiB) {l2:.0} GB/s.\n",
        peak::measure_gflops(isa).unwrap_or(0.0)
    );
    let l2_size = l2_bytes();
    println!(
        "| shape | class | weights | train_step ns | % of peak | forward ns | % of peak | \
         one row: train GB/s (vs L2) | forward GB/s (vs L2) | other sets' train time |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios: Vec<(Isa, f64)> = Vec::new();
    let mut chosen: Vec<String> = Vec::new();
    // (class, targets, train %, forward %)
    type Row = (&'static str, Option<(f64, f64)>, f64, f64);
    let mut summary: Vec<Row> = Vec::new();
    for s in shapes() {
        let cfg = Config::new(s.d, &s.hidden, s.m)
            .max_batch(s.n)
            .seed(1)
            .isa(isa);
        let Ok(mut train) = Model::new(&cfg) else {
            println!("| {} | (does not fit in memory) | | | | | | | |", s.name());
            continue;
        };
        let mut fwd = Model::new(&cfg).expect("as above");
        chosen.push(format!("{}:\n```\n{}```", s.name(), train.choices()));
        let mut r = Rng(s.n as u64);
        let x: Vec<f32> = (0..s.n * s.d)
            .map(|_| (r.next() % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let y: Vec<f32> = (0..s.n * s.m)
            .map(|_| (r.next() % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let mut out = vec![0.0f32; s.n * s.m];
        // Tiny steps: the weights stay where they are for the whole run.
        let lr = 1e-9;
        let big = s.train_flops() > 5e9;
        let rounds = if big { 3 } else { rounds };
        // Every other set this CPU runs beside AUTO's choice, where it takes under a
        // few seconds.
        let mut others: Vec<(Isa, Model)> = Isa::ALL
            .into_iter()
            .filter(|&o| !big && o != isa && o.is_supported())
            .filter_map(|o| Some((o, Model::new(&cfg.isa(o)).ok()?)))
            .collect();
        let (xr, yr) = (&x, &y);
        let mut other_calls: Vec<_> = others
            .iter_mut()
            .map(|(_, m)| {
                move || {
                    black_box(m.train_step(black_box(xr), yr, lr).unwrap());
                }
            })
            .collect();
        let mut train_call = || {
            black_box(train.train_step(black_box(&x), &y, lr).unwrap());
        };
        let mut fwd_call = || fwd.forward(black_box(&x), Some(&mut out)).unwrap();
        let mut peak_call = || peak_loop.run(black_box(PEAK_ITERS));
        let mut calls: Vec<&mut dyn FnMut()> = vec![&mut train_call, &mut fwd_call, &mut peak_call];
        for c in other_calls.iter_mut() {
            calls.push(c);
        }
        let ns = timed(rounds, batch, &mut calls);
        let pct = |i: usize, flops: f64| {
            median(
                ns[i]
                    .iter()
                    .zip(&ns[2])
                    .map(|(t, p)| 100.0 * (flops / t) / (peak_flops / p)),
            )
        };
        let (pt, pf) = (pct(0, s.train_flops()), pct(1, s.forward_flops()));
        let (tn, fn_) = (median(ns[0].iter().copied()), median(ns[1].iter().copied()));
        let weights = s.macs(false);
        let row = if s.n == 1 {
            let bytes = 12.0 * weights + 4.0 * s.macs(true)
                - 4.0 * (s.m * s.hidden[s.hidden.len() - 1]) as f64;
            let (bt, bf) = (bytes / tn, 4.0 * weights / fn_);
            format!(
                "{bt:.1} ({:.0} %) | {bf:.1} ({:.0} %)",
                100.0 * bt / l2,
                100.0 * bf / l2
            )
        } else {
            " | ".to_string()
        };
        let (class, target) = s.class(l2_size);
        // How much longer each other set's train step takes (median of the
        // per-round ratios): below 1 would make it the better set for this shape.
        let mut vs = String::new();
        for (i, (o, _)) in others.iter().enumerate() {
            let v = median(ns[3 + i].iter().zip(&ns[0]).map(|(a, b)| a / b));
            ratios.push((*o, v));
            vs += &format!("{} {v:.1}x ", o.name());
        }
        println!(
            "| {} | {class} | {weights:.0} | {tn:.0} | {pt:.1} | {fn_:.0} | {pf:.1} | {row} | {vs} |",
            s.name()
        );
        summary.push((class, target, pt, pf));
    }
    for o in Isa::ALL {
        let of: Vec<f64> = ratios.iter().filter(|r| r.0 == o).map(|r| r.1).collect();
        if of.is_empty() {
            continue;
        }
        let faster = of.iter().filter(|&&v| v < 1.0).count();
        println!(
            "\nKernel set per shape: the {} set's train step took {:.1}x to {:.1}x {}'s \
             time; it was faster on {faster} of {} shapes.",
            o.name(),
            of.iter().copied().fold(f64::INFINITY, f64::min),
            of.iter().copied().fold(0.0, f64::max),
            isa.name(),
            of.len()
        );
    }
    println!(
        "\n{} shapes. Per class (targets of issue 16):\n",
        summary.len()
    );
    println!(
        "| class | shapes | target train / forward | meet it | train % of peak: min / median |"
    );
    println!("|---|---:|---|---:|---|");
    for class in ["row", "wide", "short"] {
        let of: Vec<_> = summary.iter().filter(|s| s.0 == class).collect();
        let Some((tt, tf)) = of.first().and_then(|s| s.1) else {
            continue;
        };
        let met = of.iter().filter(|s| s.2 >= tt && s.3 >= tf).count();
        let train: Vec<f64> = of.iter().map(|s| s.2).collect();
        let min = train.iter().copied().fold(f64::INFINITY, f64::min);
        let fwd = if tf > 0.0 {
            format!(" / {tf:.0} %")
        } else {
            String::new()
        };
        println!(
            "| {class} | {} | {tt:.0} %{fwd} | {met} | {min:.1} / {:.1} |",
            of.len(),
            median(train.iter().copied())
        );
    }
    println!(
        "\n<details><summary>What each model chose for its shape (<code>Model::choices</code>)</summary>\n"
    );
    for c in &chosen {
        println!("{c}");
    }
    println!("</details>");
}
