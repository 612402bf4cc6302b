//! Every row of the API's "Errors and bad input" table, through the
//! safe Rust API and through the C functions called from Rust, on every kernel set:
//! each refused call returns the documented error and leaves the parameters and
//! gradients bit for bit as they were (and the kept forward too, except where the
//! contract says otherwise), and writes none of its outputs. Then an adversarial
//! stream of batches interleaved with good ones, and the concurrency rows.
//!
//! Each test prints how many distinct bad inputs it ran ("N distinct bad inputs").

mod common;
use common::*;
use flowmlp::ffi::*;
use flowmlp::{Config, Error, Isa, Model};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::ptr::{null, null_mut};

/// Distinct bad inputs seen (the same input on several kernel sets counts once).
#[derive(Default)]
struct Tally(BTreeSet<String>);

impl Tally {
    fn add(&mut self, what: &str) {
        self.0.insert(what.to_string());
    }
    fn report(&self, what: &str) {
        println!("{what}: {} distinct bad inputs", self.0.len());
    }
}

/// The observable state of a model: parameters, gradients (as bits), kept forward.
#[derive(Debug, PartialEq, Eq)]
struct Snap {
    p: Vec<u32>,
    g: Vec<u32>,
    kept: Option<usize>,
}

fn snap(m: &Model) -> Snap {
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect();
    Snap {
        p: bits(params(m)),
        g: bits(grads(m)),
        kept: m.kept_rows(),
    }
}

/// How much of the state a refused call must keep.
#[derive(Clone, Copy, PartialEq)]
enum Keeps {
    /// Parameters, gradients and the kept forward.
    All,
    /// Parameters and gradients; the kept forward may be dropped (a `train_step`
    /// refused after its forward pass ran, as documented).
    ParamsAndGrads,
}

/// Run a call that must be refused with `want` and change nothing.
#[track_caller]
fn refused<T: std::fmt::Debug>(
    t: &mut Tally,
    m: &mut Model,
    what: &str,
    want: Error,
    keeps: Keeps,
    call: impl FnOnce(&mut Model) -> Result<T, Error>,
) {
    let before = snap(m);
    let got = call(m);
    assert_eq!(got.as_ref().err(), Some(&want), "{what}: {got:?}");
    let after = snap(m);
    assert_eq!(before.p, after.p, "{what}: parameters changed");
    assert_eq!(before.g, after.g, "{what}: gradients changed");
    if keeps == Keeps::All {
        assert_eq!(before.kept, after.kept, "{what}: kept forward changed");
    }
    t.add(&format!("rust {what}"));
}

const BAD: [f32; 3] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
const BAD_LR: [f32; 6] = [
    -1.0,
    -f32::MIN_POSITIVE,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    -f32::MAX,
];
const POISON: f32 = -12345.678;

/// 3 -> 8 -> 5 -> 2, max_batch 4: the model every row runs on.
fn cfg() -> Config {
    Config::new(3, &[8, 5], 2).max_batch(4).seed(5)
}

// ------------------------------------------------------------- safe Rust API

fn rust_config_rows(t: &mut Tally, isa: Isa) {
    let good = cfg().isa(isa);
    let bad_configs: Vec<(&str, Config, Error)> = vec![
        (
            "config d = 0",
            Config { inputs: 0, ..good },
            Error::InvalidConfig,
        ),
        (
            "config m = 0",
            Config { outputs: 0, ..good },
            Error::InvalidConfig,
        ),
        (
            "config h_1 = 0",
            Config::new(3, &[0, 5], 2).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config h_k = 0",
            Config::new(3, &[8, 0], 2).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config h_8 = 0 of 8",
            Config::new(3, &[2, 2, 2, 2, 2, 2, 2, 0], 2).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config max_batch = 0",
            good.max_batch(0),
            Error::InvalidConfig,
        ),
        (
            "config k = 0",
            Config::new(3, &[], 2).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config k = 9",
            Config::new(3, &[2; 9], 2).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config k = usize::MAX",
            Config {
                n_hidden: usize::MAX,
                ..good
            },
            Error::InvalidConfig,
        ),
        (
            "config d = usize::MAX (W_1 overflows)",
            Config {
                inputs: usize::MAX,
                ..good
            },
            Error::InvalidConfig,
        ),
        (
            "config max_batch * d overflows",
            Config {
                inputs: 1 << 40,
                ..good
            }
            .max_batch(1 << 40),
            Error::InvalidConfig,
        ),
        (
            "config h = usize::MAX / 2 (activations overflow)",
            Config::new(1, &[usize::MAX / 2], 1).isa(isa),
            Error::InvalidConfig,
        ),
        (
            "config m * max_batch overflows",
            Config {
                outputs: usize::MAX / 4,
                ..good
            }
            .max_batch(usize::MAX / 4),
            Error::InvalidConfig,
        ),
    ];
    for (what, c, want) in &bad_configs {
        assert_eq!(Model::new(c).err(), Some(*want), "{what}");
        assert_eq!(Model::arena_size_for(c).err(), Some(*want), "{what}");
        t.add(&format!("rust Model::new {what}"));
        t.add(&format!("rust Model::arena_size_for {what}"));
    }
    // Valid, fits usize, but no allocator serves it: 2^30 inputs x 2^30 rows x 4 bytes
    // is an input copy of 2^62 bytes.
    let huge = Config::new(1 << 30, &[16], 1).max_batch(1 << 30).isa(isa);
    assert_eq!(Model::new(&huge).err(), Some(Error::OutOfMemory));
    t.add("rust Model::new config valid but too large to allocate");
    // Kernel sets this CPU or build lacks.
    for other in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        assert_eq!(
            Model::new(&good.isa(other)).err(),
            Some(Error::UnsupportedIsa)
        );
        t.add(&format!("rust Model::new unsupported isa {other:?}"));
    }
}

