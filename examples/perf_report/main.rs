//! One-run performance report: flowmlp against this core's measured peak and against
//! a matrixmultiply baseline, for every kernel set this machine runs.
//!
//! ```text
//! cargo run --release --example perf_report              full run (a few minutes)
//! cargo run --release --example perf_report -- --quick   same table, under a minute
//! cargo run --release --example perf_report -- --threads the threads section only
//! ```
//!
//! The report is Markdown, ready to paste into the README:
//!
//! 1. the CPU, date and command;
//! 2. a check that the baseline computes what flowmlp's scalar set computes (same
//!    parameters and batch: same loss and updated parameters within 1e-4 relative);
//! 3. the peak f32 FMA throughput of one core per kernel set: the best of eight
//!    rounds of `peak::measure_gflops` (register-only FMA chains) before the
//!    timings, and the median and range of the same loop timed beside them;
//! 4. for `train_step` and for `forward`, one row per shape and kernel set plus one
//!    for the baseline: median ns per call, samples/s, GFLOP/s by the FLOP model of
//!    `benches/common/mod.rs`, % of that kernel set's peak, arena bytes, and the
//!    speedup over the baseline.
//! 5. the optimizers (`optim.rs`): `step` alone for SGD, momentum and Adam at the
//!    medium shape, and as a share of a `train_step` there.
//!
//! Timing (see `rounds`): per shape, the baseline, every kernel set and every set's
//! peak loop are warmed up, then run in rounds, each round one batch of back-to-back
//! calls of each (batches sized from the warm-up, each after one untimed call that
//! brings its data back into the caches). ns/call is the median over rounds; % of
//! peak and the speedup are medians over rounds of ratios within a round, so a slow
//! moment of a shared host weighs on both sides of each ratio. Batches are timed
//! with this thread's CPU time (Linux `CLOCK_THREAD_CPUTIME_ID`), so time the thread
//! spends descheduled does not count; elsewhere, with the wall clock. The report
//! prints the share of wall time the thread was on a CPU: well below 100 % means
//! other work competed for the core (and its caches), and the numbers are less
//! reliable. One thread; nothing is pinned. The baseline's % is against the best
//! kernel set's peak (matrixmultiply picks its own SIMD kernels at run time).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowmlp::{Config, Isa, Model};

mod baseline;
mod clock;
#[path = "../../benches/common/mod.rs"]
mod common;
mod optim;
mod peak;
mod threads;

use baseline::Baseline;
use clock::{median, thread_cpu_ns};
use common::{kernel_sets, Shape, LR, SHAPES};

/// How long to measure each row.
struct Budget {
    /// Calls run this long before timing (at least two calls).
    warm: Duration,
    /// Target length of one timed batch of calls (at least one call).
    batch: Duration,
    /// Target timed length of a row.
    total: Duration,
    min_batches: usize,
    max_batches: usize,
}

const FULL: Budget = Budget {
    warm: Duration::from_millis(300),
    batch: Duration::from_millis(10),
    total: Duration::from_millis(1500),
    min_batches: 15,
    max_batches: 1000,
};

/// `--quick`: a tenth of the time per row, same table (about 25 s on a
/// 2-core AMD EPYC).
const QUICK: Budget = Budget {
    warm: Duration::from_millis(40),
    batch: Duration::from_millis(2),
    total: Duration::from_millis(150),
    min_batches: 5,
    max_batches: 200,
};

/// The batch clock: this thread's CPU time when available, else the wall clock.
struct Clock {
    wall: Instant,
    cpu: bool,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu_ns().is_some(),
        }
    }

    /// ns since an arbitrary origin.
    fn now(&self) -> f64 {
        match self.cpu.then(thread_cpu_ns).flatten() {
            Some(ns) => ns,
            None => self.wall.elapsed().as_nanos() as f64,
        }
    }
}

/// Rounds of peak measurements before the timings (each about 12 ms per kernel set).
const PEAK_ROUNDS: usize = 8;

/// Iterations of the peak loop per timed call (a few microseconds).
const PEAK_ITERS: u64 = 1 << 12;

/// A timed item: `f(k)` makes `k` back-to-back calls of the code under test, so that
/// the batch loop is compiled with that code (no indirect call per timed call, which
/// would weigh on a call of a few tens of ns).
type Calls<'a> = dyn FnMut(usize) + 'a;

