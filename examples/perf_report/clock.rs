//! CPU-time clocks and the median, shared by the report and the shape sweep.
//!
//! Included by path into two examples, each using a part of it.
#![allow(dead_code)]

/// This thread's CPU time in ns, where the platform has a per-thread CPU clock.
pub fn thread_cpu_ns() -> Option<f64> {
    cpu_ns(Clock::Thread)
}

/// The whole process's CPU time in ns (every thread), where the platform has it.
pub fn process_cpu_ns() -> Option<f64> {
    cpu_ns(Clock::Process)
}

enum Clock {
    Thread,
    Process,
}

#[cfg(target_os = "linux")]
fn cpu_ns(clock: Clock) -> Option<f64> {
    let id = match clock {
        Clock::Thread => libc::CLOCK_THREAD_CPUTIME_ID,
        Clock::Process => libc::CLOCK_PROCESS_CPUTIME_ID,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64)
}

#[cfg(not(target_os = "linux"))]
fn cpu_ns(_: Clock) -> Option<f64> {
    None
}

/// Median of `v` (not empty).
pub fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.into_iter().collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}