fn rust_model_rows(t: &mut Tally, isa: Isa) {
    let mut m = model(&cfg(), isa);
    let (d, mo, mb) = (3, 2, 4);
    let x: Vec<f32> = Rng(1).vec(mb * d);
    let y: Vec<f32> = Rng(2).vec(mb * mo);
    let n = m.param_count();
    let k = Keeps::All;
    use Error::*;

    // No forward yet.
    refused(
        t,
        &mut m,
        "backward before any forward",
        NoForward,
        k,
        |m| m.backward(&y),
    );

    // Shapes: n = 0, n not whole, n > max_batch, wrong output lengths.
    let mut out = vec![POISON; 5 * mo];
    refused(t, &mut m, "forward n = 0", InvalidArgument, k, |m| {
        m.forward(&[], None)
    });
    refused(
        t,
        &mut m,
        "forward x not whole rows",
        InvalidArgument,
        k,
        |m| m.forward(&x[..4], None),
    );
    let x5 = Rng(3).vec(5 * d);
    refused(t, &mut m, "forward n > max_batch", BatchTooLarge, k, |m| {
        m.forward(&x5, None)
    });
    let big = vec![0.5; 1000 * d];
    refused(
        t,
        &mut m,
        "forward n = 1000 > max_batch",
        BatchTooLarge,
        k,
        |m| m.forward(&big, None),
    );
    for (what, len) in [("short", 2 * mo - 1), ("long", 2 * mo + 1), ("empty", 0)] {
        refused(
            t,
            &mut m,
            &format!("forward y_out {what}"),
            InvalidArgument,
            k,
            |m| m.forward(&x[..2 * d], Some(&mut out[..len])),
        );
    }
    assert!(out.iter().all(|&v| v.to_bits() == POISON.to_bits()));
    refused(t, &mut m, "train_step n = 0", InvalidArgument, k, |m| {
        m.train_step(&[], &[], 0.1)
    });
    refused(
        t,
        &mut m,
        "train_step x not whole rows",
        InvalidArgument,
        k,
        |m| m.train_step(&x[..5], &y[..2], 0.1),
    );
    refused(
        t,
        &mut m,
        "train_step n > max_batch",
        BatchTooLarge,
        k,
        |m| m.train_step(&x5, &Rng(4).vec(5 * mo), 0.1),
    );
    for (what, len) in [("short", 2 * mo - 1), ("long", 2 * mo + 1), ("empty", 0)] {
        refused(
            t,
            &mut m,
            &format!("train_step y {what}"),
            InvalidArgument,
            k,
            |m| m.train_step(&x[..2 * d], &vec![0.0; len], 0.1),
        );
    }
    // Non-finite inputs, first and last position.
    for v in BAD {
        for at in [0, mb * d - 1] {
            let mut bx = x.clone();
            bx[at] = v;
            refused(
                t,
                &mut m,
                &format!("forward x[{at}] = {v}"),
                NonFinite,
                k,
                |m| m.forward(&bx, None),
            );
            refused(
                t,
                &mut m,
                &format!("train_step x[{at}] = {v}"),
                NonFinite,
                k,
                |m| m.train_step(&bx, &y, 0.1),
            );
        }
    }
    // A refused forward kept nothing.
    refused(
        t,
        &mut m,
        "backward after only refused forwards",
        NoForward,
        k,
        |m| m.backward(&y),
    );

    // Parameter and gradient copies of the wrong length.
    for len in [0, n - 1, n + 1] {
        let mut buf = vec![POISON; len];
        refused(
            t,
            &mut m,
            &format!("get_params len {len}"),
            InvalidArgument,
            k,
            |m| m.get_params(&mut buf),
        );
        refused(
            t,
            &mut m,
            &format!("get_grads len {len}"),
            InvalidArgument,
            k,
            |m| m.get_grads(&mut buf),
        );
        assert!(buf.iter().all(|&v| v.to_bits() == POISON.to_bits()));
        let vals = vec![0.25; len];
        refused(
            t,
            &mut m,
            &format!("set_params len {len}"),
            InvalidArgument,
            k,
            |m| m.set_params(&vals),
        );
    }
    for v in BAD {
        for at in [0, n / 2, n - 1] {
            let mut p = params(&m);
            p[at] = v;
            refused(
                t,
                &mut m,
                &format!("set_params value[{at}] = {v}"),
                NonFinite,
                k,
                |m| m.set_params(&p),
            );
        }
    }
    // Checkpoint buffers that are too small.
    for cap in [0, 1, m.save_size() - 1] {
        let mut buf = vec![0xA5u8; cap];
        refused(
            t,
            &mut m,
            &format!("save cap {cap}"),
            InvalidArgument,
            k,
            |m| m.save(&mut buf),
        );
        assert!(buf.iter().all(|&b| b == 0xA5));
    }

    // A real forward and backward: non-zero gradients and a kept forward.
    m.forward(&x, None).unwrap();
    m.backward(&y).unwrap();
    assert!(grads(&m).iter().any(|&g| g != 0.0));
    for (what, len) in [("short", mb * mo - 1), ("long", mb * mo + 1), ("empty", 0)] {
        refused(
            t,
            &mut m,
            &format!("backward y {what}"),
            InvalidArgument,
            k,
            |m| m.backward(&vec![0.0; len]),
        );
    }
    for v in BAD {
        for at in [0, mb * mo - 1] {
            let mut by = y.clone();
            by[at] = v;
            refused(
                t,
                &mut m,
                &format!("backward y[{at}] = {v}"),
                NonFinite,
                k,
                |m| m.backward(&by),
            );
            refused(
                t,
                &mut m,
                &format!("train_step y[{at}] = {v}"),
                NonFinite,
                k,
                |m| m.train_step(&x, &by, 0.1),
            );
        }
    }
    // Finite targets whose loss overflows: (1e30)^2 is not a float.
    let y_huge = vec![1e30; mb * mo];
    refused(t, &mut m, "backward loss overflows", Diverged, k, |m| {
        m.backward(&y_huge)
    });
    // Bad learning rates.
    for lr in BAD_LR {
        refused(
            t,
            &mut m,
            &format!("step lr = {lr}"),
            InvalidArgument,
            k,
            |m| m.step(lr),
        );
        refused(
            t,
            &mut m,
            &format!("train_step lr = {lr}"),
            InvalidArgument,
            k,
            |m| m.train_step(&x, &y, lr),
        );
    }
    // Every refusal kept the forward: backward reproduces the gradients exactly.
    let g0 = snap(&m).g;
    m.backward(&y).unwrap();
    assert_eq!(snap(&m).g, g0);

    // The train_step whose loss overflows: parameters and gradients kept.
    refused(
        t,
        &mut m,
        "train_step loss overflows",
        Diverged,
        Keeps::ParamsAndGrads,
        |m| m.train_step(&x, &y_huge, 0.1),
    );

    // Updates that would overflow: big gradients (targets 1e15) times a huge rate.
    m.forward(&x, None).unwrap();
    let y_big = vec![1e15; mb * mo];
    m.backward(&y_big).unwrap();
    for lr in [1e30, f32::MAX] {
        refused(
            t,
            &mut m,
            &format!("step overflows, lr = {lr}"),
            Diverged,
            k,
            |m| m.step(lr),
        );
        refused(
            t,
            &mut m,
            &format!("train_step update overflows, lr = {lr}"),
            Diverged,
            Keeps::ParamsAndGrads,
            |m| m.train_step(&x, &y_big, lr),
        );
    }

    // NO_FORWARD after set_params (even the same values) and after a step.
    m.forward(&x, None).unwrap();
    let p = params(&m);
    m.set_params(&p).unwrap();
    refused(t, &mut m, "backward after set_params", NoForward, k, |m| {
        m.backward(&y)
    });
    m.forward(&x, None).unwrap();
    m.backward(&y).unwrap();
    m.step(0.0).unwrap();
    refused(t, &mut m, "backward after step", NoForward, k, |m| {
        m.backward(&y)
    });
    m.forward(&x, None).unwrap();
    m.train_step(&x, &y, 0.01).unwrap();
    refused(t, &mut m, "backward after train_step", NoForward, k, |m| {
        m.backward(&y)
    });
    // Everything above left the parameters finite.
    assert!(params(&m).iter().all(|v| v.is_finite()));
}

