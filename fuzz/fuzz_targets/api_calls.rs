//! Random sequences of API calls with random sizes and values: create (boxed or in
//! caller memory, either loss), forward, backward, step, train_step, get/set
//! parameters and gradients, set_optimizer, save and load (also of corrupted and
//! truncated checkpoints), and NULL pointers. Every call goes to a model behind the
//! Rust API and to one behind the C functions (created from the same arguments).
//! After every call: no parameter is NaN or infinite; a refused call changed neither
//! model and returned a documented error; the two models agree on the verdict (and
//! on predictions, losses and checkpoint bytes); and they hold the same parameters
//! and gradients, bit for bit (compared after every refused call, when the pair is
//! replaced, and at the end).
//!
//! The input format and its bounds are in `api_input.rs`: at most `MAX_OPS` calls,
//! and small models (widths below 36, deep layers below 9, d below 20, m below 6,
//! max_batch below 10), so that one input costs microseconds, not milliseconds.
//! `fuzz/examples/seeds.rs` writes the seed corpus in this format.
#![no_main]

mod api_input;

use api_input::*;
use core::ptr::{null, null_mut};
use flowmlp::ffi::*;
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};
use libfuzzer_sys::fuzz_target;

fn fill(v: Values, n: usize) -> Vec<f32> {
    let mut s = match v {
        Values::Good(seed) | Values::OneBad(seed, _) => (seed as u32 + 1).wrapping_mul(2654435761),
        Values::Bits(seed) => seed | 1,
        Values::Special(_) => 1,
    };
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let mut out: Vec<f32> = (0..n)
        .map(|_| match v {
            Values::Good(_) | Values::OneBad(..) => (next() % 2001) as f32 / 1000.0 - 1.0,
            Values::Bits(_) => f32::from_bits(next()),
            Values::Special(i) => SPECIAL[i as usize % SPECIAL.len()],
        })
        .collect();
    if let Values::OneBad(i, at) = v {
        if n > 0 {
            out[at as usize % n] = SPECIAL[i as usize % SPECIAL.len()];
        }
    }
    out
}