/// `f` as a `Calls` item.
fn calls(mut f: impl FnMut()) -> impl FnMut(usize) {
    move |k| {
        for _ in 0..k {
            f();
        }
    }
}

/// Warm `f` up; returns the calls per batch that make a batch last `budget.batch`,
/// and the seconds such a batch takes.
fn warm_up(budget: &Budget, f: &mut Calls) -> (usize, f64) {
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 2 || start.elapsed() < budget.warm {
        f(1);
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / f64::from(calls);
    let per_batch = ((budget.batch.as_secs_f64() / per_call) as usize).max(1);
    (per_batch, per_call * per_batch as f64)
}

/// Time `items` in rounds: after a warm-up of each, every round runs one batch of
/// every item back to back, so that the items of a round share the machine's state
/// (clock, other tenants). Each batch starts with one untimed call that brings the
/// item's data back into the caches the other items used: the timed calls are in
/// the steady state of a training loop, not cold. Returns, per item, the mean ns per
/// call of its batch in each round.
fn rounds(budget: &Budget, clock: &Clock, items: &mut [&mut Calls]) -> Vec<Vec<f64>> {
    let sizes: Vec<(usize, f64)> = items.iter_mut().map(|f| warm_up(budget, *f)).collect();
    // Counting the batches' timed calls only: the untimed ones add at most one call each.
    let round_secs: f64 = sizes.iter().map(|s| s.1).sum();
    let rounds = ((budget.total.as_secs_f64() * items.len() as f64 / round_secs) as usize)
        .clamp(budget.min_batches, budget.max_batches);
    let mut ns = vec![Vec::with_capacity(rounds); items.len()];
    for _ in 0..rounds {
        for (i, f) in items.iter_mut().enumerate() {
            let per_batch = sizes[i].0;
            f(1);
            let t = clock.now();
            f(per_batch);
            ns[i].push((clock.now() - t) / per_batch as f64);
        }
    }
    ns
}

/// Median over batches of the mean ns per call of `f` (one item in rounds).
fn median_ns(budget: &Budget, clock: &Clock, f: &mut Calls) -> f64 {
    median(rounds(budget, clock, &mut [f]).remove(0))
}

/// What one shape's rounds measured for one kernel set (or the baseline): ns per
/// call in each round, and the paired peak GFLOP/s of the set it is compared with.
struct Paired<'a> {
    ns: &'a [f64],
    peak: Option<&'a [f64]>,
    baseline: &'a [f64],
}

impl Paired<'_> {
    /// Median ns per call.
    fn ns(&self) -> f64 {
        median(self.ns.iter().copied())
    }

    /// Median over rounds of `% of peak` in that round.
    fn pct(&self, flops: u64) -> Option<f64> {
        let peak = self.peak?;
        Some(median(
            self.ns
                .iter()
                .zip(peak)
                .map(|(ns, p)| 100.0 * flops as f64 / ns / p),
        ))
    }

    /// The fastest round's ns per call, and its % of the set's median paired peak:
    /// what the code does when nothing else slows the core.
    fn best(&self, flops: u64) -> (f64, Option<f64>) {
        let ns = self.ns.iter().copied().fold(f64::INFINITY, f64::min);
        let pct = self
            .peak
            .map(|p| 100.0 * flops as f64 / ns / median(p.iter().copied()));
        (ns, pct)
    }

    /// Median over rounds of the baseline's time over this one's.
    fn speedup(&self) -> f64 {
        median(self.ns.iter().zip(self.baseline).map(|(ns, b)| b / ns))
    }
}

/// The CPU as /proc/cpuinfo names it, with family/model when the name is generic.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("model name")
        .or_else(|| field("Hardware"))
        .or_else(|| field("CPU part").map(|p| format!("CPU part {p}")))
        .unwrap_or_else(|| "unknown CPU".to_string());
    match (field("cpu family"), field("model")) {
        (Some(f), Some(m)) => format!("{name} (family {f}, model {m})"),
        _ => name,
    }
}

/// The current UTC date and time, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `git describe` of the working tree, when git is there.
fn revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// `max |a - b| / max |b|`.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| f64::from(y.abs())).fold(0.0, f64::max);
    num / den.max(f64::MIN_POSITIVE)
}