fn rust_caller_memory_rows(t: &mut Tally, isa: Isa) {
    let c = cfg().isa(isa);
    let size = Model::arena_size_for(&c).unwrap();
    let layout = std::alloc::Layout::from_size_align(size + 128, 64).unwrap();
    // SAFETY: non-zero size.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null());
    let cases: [(&str, *mut u8, usize, Error); 5] = [
        ("new_in NULL memory", null_mut(), size, Error::NullPointer),
        ("new_in size - 1", mem, size - 1, Error::InvalidArgument),
        ("new_in size 0", mem, 0, Error::InvalidArgument),
        // SAFETY (pointer arithmetic): inside the block.
        (
            "new_in misaligned by 1",
            unsafe { mem.add(1) },
            size,
            Error::InvalidArgument,
        ),
        // SAFETY: inside the block.
        (
            "new_in misaligned by 32",
            unsafe { mem.add(32) },
            size + 32,
            Error::InvalidArgument,
        ),
    ];
    for (what, p, s, want) in cases {
        // SAFETY: p is NULL or valid for s bytes (the block has size + 128).
        let r = unsafe { Model::new_in(&c, p, s) };
        assert_eq!(r.err(), Some(want), "{what}");
        t.add(&format!("rust {what}"));
    }
    // Invalid configs are refused in caller memory too.
    // SAFETY: valid for size bytes.
    let r = unsafe { Model::new_in(&c.max_batch(0), mem, size) };
    assert_eq!(r.err(), Some(Error::InvalidConfig));
    t.add("rust new_in config max_batch = 0");
    // SAFETY: as allocated above.
    unsafe { std::alloc::dealloc(mem, layout) };
}

#[test]
fn every_error_row_through_the_rust_api_changes_nothing() {
    let mut t = Tally::default();
    for isa in isas() {
        rust_config_rows(&mut t, isa);
        rust_model_rows(&mut t, isa);
        rust_caller_memory_rows(&mut t, isa);
    }
    // Checkpoint loading (the corruption classes are in tests/checkpoint.rs).
    let good = {
        let m = model(&cfg(), Isa::Scalar);
        let mut b = vec![0; m.save_size()];
        m.save(&mut b).unwrap();
        b
    };
    let loads: [(&str, &[u8], usize, Isa, Error); 4] = [
        (
            "load max_batch = 0",
            &good,
            0,
            Isa::Scalar,
            Error::InvalidConfig,
        ),
        ("load empty", &[], 1, Isa::Scalar, Error::BadCheckpoint),
        (
            "load truncated",
            &good[..good.len() - 1],
            1,
            Isa::Scalar,
            Error::BadCheckpoint,
        ),
        (
            "load max_batch overflows",
            &good,
            usize::MAX,
            Isa::Scalar,
            Error::InvalidConfig,
        ),
    ];
    for (what, b, mb, isa, want) in loads {
        assert_eq!(Model::load(b, mb, isa).err(), Some(want), "{what}");
        t.add(&format!("rust {what}"));
    }
    t.report("Rust API");
}

// ------------------------------------------------------------- C API from Rust

fn c_cfg(isa: Isa) -> flowmlp_config {
    c_config(3, &[8, 5], 2, 4, 5, isa as u32)
}

use flowmlp_status::*;

struct CModel(*mut flowmlp_model);

impl Drop for CModel {
    fn drop(&mut self) {
        // SAFETY: a live handle from flowmlp_create (or NULL).
        unsafe { flowmlp_destroy(self.0) }
    }
}

fn c_create(c: &flowmlp_config) -> CModel {
    let mut m = null_mut();
    // SAFETY: valid pointers.
    assert_eq!(unsafe { flowmlp_create(c, &mut m) }, FLOWMLP_OK);
    CModel(m)
}

/// Parameters and gradients of a C handle, as bits.
fn c_snap(m: *const flowmlp_model) -> (Vec<u32>, Vec<u32>) {
    // SAFETY: a live handle; buffers of param_count floats.
    unsafe {
        let n = flowmlp_param_count(m);
        let (mut p, mut g) = (vec![0f32; n], vec![0f32; n]);
        assert_eq!(flowmlp_get_params(m, p.as_mut_ptr(), n), FLOWMLP_OK);
        assert_eq!(flowmlp_get_grads(m, g.as_mut_ptr(), n), FLOWMLP_OK);
        (
            p.into_iter().map(f32::to_bits).collect(),
            g.into_iter().map(f32::to_bits).collect(),
        )
    }
}

/// Run a C call that must return `want` and leave `m`'s parameters and gradients.
#[track_caller]
fn c_refused(
    t: &mut Tally,
    m: *mut flowmlp_model,
    what: &str,
    want: flowmlp_status,
    call: impl FnOnce() -> flowmlp_status,
) {
    let before = c_snap(m);
    let got = call();
    assert_eq!(got, want, "{what}");
    check_last_error(what, got);
    assert!(
        c_snap(m) == before,
        "{what}: parameters or gradients changed"
    );
    t.add(&format!("C {what}"));
}

/// Names of C arguments and config fields one of which the sentence of an argument or
/// config refusal must name.
const NAMES: &[&str] = &[
    "config.",
    "optimizer.",
    " is NULL",
    "n = ",
    "len = ",
    "cap = ",
    "size = ",
    "memory = ",
    "workspace_len = ",
    "learning_rate",
    "isa = ",
    "max_batch",
    "kind = ",
];

/// After a refused C call: `flowmlp_last_error_message` gives a sentence of its own
/// (not the status's) that names the argument or field and the value, for every NULL,
/// INVALID_CONFIG and INVALID_ARGUMENT refusal; the status's sentence otherwise.
#[track_caller]
fn check_last_error(what: &str, got: flowmlp_status) {
    // SAFETY: both return NUL-terminated strings that live until the next failure.
    let (last, generic) = unsafe {
        (
            std::ffi::CStr::from_ptr(flowmlp_last_error_message()),
            std::ffi::CStr::from_ptr(flowmlp_status_message(got as i32)),
        )
    };
    let last = last.to_str().expect("UTF-8");
    if matches!(
        got,
        FLOWMLP_ERROR_NULL_POINTER | FLOWMLP_ERROR_INVALID_CONFIG | FLOWMLP_ERROR_INVALID_ARGUMENT
    ) {
        assert_ne!(
            last,
            generic.to_str().unwrap(),
            "{what}: no sentence of its own"
        );
        assert!(
            NAMES.iter().any(|n| last.contains(n)),
            "{what}: {last:?} names no argument or field"
        );
        assert!(
            last.contains("NULL") || last.chars().any(|c| c.is_ascii_digit()),
            "{what}: {last:?} states no value"
        );
    } else if got != FLOWMLP_OK {
        assert!(!last.is_empty(), "{what}: empty sentence");
    }
}

