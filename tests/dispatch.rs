//! Run-time choice of the kernel set, through the public Rust API and the C API.
//!
//! - `Isa::Auto` picks the best set the CPU runs: avx512 > avx2 > scalar on x86-64,
//!   neon on aarch64. With `FLOWMLP_EXPECT_ISA` set (the qemu runs of
//!   `scripts/test-x86-cpus.sh` and `scripts/test-aarch64.sh` set it), Auto must pick
//!   exactly that set, so an emulated CPU model cannot pass by picking something else.
//! - Asking for a set the CPU or build lacks is `Error::UnsupportedIsa`
//!   (`FLOWMLP_ERROR_UNSUPPORTED_ISA`), never a crash or SIGILL; every supported set
//!   creates, reports itself and trains; an explicit scalar request always works.
//! - `FLOWMLP_ISA` is read once per process, so its effect is tested by running this
//!   test binary again as a child process (one `subprocess_*` test, selected with
//!   `--exact`, in a fresh process with its own environment). Where the binary runs
//!   under an emulator, `FLOWMLP_TEST_RUNNER` (whitespace-separated words, for example
//!   `qemu-x86_64 -cpu Nehalem`) is the command the child is started with, so that it
//!   sees the same CPU.
//! - `FLOWMLP_REQUIRE_ISA` (see `common::isas`) fails a run that lacks a named set.

mod common;

use std::process::{Command, Output};

use common::Rng;
use flowmlp::ffi::{
    flowmlp_config, flowmlp_create, flowmlp_destroy, flowmlp_isa_name, flowmlp_isa_supported,
    flowmlp_model, flowmlp_status, flowmlp_train_step,
};
use flowmlp::{Config, Error, Isa, Model};

/// Marks a child process and says which `subprocess_*` test has work to do in it.
const CHILD: &str = "FLOWMLP_DISPATCH_CHILD";

/// d = 5 -> 13 -> 7 -> m = 2, nine rows: sizes that are no multiple of a vector width.
fn cfg() -> Config {
    Config::new(5, &[13, 7], 2).max_batch(9).seed(3)
}

/// The sets Auto may pick on this architecture, best first (scalar is the fallback).
fn preference() -> &'static [Isa] {
    if cfg!(target_arch = "x86_64") {
        &[Isa::Avx512, Isa::Avx2]
    } else if cfg!(target_arch = "aarch64") {
        &[Isa::Neon]
    } else {
        &[]
    }
}

/// The best set this CPU runs, by the documented order.
fn best_supported() -> Isa {
    preference()
        .iter()
        .copied()
        .find(|isa| isa.is_supported())
        .unwrap_or(Isa::Scalar)
}

/// `FLOWMLP_ISA` of this process when it names a set (unset, empty and `auto` do not).
fn env_isa() -> Option<String> {
    let v = std::env::var("FLOWMLP_ISA").ok()?;
    let v = v.trim();
    (!v.is_empty() && !v.eq_ignore_ascii_case("auto")).then(|| v.to_string())
}

/// `FLOWMLP_EXPECT_ISA`, parsed: the set Auto must pick in this run.
fn expected_isa() -> Option<Isa> {
    let v = std::env::var("FLOWMLP_EXPECT_ISA").ok()?;
    if v.trim().is_empty() {
        return None;
    }
    match Isa::from_name(&v) {
        Some(Isa::Auto) | None => panic!("FLOWMLP_EXPECT_ISA={v:?} names no kernel set"),
        some => some,
    }
}

fn supported() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
}

fn unsupported() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| !i.is_supported()).collect()
}