/// One train step of flowmlp's scalar set and of the baseline from the same
/// parameters and batch; returns (loss, parameter, gradient) relative differences.
fn check_baseline(shape: &Shape) -> (f64, f64, f64) {
    // A large rate makes the update a visible part of the parameters.
    const CHECK_LR: f32 = 0.05;
    let (x, y) = shape.batch();
    let mut model = shape.model(Isa::Scalar);
    let mut before = vec![0.0; model.param_count()];
    model.get_params(&mut before).unwrap();
    let mut base = Baseline::new(&shape.dims(), shape.n);
    base.set_params(&before);
    let loss_f = model.train_step(&x, &y, CHECK_LR).unwrap();
    let loss_b = base.train_step(&x, &y, CHECK_LR);
    let mut after = vec![0.0; model.param_count()];
    model.get_params(&mut after).unwrap();
    let step = |p: &[f32]| -> Vec<f32> { before.iter().zip(p).map(|(b, a)| b - a).collect() };
    (
        f64::from((loss_f - loss_b).abs()) / f64::from(loss_b.abs()),
        rel_diff(&after, base.params()),
        rel_diff(&step(&after), &step(base.params())),
    )
}

/// One measured row.
struct Row {
    set: String,
    ns: f64,
    flops: u64,
    n: usize,
    pct: Option<f64>,
    best: (f64, Option<f64>),
    bytes: usize,
    speedup: f64,
}

impl Row {
    fn new(set: &str, p: &Paired, flops: u64, n: usize, bytes: usize) -> Row {
        Row {
            set: set.to_string(),
            ns: p.ns(),
            flops,
            n,
            pct: p.pct(flops),
            best: p.best(flops),
            bytes,
            speedup: p.speedup(),
        }
    }

    fn markdown(&self, shape: &Shape, with_bytes: bool) -> String {
        let gflops = self.flops as f64 / self.ns;
        let pct = self.pct.map_or("–".to_string(), |p| format!("{p:.1}"));
        let bytes = if with_bytes {
            format!(" {} |", self.bytes)
        } else {
            String::new()
        };
        let best = match self.best {
            (ns, Some(p)) => format!("{} ({p:.1} %)", fmt_ns(ns)),
            (ns, None) => fmt_ns(ns),
        };
        format!(
            "| {} | {} | {} | {} | {} | {:.2} | {} |{} {:.2}× | {best} |",
            shape.name,
            shape.topology(),
            self.set,
            fmt_ns(self.ns),
            fmt_count(self.n as f64 * 1e9 / self.ns),
            gflops,
            pct,
            bytes,
            self.speedup,
        )
    }
}

/// ns with three significant digits and thousands separators.
fn fmt_ns(ns: f64) -> String {
    if ns < 100.0 {
        format!("{ns:.1}")
    } else {
        fmt_count(ns)
    }
}