/// `flowmlp_create` must fail with `want` and leave `*out` unwritten.
#[track_caller]
fn c_create_fails(t: &mut Tally, what: &str, c: &flowmlp_config, want: flowmlp_status) {
    let sentinel = std::ptr::without_provenance_mut::<flowmlp_model>(0x5EED);
    let mut out = sentinel;
    // SAFETY: valid pointers.
    let got = unsafe { flowmlp_create(c, &mut out) };
    assert_eq!(got, want, "{what}");
    check_last_error(what, got);
    assert_eq!(out, sentinel, "{what}: *out_model written");
    // SAFETY: valid pointer.
    assert_eq!(unsafe { flowmlp_arena_size(c) }, 0, "{what}: arena size");
    t.add(&format!("C flowmlp_create {what}"));
    t.add(&format!("C flowmlp_arena_size {what}"));
}

fn c_config_rows(t: &mut Tally, isa: Isa) {
    let good = c_cfg(isa);
    let mut c;
    // SAFETY (whole function): every pointer is valid or NULL as the call documents.
    unsafe {
        let mut out = null_mut();
        assert_eq!(flowmlp_create(null(), &mut out), FLOWMLP_ERROR_NULL_POINTER);
        assert!(out.is_null());
        assert_eq!(
            flowmlp_create(&good, null_mut()),
            FLOWMLP_ERROR_NULL_POINTER
        );
        assert_eq!(
            flowmlp_create(null(), null_mut()),
            FLOWMLP_ERROR_NULL_POINTER
        );
        assert_eq!(flowmlp_arena_size(null()), 0);
        t.add("C flowmlp_create config NULL");
        t.add("C flowmlp_create out NULL");
        t.add("C flowmlp_create both NULL");
        t.add("C flowmlp_arena_size NULL");
    }
    let inval = FLOWMLP_ERROR_INVALID_CONFIG;
    for (what, edit) in [
        (
            "d = 0",
            (|c: &mut flowmlp_config| c.n_inputs = 0) as fn(&mut flowmlp_config),
        ),
        ("m = 0", |c| c.n_outputs = 0),
        ("h_1 = 0", |c| c.hidden[0] = 0),
        ("h_2 = 0", |c| c.hidden[1] = 0),
        ("max_batch = 0", |c| c.max_batch = 0),
        ("k = 0", |c| c.n_hidden = 0),
        ("k = 9", |c| c.n_hidden = 9),
        ("k = u32::MAX", |c| c.n_hidden = u32::MAX),
        ("isa = 5", |c| c.isa = 5),
        ("isa = 77", |c| c.isa = 77),
        ("isa = u32::MAX", |c| c.isa = u32::MAX),
        ("all dimensions 0", |c| {
            c.n_inputs = 0;
            c.n_outputs = 0;
            c.hidden[0] = 0;
            c.max_batch = 0;
        }),
        ("8 layers, last width 0", |c| {
            c.n_hidden = 8;
            c.hidden = [2, 2, 2, 2, 2, 2, 2, 0];
        }),
        ("d = h = max_batch = u32::MAX (overflows size_t)", |c| {
            c.n_inputs = u32::MAX;
            c.hidden[0] = u32::MAX;
            c.max_batch = u32::MAX;
        }),
        ("d = h = u32::MAX (W_1 overflows size_t)", |c| {
            c.n_inputs = u32::MAX;
            c.hidden[0] = u32::MAX;
            c.max_batch = 1;
        }),
        ("8 layers of u32::MAX units", |c| {
            c.n_hidden = 8;
            c.hidden = [u32::MAX; 8];
            c.max_batch = 1;
        }),
        ("m = max_batch = u32::MAX", |c| {
            c.n_outputs = u32::MAX;
            c.max_batch = u32::MAX;
        }),
        (
            "d = 2^30, max_batch = 2^31 (two input copies = 2^64 bytes)",
            |c| {
                c.n_inputs = 1 << 30;
                c.hidden[0] = 16;
                c.max_batch = 1 << 31;
            },
        ),
    ] {
        c = good;
        edit(&mut c);
        c_create_fails(t, what, &c, inval);
    }
    // Valid, but too large to allocate (an input copy of 2^62 bytes).
    c = good;
    c.n_inputs = 1 << 30;
    c.hidden[0] = 16;
    c.max_batch = 1 << 30;
    let mut out = std::ptr::without_provenance_mut::<flowmlp_model>(0x5EED);
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { flowmlp_create(&c, &mut out) },
        FLOWMLP_ERROR_OUT_OF_MEMORY
    );
    assert_eq!(
        out,
        std::ptr::without_provenance_mut::<flowmlp_model>(0x5EED)
    );
    t.add("C flowmlp_create valid but too large to allocate");
    // Kernel sets this CPU lacks.
    for other in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        c = good;
        c.isa = other as u32;
        let mut out = null_mut();
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { flowmlp_create(&c, &mut out) },
            FLOWMLP_ERROR_UNSUPPORTED_ISA
        );
        t.add(&format!("C flowmlp_create unsupported isa {other:?}"));
    }
    // Entries of hidden[] past n_hidden are ignored, whatever they hold.
    c = good;
    c.hidden[2..].copy_from_slice(&[0, u32::MAX, 0, u32::MAX, 0, 1]);
    drop(c_create(&c));
}

fn c_caller_memory_rows(t: &mut Tally, isa: Isa) {
    let c = c_cfg(isa);
    // SAFETY (whole function): pointers valid or NULL as documented.
    unsafe {
        let size = flowmlp_arena_size(&c);
        assert!(size > 0);
        let layout = std::alloc::Layout::from_size_align(size + 128, 64).unwrap();
        let mem = std::alloc::alloc_zeroed(layout);
        let sentinel = std::ptr::without_provenance_mut::<flowmlp_model>(0x5EED);
        let mut out = sentinel;
        let v = mem as *mut core::ffi::c_void;
        let cp: *const flowmlp_config = &c;
        let (nul, inv) = (FLOWMLP_ERROR_NULL_POINTER, FLOWMLP_ERROR_INVALID_ARGUMENT);
        let cases = [
            ("create_in config NULL", null(), v, size, true, nul),
            ("create_in memory NULL", cp, null_mut(), size, true, nul),
            ("create_in out NULL", cp, v, size, false, nul),
            ("create_in size - 1", cp, v, size - 1, true, inv),
            ("create_in size 0", cp, v, 0, true, inv),
            ("create_in misaligned by 8", cp, v.add(8), size, true, inv),
            ("create_in misaligned by 63", cp, v.add(63), size, true, inv),
        ];
        for (what, cp, p, s, with_out, want) in cases {
            let o = if with_out {
                &mut out as *mut _
            } else {
                null_mut()
            };
            assert_eq!(flowmlp_create_in(cp, p, s, o), want, "{what}");
            assert_eq!(out, sentinel, "{what}: *out_model written");
            t.add(&format!("C {what}"));
        }
        let mut bad = c;
        bad.isa = 99;
        assert_eq!(
            flowmlp_create_in(&bad, v, size, &mut out),
            FLOWMLP_ERROR_INVALID_CONFIG
        );
        t.add("C create_in isa = 99");
        assert_eq!(out, sentinel);
        std::alloc::dealloc(mem, layout);
    }
}

