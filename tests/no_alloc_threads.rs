//! With worker threads, no call allocates after `set_threads`, on any thread: the job
//! hand-off, the shares and the workers' scratch are all made before. The counter
//! sees every thread of the process, so this binary holds this one test only.

mod common;
use common::*;
use flowmlp::{Config, Error};

#[path = "common/counting.rs"]
mod counting;
use counting::allocations_on_any_thread;

#[test]
fn no_call_allocates_with_threads_on_any_thread() {
    assert!(allocations_on_any_thread(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
    let mut rng = Rng(12);
    // Products large enough to be shared from 32 rows on.
    let cfg = Config::new(64, &[256, 256], 4).max_batch(48).seed(1);
    for isa in isas() {
        for threads in [2, 3] {
            let mut m = model(&cfg, isa);
            assert_eq!(m.set_threads(threads), Ok(threads));
            let (d, o) = (64, 4);
            let x = rng.vec(48 * d);
            let y = rng.vec(48 * o);
            let big_y = vec![1e30; 48 * o];
            let mut yhat = vec![0.0; 48 * o];
            let mut p = vec![0.0; m.param_count()];
            let mut bad_x = x.clone();
            bad_x[100] = f32::NAN;
            m.set_optimizer(flowmlp::Optimizer::ADAM).unwrap();
            // One warm-up round: the workers have run and parked once.
            m.train_step(&x, &y, 1e-3).unwrap();
            let count = allocations_on_any_thread(|| {
                for n in [48, 1, 33, 47] {
                    let (xs, ys) = (&x[..n * d], &y[..n * o]);
                    m.forward(xs, Some(&mut yhat[..n * o])).unwrap();
                    m.backward(ys).unwrap();
                    m.step(1e-3).unwrap();
                    m.train_step(xs, ys, 1e-3).unwrap();
                    m.get_params(&mut p).unwrap();
                    assert_eq!(m.train_step(&bad_x, &y, 1e-3), Err(Error::NonFinite));
                    assert_eq!(m.train_step(&x, &big_y, 1e-3), Err(Error::Diverged));
                }
                // Idle long enough for the workers to park, then wake them.
                std::thread::sleep(std::time::Duration::from_millis(20));
                m.train_step(&x, &y, 1e-3).unwrap();
            });
            assert_eq!(count, 0, "{isa:?}, {threads} threads: {count} allocations");
        }
    }
}
