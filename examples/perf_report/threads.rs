//! The threads section of the report: `train_step` and `forward` with one thread and
//! with one per core, paired in rounds, for every benchmark shape on the best kernel
//! set; and what idle workers cost.
//!
//! Threads are timed with the wall clock (the work runs on several threads): each
//! round times one batch with one thread and one with all threads back to back; the
//! speedup is the median over rounds of the ratio within a round.

use std::hint::black_box;
use std::time::{Duration, Instant};

use flowmlp::{Isa, Model};

use crate::clock::{median, process_cpu_ns};
use crate::common::{Shape, LR, SHAPES};

/// Median wall ns per call of `one` and of `many` over `rounds` paired batches (each
/// about `batch` long), and the median over rounds of `one / many`.
fn paired(
    rounds: usize,
    batch: Duration,
    one: &mut dyn FnMut(),
    many: &mut dyn FnMut(),
) -> (f64, f64, f64) {
    let per_call = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        let mut k = 0;
        while k < 3 || t.elapsed() < batch / 4 {
            f();
            k += 1;
        }
        ((batch.as_secs_f64() / (t.elapsed().as_secs_f64() / k as f64)) as usize).max(1)
    };
    let (k1, kn) = (per_call(one), per_call(many));
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    let time = |f: &mut dyn FnMut(), k: usize| {
        f();
        let t = Instant::now();
        for _ in 0..k {
            f();
        }
        t.elapsed().as_nanos() as f64 / k as f64
    };
    for _ in 0..rounds {
        let (x, y) = (time(one, k1), time(many, kn));
        a.push(x);
        b.push(y);
        r.push(x / y);
    }
    (median(a), median(b), median(r))
}

fn model(shape: &Shape, isa: Isa, threads: usize) -> Model {
    let mut m = shape.model(isa);
    m.set_threads(threads).unwrap();
    m
}

/// Share of one core the process used while `threads - 1` workers sat idle for
/// `secs` seconds after a train step.
fn idle_share(isa: Isa, threads: usize, secs: f64) -> Option<f64> {
    let shape = SHAPES.iter().find(|s| s.name == "medium")?;
    let (x, y) = shape.batch();
    let mut m = model(shape, isa, threads);
    m.train_step(&x, &y, LR).unwrap();
    // Let the workers finish spinning and park.
    std::thread::sleep(Duration::from_millis(50));
    let c0 = process_cpu_ns()?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let c1 = process_cpu_ns()?;
    black_box(&m);
    Some(100.0 * (c1 - c0) / t0.elapsed().as_nanos() as f64)
}

/// The section in Markdown; `peak` is one core's peak GFLOP/s of `isa`.
pub fn section(isa: Isa, peak: f64, quick: bool) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (rounds, batch) = if quick {
        (5, Duration::from_millis(20))
    } else {
        (15, Duration::from_millis(60))
    };
    let mut rows = String::new();
    for shape in &SHAPES {
        let (x, y) = shape.batch();
        for (what, flops) in [
            ("train_step", shape.train_flops()),
            ("forward", shape.forward_flops()),
        ] {
            let (mut m1, mut mn) = (model(shape, isa, 1), model(shape, isa, cores));
            let mut out1 = vec![0.0f32; shape.n * shape.m];
            let mut outn = out1.clone();
            let (ns1, nsn, speedup) = if what == "train_step" {
                paired(
                    rounds,
                    batch,
                    &mut || {
                        black_box(m1.train_step(black_box(&x), black_box(&y), LR).unwrap());
                    },
                    &mut || {
                        black_box(mn.train_step(black_box(&x), black_box(&y), LR).unwrap());
                    },
                )
            } else {
                paired(
                    rounds,
                    batch,
                    &mut || m1.forward(black_box(&x), Some(&mut out1)).unwrap(),
                    &mut || mn.forward(black_box(&x), Some(&mut outn)).unwrap(),
                )
            };
            let pct = 100.0 * flops as f64 / nsn / (peak * cores as f64);
            rows += &format!(
                "| {} | {} | {what} | {} | {} | {speedup:.2}× | {pct:.1} % |\n",
                shape.name,
                shape.topology(),
                crate::fmt_ns(ns1),
                crate::fmt_ns(nsn),
            );
        }
    }
    let idle = idle_share(isa, 3, if quick { 0.3 } else { 1.0 })
        .map_or("not measured (no process CPU clock)".to_string(), |p| {
            format!("{p:.2} % of one core")
        });
    format!(
        "\n## Threads ({}, {cores} threads against 1, wall clock)\n\n\
         | shape | d-h-m, batch | call | 1 thread ns | {cores} threads ns | speedup | \
         % of {cores} x one-core peak |\n|---|---|---|---:|---:|---:|---:|\n{rows}\n\
         Each round times a batch of calls with one thread and one with {cores} threads \
         back to back (wall clock; {rounds} rounds); ns are medians, the speedup is the \
         median of the ratios within a round. % of peak is against {cores} times the \
         one-core peak measured above ({peak:.1} GFLOP/s). Work below about a million \
         FLOPs per product stays on the calling thread, so the small shapes run as with \
         one thread. Two idle workers (a model with 3 threads, after a train step): \
         {idle} over a second of idleness (process CPU time).\n",
        isa.name()
    )
}
