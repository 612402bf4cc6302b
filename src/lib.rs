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

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

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
mod model;
mod optim;

pub use config::{Config, Isa, Loss, MAX_HIDDEN};
pub use error::Error;
pub use model::Model;
pub use optim::Optimizer;

/// The crate version, as `flowmlp_version` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