fn names(isas: &[Isa]) -> String {
    isas.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

/// A C config for `cfg()` with the raw `isa` value. Built as C code does
/// (`flowmlp_config c = {0};`): every field this test does not name keeps its zero
/// default, so fields added to the struct later need no change here.
fn c_config(isa: u32) -> flowmlp_config {
    let c = cfg();
    // SAFETY: flowmlp_config is a repr(C) struct of integers and integer arrays, for
    // which all-zero bytes are a valid value.
    let mut config: flowmlp_config = unsafe { std::mem::zeroed() };
    config.n_inputs = c.inputs as u32;
    config.n_outputs = c.outputs as u32;
    config.n_hidden = c.n_hidden as u32;
    for (dst, &src) in config.hidden.iter_mut().zip(c.hidden_widths()) {
        *dst = src as u32;
    }
    config.max_batch = c.max_batch as u32;
    config.seed = c.seed;
    config.isa = isa;
    config
}

/// A model from the C API owning its handle.
struct CModel(*mut flowmlp_model);

impl CModel {
    /// `flowmlp_create` with the raw `isa` value; on error, checks that the output
    /// handle was not written.
    fn create(isa: u32) -> Result<CModel, flowmlp_status> {
        let config = c_config(isa);
        let mut out: *mut flowmlp_model = std::ptr::null_mut();
        // SAFETY: both pointers are valid for the call.
        let status = unsafe { flowmlp_create(&config, &mut out) };
        if status == flowmlp_status::FLOWMLP_OK {
            assert!(!out.is_null(), "flowmlp_create succeeded with a NULL model");
            Ok(CModel(out))
        } else {
            assert!(
                out.is_null(),
                "flowmlp_create wrote *out_model on {status:?}"
            );
            Err(status)
        }
    }

    fn isa_name(&self) -> String {
        // SAFETY: a live handle.
        let p = unsafe { flowmlp_isa_name(self.0) };
        assert!(!p.is_null(), "flowmlp_isa_name gave NULL for a live model");
        // SAFETY: a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_str()
            .expect("an ASCII name")
            .to_string()
    }

    fn train_step(&mut self, x: &[f32], y: &[f32], n: usize, lr: f32) -> f32 {
        let mut loss = f32::NAN;
        // SAFETY: a live handle; x and y hold n rows of the config's widths.
        let status =
            unsafe { flowmlp_train_step(self.0, x.as_ptr(), y.as_ptr(), n, lr, &mut loss) };
        assert_eq!(status, flowmlp_status::FLOWMLP_OK, "flowmlp_train_step");
        loss
    }
}

impl Drop for CModel {
    fn drop(&mut self) {
        // SAFETY: a live handle, given up here.
        unsafe { flowmlp_destroy(self.0) }
    }
}

/// A regression batch for `cfg()`: targets are a fixed smooth function of the inputs.
fn batch() -> (Vec<f32>, Vec<f32>, usize) {
    let c = cfg();
    let n = c.max_batch;
    let x = Rng(0x9E37_79B9_7F4A_7C15).vec(n * c.inputs);
    let y = x
        .chunks(c.inputs)
        .flat_map(|r| [0.5 * r[0] - 0.25 * r[1] * r[2], r[3].abs() - 0.3 * r[4]])
        .collect();
    (x, y, n)
}

/// Losses of `steps` train steps of `model` on `batch()`.
fn train(model: &mut Model, steps: usize) -> Vec<f32> {
    let (x, y, _) = batch();
    (0..steps)
        .map(|_| model.train_step(&x, &y, 0.05).expect("train_step"))
        .collect()
}

/// The first loss is the same network's on every set; after training it is lower.
fn check_training(what: &str, losses: &[f32], reference_first: f32) {
    assert!(
        losses.iter().all(|l| l.is_finite()),
        "{what}: non-finite loss in {losses:?}"
    );
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    // Same initial parameters on every set: the first loss differs by rounding only.
    assert!(
        (first - reference_first).abs() <= 1e-4 * (reference_first.abs() + 1e-3),
        "{what}: first loss {first} differs from the scalar set's {reference_first}"
    );
    assert!(
        last < 0.9 * first,
        "{what}: loss did not drop enough while training ({first} -> {last})"
    );
}

#[test]
fn auto_picks_the_best_supported_set() {
    let got = Model::new(&cfg()).map(|m| m.isa());
    let c_got =
        CModel::create(flowmlp::ffi::flowmlp_isa::FLOWMLP_ISA_AUTO as u32).map(|m| m.isa_name());
    println!(
        "dispatch: AUTO picked {:?} (C API: {c_got:?}); supported here: {}; best: {}",
        got.map(Isa::name),
        names(&supported()),
        best_supported().name()
    );
    match env_isa() {
        // The ordinary case: no override, the documented preference decides.
        None => {
            let best = best_supported();
            assert_eq!(got, Ok(best), "AUTO must pick the best supported set");
            assert_eq!(c_got, Ok(best.name().to_string()), "C API AUTO");
        }
        // FLOWMLP_ISA steers AUTO in this process (a run of the whole suite with it set).
        Some(name) => match Isa::from_name(&name).filter(|i| i.is_supported()) {
            Some(isa) => assert_eq!(got, Ok(isa), "AUTO with FLOWMLP_ISA={name}"),
            None => assert_eq!(got, Err(Error::UnsupportedIsa), "FLOWMLP_ISA={name}"),
        },
    }
    if let Some(want) = expected_isa() {
        assert_eq!(
            got,
            Ok(want),
            "FLOWMLP_EXPECT_ISA={}: AUTO picked another set (supported: {})",
            want.name(),
            names(&supported())
        );
    }
}

#[test]
fn support_matches_the_architecture() {
    assert!(
        Isa::Scalar.is_supported(),
        "scalar must always be supported"
    );
    #[cfg(target_arch = "x86_64")]
    assert!(!Isa::Neon.is_supported(), "neon on x86-64");
    #[cfg(target_arch = "aarch64")]
    {
        assert!(Isa::Neon.is_supported(), "aarch64 Linux always has NEON");
        assert!(!Isa::Avx2.is_supported(), "avx2 on aarch64");
        assert!(!Isa::Avx512.is_supported(), "avx512 on aarch64");
    }
    // The C API agrees with the Rust API; AUTO is always "supported"; any other
    // value is not.
    assert_eq!(
        flowmlp_isa_supported(flowmlp::ffi::flowmlp_isa::FLOWMLP_ISA_AUTO as u32),
        1
    );
    for isa in Isa::ALL {
        assert_eq!(
            flowmlp_isa_supported(isa as u32),
            i32::from(isa.is_supported()),
            "flowmlp_isa_supported({})",
            isa.name()
        );
    }
    for bad in [5, 6, 99, u32::MAX] {
        assert_eq!(
            flowmlp_isa_supported(bad),
            0,
            "flowmlp_isa_supported({bad})"
        );
        assert_eq!(
            CModel::create(bad).err(),
            Some(flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG),
            "flowmlp_create with isa = {bad}"
        );
    }
}

#[test]
fn unsupported_requests_are_refused() {
    let missing = unsupported();
    // Every architecture lacks at least the other one's sets.
    assert!(!missing.is_empty(), "every kernel set supported?");
    println!("dispatch: refusing unsupported sets: {}", names(&missing));
    for isa in missing {
        assert_eq!(
            Model::new(&cfg().isa(isa)).err(),
            Some(Error::UnsupportedIsa),
            "Model::new with unsupported {}",
            isa.name()
        );
        assert_eq!(
            CModel::create(isa as u32).err(),
            Some(flowmlp_status::FLOWMLP_ERROR_UNSUPPORTED_ISA),
            "flowmlp_create with unsupported {}",
            isa.name()
        );
    }
}

#[test]
fn every_supported_set_creates_and_trains() {
    // `isas()` also enforces FLOWMLP_REQUIRE_ISA.
    let isas = common::isas();
    println!("dispatch: training on {}", names(&isas));
    let (x, y, n) = batch();
    let reference = train(&mut common::model(&cfg(), Isa::Scalar), 1)[0];
    for isa in isas {
        let mut model = common::model(&cfg(), isa);
        assert_eq!(model.isa(), isa, "Model::isa");
        assert_eq!(model.config().isa, isa, "Model::config().isa");
        check_training(isa.name(), &train(&mut model, 40), reference);

        let mut c = CModel::create(isa as u32).expect("flowmlp_create");
        assert_eq!(c.isa_name(), isa.name(), "flowmlp_isa_name");
        let losses: Vec<f32> = (0..40).map(|_| c.train_step(&x, &y, n, 0.05)).collect();
        check_training(&format!("C API, {}", isa.name()), &losses, reference);
    }
}

#[test]
fn explicit_scalar_always_works() {
    // Whatever the CPU and FLOWMLP_ISA say: an explicit request ignores the variable.
    let mut model = Model::new(&cfg().isa(Isa::Scalar)).expect("scalar model");
    assert_eq!(model.isa(), Isa::Scalar);
    let losses = train(&mut model, 40);
    check_training("scalar", &losses, losses[0]);
    let c = CModel::create(Isa::Scalar as u32).expect("flowmlp_create scalar");
    assert_eq!(c.isa_name(), "scalar");
}

// ---- FLOWMLP_ISA and FLOWMLP_REQUIRE_ISA, in child processes ----

/// The command that runs this test binary again: `FLOWMLP_TEST_RUNNER`'s words (an
/// emulator and its options) followed by the executable, or the executable alone.
fn self_command() -> Command {
    let exe = std::env::current_exe().expect("the test executable's path");
    let runner: Vec<String> = std::env::var("FLOWMLP_TEST_RUNNER")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    match runner.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Run the test `name` of this binary alone in a child process, with `CHILD` = `name`
/// and the environment changes `env` (`None` removes a variable).
fn run_child(name: &str, env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = self_command();
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .env_remove("FLOWMLP_ISA")
        .env_remove("FLOWMLP_REQUIRE_ISA")
        .env_remove("FLOWMLP_EXPECT_ISA");
    for &(key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The result line `subprocess_probe` printed under `FLOWMLP_ISA` = `value`.
fn probe(value: &str) -> String {
    probe_line(value, "probe: ")
}

/// The line starting with `prefix` that `subprocess_probe` printed under
/// `FLOWMLP_ISA` = `value` (without the prefix).
fn probe_line(value: &str, prefix: &str) -> String {
    let out = run_child("subprocess_probe", &[("FLOWMLP_ISA", Some(value))]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_string);
    match line {
        Some(line) if out.status.success() => line,
        _ => panic!(
            "child with FLOWMLP_ISA={value:?} printed no probe line or failed: {}",
            describe(&out)
        ),
    }
}

/// Child side of `flowmlp_isa_steers_auto`: what AUTO (Rust and C) and an explicit
/// scalar request give under this process's `FLOWMLP_ISA`.
#[test]
fn subprocess_probe() {
    if std::env::var(CHILD).as_deref() != Ok("subprocess_probe") {
        return;
    }
    let rust = match Model::new(&cfg()) {
        Ok(m) => m.isa().name().to_string(),
        Err(e) => format!("{e:?}"),
    };
    let c = match CModel::create(flowmlp::ffi::flowmlp_isa::FLOWMLP_ISA_AUTO as u32) {
        Ok(m) => m.isa_name(),
        Err(s) => format!("{s:?}"),
    };
    // SAFETY: a NUL-terminated string that lives until this thread's next failure.
    let why = unsafe { std::ffi::CStr::from_ptr(flowmlp::ffi::flowmlp_last_error_message()) };
    println!("\nprobe-error: {}", why.to_string_lossy());
    let scalar = match Model::new(&cfg().isa(Isa::Scalar)) {
        Ok(m) => m.isa().name().to_string(),
        Err(e) => format!("{e:?}"),
    };
    // A line of its own: libtest prints the test name before it.
    println!("\nprobe: auto={rust} c_auto={c} scalar={scalar}");
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes, which Miri cannot")]
fn flowmlp_isa_steers_auto() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let refused = "auto=UnsupportedIsa c_auto=FLOWMLP_ERROR_UNSUPPORTED_ISA scalar=scalar";
    let picks = |name: &str| format!("auto={name} c_auto={name} scalar=scalar");
    // Unset, empty and "auto": the best set.
    let best = best_supported().name();
    for value in ["", "auto", " AUTO "] {
        assert_eq!(probe(value), picks(best), "FLOWMLP_ISA={value:?}");
    }
    // Each supported set by name (case-insensitive, surrounding blanks ignored).
    for isa in supported() {
        assert_eq!(
            probe(isa.name()),
            picks(isa.name()),
            "FLOWMLP_ISA={}",
            isa.name()
        );
    }
    assert_eq!(probe(" Scalar "), picks("scalar"), "FLOWMLP_ISA=' Scalar '");
    // A set this CPU lacks, and names of no set: refused, never a crash; an explicit
    // scalar request still works.
    for isa in unsupported() {
        assert_eq!(probe(isa.name()), refused, "FLOWMLP_ISA={}", isa.name());
    }
    for value in ["bogus", "avx", "sse2", "scalar,avx2"] {
        assert_eq!(probe(value), refused, "FLOWMLP_ISA={value:?}");
    }
    // The C caller learns why: the variable's value and the names it may take.
    assert_eq!(
        probe_line("bogus", "probe-error: "),
        "FLOWMLP_ISA=bogus is not a kernel set: scalar, avx2, avx512, neon or auto"
    );
    for isa in unsupported() {
        let why = probe_line(isa.name(), "probe-error: ");
        assert!(
            why.contains(isa.name()) && why.contains("not supported"),
            "FLOWMLP_ISA={}: {why}",
            isa.name()
        );
    }
    println!(
        "dispatch: FLOWMLP_ISA checked in child processes (best here: {best}; refused: {})",
        names(&unsupported())
    );
}

/// Child side of `flowmlp_require_isa_fails_when_a_set_is_missing`.
#[test]
fn subprocess_require() {
    if std::env::var(CHILD).as_deref() != Ok("subprocess_require") {
        return;
    }
    let isas = common::isas();
    println!("\nrequire: ran with {}", names(&isas));
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes, which Miri cannot")]
fn flowmlp_require_isa_fails_when_a_set_is_missing() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let require = |value: &str| {
        run_child(
            "subprocess_require",
            &[("FLOWMLP_REQUIRE_ISA", Some(value))],
        )
    };
    // Sets this CPU has: the run passes.
    let have = supported();
    let all_present = have.iter().map(|i| i.name()).collect::<Vec<_>>().join(",");
    for value in ["", "scalar", &all_present] {
        let out = require(value);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("require: ran"),
            "FLOWMLP_REQUIRE_ISA={value:?} names only present sets but the run failed: {}",
            describe(&out)
        );
    }
    // A missing set, alone or after present ones: the run fails and says why.
    let missing = unsupported()[0].name();
    for value in [missing.to_string(), format!("scalar,{missing}")] {
        let out = require(&value);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success()
                && (stderr.contains("FLOWMLP_REQUIRE_ISA names")
                    || stdout.contains("FLOWMLP_REQUIRE_ISA names")),
            "FLOWMLP_REQUIRE_ISA={value:?} names a missing set but the run did not fail for it: {}",
            describe(&out)
        );
    }
}