/// An integer count with thousands separators, rounded to three significant digits.
fn fmt_count(v: f64) -> String {
    let digits = v.abs().log10().floor() as i32;
    let unit = 10f64.powi((digits - 2).max(0));
    let r = ((v / unit).round() * unit) as u64;
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: perf_report [--quick] [--threads]   (Markdown report on stdout; \
             --threads: the peak and the threads section only)"
        );
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let threads_only = args.iter().any(|a| a == "--threads");
    if let Some(bad) = args.iter().find(|a| *a != "--quick" && *a != "--threads") {
        eprintln!("perf_report: unknown argument {bad} (try --help)");
        std::process::exit(2);
    }
    let budget = if quick { &QUICK } else { &FULL };
    let started = Instant::now();
    let sets = kernel_sets();

    println!("# flowmlp performance report\n");
    println!("- CPU: {}", cpu_model());
    println!("- Date: {}", utc_now());
    println!(
        "- Command: `cargo run --release --example perf_report{}`",
        if quick { " -- --quick" } else { "" }
    );
    println!(
        "- flowmlp {}{}, one thread, kernel sets run here: {}",
        flowmlp::VERSION,
        revision().map_or(String::new(), |r| format!(" ({r})")),
        sets.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
    );

    // 1. Peak before the timings, in this process (printed with the paired peaks below).
    // Each measurement is the best of several short repetitions; the best of a few
    // interleaved rounds also rides out a busy moment, a slow clock ramp, and the
    // scalar loop's slow phases (on a 2-core AMD EPYC its mul/add chains run at
    // 10 or 13 GFLOP/s for stretches of tens of ms, while AVX2 holds steady).
    let mut peaks: Vec<(Isa, f64)> = sets.iter().map(|&isa| (isa, 0.0)).collect();
    for _ in 0..PEAK_ROUNDS {
        for (isa, best) in &mut peaks {
            *best = peak::measure_gflops(*isa).map_or(*best, |g| best.max(g));
        }
    }
    peaks.retain(|p| p.1 > 0.0);
    if threads_only {
        if let Some(&(isa, peak)) = peaks.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            println!("Peak of one core ({}): {peak:.1} GFLOP/s.", isa.name());
            print!("{}", threads::section(isa, peak, quick));
        }
        return;
    }

    // 2. The baseline computes what flowmlp computes.
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for shape in &SHAPES {
        let (l, p, g) = check_baseline(shape);
        worst = (worst.0.max(l), worst.1.max(p), worst.2.max(g));
    }
    println!(
        "\nBaseline check against flowmlp's scalar set, one train step on every shape from \
         the same parameters and batch: loss within {:.1e}, updated parameters within \
         {:.1e}, parameter steps within {:.1e} (relative, max norm).",
        worst.0, worst.1, worst.2
    );
    if worst.0 > 1e-4 || worst.1 > 1e-4 {
        eprintln!("perf_report: the baseline disagrees with flowmlp; its timings mean nothing");
        std::process::exit(1);
    }

    // 3. Timings: per shape, the baseline, every kernel set and every set's peak
    // loop in rounds (see `rounds`); each % of peak and speedup is the median over
    // rounds of the ratio within a round.
    let clock = Clock::new();
    let (wall0, cpu0) = (Instant::now(), thread_cpu_ns());
    let loops: Vec<(Isa, peak::PeakLoop)> = peaks
        .iter()
        .filter_map(|(isa, _)| peak::PeakLoop::new(*isa).map(|l| (*isa, l)))
        .collect();
    let best_set = peaks.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|p| p.0);
    let mut paired_peaks: Vec<Vec<f64>> = vec![Vec::new(); loops.len()];
    let mut train = String::new();
    let mut fwd = String::new();
    for shape in &SHAPES {
        let (x, y) = shape.batch();
        let mut base = Baseline::new(&shape.dims(), shape.n);
        {
            let model = shape.model(Isa::Scalar);
            let mut p = vec![0.0; model.param_count()];
            model.get_params(&mut p).unwrap();
            base.set_params(&p);
        }
        let mut models: Vec<Model> = sets.iter().map(|&isa| shape.model(isa)).collect();
        // One output buffer per set, so that the forward closures do not share one.
        let mut outs = vec![vec![0.0f32; shape.n * shape.m]; sets.len()];
        for (table, is_train) in [(&mut train, true), (&mut fwd, false)] {
            let flops = if is_train {
                shape.train_flops()
            } else {
                shape.forward_flops()
            };
            let ns = {
                let mut items: Vec<Box<Calls>> = Vec::new();
                if is_train {
                    let base = &mut base;
                    items.push(Box::new(calls(|| {
                        black_box(base.train_step(black_box(&x), black_box(&y), LR));
                    })));
                    for model in models.iter_mut() {
                        items.push(Box::new(calls(|| {
                            black_box(model.train_step(black_box(&x), black_box(&y), LR).unwrap());
                        })));
                    }
                } else {
                    let base = &mut base;
                    items.push(Box::new(calls(|| {
                        black_box(base.forward(black_box(&x)));
                    })));
                    for (model, out) in models.iter_mut().zip(outs.iter_mut()) {
                        items.push(Box::new(calls(|| {
                            model.forward(black_box(&x), Some(out)).unwrap();
                            black_box(&*out);
                        })));
                    }
                }
                for (_, l) in &loops {
                    items.push(Box::new(calls(move || l.run(black_box(PEAK_ITERS)))));
                }
                let mut refs: Vec<&mut Calls> = items.iter_mut().map(|b| &mut **b).collect();
                rounds(budget, &clock, &mut refs)
            };
            let (base_ns, rest) = ns.split_first().unwrap();
            let (set_ns, peak_ns) = rest.split_at(sets.len());
            let peak_gflops: Vec<Vec<f64>> = loops
                .iter()
                .zip(peak_ns)
                .map(|((_, l), ns)| {
                    let flops = l.flops_per_iter() * PEAK_ITERS as f64;
                    ns.iter().map(|t| flops / t).collect()
                })
                .collect();
            for (all, g) in paired_peaks.iter_mut().zip(&peak_gflops) {
                all.extend(g);
            }
            let peak_of = |isa: Isa| {
                loops
                    .iter()
                    .position(|(i, _)| *i == isa)
                    .map(|k| peak_gflops[k].as_slice())
            };
            let base_paired = Paired {
                ns: base_ns,
                peak: best_set.and_then(peak_of),
                baseline: base_ns,
            };
            let mut rows = vec![Row::new(
                "baseline (matrixmultiply)",
                &base_paired,
                flops,
                shape.n,
                base.bytes(),
            )];
            for ((&isa, model), ns) in sets.iter().zip(&models).zip(set_ns) {
                let paired = Paired {
                    ns,
                    peak: peak_of(isa),
                    baseline: base_ns,
                };
                rows.push(Row::new(
                    isa.name(),
                    &paired,
                    flops,
                    shape.n,
                    model.arena_size(),
                ));
            }
            for r in &rows {
                *table += &r.markdown(shape, is_train);
                table.push('\n');
            }
        }
    }

    // 4. The optimizers' step at the medium shape.
    let optimizers = optim::section(&sets, &mut |f| median_ns(budget, &clock, f));

    let on_cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => format!(
            "{:.0} % of the wall time on a CPU",
            100.0 * (b - a) / wall0.elapsed().as_nanos() as f64
        ),
        _ => "no per-thread CPU clock here: wall-clock times".to_string(),
    };
    println!("\n## Peak f32 FMA throughput of one core (measured)\n");
    println!(
        "| kernel set | best, before the timings (GFLOP/s) | paired with the timings: median \
         (min – max) |"
    );
    println!("|---|---:|---:|");
    for ((isa, best), paired) in peaks.iter().zip(&paired_peaks) {
        let lo = paired.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = paired.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {best:.1} | {:.1} ({lo:.1} – {hi:.1}) |",
            isa.name(),
            median(paired.iter().copied())
        );
    }
    println!(
        "\nThe peak loop (register-only FMA chains, `peak::measure_gflops`) runs \
         in every round of every timing below, beside the workloads; each % of peak is \
         against the peak of its own round."
    );
    println!("\n## train_step (forward, MSE backward, SGD update)\n");
    println!(
        "| shape | d-h-m, batch | kernel set | ns/call | samples/s | GFLOP/s | % of peak \
         | arena bytes | speedup vs baseline | fastest round: ns (% of peak) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    print!("{train}");
    println!("\n## forward\n");
    println!(
        "| shape | d-h-m, batch | kernel set | ns/call | samples/s | GFLOP/s | % of peak \
         | speedup vs baseline | fastest round: ns (% of peak) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    print!("{fwd}");
    println!(
        "\nFLOPs count matrix-product multiply-adds only (2 each): forward 2·n·Σ in·out; \
         train step adds 2·n·Σ in·out for the weight gradients and 2·n·Σ in·out over \
         every layer but the first for the input gradients. The baseline is the same step \
         written with matrixmultiply's `sgemm` (single-threaded) plus plain loops; its \
         \"arena bytes\" are its own buffers. Timing: per shape, the baseline, every \
         kernel set and every set's peak loop run in rounds, one batch of back-to-back \
         calls of each per round, after a warm-up, in this thread's CPU time. ns/call \
         is the median over rounds; % of peak (against the set's own peak loop; the \
         baseline: against the best set's) and the speedup are medians over rounds of \
         the ratio within a round, so that a slow moment of a shared machine slows both \
         sides of each ratio. The last column is the fastest round's time and its % of \
         the set's median paired peak: what the code does when nothing slows the core \
         (on a shared host the medians can be a third slower)."
    );
    print!("{optimizers}");
    println!("\n## What each model chose for its shape (`Model::choices`, max_batch = n)\n");
    for sh in &SHAPES {
        let cfg = Config::new(sh.d, sh.hidden, sh.m).max_batch(sh.n);
        if let Ok(model) = Model::new(&cfg) {
            println!("{} (n = {}):\n```\n{}```", sh.name, sh.n, model.choices());
        }
    }
    if let Some(&(isa, peak)) = peaks.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        print!("{}", threads::section(isa, peak, quick));
    }
    println!(
        "\n_Measured in {:.1} s{}; timed in this thread's CPU time, {on_cpu}._",
        started.elapsed().as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
}
