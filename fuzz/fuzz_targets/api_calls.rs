//! Random sequences of API calls with random sizes and values: create (boxed or in
//! caller memory), forward, backward, step, train_step, get/set parameters and
//! gradients, save and load. Every call goes to a model behind the Rust API and to
//! one behind the C functions (created from the same arguments). After every call:
//! no parameter is NaN or infinite; a refused call changed neither parameters nor
//! gradients and returned a documented error; and the two models agree on the
//! verdict.
#![no_main]

use core::ptr::{null, null_mut};
use flowmlp::ffi::*;
use flowmlp::{Config, Error, Isa, Model};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// Where the values of a batch come from.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Values {
    /// Small, smooth values.
    Good(u8),
    /// Arbitrary bit patterns (NaN, infinities, subnormals, huge values).
    Bits(u32),
    /// One special value everywhere.
    Special(u8),
    /// Good values with one special value at a position.
    OneBad(u8, u16),
}

const SPECIAL: [f32; 10] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    0.0,
    -0.0,
    1e-40,
];

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

#[derive(Arbitrary, Debug)]
enum Op {
    Create {
        d: u8,
        hidden: Vec<u8>,
        m: u8,
        max_batch: u8,
        seed: u64,
        isa: u8,
        in_place: bool,
    },
    Forward {
        rows: u8,
        extra: u8,
        x: Values,
        want_y: bool,
    },
    Backward {
        len_delta: i8,
        y: Values,
    },
    Step {
        lr: f32,
    },
    TrainStep {
        rows: u8,
        x: Values,
        y: Values,
        y_delta: i8,
        lr: f32,
    },
    GetParams {
        len_delta: i8,
    },
    GetGrads {
        len_delta: i8,
    },
    SetParams {
        values: Values,
        len_delta: i8,
        perturb: bool,
    },
    Save {
        cap_delta: i16,
    },
    Load {
        max_batch: u8,
        isa: u8,
        flip: Option<u16>,
    },
    Null {
        which: u8,
    },
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

fn len(base: usize, delta: i8) -> usize {
    (base as isize + delta as isize).max(0) as usize
}

fn status(r: Result<(), Error>) -> flowmlp_status {
    match r {
        Ok(()) => flowmlp_status::FLOWMLP_OK,
        Err(e) => flowmlp_status::from(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn create(
    d: u8,
    hidden: &[u8],
    m: u8,
    max_batch: u8,
    seed: u64,
    isa: u8,
    in_place: bool,
) -> (Option<RustModel>, Option<CModel>) {
    let hidden: Vec<usize> = hidden.iter().take(10).map(|&h| h as usize % 40).collect();
    let cfg = Config::new(d as usize % 20, &hidden, m as usize % 6)
        .max_batch(max_batch as usize % 10)
        .seed(seed)
        .isa(ISAS[(isa % 6 % 5) as usize]);
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
    cc.isa = (isa % 6) as u32; // ISAS[i] is C value i; 5 is out of range
    let want = if cc.isa == 5 {
        Err(Error::InvalidConfig)
    } else {
        Model::arena_size_for(&cfg)
    };
    // SAFETY: a valid config pointer.
    let c_size = unsafe { flowmlp_arena_size(&cc) };
    assert_eq!(c_size, want.unwrap_or(0));
    let mut out = null_mut();
    let (rust, c) = if in_place && c_size > 0 {
        let (b1, b2) = (Block::new(c_size), Block::new(c_size));
        // SAFETY: b1 is valid for c_size bytes, exclusively the model's, and outlives it.
        let r = unsafe { Model::new_in(&cfg, b1.ptr, c_size) };
        // SAFETY: likewise for b2.
        let s = unsafe { flowmlp_create_in(&cc, b2.ptr as *mut _, c_size, &mut out) };
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
        (
            Model::new(&cfg).map(|model| RustModel {
                model,
                _block: None,
            }),
            (s, None),
        )
    };
    let (s, block) = c;
    if cc.isa == 5 {
        assert_eq!(s, flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG);
        assert!(out.is_null());
        return (rust.ok(), None);
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

fuzz_target!(|ops: Vec<Op>| {
    let mut rust: Option<RustModel> = None;
    let mut c: Option<CModel> = None;
    let mut last_save: Vec<u8> = Vec::new();
    for op in ops.into_iter().take(64) {
        match &op {
            Op::Create {
                d,
                hidden,
                m,
                max_batch,
                seed,
                isa,
                in_place,
            } => {
                // Drop the old models first (their memory goes with them).
                drop(rust.take());
                drop(c.take());
                (rust, c) = create(*d, hidden, *m, *max_batch, *seed, *isa, *in_place);
                continue;
            }
            Op::Load {
                max_batch,
                isa,
                flip,
            } => {
                let mut b = last_save.clone();
                if let Some(at) = flip {
                    if !b.is_empty() {
                        let i = *at as usize % (8 * b.len());
                        b[i / 8] ^= 1 << (i % 8);
                    }
                }
                let mb = *max_batch as usize % 10;
                let isa = ISAS[*isa as usize % 5];
                let r = Model::load(&b, mb, isa);
                let mut out = null_mut();
                // SAFETY: valid buffer and out pointer.
                let s =
                    unsafe { flowmlp_load(b.as_ptr(), b.len(), mb as u32, isa as u32, &mut out) };
                match r {
                    Ok(model) => {
                        assert!(flip.is_none(), "a corrupted checkpoint loaded");
                        assert_eq!(s, flowmlp_status::FLOWMLP_OK);
                        rust = Some(RustModel {
                            model,
                            _block: None,
                        });
                        c = Some(CModel {
                            h: out,
                            _block: None,
                        });
                        let (a, b) = (rust_snap(&rust.as_ref().unwrap().model), c_snap(out));
                        assert_eq!(a.0, b.0, "Rust and C loads differ");
                    }
                    Err(e) => {
                        assert!(
                            matches!(
                                e,
                                Error::BadCheckpoint
                                    | Error::InvalidArgument
                                    | Error::UnsupportedIsa
                            ),
                            "{e:?}"
                        );
                        assert_eq!(s, flowmlp_status::from(e));
                        assert!(out.is_null());
                    }
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
        let (rb, cb) = (rust_snap(m), c_snap(h));
        // SAFETY (whole match): every buffer handed to C holds at least what the call
        // may read or write; `h` is a live handle.
        let (rr, cs): (Result<(), Error>, flowmlp_status) = unsafe {
            match op {
                Op::Create { .. } | Op::Load { .. } => unreachable!(),
                Op::Forward {
                    rows,
                    extra,
                    x,
                    want_y,
                } => {
                    let n = rows as usize % (mb + 2);
                    // An extra value (when d > 1) makes x no whole number of rows.
                    let odd = d > 1 && extra % 2 == 1;
                    let xs = fill(x, n * d + odd as usize);
                    let mut y = vec![0.0; n * o + 1];
                    let rr = m.forward(&xs, want_y.then_some(&mut y[..n * o]));
                    let mut cy = vec![0.0; n * o + 1];
                    let yp = if want_y { cy.as_mut_ptr() } else { null_mut() };
                    let cs = if odd {
                        status(rr) // a length C cannot express
                    } else {
                        flowmlp_forward(h, xs.as_ptr(), n, yp)
                    };
                    if rr.is_ok() && want_y {
                        assert_eq!(bits(y), bits(cy), "Rust and C predictions differ");
                    }
                    (rr, cs)
                }
                Op::Backward { len_delta, y } => {
                    let n = m.kept_rows().unwrap_or(1);
                    let ys = fill(y, len(n * o, len_delta).max(mb * o));
                    let rr = m.backward(&ys[..len(n * o, len_delta)]).map(drop);
                    let cs = if len_delta != 0 {
                        status(rr)
                    } else {
                        flowmlp_backward(h, ys.as_ptr(), null_mut())
                    };
                    (rr, cs)
                }
                Op::Step { lr } => (m.step(lr), flowmlp_step(h, lr)),
                Op::TrainStep {
                    rows,
                    x,
                    y,
                    y_delta,
                    lr,
                } => {
                    let n = rows as usize % (mb + 2);
                    let xs = fill(x, n * d);
                    let ys = fill(y, len(n * o, y_delta).max(n * o));
                    let rr = m.train_step(&xs, &ys[..len(n * o, y_delta)], lr).map(drop);
                    let cs = if y_delta != 0 {
                        status(rr)
                    } else {
                        flowmlp_train_step(h, xs.as_ptr(), ys.as_ptr(), n, lr, null_mut())
                    };
                    (rr, cs)
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
                        for (v, b) in p.iter_mut().zip(&rb.0) {
                            *v = f32::from_bits(*b) + *v * 1e-3;
                        }
                    }
                    let l = len(np, len_delta);
                    (m.set_params(&p[..l]), flowmlp_set_params(h, p.as_ptr(), l))
                }
                Op::Save { cap_delta } => {
                    let cap = (m.save_size() as isize + cap_delta as isize).max(0) as usize;
                    let (mut a, mut b) = (vec![0u8; cap], vec![0u8; cap.max(1)]);
                    let rr = m.save(&mut a);
                    let mut written = 0;
                    let cs = flowmlp_save(h, b.as_mut_ptr(), cap, &mut written);
                    if let Ok(n) = rr {
                        assert_eq!(written, n);
                        a.truncate(n);
                        last_save = a;
                    }
                    (rr.map(drop), cs)
                }
                Op::Null { which } => {
                    let x = vec![0.0f32; mb * d];
                    let s = match which % 8 {
                        0 => flowmlp_forward(h, null(), 1, null_mut()),
                        1 => flowmlp_backward(h, null(), null_mut()),
                        2 => flowmlp_train_step(h, null(), x.as_ptr(), 1, 0.1, null_mut()),
                        3 => flowmlp_train_step(h, x.as_ptr(), null(), 1, 0.1, null_mut()),
                        4 => flowmlp_get_params(h, null_mut(), np),
                        5 => flowmlp_set_params(h, null(), np),
                        6 => flowmlp_save(h, null_mut(), 1 << 20, null_mut()),
                        _ => flowmlp_step(null_mut(), 0.1),
                    };
                    assert_eq!(s, flowmlp_status::FLOWMLP_ERROR_NULL_POINTER);
                    (Err(Error::NullPointer), s)
                }
            }
        };
        assert_eq!(status(rr), cs, "Rust and C disagree");
        let (ra, ca) = (rust_snap(m), c_snap(h));
        if let Err(e) = rr {
            assert!(
                matches!(
                    e,
                    Error::InvalidArgument
                        | Error::BatchTooLarge
                        | Error::NoForward
                        | Error::NonFinite
                        | Error::NullPointer
                ),
                "{e:?}"
            );
            assert_eq!(rb, ra, "a refused call changed the Rust model");
            assert_eq!(cb, ca, "a refused call changed the C model");
        }
    }
});
