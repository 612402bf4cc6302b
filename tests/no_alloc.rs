//! After `Model::new`, no call allocates: a counting global allocator watches every
//! call of the API, on every kernel set this machine runs.

mod common;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are const-initialized
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note() {
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}

#[test]
fn no_call_allocates_after_create() {
    let mut rng = Rng(11);
    for isa in isas() {
        for (d, hidden, m, max_batch) in [
            (10, vec![64], 1, 32),
            (7, vec![17, 33, 3], 3, 9),
            (8, vec![32], 1, 1),
        ] {
            let cfg = flowmlp::Config::new(d, &hidden, m)
                .max_batch(max_batch)
                .seed(1);
            let mut model = model(&cfg, isa);
            // Everything the loop below needs is allocated before counting starts.
            let x = rng.vec(max_batch * d);
            let y = rng.vec(max_batch * m);
            let mut yhat = vec![0.0; max_batch * m];
            let mut p = vec![0.0; model.param_count()];
            let mut g = vec![0.0; model.param_count()];
            let bad_x = vec![f32::NAN; d];
            let count = allocations(|| {
                for it in 0..200 {
                    let n = 1 + it % max_batch;
                    model
                        .forward(&x[..n * d], Some(&mut yhat[..n * m]))
                        .unwrap();
                    model.backward(&y[..n * m]).unwrap();
                    model.step(0.01).unwrap();
                    model.train_step(&x[..n * d], &y[..n * m], 0.01).unwrap();
                    model.get_params(&mut p).unwrap();
                    model.set_params(&p).unwrap();
                    model.get_grads(&mut g).unwrap();
                    // Refused calls must not allocate either (e.g. for error messages).
                    assert!(model.forward(&bad_x, None).is_err());
                    assert!(model.backward(&y[..n * m]).is_err());
                    assert!(model.step(-1.0).is_err());
                    let _ = model.param_count();
                    let _ = model.isa().name();
                }
            });
            assert_eq!(
                count, 0,
                "{isa:?} {d}->{hidden:?}->{m}: {count} allocations after create"
            );
        }
    }
}
