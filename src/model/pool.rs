//! The worker threads of one model: started by `set_threads`, joined by
//! `set_threads(1)` and `Drop`. A job is a function of the thread's index (0 is the
//! calling thread, which takes its share too), run by every thread at once; `run`
//! returns when all have finished. Nothing is allocated per job.
//!
//! Workers spin for a short while after a job (the next layer's job usually comes
//! within microseconds), then offer their core, then park: idle workers use no CPU.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};

use crate::Error;

/// Most threads a model may use.
pub(crate) const MAX_THREADS: usize = 256;

/// How a thread waits: `SPINS` pause instructions (the fastest hand-off when every
/// thread has a core of its own), then `YIELDS` offers of its core to another
/// thread (the hand-off when threads share a core: a busy machine, or more threads
/// than cores), then a worker parks (the calling thread goes on yielding).
const SPINS: u32 = 1 << 10;
const YIELDS: u32 = 64;

/// One step of waiting, the `k`-th; false once a worker should park.
#[inline]
fn backoff(k: &mut u32) -> bool {
    *k += 1;
    if *k <= SPINS {
        core::hint::spin_loop();
        true
    } else if *k <= SPINS + YIELDS {
        std::thread::yield_now();
        true
    } else {
        false
    }
}

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped (Release) after `job` is written; workers run each value once.
    epoch: AtomicUsize,
    job: UnsafeCell<Option<Job>>,
    /// Workers that have not finished the current job.
    pending: AtomicUsize,
    panicked: AtomicBool,
    stop: AtomicBool,
}

// SAFETY: `job` is written only by the thread in `run` while no worker reads it (all
// finished the previous epoch, `pending == 0`), and read by workers only after they
// see the new epoch (Acquire, pairing with the Release store after the write).
unsafe impl Sync for Shared {}
// SAFETY: as above; the pointer in `job` is only dereferenced during `run`.
unsafe impl Send for Shared {}

/// The workers of one model and their scratch.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    /// One scratch block per worker (index 1..), 64-byte aligned.
    scratch: Vec<Scratch>,
}

/// A worker's private scratch (packing buffers), owned by the pool.
pub(crate) struct Scratch {
    ptr: *mut f32,
    layout: std::alloc::Layout,
}

// SAFETY: the scratch is plain memory owned by the pool; each block is used by one
// thread at a time (its worker, during a job).
unsafe impl Send for Scratch {}
// SAFETY: as above.
unsafe impl Sync for Scratch {}

impl Scratch {
    fn new(floats: usize) -> Result<Scratch, Error> {
        let bytes = floats.max(16).checked_mul(4).ok_or(Error::OutOfMemory)?;
        let layout =
            std::alloc::Layout::from_size_align(bytes, 64).map_err(|_| Error::OutOfMemory)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut f32;
        if ptr.is_null() {
            return Err(Error::OutOfMemory);
        }
        Ok(Scratch { ptr, layout })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `Scratch::new`.
        unsafe { std::alloc::dealloc(self.ptr as *mut u8, self.layout) };
    }
}

impl Pool {
    /// Start `n - 1` workers (`n >= 2`), each with `scratch_floats` of scratch.
    pub(crate) fn new(n: usize, scratch_floats: usize) -> Result<Pool, Error> {
        debug_assert!((2..=MAX_THREADS).contains(&n));
        let shared = Arc::new(Shared {
            epoch: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let mut pool = Pool {
            shared,
            threads: Vec::with_capacity(n - 1),
            handles: Vec::with_capacity(n - 1),
            scratch: Vec::with_capacity(n - 1),
        };
        for index in 1..n {
            pool.scratch.push(Scratch::new(scratch_floats)?);
            let shared = Arc::clone(&pool.shared);
            let handle = std::thread::Builder::new()
                .name(format!("flowmlp-{index}"))
                .spawn(move || worker(&shared, index))
                .map_err(|_| {
                    crate::last_error::refuse!(
                        OutOfMemory,
                        "the operating system refused to start worker thread {index}"
                    )
                })?;
            pool.threads.push(handle.thread().clone());
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// Threads in all, the calling thread included.
    pub(crate) fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// Worker `index`'s scratch (`index >= 1`).
    pub(crate) fn scratch(&self, index: usize) -> *mut f32 {
        self.scratch[index - 1].ptr
    }

    /// Run `job(i)` on every thread `i` (0: the calling thread) and wait for all.
    /// `Internal` when any of them panicked; the job's writes are then partial, so
    /// callers run only jobs that write scratch and spare copies.
    pub(crate) fn run(&self, job: &(dyn Fn(usize) + Sync)) -> Result<(), Error> {
        let sh = &*self.shared;
        // SAFETY: every worker finished the previous job (`pending` was 0 when the
        // last `run` returned), so none reads `job`; the lifetime is erased because
        // this function does not return before every worker is done with it.
        unsafe {
            let erased: Job = core::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job);
            *sh.job.get() = Some(erased);
        }
        sh.panicked.store(false, Ordering::Relaxed);
        sh.pending.store(self.handles.len(), Ordering::Relaxed);
        sh.epoch.fetch_add(1, Ordering::Release);
        for t in &self.threads {
            t.unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut k = 0u32;
        while sh.pending.load(Ordering::Acquire) != 0 {
            if !backoff(&mut k) {
                std::thread::yield_now();
            }
        }
        if mine.is_err() || sh.panicked.load(Ordering::Relaxed) {
            return Err(crate::last_error::refuse!(
                Internal,
                "a thread of the model panicked; the call changed nothing"
            ));
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for t in &self.threads {
            t.unpark();
        }
        for h in self.handles.drain(..) {
            // A worker never panics out of its loop (jobs are caught).
            let _ = h.join();
        }
    }
}

fn worker(sh: &Shared, index: usize) {
    let mut seen = 0usize;
    loop {
        // Wait for a new epoch: spin, yield, then park.
        let mut k = 0u32;
        let epoch = loop {
            let e = sh.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            if !backoff(&mut k) {
                std::thread::park();
            }
        };
        seen = epoch;
        if sh.stop.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the job was written before the epoch was bumped (Acquire above)
        // and stays valid until `pending` reaches 0.
        let job = unsafe { (*sh.job.get()).expect("a job with every epoch") };
        // SAFETY: as above: `run` waits for this worker before the closure ends.
        let ok = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(index) })).is_ok();
        if !ok {
            sh.panicked.store(true, Ordering::Relaxed);
        }
        sh.pending.fetch_sub(1, Ordering::Release);
    }
}
