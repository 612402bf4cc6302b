//! flowmlp on a Cortex-M4F without an operating system or a heap: the model lives in
//! a static arena, trains online on a generated signal (`../session.rs`), prints its
//! loss as it falls and its predictions through semihosting, saves a checkpoint into
//! a byte buffer and loads it into a second arena, and exits with a failure status
//! unless the loss fell at least tenfold.
//!
//! `cargo run --release` (qemu-system-arm, see `.cargo/config.toml`).

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use flowmlp::{Error, Model};

#[path = "../../session.rs"]
mod session;

/// Bytes for one model (`flowmlp_arena_size` of the session's shape is printed).
const ARENA: usize = 16 * 1024;
/// Bytes for its checkpoint.
const CHECKPOINT: usize = 2 * 1024;

#[repr(C, align(64))]
struct Arena([u8; ARENA]);

static mut TRAINED: Arena = Arena([0; ARENA]);
static mut RELOADED: Arena = Arena([0; ARENA]);
static mut SAVED: [u8; CHECKPOINT] = [0; CHECKPOINT];

#[entry]
fn main() -> ! {
    let ok = match run() {
        Ok(ok) => ok,
        Err(e) => {
            hprintln!("flowmlp error: {}", e);
            false
        }
    };
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

fn run() -> Result<bool, Error> {
    let config = session::config();
    let need = Model::arena_size_for(&config)?;
    // SAFETY: `main` runs once and nothing else uses these statics; each arena is
    // 64-byte aligned, `ARENA` bytes long, and outlives the model built in it.
    let (trained, reloaded, saved) = unsafe {
        (
            addr_of_mut!(TRAINED.0) as *mut u8,
            addr_of_mut!(RELOADED.0) as *mut u8,
            &mut *addr_of_mut!(SAVED),
        )
    };
    // SAFETY: as above.
    let mut model = unsafe { Model::new_in(&config, trained, ARENA) }?;
    hprintln!(
        "flowmlp {} on a Cortex-M4F (Rust, no_std): {} -> {} -> 1, {} parameters, \
         arena {} bytes, kernels {}",
        flowmlp::VERSION,
        session::INPUTS,
        session::HIDDEN,
        model.param_count(),
        need,
        model.isa().name()
    );
    let outcome = session::run(&mut model, &mut |line| hprintln!("{}", line))?;

    // A checkpoint in a byte buffer, loaded into the second arena: same predictions.
    let n = model.save(saved)?;
    // SAFETY: as above.
    let mut copy =
        unsafe { Model::load_in(&saved[..n], 1, flowmlp::Isa::Scalar, reloaded, ARENA) }?;
    let x = [0.1f32, 0.2, 0.3, 0.4];
    let (mut a, mut b) = ([0.0f32], [0.0f32]);
    model.forward(&x, Some(&mut a))?;
    copy.forward(&x, Some(&mut b))?;
    let same = a[0].to_bits() == b[0].to_bits();
    hprintln!(
        "checkpoint {} bytes, reloaded in caller memory: {}",
        n,
        if same {
            "same predictions"
        } else {
            "DIFFERENT predictions"
        }
    );
    if !outcome.fell_tenfold() {
        hprintln!("FAIL: the loss did not fall tenfold");
    }
    Ok(outcome.fell_tenfold() && same)
}

/// A fault, or a panic (flowmlp's panic handler executes an undefined instruction).
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("HardFault at pc {:#010x} (a panic or a fault)", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}