fn c_model_rows(t: &mut Tally, isa: Isa, dir: &std::path::Path) {
    let model = c_create(&c_cfg(isa));
    let m = model.0;
    let (d, mo, mb) = (3usize, 2usize, 4usize);
    let x: Vec<f32> = Rng(1).vec(mb * d);
    let y: Vec<f32> = Rng(2).vec(mb * mo);
    // SAFETY: a live handle.
    let n = unsafe { flowmlp_param_count(m) };
    let mut out = vec![POISON; 5 * mo];
    let mut loss = POISON;
    let (xp, yp) = (x.as_ptr(), y.as_ptr());
    let op = out.as_mut_ptr();
    let lp: *mut f32 = &mut loss;
    let mut buf = vec![POISON; n + 8];
    let bp = buf.as_mut_ptr();
    let vals = vec![0.25f32; n + 8];
    let vp = vals.as_ptr();
    let nul = FLOWMLP_ERROR_NULL_POINTER;
    let inv = FLOWMLP_ERROR_INVALID_ARGUMENT;
    let big = FLOWMLP_ERROR_BATCH_TOO_LARGE;
    let nonf = FLOWMLP_ERROR_NON_FINITE;
    let div = FLOWMLP_ERROR_DIVERGED;
    let nofwd = FLOWMLP_ERROR_NO_FORWARD;
    // SAFETY (whole block): every pointer is NULL or valid for what the call reads or
    // writes; `m` is live.
    unsafe {
        c_refused(t, m, "backward before any forward", nofwd, || {
            flowmlp_backward(m, yp, lp)
        });
        c_refused(
            t,
            m,
            "backward before any forward, loss NULL",
            nofwd,
            || flowmlp_backward(m, yp, null_mut()),
        );
        // NULL pointers, argument by argument.
        c_refused(t, m, "forward model NULL", nul, || {
            flowmlp_forward(null_mut(), xp, 1, op)
        });
        c_refused(t, m, "forward x NULL", nul, || {
            flowmlp_forward(m, null(), 1, op)
        });
        c_refused(t, m, "backward model NULL", nul, || {
            flowmlp_backward(null_mut(), yp, lp)
        });
        c_refused(t, m, "backward y NULL", nul, || {
            flowmlp_backward(m, null(), lp)
        });
        c_refused(t, m, "step model NULL", nul, || {
            flowmlp_step(null_mut(), 0.1)
        });
        c_refused(t, m, "train_step model NULL", nul, || {
            flowmlp_train_step(null_mut(), xp, yp, 1, 0.1, lp)
        });
        c_refused(t, m, "train_step x NULL", nul, || {
            flowmlp_train_step(m, null(), yp, 1, 0.1, lp)
        });
        c_refused(t, m, "train_step y NULL", nul, || {
            flowmlp_train_step(m, xp, null(), 1, 0.1, lp)
        });
        c_refused(t, m, "train_step x and y NULL", nul, || {
            flowmlp_train_step(m, null(), null(), 1, 0.1, null_mut())
        });
        c_refused(t, m, "get_params model NULL", nul, || {
            flowmlp_get_params(null(), bp, n)
        });
        c_refused(t, m, "get_params out NULL", nul, || {
            flowmlp_get_params(m, null_mut(), n)
        });
        c_refused(t, m, "get_grads model NULL", nul, || {
            flowmlp_get_grads(null(), bp, n)
        });
        c_refused(t, m, "get_grads out NULL", nul, || {
            flowmlp_get_grads(m, null_mut(), n)
        });
        c_refused(t, m, "set_params model NULL", nul, || {
            flowmlp_set_params(null_mut(), vp, n)
        });
        c_refused(t, m, "set_params values NULL", nul, || {
            flowmlp_set_params(m, null(), n)
        });
        let mut ck = vec![0xA5u8; 1 << 16];
        let cp = ck.as_mut_ptr();
        let mut written = 7usize;
        let wp: *mut usize = &mut written;
        c_refused(t, m, "save model NULL", nul, || {
            flowmlp_save(null(), cp, 1 << 16, wp)
        });
        c_refused(t, m, "save buf NULL", nul, || {
            flowmlp_save(m, null_mut(), 1 << 16, wp)
        });
        let path = CString::new(dir.join("c.ckpt").to_str().unwrap()).unwrap();
        c_refused(t, m, "save_file model NULL", nul, || {
            flowmlp_save_file(null(), path.as_ptr())
        });
        c_refused(t, m, "save_file path NULL", nul, || {
            flowmlp_save_file(m, null())
        });
        assert!(flowmlp_isa_name(null()).is_null());
        assert_eq!(flowmlp_param_count(null()), 0);
        assert_eq!(flowmlp_save_size(null()), 0);
        flowmlp_destroy(null_mut());
        t.add("C isa_name NULL");
        t.add("C param_count NULL");
        t.add("C save_size NULL");
        t.add("C destroy NULL");
        assert!(out.iter().all(|v| v.to_bits() == POISON.to_bits()));
        assert_eq!(loss.to_bits(), POISON.to_bits());

        // n = 0 and n > max_batch.
        c_refused(t, m, "forward n = 0", inv, || flowmlp_forward(m, xp, 0, op));
        c_refused(t, m, "train_step n = 0", inv, || {
            flowmlp_train_step(m, xp, yp, 0, 0.1, lp)
        });
        for bad_n in [5, 1000, usize::MAX, usize::MAX / 3 + 1] {
            c_refused(t, m, &format!("forward n = {bad_n}"), big, || {
                flowmlp_forward(m, xp, bad_n, op)
            });
            c_refused(t, m, &format!("train_step n = {bad_n}"), big, || {
                flowmlp_train_step(m, xp, yp, bad_n, 0.1, lp)
            });
        }
        // Wrong lengths.
        for len in [0, n - 1, n + 1, usize::MAX] {
            c_refused(t, m, &format!("get_params len {len}"), inv, || {
                flowmlp_get_params(m, bp, len)
            });
            c_refused(t, m, &format!("get_grads len {len}"), inv, || {
                flowmlp_get_grads(m, bp, len)
            });
            c_refused(t, m, &format!("set_params len {len}"), inv, || {
                flowmlp_set_params(m, vp, len)
            });
        }
        assert!(buf.iter().all(|v| v.to_bits() == POISON.to_bits()));
        // Checkpoint buffers that are too small: nothing written.
        let size = flowmlp_save_size(m);
        for cap in [0, 1, size - 1] {
            c_refused(t, m, &format!("save cap {cap}"), inv, || {
                flowmlp_save(m, cp, cap, wp)
            });
        }
        assert!(ck.iter().all(|&b| b == 0xA5));
        assert_eq!(written, 7);
        // Non-finite values.
        for v in BAD {
            for at in [0, n / 2, n - 1] {
                let mut p = vec![0f32; n];
                flowmlp_get_params(m, p.as_mut_ptr(), n);
                p[at] = v;
                c_refused(t, m, &format!("set_params value[{at}] = {v}"), nonf, || {
                    flowmlp_set_params(m, p.as_ptr(), n)
                });
            }
            for at in [0, mb * d - 1] {
                let mut bx = x.clone();
                bx[at] = v;
                c_refused(t, m, &format!("forward x[{at}] = {v}"), nonf, || {
                    flowmlp_forward(m, bx.as_ptr(), mb, op)
                });
                c_refused(t, m, &format!("train_step x[{at}] = {v}"), nonf, || {
                    flowmlp_train_step(m, bx.as_ptr(), yp, mb, 0.1, lp)
                });
            }
        }
        c_refused(t, m, "backward after only refused forwards", nofwd, || {
            flowmlp_backward(m, yp, lp)
        });
        assert_eq!(loss.to_bits(), POISON.to_bits());

        // A real forward and backward.
        assert_eq!(flowmlp_forward(m, xp, mb, null_mut()), FLOWMLP_OK);
        assert_eq!(flowmlp_backward(m, yp, null_mut()), FLOWMLP_OK);
        for v in BAD {
            for at in [0, mb * mo - 1] {
                let mut by = y.clone();
                by[at] = v;
                c_refused(t, m, &format!("backward y[{at}] = {v}"), nonf, || {
                    flowmlp_backward(m, by.as_ptr(), lp)
                });
                c_refused(t, m, &format!("train_step y[{at}] = {v}"), nonf, || {
                    flowmlp_train_step(m, xp, by.as_ptr(), mb, 0.1, lp)
                });
            }
        }
        let y_huge = vec![1e30f32; mb * mo];
        c_refused(t, m, "backward loss overflows", div, || {
            flowmlp_backward(m, y_huge.as_ptr(), lp)
        });
        for lr in BAD_LR {
            c_refused(t, m, &format!("step lr = {lr}"), inv, || {
                flowmlp_step(m, lr)
            });
            c_refused(t, m, &format!("train_step lr = {lr}"), inv, || {
                flowmlp_train_step(m, xp, yp, mb, lr, lp)
            });
        }
        assert_eq!(loss.to_bits(), POISON.to_bits());
        c_refused(t, m, "train_step loss overflows", div, || {
            flowmlp_train_step(m, xp, y_huge.as_ptr(), mb, 0.1, lp)
        });
        // Updates that overflow.
        let y_big = vec![1e15f32; mb * mo];
        assert_eq!(flowmlp_forward(m, xp, mb, null_mut()), FLOWMLP_OK);
        assert_eq!(flowmlp_backward(m, y_big.as_ptr(), null_mut()), FLOWMLP_OK);
        for lr in [1e30f32, f32::MAX] {
            c_refused(t, m, &format!("step overflows, lr = {lr}"), div, || {
                flowmlp_step(m, lr)
            });
            c_refused(
                t,
                m,
                &format!("train_step update overflows, lr = {lr}"),
                div,
                || flowmlp_train_step(m, xp, y_big.as_ptr(), mb, lr, lp),
            );
        }
        assert_eq!(loss.to_bits(), POISON.to_bits());
        // NO_FORWARD after set_params, step, train_step.
        assert_eq!(flowmlp_forward(m, xp, mb, null_mut()), FLOWMLP_OK);
        let mut p = vec![0f32; n];
        flowmlp_get_params(m, p.as_mut_ptr(), n);
        assert_eq!(flowmlp_set_params(m, p.as_ptr(), n), FLOWMLP_OK);
        c_refused(t, m, "backward after set_params", nofwd, || {
            flowmlp_backward(m, yp, lp)
        });
        assert_eq!(flowmlp_forward(m, xp, mb, null_mut()), FLOWMLP_OK);
        assert_eq!(flowmlp_step(m, 0.0), FLOWMLP_OK);
        c_refused(t, m, "backward after step", nofwd, || {
            flowmlp_backward(m, yp, lp)
        });
        assert_eq!(flowmlp_forward(m, xp, mb, null_mut()), FLOWMLP_OK);
        assert_eq!(
            flowmlp_train_step(m, xp, yp, mb, 0.01, null_mut()),
            FLOWMLP_OK
        );
        c_refused(t, m, "backward after train_step", nofwd, || {
            flowmlp_backward(m, yp, lp)
        });

        // Loading: argument errors, bad bytes, bad files. `*out_model` never written.
        let sentinel = std::ptr::without_provenance_mut::<flowmlp_model>(0x5EED);
        let mut lo = sentinel;
        let lop: *mut *mut flowmlp_model = &mut lo;
        assert_eq!(flowmlp_save(m, cp, 1 << 16, null_mut()), FLOWMLP_OK);
        let good = ck[..size].to_vec();
        let g = good.as_ptr();
        let missing = CString::new(dir.join("missing.ckpt").to_str().unwrap()).unwrap();
        let dir_c = CString::new(dir.to_str().unwrap()).unwrap();
        let no_dir = CString::new(dir.join("no/such/dir.ckpt").to_str().unwrap()).unwrap();
        let empty = CString::new("").unwrap();
        type Call<'a> = Box<dyn Fn() -> flowmlp_status + 'a>;
        let loads: Vec<(&str, flowmlp_status, Call)> = vec![
            (
                "load buf NULL",
                nul,
                Box::new(move || flowmlp_load(null(), size, 4, 0, lop)),
            ),
            (
                "load out NULL",
                nul,
                Box::new(move || flowmlp_load(g, size, 4, 0, null_mut())),
            ),
            (
                "load max_batch 0",
                FLOWMLP_ERROR_INVALID_CONFIG,
                Box::new(move || flowmlp_load(g, size, 0, 0, lop)),
            ),
            (
                "load isa 5",
                FLOWMLP_ERROR_INVALID_CONFIG,
                Box::new(move || flowmlp_load(g, size, 4, 5, lop)),
            ),
            (
                "load isa u32::MAX",
                FLOWMLP_ERROR_INVALID_CONFIG,
                Box::new(move || flowmlp_load(g, size, 4, u32::MAX, lop)),
            ),
            (
                "load len 0",
                FLOWMLP_ERROR_BAD_CHECKPOINT,
                Box::new(move || flowmlp_load(g, 0, 4, 0, lop)),
            ),
            (
                "load len - 1",
                FLOWMLP_ERROR_BAD_CHECKPOINT,
                Box::new(move || flowmlp_load(g, size - 1, 4, 0, lop)),
            ),
            (
                "load_file path NULL",
                nul,
                Box::new(move || flowmlp_load_file(null(), 4, 0, lop)),
            ),
            (
                "load_file out NULL",
                nul,
                Box::new(|| flowmlp_load_file(missing.as_ptr(), 4, 0, null_mut())),
            ),
            (
                "load_file isa 77",
                FLOWMLP_ERROR_INVALID_CONFIG,
                Box::new(|| flowmlp_load_file(missing.as_ptr(), 4, 77, lop)),
            ),
            (
                "load_file missing file",
                FLOWMLP_ERROR_IO,
                Box::new(|| flowmlp_load_file(missing.as_ptr(), 4, 0, lop)),
            ),
            (
                "load_file a directory",
                FLOWMLP_ERROR_IO,
                Box::new(|| flowmlp_load_file(dir_c.as_ptr(), 4, 0, lop)),
            ),
            (
                "load_file empty path",
                FLOWMLP_ERROR_IO,
                Box::new(|| flowmlp_load_file(empty.as_ptr(), 4, 0, lop)),
            ),
        ];
        // Miri runs isolated from the file system: only the rows that refuse an
        // argument before any file is opened (scripts/miri.sh).
        let opens =
            |what: &str| what.contains("_file") && !what.contains("NULL") && !what.contains("isa");
        for (what, want, call) in loads.iter().filter(|(w, ..)| !(cfg!(miri) && opens(w))) {
            let got = call();
            assert_eq!(got, *want, "{what}");
            check_last_error(what, got);
            assert_eq!(lo, sentinel, "{what}: *out_model written");
            t.add(&format!("C {what}"));
        }
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
            assert_eq!(
                flowmlp_load(g, size, 4, isa as u32, lop),
                FLOWMLP_ERROR_UNSUPPORTED_ISA
            );
            assert_eq!(lo, sentinel);
            t.add(&format!("C load unsupported isa {isa:?}"));
        }
        // And the good paths still work, bit for bit.
        assert_eq!(flowmlp_load(g, size, 4, isa as u32, lop), FLOWMLP_OK);
        let back = CModel(lo);
        assert!(c_snap(back.0).0 == c_snap(m).0);
        if cfg!(miri) {
            return;
        }
        c_refused(
            t,
            m,
            "save_file into a missing directory",
            FLOWMLP_ERROR_IO,
            || flowmlp_save_file(m, no_dir.as_ptr()),
        );
        c_refused(t, m, "save_file onto a directory", FLOWMLP_ERROR_IO, || {
            flowmlp_save_file(m, dir_c.as_ptr())
        });
        c_refused(t, m, "save_file empty path", FLOWMLP_ERROR_IO, || {
            flowmlp_save_file(m, empty.as_ptr())
        });
        assert_eq!(flowmlp_save_file(m, path.as_ptr()), FLOWMLP_OK);
        let mut lo2 = null_mut();
        assert_eq!(flowmlp_load_file(path.as_ptr(), 1, 0, &mut lo2), FLOWMLP_OK);
        let back2 = CModel(lo2);
        assert!(c_snap(back2.0).0 == c_snap(m).0);
    }
}

