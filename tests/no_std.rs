//! The core API as a `no_std` build has it: models in caller memory, training,
//! checkpoints in byte buffers, and every error that does not need `std`, through the
//! Rust API and the C ABI. scripts/test-no-std.sh runs this file against the library
//! built without `std` (`cargo test --no-default-features --features libm --test
//! no_std`); `cargo test` runs it with `std` too, where only the last-error sentences
//! and AUTO's kernel set differ (checked per build below).

use core::ptr::null_mut;

use flowmlp::ffi::*;
use flowmlp::{Config, Error, Isa, Loss, Model, Optimizer};

/// A 64-byte aligned buffer the models live in (no `Model::new` here).
#[repr(C, align(64))]
struct Arena([u8; 32 * 1024]);

fn arena() -> Box<Arena> {
    Box::new(Arena([0; 32 * 1024]))
}

/// A kernel set this build cannot run on this CPU (NEON is aarch64's only).
#[cfg(not(target_arch = "aarch64"))]
const FOREIGN: Isa = Isa::Neon;
#[cfg(target_arch = "aarch64")]
const FOREIGN: Isa = Isa::Avx2;

fn config() -> Config {
    Config::new(2, &[8], 1)
        .max_batch(4)
        .seed(7)
        .isa(Isa::Scalar)
}

