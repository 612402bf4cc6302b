//! After `Model::new`, no call allocates: a counting global allocator watches every
//! call of the API, through Rust and through the C functions, successful and
//! refused, on every kernel set this machine runs. A model built in caller-owned
//! memory (`Model::new_in`, `flowmlp_create_in`) allocates nothing at all, not even
//! to be created or dropped.
//!
//! Not covered, by design: the calls that create a model (`Model::new`,
//! `flowmlp_create`, `Model::load`, `flowmlp_load`, `*_load_file`) and
//! `save_file`, which allocate by their nature (documented).

mod common;
use common::*;
use flowmlp::ffi::*;
use flowmlp::{Config, Error, Model};

#[path = "common/counting.rs"]
mod counting;
use counting::{allocations, watched};

use std::ptr::{null, null_mut};

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
    let (_, seen) = watched(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!((seen.allocs, seen.frees, seen.largest), (1, 1, 10));
}

const SHAPES: [(usize, &[usize], usize, usize); 3] = [
    (10, &[64], 1, 32),
    (7, &[17, 33, 3], 3, 9),
    (8, &[32], 1, 1),
];

/// Every Rust call, successful and refused, `rounds` times on model `m`.
fn exercise_rust(m: &mut Model, rounds: usize, rng: &mut Rng) -> usize {
    let cfg = *m.config();
    let (d, o, mb) = (cfg.inputs, cfg.outputs, cfg.max_batch);
    // Everything the loop needs is allocated before counting starts.
    let x = rng.vec(mb * d);
    let y = rng.vec(mb * o);
    let mut yhat = vec![0.0; mb * o];
    let mut p = vec![0.0; m.param_count()];
    let mut g = vec![0.0; m.param_count()];
    let mut short = vec![0.0; m.param_count() - 1];
    let mut bad_p = p.clone();
    let bad_x = vec![f32::NAN; d];
    let huge_y = vec![1e30; o];
    let big_y = vec![1e15; mb * o];
    let too_many = vec![0.5; (mb + 1) * d];
    let mut ck = vec![0u8; m.save_size()];
    let mut ck_short = vec![0u8; m.save_size() - 1];
    allocations(|| {
        for it in 0..rounds {
            let n = 1 + it % mb;
            let (xs, ys) = (&x[..n * d], &y[..n * o]);
            m.forward(xs, Some(&mut yhat[..n * o])).unwrap();
            m.forward(xs, None).unwrap();
            m.backward(ys).unwrap();
            m.step(0.01).unwrap();
            m.train_step(xs, ys, 0.01).unwrap();
            m.get_params(&mut p).unwrap();
            m.set_params(&p).unwrap();
            m.get_grads(&mut g).unwrap();
            let _ = m.param_count();
            let _ = m.isa().name();
            let _ = m.config();
            let _ = m.arena_size();
            let _ = m.kept_rows();
            let _ = Model::arena_size_for(&cfg).unwrap();
            let _ = m.save_size();
            assert_eq!(m.save(&mut ck), Ok(ck.len()));
            // Refused calls must not allocate either (e.g. for error messages).
            assert!(m.forward(&bad_x, None).is_err());
            assert!(m.forward(&[], None).is_err());
            assert!(m.forward(&too_many, None).is_err());
            assert!(m.forward(xs, Some(&mut yhat[..0])).is_err());
            assert_eq!(m.backward(ys), Err(Error::NoForward));
            m.forward(xs, None).unwrap();
            assert!(m.backward(&ys[1..]).is_err());
            assert!(m.backward(&huge_y[..0]).is_err());
            if n == 1 {
                assert_eq!(m.backward(&huge_y), Err(Error::Diverged));
            }
            assert!(m.step(-1.0).is_err());
            assert!(m.step(f32::NAN).is_err());
            assert!(m.train_step(&bad_x, &y[..o], 0.1).is_err());
            assert!(m.train_step(xs, ys, f32::INFINITY).is_err());
            assert!(m.train_step(xs, &ys[1..], 0.1).is_err());
            assert!(m.train_step(&too_many, &y, 0.1).is_err());
            assert!(m.get_params(&mut short).is_err());
            assert!(m.get_grads(&mut short).is_err());
            assert!(m.set_params(&short).is_err());
            bad_p.copy_from_slice(&p);
            bad_p[it % p.len()] = f32::INFINITY;
            assert!(m.set_params(&bad_p).is_err());
            assert!(m.save(&mut ck_short).is_err());
            let _ = Error::NonFinite.message();
            // An update that would overflow, refused.
            m.forward(&x, None).unwrap();
            m.backward(&big_y).unwrap();
            assert_eq!(m.step(f32::MAX), Err(Error::Diverged));
            assert_eq!(m.train_step(&x, &big_y, f32::MAX), Err(Error::Diverged));
        }
    })
}