#[test]
fn every_error_row_through_the_c_api_changes_nothing() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("errors-c-{}", std::process::id()));
    // Under Miri (isolated from the file system) the file rows are skipped.
    if !cfg!(miri) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut t = Tally::default();
    // SAFETY: no pointers.
    assert_eq!(flowmlp_isa_supported(5), 0);
    assert_eq!(flowmlp_isa_supported(u32::MAX), 0);
    t.add("C isa_supported 5");
    t.add("C isa_supported u32::MAX");
    for isa in isas() {
        c_config_rows(&mut t, isa);
        c_caller_memory_rows(&mut t, isa);
        c_model_rows(&mut t, isa, &dir);
    }
    // Status messages for values that are no status.
    for s in [13, -1, 1000, i32::MIN] {
        // SAFETY: returns a static string.
        let msg = unsafe { std::ffi::CStr::from_ptr(flowmlp_status_message(s)) };
        assert_eq!(msg.to_str().unwrap(), "unknown flowmlp status value");
        t.add(&format!("C status_message {s}"));
    }
    if !cfg!(miri) {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    t.report("C API from Rust");
}

// ------------------------------------------------------------- adversarial stream

/// A smooth target on the good batches: y = sin(x0) + x1 x2 / 2 - x3 / 4.
fn target(x: &[f32]) -> f32 {
    x[0].sin() + 0.5 * x[1] * x[2] - 0.25 * x[3]
}