const XOR_X: [f32; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
const XOR_Y: [f32; 4] = [0.0, 1.0, 1.0, 0.0];

fn new_in(config: &Config, a: &mut Arena) -> Result<Model, Error> {
    // SAFETY: the arena is 64-byte aligned, as long as it says, and outlives the model.
    unsafe { Model::new_in(config, a.0.as_mut_ptr(), a.0.len()) }
}

#[test]
fn trains_in_caller_memory_with_sgd_and_adam() {
    for optimizer in [Optimizer::SGD, Optimizer::ADAM] {
        let mut a = arena();
        let mut model = new_in(&config(), &mut a).unwrap();
        assert!(model.arena_size() <= a.0.len());
        model.set_optimizer(optimizer).unwrap();
        let lr = if optimizer == Optimizer::SGD {
            0.1
        } else {
            0.01
        };
        let first = model.train_step(&XOR_X, &XOR_Y, lr).unwrap();
        let mut last = first;
        for _ in 0..2000 {
            last = model.train_step(&XOR_X, &XOR_Y, lr).unwrap();
        }
        assert!(last < first / 10.0, "{optimizer:?}: {first} -> {last}");
        // The three-call form, and predictions.
        let mut y = [0.0f32; 4];
        model.forward(&XOR_X, Some(&mut y)).unwrap();
        let loss = model.backward(&XOR_Y).unwrap();
        model.step(lr).unwrap();
        assert!(loss.is_finite() && y.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn cross_entropy_trains_without_std() {
    let cfg = Config::new(2, &[8], 2)
        .max_batch(4)
        .seed(3)
        .isa(Isa::Scalar)
        .loss(Loss::CrossEntropy);
    let mut a = arena();
    let mut model = new_in(&cfg, &mut a).unwrap();
    let y = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
    let first = model.train_step(&XOR_X, &y, 0.2).unwrap();
    let mut last = first;
    for _ in 0..2000 {
        last = model.train_step(&XOR_X, &y, 0.2).unwrap();
    }
    assert!(last < first / 4.0, "{first} -> {last}");
}

#[test]
fn checkpoints_round_trip_through_bytes_into_caller_memory() {
    let mut a = arena();
    let mut model = new_in(&config(), &mut a).unwrap();
    model.set_optimizer(Optimizer::ADAM).unwrap();
    for _ in 0..50 {
        model.train_step(&XOR_X, &XOR_Y, 0.01).unwrap();
    }
    let mut bytes = [0u8; 4096];
    let n = model.save(&mut bytes).unwrap();
    assert_eq!(n, model.save_size());
    let cfg = Model::checkpoint_config(&bytes[..n], 4, Isa::Scalar).unwrap();
    assert_eq!(cfg.hidden_widths(), &[8]);
    let mut b = arena();
    // SAFETY: as in `new_in`.
    let mut copy =
        unsafe { Model::load_in(&bytes[..n], 4, Isa::Scalar, b.0.as_mut_ptr(), b.0.len()) }
            .unwrap();
    assert_eq!(copy.arena_size(), Model::arena_size_for(&cfg).unwrap());
    assert_eq!(copy.optimizer(), model.optimizer());
    // Training goes on bit for bit.
    let (l1, l2) = (
        model.train_step(&XOR_X, &XOR_Y, 0.01).unwrap(),
        copy.train_step(&XOR_X, &XOR_Y, 0.01).unwrap(),
    );
    assert_eq!(l1.to_bits(), l2.to_bits());
    let (mut p1, mut p2) = ([0.0f32; 33], [0.0f32; 33]);
    model.get_params(&mut p1).unwrap();
    copy.get_params(&mut p2).unwrap();
    assert_eq!(p1.map(f32::to_bits), p2.map(f32::to_bits));

    // Bad bytes: a flipped bit fails the CRC; a short buffer; too little memory.
    let mut bad = bytes;
    bad[200] ^= 1;
    let mut c = arena();
    // SAFETY: as above.
    let err = unsafe { Model::load_in(&bad[..n], 4, Isa::Scalar, c.0.as_mut_ptr(), c.0.len()) };
    assert_eq!(err.err(), Some(Error::BadCheckpoint));
    // SAFETY: as above.
    let err =
        unsafe { Model::load_in(&bytes[..n - 1], 4, Isa::Scalar, c.0.as_mut_ptr(), c.0.len()) };
    assert_eq!(err.err(), Some(Error::BadCheckpoint));
    // SAFETY: as above (fewer bytes claimed than there are).
    let err = unsafe { Model::load_in(&bytes[..n], 4, Isa::Scalar, c.0.as_mut_ptr(), 64) };
    assert_eq!(err.err(), Some(Error::InvalidArgument));
    // SAFETY: as above.
    let err = unsafe { Model::load_in(&bytes[..n], 0, Isa::Scalar, c.0.as_mut_ptr(), c.0.len()) };
    assert_eq!(err.err(), Some(Error::InvalidConfig));
    assert!(model.save(&mut bytes[..n - 1]).is_err());
}

#[test]
fn every_error_that_needs_no_std() {
    let mut a = arena();
    // Config.
    for bad in [
        Config::new(0, &[8], 1),
        Config::new(2, &[], 1),
        Config::new(2, &[0], 1),
        Config::new(2, &[8], 0),
        Config::new(2, &[1; 9], 1),
        Config::new(2, &[8], 1).max_batch(0),
        Config::new(2, &[8], 1).loss(Loss::CrossEntropy),
        Config::new(usize::MAX / 2, &[usize::MAX / 2], 1),
    ] {
        assert_eq!(
            new_in(&bad, &mut a).err(),
            Some(Error::InvalidConfig),
            "{bad:?}"
        );
        assert_eq!(
            Model::arena_size_for(&bad).err(),
            Some(Error::InvalidConfig)
        );
    }
    assert_eq!(
        new_in(&config().isa(FOREIGN), &mut a).err(),
        Some(Error::UnsupportedIsa)
    );
    // Memory.
    // SAFETY: the pointers and sizes passed are inside the arena (or refused first).
    unsafe {
        let p = a.0.as_mut_ptr();
        assert_eq!(
            Model::new_in(&config(), null_mut(), 1 << 20).err(),
            Some(Error::NullPointer)
        );
        assert_eq!(
            Model::new_in(&config(), p.add(4), a.0.len() - 4).err(),
            Some(Error::InvalidArgument)
        );
        assert_eq!(
            Model::new_in(&config(), p, 64).err(),
            Some(Error::InvalidArgument)
        );
    }
    let mut model = new_in(&config(), &mut a).unwrap();
    // Calls.
    assert_eq!(model.backward(&XOR_Y[..1]), Err(Error::NoForward));
    assert_eq!(model.forward(&[], None), Err(Error::InvalidArgument));
    assert_eq!(model.forward(&[0.0; 3], None), Err(Error::InvalidArgument));
    assert_eq!(model.forward(&[0.0; 10], None), Err(Error::BatchTooLarge));
    assert_eq!(model.forward(&[f32::NAN, 0.0], None), Err(Error::NonFinite));
    assert_eq!(
        model.train_step(&XOR_X, &[0.0, 1.0, f32::INFINITY, 0.0], 0.1),
        Err(Error::NonFinite)
    );
    for lr in [-0.1, f32::NAN, f32::INFINITY] {
        assert_eq!(
            model.train_step(&XOR_X, &XOR_Y, lr),
            Err(Error::InvalidArgument)
        );
        assert_eq!(model.step(lr), Err(Error::InvalidArgument));
    }
    assert_eq!(model.set_params(&[0.0; 3]), Err(Error::InvalidArgument));
    assert_eq!(model.set_params(&[f32::NAN; 33]), Err(Error::NonFinite));
    assert_eq!(model.get_params(&mut [0.0; 3]), Err(Error::InvalidArgument));
    assert_eq!(
        model.train_step(&XOR_X, &[1e30; 4], 1e30),
        Err(Error::Diverged)
    );
    assert!(model.set_grad_clip(-1.0).is_err());
    // A refused call left the model usable and finite.
    let mut p = [0.0f32; 33];
    model.get_params(&mut p).unwrap();
    assert!(p.iter().all(|v| v.is_finite()));
    model.train_step(&XOR_X, &XOR_Y, 0.1).unwrap();
}

#[test]
fn auto_picks_a_set_this_build_can_run() {
    let mut a = arena();
    let model = new_in(&config().isa(Isa::Auto), &mut a).unwrap();
    assert!(model.isa().is_supported());
    assert!(Isa::Scalar.is_supported() && !FOREIGN.is_supported());
    // Without std there are no threads.
    #[cfg(not(feature = "std"))]
    {
        let mut b = arena();
        let mut m = new_in(&config(), &mut b).unwrap();
        assert_eq!(m.set_threads(0), Ok(1));
        assert_eq!(m.set_threads(1), Ok(1));
        assert_eq!(m.set_threads(2), Err(Error::InvalidArgument));
        assert_eq!(m.threads(), 1);
    }
    // Without std the CPU is not probed: a SIMD set only when the build targets it.
    #[cfg(all(not(feature = "std"), target_arch = "x86_64"))]
    assert_eq!(
        Isa::Avx2.is_supported(),
        cfg!(all(target_feature = "avx2", target_feature = "fma"))
    );
}

/// The C ABI without the heap: create_in, train, save, load_in, destroy, errors.
#[test]
fn c_abi_in_caller_memory() {
    let mut a = arena();
    let mut b = arena();
    let mut cfg = flowmlp_config {
        n_inputs: 2,
        n_outputs: 1,
        n_hidden: 1,
        hidden: [8, 0, 0, 0, 0, 0, 0, 0],
        max_batch: 4,
        seed: 7,
        isa: flowmlp_isa::FLOWMLP_ISA_SCALAR as u32,
        loss: flowmlp_loss::FLOWMLP_LOSS_MSE as u32,
    };
    // SAFETY: every pointer is valid for what it is passed with; the arenas outlive
    // the models, which are destroyed before them.
    unsafe {
        let need = flowmlp_arena_size(&cfg);
        assert!(need > 0 && need <= a.0.len());
        let mut model = null_mut();
        let st = flowmlp_create_in(&cfg, a.0.as_mut_ptr().cast(), a.0.len(), &mut model);
        assert_eq!(st, flowmlp_status::FLOWMLP_OK);
        let mut loss = 0.0f32;
        for _ in 0..500 {
            let st = flowmlp_train_step(model, XOR_X.as_ptr(), XOR_Y.as_ptr(), 4, 0.1, &mut loss);
            assert_eq!(st, flowmlp_status::FLOWMLP_OK);
        }
        let mut bytes = [0u8; 4096];
        let mut n = 0usize;
        assert_eq!(
            flowmlp_save(model, bytes.as_mut_ptr(), bytes.len(), &mut n),
            flowmlp_status::FLOWMLP_OK
        );
        assert_eq!(n, flowmlp_save_size(model));
        let scalar = flowmlp_isa::FLOWMLP_ISA_SCALAR as u32;
        assert_eq!(flowmlp_load_arena_size(bytes.as_ptr(), n, 4, scalar), need);
        assert_eq!(flowmlp_load_arena_size(bytes.as_ptr(), n - 1, 4, scalar), 0);
        assert_eq!(flowmlp_load_arena_size(bytes.as_ptr(), n, 0, scalar), 0);
        assert_eq!(flowmlp_load_arena_size(bytes.as_ptr(), n, 4, 99), 0);
        let mut copy = null_mut();
        let st = flowmlp_load_in(
            bytes.as_ptr(),
            n,
            4,
            scalar,
            b.0.as_mut_ptr().cast(),
            b.0.len(),
            &mut copy,
        );
        assert_eq!(st, flowmlp_status::FLOWMLP_OK);
        let (mut y1, mut y2) = ([0.0f32; 4], [0.0f32; 4]);
        assert_eq!(
            flowmlp_forward(model, XOR_X.as_ptr(), 4, y1.as_mut_ptr()),
            flowmlp_status::FLOWMLP_OK
        );
        assert_eq!(
            flowmlp_forward(copy, XOR_X.as_ptr(), 4, y2.as_mut_ptr()),
            flowmlp_status::FLOWMLP_OK
        );
        assert_eq!(y1.map(f32::to_bits), y2.map(f32::to_bits));

        // Errors: statuses, and the sentence of the last one.
        let st = flowmlp_train_step(model, XOR_X.as_ptr(), XOR_Y.as_ptr(), 5, 0.1, null_mut());
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_BATCH_TOO_LARGE);
        let msg = core::ffi::CStr::from_ptr(flowmlp_last_error_message())
            .to_str()
            .unwrap();
        #[cfg(not(feature = "std"))]
        assert_eq!(msg, Error::BatchTooLarge.message());
        #[cfg(feature = "std")]
        assert!(msg.contains('5'), "{msg}");
        let st = flowmlp_load_in(
            bytes.as_ptr(),
            n,
            4,
            scalar,
            b.0.as_mut_ptr().cast(),
            64,
            &mut copy,
        );
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_INVALID_ARGUMENT);
        let st = flowmlp_load_in(bytes.as_ptr(), n, 4, scalar, null_mut(), 64, &mut copy);
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_NULL_POINTER);
        assert_eq!(
            flowmlp_backward(copy, XOR_Y.as_ptr(), null_mut()),
            flowmlp_status::FLOWMLP_OK
        );
        assert_eq!(
            flowmlp_set_params(copy, bytes.as_ptr().cast(), 3),
            flowmlp_status::FLOWMLP_ERROR_INVALID_ARGUMENT
        );
        let mut other = null_mut();
        let st = flowmlp_create_in(&cfg, a.0.as_mut_ptr().add(8).cast(), 1 << 12, &mut other);
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_INVALID_ARGUMENT);
        cfg.isa = 42;
        let st = flowmlp_create_in(&cfg, b.0.as_mut_ptr().cast(), b.0.len(), &mut other);
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG);
        cfg.isa = FOREIGN as u32;
        assert_eq!(flowmlp_isa_supported(cfg.isa), 0);
        let st = flowmlp_create_in(&cfg, b.0.as_mut_ptr().cast(), b.0.len(), &mut other);
        assert_eq!(st, flowmlp_status::FLOWMLP_ERROR_UNSUPPORTED_ISA);
        assert!(other.is_null());
        flowmlp_destroy(copy);
        flowmlp_destroy(model);
        flowmlp_destroy(null_mut());
    }
}
