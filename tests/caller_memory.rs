//! Caller-owned memory: `Model::arena_size_for` / `Model::new_in` and
//! `flowmlp_arena_size` / `flowmlp_create_in`. The size is the model's whole
//! footprint; a model built in a caller's block behaves bit for bit like one from
//! `Model::new`, never writes outside `[memory, memory + arena_size)`, frees nothing
//! when dropped, and the block can be reused afterwards. Too small, misaligned and
//! NULL memory are refused without touching the block. (That none of this allocates
//! is checked in tests/no_alloc.rs; the C side with a static buffer in
//! ffi-tests/test_hardening.c.)

mod common;
use common::*;
use flowmlp::ffi::*;
use flowmlp::{Config, Error, Isa, Model};
use std::ptr::null_mut;

/// A 64-byte aligned block with `guard` bytes of 0xA5 on both sides of `size` bytes.
struct Guarded {
    base: *mut u8,
    layout: std::alloc::Layout,
    size: usize,
}

const GUARD: usize = 256;

impl Guarded {
    fn new(size: usize) -> Guarded {
        let layout = std::alloc::Layout::from_size_align(size + 2 * GUARD, 64).unwrap();
        // SAFETY: non-zero size.
        let base = unsafe { std::alloc::alloc(layout) };
        assert!(!base.is_null());
        // SAFETY: the whole block is ours.
        unsafe { base.write_bytes(0xA5, size + 2 * GUARD) };
        Guarded { base, layout, size }
    }
    /// The usable part (64-byte aligned: GUARD is a multiple of 64).
    fn ptr(&self) -> *mut u8 {
        // SAFETY: inside the block.
        unsafe { self.base.add(GUARD) }
    }
    fn guards_intact(&self) -> bool {
        // SAFETY: the block is initialized and ours.
        let all = unsafe { std::slice::from_raw_parts(self.base, self.size + 2 * GUARD) };
        all[..GUARD].iter().all(|&b| b == 0xA5)
            && all[GUARD + self.size..].iter().all(|&b| b == 0xA5)
    }
    fn body_untouched(&self) -> bool {
        // SAFETY: as above.
        let all = unsafe { std::slice::from_raw_parts(self.base, self.size + 2 * GUARD) };
        // One slice comparison (a memcmp, also for Miri) instead of a byte loop.
        all == vec![0xA5; all.len()]
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

fn configs() -> Vec<Config> {
    vec![
        Config::new(10, &[64], 1).max_batch(32).seed(1),
        Config::new(7, &[17, 33, 3], 3).max_batch(9).seed(2),
        Config::new(1, &[1], 1).max_batch(1).seed(3),
        Config::new(3, &[5, 5, 5, 5, 5, 5, 5, 5], 2)
            .max_batch(4)
            .seed(4),
        Config::new(100, &[256, 128], 10).max_batch(64).seed(5),
    ]
}

/// Under Miri, the two smallest configs (one unit; eight layers) (scripts/miri.sh).
fn miri_sized(c: &Config) -> bool {
    !cfg!(miri) || c.max_batch <= 4
}

fn train(m: &mut Model, steps: usize) -> Vec<u32> {
    let c = *m.config();
    let mut rng = Rng(c.seed);
    for i in 0..steps {
        let n = 1 + i % c.max_batch;
        let x = rng.vec(n * c.inputs);
        let y = rng.vec(n * c.outputs);
        m.train_step(&x, &y, 0.01).unwrap();
        m.forward(&x, None).unwrap();
        m.backward(&y).unwrap();
        m.step(0.01).unwrap();
    }
    params(m).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn arena_size_is_the_whole_footprint_and_matches_new() {
    for isa in isas() {
        for c in configs().into_iter().filter(miri_sized) {
            let c = c.isa(isa);
            let size = Model::arena_size_for(&c).unwrap();
            assert_eq!(Model::new(&c).unwrap().arena_size(), size);
            assert_eq!(size % 64, 0, "sizes are whole cache lines");
            // More rows never need less memory.
            let bigger = Model::arena_size_for(&c.max_batch(c.max_batch + 1)).unwrap();
            assert!(bigger >= size);
        }
    }
    // The C function agrees.
    let cc = c_config(7, &[17, 33, 3], 3, 9, 2, 0);
    // SAFETY: a valid config.
    let c_size = unsafe { flowmlp_arena_size(&cc) };
    assert_eq!(c_size, Model::arena_size_for(&configs()[1]).unwrap());
}

#[test]
fn a_model_in_caller_memory_matches_new_bit_for_bit_and_stays_inside() {
    for isa in isas() {
        for c in configs().into_iter().filter(miri_sized) {
            let c = c.isa(isa);
            let size = Model::arena_size_for(&c).unwrap();
            let block = Guarded::new(size);
            // SAFETY: the block is valid for `size` bytes and outlives the model.
            let mut inside = unsafe { Model::new_in(&c, block.ptr(), size) }.unwrap();
            let mut boxed = Model::new(&c).unwrap();
            assert_eq!(inside.arena_size(), size);
            assert_eq!(inside.isa(), isa);
            // Under Miri, fewer steps (scripts/miri.sh).
            let steps = if cfg!(miri) { 3 } else { 7 };
            assert_eq!(
                train(&mut inside, steps),
                train(&mut boxed, steps),
                "{isa:?} {c:?}"
            );
            assert_eq!(grads(&inside), grads(&boxed));
            let (mut a, mut b) = (vec![0; boxed.save_size()], vec![0; boxed.save_size()]);
            inside.save(&mut a).unwrap();
            boxed.save(&mut b).unwrap();
            assert_eq!(a, b);
            drop(inside);
            assert!(
                block.guards_intact(),
                "{isa:?} {c:?}: wrote outside its memory"
            );
            // The block is the caller's again: reuse it for another model.
            // SAFETY: as above; the first model is gone.
            let mut again = unsafe { Model::new_in(&c.seed(99), block.ptr(), size) }.unwrap();
            let mut fresh = Model::new(&c.seed(99)).unwrap();
            assert_eq!(train(&mut again, 2), train(&mut fresh, 2));
            drop(again);
            assert!(block.guards_intact());
        }
    }
}

#[test]
fn a_larger_block_is_fine_and_only_the_arena_is_used() {
    let c = configs()[1];
    let size = Model::arena_size_for(&c).unwrap();
    let block = Guarded::new(size + 4096);
    // SAFETY: valid for size + 4096 bytes.
    let mut m = unsafe { Model::new_in(&c, block.ptr(), size + 4096) }.unwrap();
    train(&mut m, 3);
    drop(m);
    // SAFETY: the block is initialized.
    let tail = unsafe { std::slice::from_raw_parts(block.ptr().add(size), 4096) };
    assert!(
        tail.iter().all(|&b| b == 0xA5),
        "bytes past arena_size were written"
    );
}

#[test]
fn bad_memory_is_refused_and_left_untouched() {
    let c = configs()[1].isa(Isa::Scalar);
    let size = Model::arena_size_for(&c).unwrap();
    let block = Guarded::new(size);
    let p = block.ptr();
    // SAFETY (each call): `p + off` is valid for `s` bytes inside the block.
    let cases = unsafe {
        [
            (p, size - 1, Error::InvalidArgument),
            (p, 0, Error::InvalidArgument),
            (p, 64, Error::InvalidArgument),
            (p.add(1), size - 1, Error::InvalidArgument),
            (p.add(4), size - 4, Error::InvalidArgument),
            (p.add(8), size - 8, Error::InvalidArgument),
            (p.add(32), size - 32, Error::InvalidArgument),
            (null_mut(), size, Error::NullPointer),
        ]
    };
    for (ptr, s, want) in cases {
        // SAFETY: ptr is NULL or valid for s bytes.
        let r = unsafe { Model::new_in(&c, ptr, s) };
        assert_eq!(r.err(), Some(want));
        assert!(
            block.body_untouched(),
            "a refused new_in wrote to the block"
        );
    }
    // Bad configs, and kernel sets this CPU lacks.
    for bad in [
        c.max_batch(0),
        Config { inputs: 0, ..c },
        Config::new(1, &[], 1),
    ] {
        // SAFETY: valid for size bytes.
        let r = unsafe { Model::new_in(&bad, p, size) };
        assert_eq!(r.err(), Some(Error::InvalidConfig));
        assert_eq!(
            Model::arena_size_for(&bad).err(),
            Some(Error::InvalidConfig)
        );
    }
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_supported()) {
        // SAFETY: valid for size bytes.
        let r = unsafe { Model::new_in(&c.isa(isa), p, size) };
        assert_eq!(r.err(), Some(Error::UnsupportedIsa));
    }
    assert!(block.body_untouched());
}

#[test]
fn c_create_in_matches_create_and_destroy_frees_nothing() {
    use flowmlp_status::FLOWMLP_OK;
    for isa in isas() {
        let cc = c_config(5, &[24, 9], 2, 6, 8, isa as u32);
        // SAFETY (whole block): valid pointers; handles destroyed before the block goes.
        unsafe {
            let size = flowmlp_arena_size(&cc);
            let block = Guarded::new(size);
            let (mut a, mut b) = (null_mut(), null_mut());
            assert_eq!(
                flowmlp_create_in(&cc, block.ptr() as *mut _, size, &mut a),
                FLOWMLP_OK
            );
            assert_eq!(a as *mut u8, block.ptr(), "the handle lives in the block");
            assert_eq!(flowmlp_create(&cc, &mut b), FLOWMLP_OK);
            let mut rng = Rng(1);
            for _ in 0..if cfg!(miri) { 4 } else { 20 } {
                let x = rng.vec(6 * 5);
                let y = rng.vec(6 * 2);
                for h in [a, b] {
                    assert_eq!(
                        flowmlp_train_step(h, x.as_ptr(), y.as_ptr(), 6, 0.02, null_mut()),
                        FLOWMLP_OK
                    );
                }
            }
            let n = flowmlp_param_count(a);
            let (mut pa, mut pb) = (vec![0f32; n], vec![0f32; n]);
            flowmlp_get_params(a, pa.as_mut_ptr(), n);
            flowmlp_get_params(b, pb.as_mut_ptr(), n);
            assert_eq!(
                pa.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                pb.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            flowmlp_destroy(a);
            flowmlp_destroy(b);
            assert!(block.guards_intact());
        }
    }
}
