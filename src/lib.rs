//! flowmlp: train and run small multilayer perceptrons on the CPU, from Rust or C.
//!
//! The network is the flow graph of a deep-learning course, generalised to
//! d -> h_1 .. h_k -> m:
//!
//! ```text
//! H_1 = ReLU(X W_1^T + b_1), ..., H_k = ReLU(H_{k-1} W_k^T + b_k)
//! Yhat = H_k W_o^T + b_o
//! L = (1/n) sum_i sum_j (Yhat_ij - Y_ij)^2
//! ```
//!
//! trained by reverse-mode differentiation of that graph and a gradient step. A
//! model lives in one allocation made at creation; no call allocates afterwards.
//!
//! ```
//! use flowmlp::{Config, Model};
//!
//! let mut model = Model::new(&Config::new(2, &[8], 1).max_batch(4).seed(1))?;
//! let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
//! let y = [0.0, 1.0, 1.0, 0.0];
//! let first = model.train_step(&x, &y, 0.1)?;
//! for _ in 0..500 {
//!     model.train_step(&x, &y, 0.1)?;
//! }
//! assert!(model.train_step(&x, &y, 0.1)? < first);
//! # Ok::<(), flowmlp::Error>(())
//! ```
//!
//! The C API (`include/flowmlp.h`) is a thin layer over [`Model`]; see the README.
//!
//! # Without `std` (bare metal)
//!
//! With the default feature `std` off the crate is `#![no_std]`: models live in
//! caller memory ([`Model::new_in`], `flowmlp_create_in`), checkpoints are written to
//! and read from byte buffers ([`Model::save`], [`Model::load_in`]), training and
//! inference work as with `std`. What changes:
//!
//! - heap models ([`Model::new`], [`Model::load`], `flowmlp_create`, `flowmlp_load`)
//!   and checkpoint files need `std` (there is no `alloc`-only build: a staticlib
//!   must then carry a global allocator, which a firmware cannot swap in);
//! - kernel sets: scalar everywhere; a SIMD set only when the build targets it
//!   (`-C target-feature=+avx2,+fma`, `+avx512f`; NEON is on by default on aarch64):
//!   without `std` the CPU is not probed at run time, and `FLOWMLP_ISA` is not read;
//! - `exp`, `ln`, `cos` and `sqrt` come from the `libm` crate (always on bare metal,
//!   `target_os = "none"`; the `libm` feature on hosted targets);
//! - `flowmlp_last_error_message` gives the status sentence of the last failed call
//!   (one value for the program, kept in an atomic) instead of the per-thread
//!   sentence naming the argument;
//! - panics are not caught at the C boundary (no unwinding): on bare metal flowmlp
//!   supplies the panic handler, which executes an undefined instruction (a HardFault
//!   on Cortex-M; a firmware reports it from its HardFault handler). A staticlib needs
//!   a panic handler and Cargo builds flowmlp's staticlib even as a dependency, so a
//!   firmware that links flowmlp does not add one of its own (`panic-halt` and the
//!   like). On targets with an OS, the standard library's runtime supplies it.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

// A no_std build for a target with an OS (the host tests of this build) still links
// the standard library's runtime, for its panic handler: a staticlib needs one. The
// code never names `std` without the `std` feature.
#[cfg(all(not(feature = "std"), not(target_os = "none")))]
extern crate std as _;

#[cfg(all(not(feature = "std"), not(feature = "libm"), not(target_os = "none")))]
compile_error!(
    "flowmlp without `std` needs float functions from libm: \
     enable the `libm` feature (bare-metal targets take it automatically)"
);

mod checkpoint;
mod config;
mod error;
pub mod ffi;
mod graph;
mod init;
mod isa;
mod kernels;
mod last_error;
mod layout;
mod loss;
mod math;
mod model;
mod optim;

pub use config::{Config, Isa, Loss, MAX_HIDDEN};
pub use error::Error;
pub use model::{Choices, Model};
pub use optim::Optimizer;

/// The crate version, as `flowmlp_version` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Without `std` on bare metal: a panic (a bug in flowmlp or in the program) executes
/// an undefined instruction, so the CPU faults (a HardFault on Cortex-M) and the
/// program's fault handler decides what happens; nothing unwinds.
#[cfg(all(not(feature = "std"), target_os = "none", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        // SAFETY: an undefined instruction only raises the CPU's fault exception.
        #[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
        unsafe {
            core::arch::asm!("udf #0", options(nomem, nostack))
        };
        // SAFETY: as above.
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        unsafe {
            core::arch::asm!("ud2", options(nomem, nostack))
        };
    }
}
