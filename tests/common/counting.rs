//! A counting global allocator for the tests that check what allocates: include it
//! with `#[path = "common/counting.rs"] mod counting;` (it installs itself as the
//! test binary's `#[global_allocator]`). `watched` counts the allocations made on
//! the calling thread; `allocations_on_any_thread` those of every thread of the
//! process (for a test binary whose one test runs alone).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static ANY_THREAD: AtomicBool = AtomicBool::new(false);
static ANY_COUNT: AtomicUsize = AtomicUsize::new(0);

pub struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static FREES: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if ANY_THREAD.load(Ordering::Relaxed) {
        ANY_COUNT.fetch_add(1, Ordering::Relaxed);
    }
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

fn note_free() {
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = FREES.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards to the system allocator; the counters are const-initialized
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free();
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What `watched` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Allocations (alloc, alloc_zeroed, realloc).
    pub allocs: usize,
    /// Deallocations.
    pub frees: usize,
    /// The largest size requested, in bytes.
    pub largest: usize,
}

/// Run `f`, counting the allocations it makes on this thread.
pub fn watched<T>(f: impl FnOnce() -> T) -> (T, Seen) {
    COUNT.with(|c| c.set(0));
    FREES.with(|c| c.set(0));
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let r = f();
    WATCHING.with(|w| w.set(false));
    let seen = Seen {
        allocs: COUNT.with(|c| c.get()),
        frees: FREES.with(|c| c.get()),
        largest: LARGEST.with(|l| l.get()),
    };
    (r, seen)
}

/// Allocations made by `f` on this thread.
pub fn allocations(f: impl FnOnce()) -> usize {
    watched(f).1.allocs
}

/// Allocations made by any thread of the process while `f` runs.
pub fn allocations_on_any_thread(f: impl FnOnce()) -> usize {
    ANY_COUNT.store(0, Ordering::SeqCst);
    ANY_THREAD.store(true, Ordering::SeqCst);
    f();
    ANY_THREAD.store(false, Ordering::SeqCst);
    ANY_COUNT.load(Ordering::SeqCst)
}