/// 64-byte aligned memory for a model in caller memory.
struct Block {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Block {
    fn new(size: usize) -> Block {
        let layout = std::alloc::Layout::from_size_align(size.max(64), 64).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        Block { ptr, layout }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// The Rust-side model (dropped before its memory).
struct RustModel {
    model: Model,
    _block: Option<Block>,
}

/// The C-side model: a handle, and its memory when it lives in caller memory.
struct CModel {
    h: *mut flowmlp_model,
    _block: Option<Block>,
}

impl Drop for CModel {
    fn drop(&mut self) {
        // SAFETY: a live handle, given up (frees nothing for caller memory).
        unsafe { flowmlp_destroy(self.h) }
    }
}

const ISAS: [Isa; 5] = [Isa::Auto, Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

/// Parameters and gradients, as bits.
type Snap = (Vec<u32>, Vec<u32>);

fn bits(v: Vec<f32>) -> Vec<u32> {
    v.into_iter().map(f32::to_bits).collect()
}

fn rust_snap(m: &Model) -> Snap {
    let mut p = vec![0.0; m.param_count()];
    let mut g = vec![0.0; m.param_count()];
    m.get_params(&mut p).unwrap();
    m.get_grads(&mut g).unwrap();
    assert!(
        p.iter().all(|v| v.is_finite()),
        "a non-finite parameter (Rust)"
    );
    (bits(p), bits(g))
}

fn c_snap(h: *mut flowmlp_model) -> Snap {
    // SAFETY: a live handle; buffers of param_count floats.
    unsafe {
        let n = flowmlp_param_count(h);
        let (mut p, mut g) = (vec![0.0f32; n], vec![0.0f32; n]);
        assert_eq!(
            flowmlp_get_params(h, p.as_mut_ptr(), n),
            flowmlp_status::FLOWMLP_OK
        );
        assert_eq!(
            flowmlp_get_grads(h, g.as_mut_ptr(), n),
            flowmlp_status::FLOWMLP_OK
        );
        assert!(
            p.iter().all(|v| v.is_finite()),
            "a non-finite parameter (C)"
        );
        (bits(p), bits(g))
    }
}

/// Both models' state, which must agree; the Rust model's is returned.
fn snap_both(m: &Model, h: *mut flowmlp_model) -> Snap {
    let (r, c) = (rust_snap(m), c_snap(h));
    assert_eq!(r, c, "the Rust and C models differ");
    r
}

fn len(base: usize, delta: i8) -> usize {
    (base as isize + delta as isize).max(0) as usize
}

fn status(r: Result<(), Error>) -> flowmlp_status {
    match r {
        Ok(()) => flowmlp_status::FLOWMLP_OK,
        Err(e) => flowmlp_status::from(e),
    }
}

/// The errors a refused call on a live model may give.
fn refusal(e: Error) -> bool {
    matches!(
        e,
        Error::InvalidArgument
            | Error::BatchTooLarge
            | Error::NoForward
            | Error::NonFinite
            | Error::Diverged
            | Error::NullPointer
    )
}

#[allow(clippy::too_many_arguments)]
fn create(
    d: u8,
    hidden: &[u8],
    m: u8,
    max_batch: u8,
    seed: u64,
    isa: u8,
    memory: Memory,
    loss: u8,
) -> (Option<RustModel>, Option<CModel>) {
    let (d, hidden, m) = shape(d, hidden, m);
    let isa = isa % ISA_VALUES; // ISAS[i] is C value i; 5 is out of range
    let loss = loss % LOSS_VALUES; // 0 MSE, 1 cross-entropy; 2 is out of range
    let cfg = Config::new(d, &hidden, m)
        .max_batch((max_batch % MAX_BATCH) as usize)
        .seed(seed)
        .isa(ISAS[(isa % 5) as usize])
        .loss(if loss == 1 {
            Loss::CrossEntropy
        } else {
            Loss::Mse
        });
    // SAFETY: plain integers; zero is the default of every other field.
    let mut cc: flowmlp_config = unsafe { core::mem::zeroed() };
    cc.n_inputs = cfg.inputs as u32;
    cc.n_outputs = cfg.outputs as u32;
    cc.n_hidden = hidden.len() as u32;
    for (dst, &src) in cc.hidden.iter_mut().zip(&hidden) {
        *dst = src as u32;
    }
    cc.max_batch = cfg.max_batch as u32;
    cc.seed = seed;
    cc.isa = isa as u32;
    cc.loss = loss as u32;
    // Values the Rust types cannot hold: the C side alone, INVALID_CONFIG.
    let c_only = isa == 5 || loss == 2;
    let want = if c_only {
        Err(Error::InvalidConfig)
    } else {
        Model::arena_size_for(&cfg)
    };
    // SAFETY: a valid config pointer.
    let c_size = unsafe { flowmlp_arena_size(&cc) };
    assert_eq!(c_size, want.unwrap_or(0));
    let mut out = null_mut();
    // Where the models go: `off` bytes into a block, `size` bytes of it.
    let place = match memory {
        Memory::Boxed => None,
        _ if c_size == 0 => None, // an invalid config: flowmlp_create says why
        Memory::Caller => Some((0, c_size)),
        Memory::Misaligned(o) => Some((1 + o as usize % 63, c_size)),
        Memory::Short(s) => Some((0, c_size - 1 - s as usize % c_size)),
    };
    let (rust, c) = if let Some((off, size)) = place {
        // Exactly the bytes the models are given, so that ASan sees any overrun.
        let (b1, b2) = (Block::new(off + size), Block::new(off + size));
        // SAFETY: b1 is valid for off + size bytes, exclusively the model's, and
        // outlives it.
        let r = unsafe { Model::new_in(&cfg, b1.ptr.add(off), size) };
        // SAFETY: likewise for b2.
        let s = unsafe { flowmlp_create_in(&cc, b2.ptr.add(off) as *mut _, size, &mut out) };
        if (off, size) != (0, c_size) {
            // Refused: the kernel set is checked first, then the memory.
            let want = if cfg.isa == Isa::Auto || cfg.isa.is_supported() {
                Error::InvalidArgument
            } else {
                Error::UnsupportedIsa
            };
            assert_eq!(r.err(), Some(want), "bad caller memory");
            assert_eq!(s, flowmlp_status::from(want));
            assert!(out.is_null());
            return (None, None);
        }
        (
            r.map(|model| RustModel {
                model,
                _block: Some(b1),
            }),
            (s, Some(b2)),
        )
    } else {
        // SAFETY: valid pointers.
        let s = unsafe { flowmlp_create(&cc, &mut out) };
        let r = if c_only {
            Err(Error::InvalidConfig)
        } else {
            Model::new(&cfg)
        };
        (
            r.map(|model| RustModel {
                model,
                _block: None,
            }),
            (s, None),
        )
    };
    let (s, block) = c;
    if c_only {
        assert_eq!(s, flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG);
        assert!(out.is_null());
        return (None, None);
    }
    match &rust {
        Ok(_) => assert_eq!(s, flowmlp_status::FLOWMLP_OK),
        Err(e) => {
            assert!(
                matches!(e, Error::InvalidConfig | Error::UnsupportedIsa),
                "{e:?}"
            );
            // A config that is both invalid and asks for a missing kernel set may get
            // either error (Rust checks the set first, C the layer count first).
            assert!(
                matches!(
                    s,
                    flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG
                        | flowmlp_status::FLOWMLP_ERROR_UNSUPPORTED_ISA
                ),
                "{s:?}"
            );
            assert!(out.is_null());
        }
    }
    let c = (s == flowmlp_status::FLOWMLP_OK).then(|| CModel {
        h: out,
        _block: block,
    });
    (rust.ok(), c)
}

/// Load `last_save` (maybe with bit `flip` flipped, maybe cut to `cut` bytes) into
/// both models.
fn load(
    last_save: &[u8],
    max_batch: u8,
    isa: u8,
    flip: Option<u16>,
    cut: Option<u16>,
) -> (Option<RustModel>, Option<CModel>) {
    let mut b = last_save.to_vec();
    if let Some(at) = flip {
        if !b.is_empty() {
            let i = at as usize % (8 * b.len());
            b[i / 8] ^= 1 << (i % 8);
        }
    }
    let cut = cut.filter(|&c| (c as usize) < b.len());
    if let Some(c) = cut {
        b.truncate(c as usize);
    }
    let corrupted = flip.is_some() && !last_save.is_empty() || cut.is_some();
    let mb = max_batch % MAX_BATCH;
    let isa = isa % ISA_VALUES;
    let r = if isa == 5 {
        Err(Error::InvalidConfig) // an isa value Rust cannot hold
    } else {
        Model::load(&b, mb as usize, ISAS[isa as usize])
    };
    let mut out = null_mut();
    // SAFETY: valid buffer and out pointer.
    let s = unsafe { flowmlp_load(b.as_ptr(), b.len(), mb as u32, isa as u32, &mut out) };
    match r {
        Ok(model) => {
            assert!(!corrupted, "a corrupted checkpoint loaded");
            assert_eq!(s, flowmlp_status::FLOWMLP_OK);
            let (rust, c) = (
                RustModel {
                    model,
                    _block: None,
                },
                CModel {
                    h: out,
                    _block: None,
                },
            );
            snap_both(&rust.model, c.h);
            (Some(rust), Some(c))
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::BadCheckpoint
                        | Error::InvalidArgument
                        | Error::InvalidConfig
                        | Error::UnsupportedIsa
                ),
                "{e:?}"
            );
            if isa == 5 && b.len() < 8 {
                // Which of two faults comes first is not specified.
                assert!(matches!(
                    s,
                    flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG
                        | flowmlp_status::FLOWMLP_ERROR_BAD_CHECKPOINT
                ));
            } else if isa != 5 {
                assert_eq!(s, flowmlp_status::from(e));
            }
            assert_ne!(s, flowmlp_status::FLOWMLP_OK);
            assert!(out.is_null());
            (None, None)
        }
    }
}

/// The Rust optimizer for C's values, if Rust can hold them (fields a kind does not
/// use, as Nesterov for Adam, are ignored).
fn optimizer(o: &flowmlp_optimizer) -> Option<Optimizer> {
    Some(match o.kind {
        0 => Optimizer::Sgd {
            momentum: o.momentum,
            nesterov: match o.nesterov {
                0 => false,
                1 => true,
                _ => return None,
            },
            weight_decay: o.weight_decay,
        },
        1 => Optimizer::Adam {
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
        },
        2 => Optimizer::AdamW {
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
        },
        _ => return None,
    })
}

/// Whether to print every call and its verdict (environment variable
/// `API_CALLS_TRACE` set), to see what an input does:
/// `API_CALLS_TRACE=1 fuzz/target/x86_64-unknown-linux-gnu/release/api_calls FILE`.
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("API_CALLS_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let mut rust: Option<RustModel> = None;
    let mut c: Option<CModel> = None;
    let mut last_save: Vec<u8> = Vec::new();
    // The Rust model's parameters and gradients after the last call (None: not taken
    // yet). The C model's are compared with them after every refused call, and
    // after successful calls only before the pair is replaced and at the end (they
    // cost as much as a call here).
    let mut state: Option<Snap> = None;
    let mut synced = false; // the C model was compared since the last successful call
    let check_pair = |c: &Option<CModel>, state: &Option<Snap>, synced: bool| {
        if let (Some(c), Some(s), false) = (c, state, synced) {
            assert_eq!(c_snap(c.h), *s, "the Rust and C models differ");
        }
    };
    for op in decode(data) {
        if trace() {
            eprintln!("{op:?}");
        }
        match op {
            Op::Create {
                d,
                ref hidden,
                m,
                max_batch,
                seed,
                isa,
                memory,
                loss,
            } => {
                // Drop the old models first (their memory goes with them).
                check_pair(&c, &state, synced);
                drop(rust.take());
                drop(c.take());
                (state, synced) = (None, false);
                (rust, c) = create(d, hidden, m, max_batch, seed, isa, memory, loss);
                if trace() {
                    eprintln!("  -> {}", if c.is_some() { "created" } else { "refused" });
                }
                continue;
            }
            Op::Load {
                max_batch,
                isa,
                flip,
                cut,
            } => {
                let (r, cm) = load(&last_save, max_batch, isa, flip, cut);
                if trace() {
                    eprintln!("  -> {}", if r.is_some() { "loaded" } else { "refused" });
                }
                if r.is_some() {
                    check_pair(&c, &state, synced);
                    (rust, c, state, synced) = (r, cm, None, false);
                }
                continue;
            }
            _ => {}
        }
        let (Some(r), Some(cm)) = (rust.as_mut(), c.as_ref()) else {
            continue;
        };
        let (m, h) = (&mut r.model, cm.h);
        let cfg = *m.config();
        let (d, o, mb, np) = (cfg.inputs, cfg.outputs, cfg.max_batch, m.param_count());
        // Calls through `&self` (Rust) and `const flowmlp_model *` (C) cannot change
        // the models: no snapshots around them (one costs as much as such a call).
        let reads = matches!(
            op,
            Op::GetParams { .. } | Op::GetGrads { .. } | Op::Save { .. } | Op::Predict { .. }
        );
        let before = match state.take() {
            None if !reads => Some(rust_snap(m)),
            s => s,
        };
        // SAFETY (whole match): every buffer handed to C holds at least what the call
        // may read or write; `h` is a live handle.
        // False when a call has no C form (lengths C cannot express): C was not called.
        let mut c_called = true;
        let (rr, cs): (Result<(), Error>, flowmlp_status) = unsafe {
            match op {
                Op::Create { .. } | Op::Load { .. } => unreachable!(),
                Op::Forward {
                    rows,
                    extra,
                    x,
                    want_y,
                    y_delta,
                } => {
                    let n = rows as usize % (mb + 2);
                    // An extra value (when d > 1) makes x no whole number of rows.
                    let odd = d > 1 && extra % 2 == 1;
                    let xs = fill(x, n * d + odd as usize);
                    let ylen = len(n * o, y_delta);
                    let mut y = vec![0.0; ylen.max(n * o) + 1];
                    let rr = m.forward(&xs, want_y.then_some(&mut y[..ylen]));
                    let mut cy = vec![0.0; n * o + 1];
                    let yp = if want_y { cy.as_mut_ptr() } else { null_mut() };
                    let cs = if odd || (want_y && y_delta != 0) {
                        // Lengths C cannot express.
                        assert!(rr.is_err(), "forward took wrong lengths");
                        c_called = false;
                        status(rr)
                    } else {
                        flowmlp_forward(h, xs.as_ptr(), n, yp)
                    };
                    if rr.is_ok() && want_y {
                        assert_eq!(bits(y), bits(cy), "Rust and C predictions differ");
                    }
                    (rr, cs)
                }
                Op::Backward {
                    len_delta,
                    y,
                    want_loss,
                } => {
                    let n = m.kept_rows().unwrap_or(1);
                    let ys = fill(y, len(n * o, len_delta).max(mb * o));
                    let rr = m.backward(&ys[..len(n * o, len_delta)]);
                    let mut loss = f32::NAN;
                    let lp = if want_loss {
                        &mut loss as *mut f32
                    } else {
                        null_mut()
                    };
                    let cs = if len_delta != 0 {
                        c_called = false;
                        status(rr.map(drop))
                    } else {
                        flowmlp_backward(h, ys.as_ptr(), lp)
                    };
                    if let (Ok(l), true, 0) = (rr, want_loss, len_delta) {
                        assert_eq!(l.to_bits(), loss.to_bits(), "Rust and C losses differ");
                    }
                    (rr.map(drop), cs)
                }
                Op::Step { lr } => {
                    let lr = lr.get();
                    (m.step(lr), flowmlp_step(h, lr))
                }
                Op::TrainStep {
                    rows,
                    x,
                    x_delta,
                    y,
                    y_delta,
                    lr,
                    want_loss,
                } => {
                    let (n, lr) = (rows as usize % (mb + 2), lr.get());
                    let (lx, ly) = (len(n * d, x_delta), len(n * o, y_delta));
                    let (xs, ys) = (fill(x, lx), fill(y, ly));
                    let rr = m.train_step(&xs, &ys, lr);
                    let mut loss = f32::NAN;
                    let lp = if want_loss {
                        &mut loss as *mut f32
                    } else {
                        null_mut()
                    };
                    // C takes a row count: it can say only lengths of whole rows that
                    // agree.
                    let c_rows = (lx % d == 0 && ly == lx / d * o).then_some(lx / d);
                    let cs = if let Some(nc) = c_rows {
                        flowmlp_train_step(h, xs.as_ptr(), ys.as_ptr(), nc, lr, lp)
                    } else {
                        assert!(rr.is_err(), "train_step took wrong lengths");
                        c_called = false;
                        status(rr.map(drop))
                    };
                    if let (Ok(l), true, Some(_)) = (rr, want_loss, c_rows) {
                        assert_eq!(l.to_bits(), loss.to_bits(), "Rust and C losses differ");
                    }
                    (rr.map(drop), cs)
                }
                Op::GetParams { len_delta } => {
                    let l = len(np, len_delta);
                    let (mut p, mut q) = (vec![0.0; l], vec![0.0; l.max(1)]);
                    (
                        m.get_params(&mut p),
                        flowmlp_get_params(h, q.as_mut_ptr(), l),
                    )
                }
                Op::GetGrads { len_delta } => {
                    let l = len(np, len_delta);
                    let (mut p, mut q) = (vec![0.0; l], vec![0.0; l.max(1)]);
                    (m.get_grads(&mut p), flowmlp_get_grads(h, q.as_mut_ptr(), l))
                }
                Op::SetParams {
                    values,
                    len_delta,
                    perturb,
                } => {
                    let mut p = fill(values, len(np, len_delta).max(1));
                    if perturb && p.len() == np {
                        let now = &before.as_ref().unwrap().0;
                        for (v, b) in p.iter_mut().zip(now) {
                            *v = f32::from_bits(*b) + *v * 1e-3;
                        }
                    }
                    let l = len(np, len_delta);
                    (m.set_params(&p[..l]), flowmlp_set_params(h, p.as_ptr(), l))
                }
                Op::Save { cap_delta } => {
                    let cap = (m.save_size() as isize + cap_delta as isize).max(0) as usize;
                    assert_eq!(flowmlp_save_size(h), m.save_size());
                    let (mut a, mut b) = (vec![0u8; cap], vec![0u8; cap.max(1)]);
                    let rr = m.save(&mut a);
                    let mut written = 0;
                    let cs = flowmlp_save(h, b.as_mut_ptr(), cap, &mut written);
                    if let Ok(n) = rr {
                        assert_eq!(written, n);
                        assert_eq!(a[..n], b[..n], "Rust and C checkpoints differ");
                        a.truncate(n);
                        last_save = a;
                    }
                    (rr.map(drop), cs)
                }
                Op::Null { which } => {
                    let x = vec![0.0f32; mb.max(1) * d.max(1) + np];
                    let opt = flowmlp_optimizer {
                        kind: 0,
                        momentum: 0.0,
                        nesterov: 0,
                        beta1: 0.0,
                        beta2: 0.0,
                        eps: 0.0,
                        weight_decay: 0.0,
                        clip_norm: 0.0,
                    };
                    let mut out = null_mut();
                    // SAFETY: plain integers.
                    let mut cc: flowmlp_config = core::mem::zeroed();
                    assert_eq!(flowmlp_get_config(h, &mut cc), flowmlp_status::FLOWMLP_OK);
                    let size = flowmlp_arena_size(&cc);
                    assert_eq!(size, m.arena_size());
                    let block = Block::new(size);
                    let mem = block.ptr as *mut core::ffi::c_void;
                    let mut ws = vec![0u8; m.predict_workspace_size(1)];
                    let (wp, wl) = (ws.as_mut_ptr() as *mut core::ffi::c_void, ws.len());
                    let mut y = vec![0.0f32; o.max(np)];
                    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
                    let ck = [0u8; 16];
                    let s = match which % 32 {
                        0 => flowmlp_forward(h, null(), 1, null_mut()),
                        1 => flowmlp_backward(h, null(), null_mut()),
                        2 => flowmlp_train_step(h, null(), xp, 1, 0.1, null_mut()),
                        3 => flowmlp_train_step(h, xp, null(), 1, 0.1, null_mut()),
                        4 => flowmlp_get_params(h, null_mut(), np),
                        5 => flowmlp_set_params(h, null(), np),
                        6 => flowmlp_save(h, null_mut(), 1 << 20, null_mut()),
                        7 => flowmlp_step(null_mut(), 0.1),
                        8 => flowmlp_get_grads(h, null_mut(), np),
                        9 => flowmlp_set_optimizer(h, null()),
                        10 => flowmlp_set_optimizer(null_mut(), &opt),
                        11 => flowmlp_load(null(), 0, 1, 0, &mut out),
                        12 => flowmlp_create(null(), &mut out),
                        13 => flowmlp_forward(null_mut(), xp, 1, null_mut()),
                        14 => flowmlp_backward(null_mut(), xp, null_mut()),
                        15 => flowmlp_train_step(null_mut(), xp, xp, 1, 0.1, null_mut()),
                        16 => flowmlp_train_step(h, null(), null(), 1, 0.1, null_mut()),
                        17 => flowmlp_get_params(null(), yp, np),
                        18 => flowmlp_get_grads(null(), yp, np),
                        19 => flowmlp_set_params(null_mut(), xp, np),
                        20 => flowmlp_save(null(), null_mut(), 0, null_mut()),
                        21 => flowmlp_create(&cc, null_mut()),
                        22 => flowmlp_create_in(null(), mem, size, &mut out),
                        23 => flowmlp_create_in(&cc, null_mut(), size, &mut out),
                        24 => flowmlp_create_in(&cc, mem, size, null_mut()),
                        25 => flowmlp_load(ck.as_ptr(), ck.len(), 1, 0, null_mut()),
                        26 => flowmlp_get_config(h, null_mut()),
                        27 => flowmlp_get_config(null(), &mut cc),
                        28 => flowmlp_predict(null(), xp, 1, yp, wp, wl),
                        29 => flowmlp_predict(h, null(), 1, yp, wp, wl),
                        30 => flowmlp_predict(h, xp, 1, null_mut(), wp, wl),
                        _ => flowmlp_predict(h, xp, 1, yp, null_mut(), wl),
                    };
                    drop(block);
                    assert_eq!(s, flowmlp_status::FLOWMLP_ERROR_NULL_POINTER);
                    assert!(out.is_null());
                    (Err(Error::NullPointer), s)
                }
                Op::Predict {
                    rows,
                    x,
                    ws_rows,
                    ws_delta,
                } => {
                    let n = (rows % MAX_PREDICT_ROWS) as usize;
                    let xs = fill(x, n * d);
                    let wl = m.predict_workspace_size((ws_rows % MAX_PREDICT_ROWS) as usize);
                    assert_eq!(
                        flowmlp_predict_workspace_size(h, n.max(1)),
                        m.predict_workspace_size(n.max(1))
                    );
                    let wl = (wl as isize + ws_delta as isize).max(0) as usize;
                    // Exactly the bytes stated, so that ASan sees any overrun.
                    let (mut w1, mut w2) = (vec![0u8; wl], vec![0u8; wl]);
                    let (mut y1, mut y2) = (vec![0.0; n * o], vec![0.0; n * o]);
                    let rr = m.predict(&xs, &mut y1, &mut w1);
                    let cs = flowmlp_predict(
                        h,
                        xs.as_ptr(),
                        n,
                        y2.as_mut_ptr(),
                        w2.as_mut_ptr() as *mut _,
                        wl,
                    );
                    if rr.is_ok() {
                        assert_eq!(bits(y1), bits(y2), "Rust and C predictions differ");
                    }
                    (rr, cs)
                }
                Op::SetOptimizer {
                    kind,
                    nesterov,
                    momentum,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    clip,
                } => {
                    let kind = match kind % KIND_VALUES {
                        5 => u32::MAX,
                        k => k as u32,
                    };
                    let nesterov = match nesterov % NESTEROV_VALUES {
                        3 => u32::MAX,
                        n => n as u32,
                    };
                    let co = flowmlp_optimizer {
                        kind,
                        momentum: momentum.get(),
                        nesterov,
                        beta1: beta1.get(),
                        beta2: beta2.get(),
                        eps: eps.get(),
                        weight_decay: weight_decay.get(),
                        clip_norm: clip.get(),
                    };
                    let cs = flowmlp_set_optimizer(h, &co);
                    // C changes nothing unless the optimizer and the clipping norm
                    // are both good; Rust has a call for each.
                    let was = (m.optimizer(), m.optimizer_steps());
                    let rr = match optimizer(&co) {
                        None => Err(Error::InvalidArgument), // values Rust cannot hold
                        Some(_) if !(co.clip_norm.is_finite() && co.clip_norm >= 0.0) => {
                            let rr = m.set_grad_clip(co.clip_norm);
                            assert_eq!(rr, Err(Error::InvalidArgument));
                            rr
                        }
                        Some(opt) => {
                            let rr = m.set_optimizer(opt);
                            if rr.is_ok() {
                                assert_eq!(m.optimizer(), opt);
                                assert_eq!(m.optimizer_steps(), 0);
                                m.set_grad_clip(co.clip_norm).unwrap();
                            }
                            rr
                        }
                    };
                    if rr.is_err() {
                        assert_eq!((m.optimizer(), m.optimizer_steps()), was);
                    }
                    (rr, cs)
                }
            }
        };
        if trace() {
            eprintln!("  -> Rust {rr:?}, C {cs:?}");
        }
        assert_eq!(status(rr), cs, "Rust and C disagree");
        if let Err(e) = rr {
            assert!(refusal(e), "{e:?}");
        }
        if reads {
            state = before;
            continue;
        }
        let after = rust_snap(m);
        if rr.is_err() {
            assert!(
                before.as_ref() == Some(&after),
                "a refused call changed the Rust model"
            );
            if c_called {
                assert!(
                    c_snap(h) == after,
                    "a refused call changed the C model (or the two had drifted apart)"
                );
            }
        }
        synced = rr.is_err() && (c_called || synced);
        state = Some(after);
    }
    check_pair(&c, &state, synced);
});