#[test]
fn no_rust_call_allocates_after_create() {
    let mut rng = Rng(11);
    for isa in isas() {
        for (d, hidden, m, max_batch) in SHAPES {
            let cfg = Config::new(d, hidden, m).max_batch(max_batch).seed(1);
            let mut model = model(&cfg, isa);
            let count = exercise_rust(&mut model, 60, &mut rng);
            assert_eq!(
                count, 0,
                "{isa:?} {d}->{hidden:?}->{m}: {count} allocations after create"
            );
        }
    }
}

/// A 64-byte aligned block of `size` bytes, freed on drop.
struct Block {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Block {
    fn new(size: usize) -> Block {
        let layout = std::alloc::Layout::from_size_align(size, 64).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        assert!(!ptr.is_null());
        Block { ptr, layout }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

#[test]
fn a_model_in_caller_memory_never_allocates_or_frees() {
    let mut rng = Rng(12);
    for isa in isas() {
        for (d, hidden, m, max_batch) in SHAPES {
            let cfg = Config::new(d, hidden, m)
                .max_batch(max_batch)
                .seed(1)
                .isa(isa);
            let size = Model::arena_size_for(&cfg).unwrap();
            let block = Block::new(size);
            // Warm the once-cached kernel detection outside the watch.
            drop(Model::new(&cfg).unwrap());
            let (model, seen) = watched(|| {
                // SAFETY: the block is valid for `size` bytes, unused by anything else,
                // and outlives the model.
                unsafe { Model::new_in(&cfg, block.ptr, size) }.unwrap()
            });
            assert_eq!(seen.allocs, 0, "{isa:?}: new_in allocated");
            let mut model = model;
            assert_eq!(exercise_rust(&mut model, 20, &mut rng), 0);
            let ((), seen) = watched(|| drop(model));
            assert_eq!((seen.allocs, seen.frees), (0, 0), "{isa:?}: drop");
            // Refusals of new_in allocate nothing either.
            let (r, seen) = watched(|| {
                // SAFETY: valid for size bytes (the calls are refused anyway).
                unsafe {
                    (
                        Model::new_in(&cfg, block.ptr, size - 1).err(),
                        Model::new_in(&cfg, block.ptr.add(1), size - 1).err(),
                        Model::new_in(&cfg, null_mut(), size).err(),
                        Model::new_in(&cfg.max_batch(0), block.ptr, size).err(),
                    )
                }
            });
            assert_eq!(
                r,
                (
                    Some(Error::InvalidArgument),
                    Some(Error::InvalidArgument),
                    Some(Error::NullPointer),
                    Some(Error::InvalidConfig)
                )
            );
            assert_eq!(seen.allocs, 0);
        }
    }
}

/// Every C call, successful and refused, on handle `h` of a model of `cfg`.
///
/// # Safety
/// `h` is a live handle of a model with that configuration.
unsafe fn exercise_c(h: *mut flowmlp_model, cfg: &flowmlp_config, rounds: usize) -> usize {
    use flowmlp_status::*;
    let (d, o, mb) = (
        cfg.n_inputs as usize,
        cfg.n_outputs as usize,
        cfg.max_batch as usize,
    );
    let mut rng = Rng(5);
    let x = rng.vec(mb * d);
    let y = rng.vec(mb * o);
    let mut yhat = vec![0.0f32; mb * o];
    // SAFETY (whole body): every pointer is valid for what the call reads or writes.
    unsafe {
        let np = flowmlp_param_count(h);
        let mut p = vec![0.0f32; np];
        let mut g = vec![0.0f32; np];
        let bad_x = vec![f32::NAN; d];
        let big_y = vec![1e15f32; mb * o];
        let mut ck = vec![0u8; flowmlp_save_size(h)];
        let mut written = 0usize;
        allocations(|| {
            for it in 0..rounds {
                let n = 1 + it % mb;
                let mut loss = 0.0f32;
                assert_eq!(
                    flowmlp_forward(h, x.as_ptr(), n, yhat.as_mut_ptr()),
                    FLOWMLP_OK
                );
                assert_eq!(flowmlp_backward(h, y.as_ptr(), &mut loss), FLOWMLP_OK);
                assert_eq!(flowmlp_step(h, 0.01), FLOWMLP_OK);
                assert_eq!(
                    flowmlp_train_step(h, x.as_ptr(), y.as_ptr(), n, 0.01, &mut loss),
                    FLOWMLP_OK
                );
                assert_eq!(flowmlp_get_params(h, p.as_mut_ptr(), np), FLOWMLP_OK);
                assert_eq!(flowmlp_set_params(h, p.as_ptr(), np), FLOWMLP_OK);
                assert_eq!(flowmlp_get_grads(h, g.as_mut_ptr(), np), FLOWMLP_OK);
                let _ = flowmlp_param_count(h);
                assert!(!flowmlp_isa_name(h).is_null());
                assert!(!flowmlp_status_message(7).is_null());
                assert!(!flowmlp_version().is_null());
                let _ = flowmlp_isa_supported(2);
                assert!(flowmlp_arena_size(cfg) > 0);
                let cap = flowmlp_save_size(h);
                assert_eq!(
                    flowmlp_save(h, ck.as_mut_ptr(), cap, &mut written),
                    FLOWMLP_OK
                );
                // Refused calls.
                assert_ne!(
                    flowmlp_forward(h, bad_x.as_ptr(), 1, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(flowmlp_forward(h, null(), 1, null_mut()), FLOWMLP_OK);
                assert_ne!(flowmlp_forward(h, x.as_ptr(), 0, null_mut()), FLOWMLP_OK);
                assert_ne!(
                    flowmlp_forward(h, x.as_ptr(), mb + 1, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(
                    flowmlp_forward(null_mut(), x.as_ptr(), 1, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(flowmlp_backward(h, y.as_ptr(), null_mut()), FLOWMLP_OK);
                assert_ne!(flowmlp_step(h, -1.0), FLOWMLP_OK);
                assert_ne!(
                    flowmlp_train_step(h, bad_x.as_ptr(), y.as_ptr(), 1, 0.1, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(
                    flowmlp_train_step(h, x.as_ptr(), y.as_ptr(), 1, f32::NAN, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(flowmlp_get_params(h, p.as_mut_ptr(), np - 1), FLOWMLP_OK);
                assert_ne!(flowmlp_get_grads(h, null_mut(), np), FLOWMLP_OK);
                assert_ne!(flowmlp_set_params(h, p.as_ptr(), np + 1), FLOWMLP_OK);
                assert_ne!(
                    flowmlp_save(h, ck.as_mut_ptr(), cap - 1, null_mut()),
                    FLOWMLP_OK
                );
                assert_ne!(
                    flowmlp_save(null(), ck.as_mut_ptr(), cap, null_mut()),
                    FLOWMLP_OK
                );
                assert_eq!(flowmlp_save_size(null()), 0);
                assert_eq!(flowmlp_arena_size(null()), 0);
                // Overflowing update, refused.
                assert_eq!(flowmlp_forward(h, x.as_ptr(), mb, null_mut()), FLOWMLP_OK);
                assert_eq!(flowmlp_backward(h, big_y.as_ptr(), null_mut()), FLOWMLP_OK);
                assert_eq!(flowmlp_step(h, f32::MAX), FLOWMLP_ERROR_DIVERGED);
                // A failing create or load allocates nothing either (refused up front).
                let mut out = null_mut();
                assert_ne!(flowmlp_create(null(), &mut out), FLOWMLP_OK);
                assert_ne!(flowmlp_load(ck.as_ptr(), 10, 1, 0, &mut out), FLOWMLP_OK);
                assert_ne!(flowmlp_load(ck.as_ptr(), cap, 0, 0, &mut out), FLOWMLP_OK);
                assert!(out.is_null());
            }
        })
    }
}

#[test]
fn no_c_call_allocates_after_create() {
    for isa in isas() {
        for (d, hidden, m, max_batch) in SHAPES {
            let h: Vec<u32> = hidden.iter().map(|&w| w as u32).collect();
            let cfg = c_config(d as u32, &h, m as u32, max_batch as u32, 3, isa as u32);
            let mut h = null_mut();
            // SAFETY: valid pointers; the handle is destroyed below.
            unsafe {
                assert_eq!(flowmlp_create(&cfg, &mut h), flowmlp_status::FLOWMLP_OK);
                let count = exercise_c(h, &cfg, 30);
                assert_eq!(
                    count, 0,
                    "{isa:?} {d}->{hidden:?}->{m}: {count} allocations"
                );
                flowmlp_destroy(h);
            }
            // In caller memory: creation and destruction allocate and free nothing.
            // SAFETY: valid pointer.
            let size = unsafe { flowmlp_arena_size(&cfg) };
            let block = Block::new(size);
            let mut h = null_mut();
            let (status, seen) = watched(|| {
                // SAFETY: the block is valid for `size` bytes and outlives the model.
                unsafe { flowmlp_create_in(&cfg, block.ptr as *mut _, size, &mut h) }
            });
            assert_eq!(status, flowmlp_status::FLOWMLP_OK);
            assert_eq!(seen.allocs, 0, "{isa:?}: flowmlp_create_in allocated");
            // SAFETY: a live handle of this configuration.
            assert_eq!(unsafe { exercise_c(h, &cfg, 10) }, 0);
            // SAFETY: a live handle, given up.
            let ((), seen) = watched(|| unsafe { flowmlp_destroy(h) });
            assert_eq!((seen.allocs, seen.frees), (0, 0));
        }
    }
}
