//! Helpers shared by the integration tests: an independent f64 implementation of the
//! network (any topology) on the flat parameter layout, and small generators.
#![allow(dead_code)]

use flowmlp::{Config, Isa, Model};

/// Deterministic xorshift generator for test data (independent of the crate's).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1).
    pub fn f(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `[d, h_1, .., h_k, m]` of a config.
pub fn dims(cfg: &Config) -> Vec<usize> {
    let mut d = vec![cfg.inputs];
    d.extend_from_slice(cfg.hidden_widths());
    d.push(cfg.outputs);
    d
}

/// The network's outputs for one input row, in f64 from flat parameters.
pub fn forward_row_f64(dims: &[usize], params: &[f64], row: &[f64]) -> Vec<f64> {
    let layers = dims.len() - 1;
    let mut a = row.to_vec();
    let mut off = 0;
    for l in 0..layers {
        let (inp, out) = (dims[l], dims[l + 1]);
        let w = &params[off..off + inp * out];
        let b = &params[off + inp * out..off + inp * out + out];
        off += inp * out + out;
        a = (0..out)
            .map(|j| {
                let z: f64 = b[j] + (0..inp).map(|k| w[j * inp + k] * a[k]).sum::<f64>();
                if l + 1 < layers {
                    z.max(0.0)
                } else {
                    z
                }
            })
            .collect();
    }
    a
}

/// The mean squared error in f64 from flat parameters.
pub fn loss_f64(dims: &[usize], params: &[f64], x: &[f64], y: &[f64], n: usize) -> f64 {
    let (d, m) = (dims[0], dims[dims.len() - 1]);
    let mut total = 0.0;
    for i in 0..n {
        let a = forward_row_f64(dims, params, &x[i * d..(i + 1) * d]);
        total += (0..m).map(|c| (a[c] - y[i * m + c]).powi(2)).sum::<f64>();
    }
    total / n as f64
}

/// Central differences (step 1e-6) of `loss_f64` with respect to the parameters at
/// `which`.
pub fn loss_differences(
    dims: &[usize],
    params: &[f64],
    x: &[f64],
    y: &[f64],
    n: usize,
    which: impl Iterator<Item = usize>,
) -> Vec<f64> {
    let h = 1e-6;
    which
        .map(|t| {
            let mut q = params.to_vec();
            q[t] += h;
            let up = loss_f64(dims, &q, x, y, n);
            q[t] -= 2.0 * h;
            let down = loss_f64(dims, &q, x, y, n);
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Kernel sets this machine runs, scalar first. `FLOWMLP_REQUIRE_ISA` (comma-separated
/// names) makes a test fail when a named set is missing, so CI cannot skip silently.
pub fn isas() -> Vec<Isa> {
    let have: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.is_supported()).collect();
    if let Ok(req) = std::env::var("FLOWMLP_REQUIRE_ISA") {
        for name in req.split(',').filter(|s| !s.trim().is_empty()) {
            let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown isa {name}"));
            assert!(
                have.contains(&isa),
                "FLOWMLP_REQUIRE_ISA names {name}, which this CPU/build lacks"
            );
        }
    }
    for isa in Isa::ALL {
        if !have.contains(&isa) {
            eprintln!("kernel set {} not supported here: skipped", isa.name());
        }
    }
    have
}

pub fn model(cfg: &Config, isa: Isa) -> Model {
    Model::new(&cfg.isa(isa)).expect("model")
}

pub fn params(m: &Model) -> Vec<f32> {
    let mut p = vec![0.0; m.param_count()];
    m.get_params(&mut p).unwrap();
    p
}

pub fn grads(m: &Model) -> Vec<f32> {
    let mut g = vec![0.0; m.param_count()];
    m.get_grads(&mut g).unwrap();
    g
}

/// Largest violation of `|a - b| <= tol * (|b| + scale)`, as a ratio (<= 1 passes).
pub fn worst(a: &[f32], b: &[f32], tol: f64, scale: f64) -> (f64, usize) {
    assert_eq!(a.len(), b.len());
    let mut w = (0.0, 0);
    for (t, (&x, &y)) in a.iter().zip(b).enumerate() {
        let r = (x as f64 - y as f64).abs() / (tol * ((y as f64).abs() + scale));
        // NaN counts as the worst violation.
        if r.is_nan() || r > w.0 {
            w = (if r.is_nan() { f64::INFINITY } else { r }, t);
        }
    }
    w
}

/// A C config with the given topology; every other field zero (the defaults), so
/// that fields added to `flowmlp_config` later keep their zero defaults here.
pub fn c_config(
    d: u32,
    hidden: &[u32],
    m: u32,
    max_batch: u32,
    seed: u64,
    isa: u32,
) -> flowmlp::ffi::flowmlp_config {
    // SAFETY: flowmlp_config is plain integers (and floats), for which zero is valid.
    let mut c: flowmlp::ffi::flowmlp_config = unsafe { std::mem::zeroed() };
    c.n_inputs = d;
    c.n_outputs = m;
    c.n_hidden = hidden.len() as u32;
    c.hidden[..hidden.len()].copy_from_slice(hidden);
    c.max_batch = max_batch;
    c.seed = seed;
    c.isa = isa;
    c
}

/// Whether a missing optional tool fails the test instead of skipping it:
/// `FLOWMLP_REQUIRE_TOOLS=1` (or `0`) decides; unset, CI (`CI=true`) requires them, so
/// that CI proves everything while a new user's `cargo test` passes without them.
pub fn tools_required() -> bool {
    match std::env::var("FLOWMLP_REQUIRE_TOOLS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
    }
}

/// Say that `what` was skipped. Written to the process's stderr directly rather than
/// with `eprintln!`, which the test harness captures for passing tests: the line must
/// reach the person running `cargo test`.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// Whether the optional tool `cmd` (a program and its leading arguments) runs with
/// `version_arg`. When it does not, `what` (the checks that need it) is skipped with
/// one line saying how to install `package`, or, where tools are required (see
/// [`tools_required`]), the test fails.
pub fn optional_tool(cmd: &[String], version_arg: &str, package: &str, what: &str) -> bool {
    let ok = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let tool = cmd.join(" ");
    assert!(
        !tools_required(),
        "`{tool}` is not installed, and {what} needs it (CI=true or FLOWMLP_REQUIRE_TOOLS=1 \
         requires every optional tool). Debian/Ubuntu: `apt-get install -y {package}`"
    );
    say_skipped(&format!(
        "{what}: `{tool}` not found (optional; Debian/Ubuntu: apt-get install -y {package})"
    ));
    false
}

/// A command from the environment variable `var` (which may carry arguments), or
/// `default` when it is unset or empty.
pub fn command_from_env(var: &str, default: &str) -> Vec<String> {
    let words: Vec<String> = std::env::var(var)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    if words.is_empty() {
        vec![default.to_string()]
    } else {
        words
    }
}

/// The C++ compiler (`$CXX`, default `c++`) when it is installed; `what` names the
/// checks that need it, skipped (or failed under CI) when it is not.
pub fn cxx_compiler(what: &str) -> Option<Vec<String>> {
    let cxx = command_from_env("CXX", "c++");
    optional_tool(&cxx, "--version", "g++", what).then_some(cxx)
}

/// A command line as a shell would show it, for failure messages.
pub fn describe(cmd: &std::process::Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run `cmd`; on failure panic with `what`, the command line and its output.
/// Returns stdout (and echoes both streams, which the test harness captures).
pub fn run(what: &str, cmd: &mut std::process::Command) -> String {
    let line = describe(cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start `{line}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n$ {line}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    print!("{stdout}");
    eprint!("{stderr}");
    stdout
}

/// `CARGO_TARGET_TMPDIR/<group>/<profile>`, created: where a test builds programs,
/// one directory per profile (debug and release runs share the tmpdir).
pub fn build_dir(group: &str) -> std::path::PathBuf {
    use std::path::Path;
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map_or_else(|| "default".into(), |p| p.to_string_lossy().into_owned());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(profile);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