fn good_batch(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let x = rng.vec(n * 4);
    let y = x.chunks(4).map(target).collect();
    (x, y)
}

/// The loss of `m` on a fixed batch, through a throwaway copy (checkpoint round trip).
fn loss_on(m: &Model, x: &[f32], y: &[f32]) -> f32 {
    let mut b = vec![0; m.save_size()];
    m.save(&mut b).unwrap();
    let mut c = Model::load(&b, m.config().max_batch, m.isa()).unwrap();
    c.forward(x, None).unwrap();
    c.backward(y).unwrap()
}

#[test]
fn adversarial_batches_never_leave_a_non_finite_parameter_and_good_ones_still_train() {
    let mut t = Tally::default();
    for isa in isas() {
        let n = 8;
        let mut m = model(&Config::new(4, &[32, 16], 1).max_batch(n).seed(17), isa);
        let mut rng = Rng(0xAD0E_5A11 ^ isa as u64);
        let (fx, fy) = good_batch(&mut Rng(99), n);
        let first = loss_on(&m, &fx, &fy);
        let (mut good, mut refused_count, mut accepted_odd) = (0, 0, 0);
        for it in 0..1500 {
            let before = snap(&m);
            let kind = rng.below(12);
            let rows = 1 + rng.below(n);
            let (mut x, mut y) = good_batch(&mut rng, rows);
            let poison = [
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                1e30,
                -1e30,
                f32::MAX,
            ];
            let v = poison[rng.below(poison.len())];
            let (what, r): (String, Result<(), Error>) = match kind {
                0..=4 => {
                    m.train_step(&x, &y, 0.02).unwrap();
                    good += 1;
                    continue;
                }
                5 => {
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(x.len());
                        x[i] = v;
                    }
                    (
                        "train_step x poisoned".into(),
                        m.train_step(&x, &y, 0.02).map(drop),
                    )
                }
                6 => {
                    let i = rng.below(rows);
                    y[i] = v;
                    (
                        "train_step y poisoned".into(),
                        m.train_step(&x, &y, 0.02).map(drop),
                    )
                }
                7 => {
                    let i = rng.below(x.len());
                    x[i] = v;
                    let r = m.forward(&x, None);
                    let r = r.and_then(|()| m.backward(&y).map(drop));
                    ("forward+backward x poisoned".into(), r)
                }
                8 => {
                    // A good batch with a learning rate no one should use.
                    let lr = [f32::NAN, f32::INFINITY, -1.0, f32::NEG_INFINITY][rng.below(4)];
                    (
                        "train_step bad lr".into(),
                        m.train_step(&x, &y, lr).map(drop),
                    )
                }
                9 => {
                    // Huge gradients (targets 1e15) times a huge rate: must overflow.
                    let y: Vec<f32> = y.iter().map(|_| 1e15).collect();
                    let lr = [1e30, f32::MAX, 1e25][rng.below(3)];
                    (
                        "train_step huge lr".into(),
                        m.train_step(&x, &y, lr).map(drop),
                    )
                }
                10 => {
                    let y: Vec<f32> = y.iter().map(|_| 1e15).collect();
                    m.forward(&x, None).unwrap();
                    m.backward(&y).unwrap();
                    let lr = [1e30, f32::MAX][rng.below(2)];
                    ("step huge lr".into(), m.step(lr))
                }
                _ => {
                    let mut p = params(&m);
                    let i = rng.below(p.len());
                    p[i] = v;
                    ("set_params poisoned".into(), m.set_params(&p))
                }
            };
            let after = snap(&m);
            assert!(
                params(&m).iter().all(|p| p.is_finite()),
                "{isa:?} iteration {it}: {what} left a non-finite parameter"
            );
            match r {
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            Error::NonFinite | Error::Diverged | Error::InvalidArgument
                        ),
                        "{isa:?} {what}: {e:?}"
                    );
                    assert_eq!(before.p, after.p, "{isa:?} {what}: refused but changed");
                    refused_count += 1;
                    t.add(&format!("{what} ({v}) refused"));
                }
                Ok(()) => {
                    // Accepted only when the poison was finite (1e30, f32::MAX) and
                    // harmless: an input that reaches only dead ReLU units, a forward
                    // without a step, or a finite set_params value (undone below).
                    let may = v.is_finite() && matches!(kind, 5 | 7 | 11);
                    assert!(may, "{isa:?} {what} with {v} accepted");
                    accepted_odd += 1;
                    if kind == 11 {
                        m.set_params(
                            &before
                                .p
                                .iter()
                                .map(|&b| f32::from_bits(b))
                                .collect::<Vec<_>>(),
                        )
                        .unwrap();
                    }
                }
            }
        }
        let last = loss_on(&m, &fx, &fy);
        eprintln!(
            "{isa:?}: {good} good steps, {refused_count} refused, {accepted_odd} finite oddities \
             accepted; loss on the fixed batch {first:.4} -> {last:.4}"
        );
        assert!(
            last < 0.5 * first,
            "{isa:?}: the good batches did not train the model ({first} -> {last})"
        );
    }
    t.report("adversarial stream");
}

// ------------------------------------------------------------- concurrency rows

#[test]
fn distinct_models_are_independent_across_threads() {
    let cfgs: Vec<Config> = (0..4)
        .map(|i| Config::new(5, &[24, 9], 2).max_batch(6).seed(i))
        .collect();
    let run = |c: Config, isa: Isa| {
        let mut m = model(&c, isa);
        let mut rng = Rng(c.seed + 1);
        for _ in 0..300 {
            let x = rng.vec(6 * 5);
            let y = rng.vec(6 * 2);
            m.train_step(&x, &y, 0.01).unwrap();
        }
        snap(&m).p
    };
    for isa in isas() {
        let alone: Vec<Vec<u32>> = cfgs.iter().map(|&c| run(c, isa)).collect();
        let together: Vec<Vec<u32>> = std::thread::scope(|s| {
            let hs: Vec<_> = cfgs.iter().map(|&c| s.spawn(move || run(c, isa))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            alone == together,
            "{isa:?}: results depend on other threads"
        );
    }
}

#[test]
fn reads_of_one_model_may_run_concurrently() {
    let m = model(&cfg(), Isa::Scalar);
    let want = snap(&m).p;
    let mut want_bytes = vec![0; m.save_size()];
    m.save(&mut want_bytes).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..200 {
                    assert_eq!(snap(&m).p, want);
                    let mut b = vec![0; m.save_size()];
                    m.save(&mut b).unwrap();
                    assert_eq!(b, want_bytes);
                }
            });
        }
    });
}

/// Two, three or four NaNs or infinities in one slice are refused as surely as one:
/// the finite check of short slices ORs a bit per value, and an XOR (or any fold in
/// which two non-finite values can cancel) would let an even number through. Checked
/// on parameters, targets and inputs, short (the model's own fold) and long (the
/// kernel's), through `set_params`, `backward` and `train_step`.
#[test]
fn an_even_number_of_non_finite_values_is_refused_too() {
    for isa in isas() {
        // 1 -> 2 -> 1 has 7 parameters (short slices); 3 -> 24 -> 2 has 146.
        for (d, h, m) in [(1usize, 2usize, 1usize), (3, 24, 2)] {
            let cfg = Config::new(d, &[h], m).max_batch(8).seed(4).isa(isa);
            let mut model = Model::new(&cfg).unwrap();
            let p = params(&model);
            for k in [2usize, 3, 4] {
                for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
                    let what = format!("{isa:?} {d}->{h}->{m}, {k} x {bad}");
                    // k distinct positions spread over a slice of `len`.
                    let spoil = |v: &mut [f32]| {
                        let len = v.len();
                        for i in 0..k {
                            v[i * len / k] = bad;
                        }
                    };
                    let mut q = p.clone();
                    spoil(&mut q);
                    assert_eq!(model.set_params(&q), Err(Error::NonFinite), "{what}");
                    assert_eq!(params(&model), p, "{what}: set_params changed");
                    // Four rows: targets and inputs of 4 * m and 4 * d values.
                    let n = 4;
                    let x = Rng(3).vec(n * d);
                    let y = vec![0.5f32; n * m];
                    model.forward(&x, None).unwrap();
                    let mut y_bad = y.clone();
                    spoil(&mut y_bad);
                    let g = grads(&model);
                    assert_eq!(model.backward(&y_bad), Err(Error::NonFinite), "{what}");
                    assert_eq!(grads(&model), g, "{what}: backward changed");
                    let mut x_bad = x.clone();
                    spoil(&mut x_bad);
                    assert_eq!(
                        model.train_step(&x_bad, &y, 0.1),
                        Err(Error::NonFinite),
                        "{what}: train_step x"
                    );
                    assert_eq!(
                        model.train_step(&x, &y_bad, 0.1),
                        Err(Error::NonFinite),
                        "{what}: train_step y"
                    );
                    assert_eq!(params(&model), p, "{what}: train_step changed");
                }
            }
        }
    }
}
