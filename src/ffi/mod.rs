//! The C API: `extern "C"` functions over [`Model`](crate::Model).
//!
//! Conventions (as in rustls-ffi): every fallible function returns
//! `flowmlp_status`; output parameters are written only on success; a NULL handle
//! or data pointer is `FLOWMLP_ERROR_NULL_POINTER`; enum-valued fields arrive as
//! integers and are range-checked; a panic becomes `FLOWMLP_ERROR_INTERNAL`.
//!
//! # Safety
//! The rules every function shares, stated once here and in the header's banner: each
//! pointer is NULL or valid for the sizes its function states, for the duration of
//! the call; a model handle comes from `flowmlp_create`, `flowmlp_create_in` or
//! `flowmlp_load` and is not destroyed meanwhile; a call that changes a model (a
//! `flowmlp_model *` parameter) has that model to itself, while calls that only read
//! it (`const flowmlp_model *`) may run at once on any threads. A function's own
//! `# Safety` section says only what is particular to it.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use core::ffi::{c_char, c_int};
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use crate::config::{Config, Isa, Loss, MAX_HIDDEN};
use crate::last_error::refuse;
use crate::model::{Model, State};
use crate::optim::{Optimizer, KIND_ADAM, KIND_ADAMW, KIND_SGD};
use crate::Error;

mod macros;
mod status;

use macros::{ffi_status, ffi_value, non_null};
pub use status::flowmlp_status;

/// Most hidden layers a model may have (`flowmlp_config.hidden` has this many entries).
pub const FLOWMLP_MAX_HIDDEN: u32 = 8;
const _: () = assert!(FLOWMLP_MAX_HIDDEN as usize == MAX_HIDDEN);

/// An opaque model. Create with `flowmlp_create`, free with `flowmlp_destroy`.
pub struct flowmlp_model {
    _private: [u8; 0],
}

/// Kernel sets, for `flowmlp_config.isa`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum flowmlp_isa {
    /// The best set this CPU supports, or the one the environment variable
    /// `FLOWMLP_ISA` names (`scalar`, `avx2`, `avx512`, `neon`; read once per process).
    FLOWMLP_ISA_AUTO = 0,
    /// Plain loops: the reference.
    FLOWMLP_ISA_SCALAR = 1,
    /// x86-64 AVX2 + FMA.
    FLOWMLP_ISA_AVX2 = 2,
    /// x86-64 AVX-512.
    FLOWMLP_ISA_AVX512 = 3,
    /// aarch64 NEON.
    FLOWMLP_ISA_NEON = 4,
}

/// Losses, for `flowmlp_config.loss`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum flowmlp_loss {
    /// Mean squared error, `(1/n) sum_i sum_j (yhat_ij - y_ij)^2`.
    FLOWMLP_LOSS_MSE = 0,
    /// Softmax cross-entropy over the m outputs (log-sum-exp, stable). Needs m >= 2.
    /// `flowmlp_forward` and `flowmlp_predict` then return logits z, not
    /// probabilities: p_j = exp(z_j - max z) / sum_k exp(z_k - max z) (or take
    /// `flowmlp_classify` for the class). Targets are rows of class probabilities,
    /// one-hot rows for class labels; any non-negative weights work: the loss is
    /// -sum_j y_j log p_j, and its gradient (sum_j y_j) p - y is exact also for rows
    /// that do not sum to 1.
    FLOWMLP_LOSS_CROSS_ENTROPY = 1,
}

/// Optimizers, for `flowmlp_optimizer.kind`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum flowmlp_optimizer_kind {
    /// SGD, with optional momentum (`momentum` > 0) and Nesterov momentum.
    FLOWMLP_OPTIMIZER_SGD = 0,
    /// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`).
    FLOWMLP_OPTIMIZER_ADAM = 1,
    /// AdamW, with decoupled weight decay (`torch.optim.AdamW`).
    FLOWMLP_OPTIMIZER_ADAMW = 2,
}

/// An optimizer and its hyperparameters, for `flowmlp_set_optimizer`; fields that
/// `kind` does not use are ignored. The learning rate is given to each step. Start
/// from `flowmlp_optimizer_defaults(kind, &opt)`, which fills the defaults named
/// below; a zeroed struct is valid only for SGD.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct flowmlp_optimizer {
    /// A `flowmlp_optimizer_kind` value.
    pub kind: u32,
    /// SGD: momentum factor in [0, 1); 0 is plain SGD.
    pub momentum: f32,
    /// SGD: 1 for Nesterov momentum (needs momentum > 0), else 0.
    pub nesterov: u32,
    /// Adam/AdamW: decay of the first moment in [0, 1) (PyTorch's default 0.9).
    pub beta1: f32,
    /// Adam/AdamW: decay of the second moment in [0, 1) (PyTorch's default 0.999).
    pub beta2: f32,
    /// Adam/AdamW: added to the denominator, > 0 (default 1e-8).
    pub eps: f32,
    /// L2 penalty (SGD, Adam) or decoupled decay (AdamW), >= 0.
    pub weight_decay: f32,
    /// Clip the gradients to this global L2 norm before each step; 0 = no clipping.
    pub clip_norm: f32,
}

// The C enums state each value once more, for the header: they must agree with the
// Rust enums and constants the library uses.
const _: () = {
    use flowmlp_isa::*;
    use flowmlp_loss::*;
    use flowmlp_optimizer_kind::*;
    assert!(FLOWMLP_ISA_AUTO as u32 == Isa::Auto as u32);
    assert!(FLOWMLP_ISA_SCALAR as u32 == Isa::Scalar as u32);
    assert!(FLOWMLP_ISA_AVX2 as u32 == Isa::Avx2 as u32);
    assert!(FLOWMLP_ISA_AVX512 as u32 == Isa::Avx512 as u32);
    assert!(FLOWMLP_ISA_NEON as u32 == Isa::Neon as u32);
    assert!(FLOWMLP_LOSS_MSE as u32 == Loss::Mse as u32);
    assert!(FLOWMLP_LOSS_CROSS_ENTROPY as u32 == Loss::CrossEntropy as u32);
    assert!(FLOWMLP_OPTIMIZER_SGD as u32 == KIND_SGD);
    assert!(FLOWMLP_OPTIMIZER_ADAM as u32 == KIND_ADAM);
    assert!(FLOWMLP_OPTIMIZER_ADAMW as u32 == KIND_ADAMW);
};

impl flowmlp_optimizer {
    /// The C form of `opt` (no clipping).
    fn from_optimizer(opt: Optimizer) -> flowmlp_optimizer {
        let mut c = flowmlp_optimizer {
            kind: 0,
            momentum: 0.0,
            nesterov: 0,
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
            weight_decay: 0.0,
            clip_norm: 0.0,
        };
        match opt {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                c.kind = KIND_SGD;
                c.momentum = momentum;
                c.nesterov = u32::from(nesterov);
                c.weight_decay = weight_decay;
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                c.kind = if matches!(opt, Optimizer::Adam { .. }) {
                    KIND_ADAM
                } else {
                    KIND_ADAMW
                };
                c.beta1 = beta1;
                c.beta2 = beta2;
                c.eps = eps;
                c.weight_decay = weight_decay;
            }
        }
        c
    }

    fn to_optimizer(self) -> Result<Optimizer, Error> {
        Ok(match self.kind {
            KIND_SGD => Optimizer::Sgd {
                momentum: self.momentum,
                nesterov: match self.nesterov {
                    0 => false,
                    1 => true,
                    v => {
                        return Err(refuse!(
                            InvalidArgument,
                            "optimizer.nesterov must be 0 or 1, got {v}"
                        ))
                    }
                },
                weight_decay: self.weight_decay,
            },
            KIND_ADAM => Optimizer::Adam {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
            },
            KIND_ADAMW => Optimizer::AdamW {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
            },
            k => {
                return Err(refuse!(
                    InvalidArgument,
                    "optimizer.kind = {k} is not an optimizer: 0 (SGD), 1 (Adam), 2 (AdamW)"
                ))
            }
        })
    }
}

/// Topology and creation options: `n_inputs -> hidden[0] .. hidden[n_hidden-1] -> n_outputs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct flowmlp_config {
    /// d >= 1.
    pub n_inputs: u32,
    /// m >= 1 (the course's network: 1).
    pub n_outputs: u32,
    /// k, 1..=8.
    pub n_hidden: u32,
    /// h_1..h_k >= 1; entries past k are ignored.
    pub hidden: [u32; 8],
    /// Rows the arena is sized for, >= 1; every call takes 1..=max_batch rows.
    pub max_batch: u32,
    /// Seed of the parameter initialization (same weights on every platform).
    pub seed: u64,
    /// A `flowmlp_isa` value; any other value is `FLOWMLP_ERROR_INVALID_CONFIG`.
    pub isa: u32,
    /// A `flowmlp_loss` value (0, the default, is mean squared error); any other value
    /// is `FLOWMLP_ERROR_INVALID_CONFIG`.
    pub loss: u32,
}

impl flowmlp_config {
    fn to_config(self) -> Result<Config, Error> {
        let isa = Isa::from_u32(self.isa).ok_or_else(|| {
            refuse!(
                InvalidConfig,
                "config.isa = {} is not a flowmlp_isa value: 0 (auto), 1 (scalar), 2 (avx2), \
                 3 (avx512), 4 (neon)",
                self.isa
            )
        })?;
        let loss = Loss::from_u32(self.loss).ok_or_else(|| {
            refuse!(
                InvalidConfig,
                "config.loss = {} is not a flowmlp_loss value: 0 (mean squared error), \
                 1 (cross-entropy)",
                self.loss
            )
        })?;
        let n_hidden = self.n_hidden as usize;
        if !(1..=MAX_HIDDEN).contains(&n_hidden) {
            return Err(refuse!(
                InvalidConfig,
                "config.n_hidden must be 1..={MAX_HIDDEN}, got {n_hidden}"
            ));
        }
        let mut cfg = Config::new(self.n_inputs as usize, &[], self.n_outputs as usize)
            .max_batch(self.max_batch as usize)
            .seed(self.seed)
            .isa(isa)
            .loss(loss);
        cfg.n_hidden = n_hidden;
        for (dst, &src) in cfg.hidden.iter_mut().zip(&self.hidden[..n_hidden]) {
            *dst = src as usize;
        }
        Ok(cfg)
    }
}

/// Borrow the model behind a C handle without taking ownership.
///
/// # Safety
/// `p` is NULL or a live handle from `flowmlp_create`, used by no other thread now.
unsafe fn borrow(p: *const flowmlp_model) -> Result<ManuallyDrop<Model>, Error> {
    let p = NonNull::new(p as *mut State).ok_or_else(|| refuse!(NullPointer, "model is NULL"))?;
    // SAFETY: the caller guarantees a live handle; ManuallyDrop keeps it alive.
    Ok(ManuallyDrop::new(unsafe { Model::from_raw(p) }))
}

/// A slice of `len` floats from C, or `NullPointer`.
///
/// # Safety
/// `p` is NULL or valid for `len` floats for the duration of the call.
unsafe fn floats<'a>(p: *const f32, len: usize) -> Result<&'a [f32], Error> {
    let p = non_null!(p);
    // SAFETY: the caller guarantees `len` readable floats at `p`.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// Mutable counterpart of `floats`.
///
/// # Safety
/// `p` is NULL or valid for writing `len` floats, not aliased during the call.
unsafe fn floats_mut<'a>(p: *mut f32, len: usize) -> Result<&'a mut [f32], Error> {
    let p = non_null!(p);
    // SAFETY: the caller guarantees `len` writable floats at `p`.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// `n` rows whose floats do not fit in `size_t`.
#[cold]
fn too_many_rows(n: usize) -> Error {
    refuse!(InvalidArgument, "n = {n} rows overflow size_t")
}

/// Rows `n` checked before any pointer arithmetic uses them.
fn check_rows(model: &Model, n: usize) -> Result<(), Error> {
    let max = model.config().max_batch;
    if n == 0 {
        Err(refuse!(
            InvalidArgument,
            "n = 0: a call takes 1..={max} rows"
        ))
    } else if n > max {
        Err(refuse!(
            BatchTooLarge,
            "n = {n} is more rows than the model's max_batch ({max})"
        ))
    } else {
        Ok(())
    }
}

/// Create a model: validate `*config`, allocate its one arena, initialize the
/// parameters from `config->seed` (He normal for hidden layers, zero biases).
///
/// On success `*out_model` receives a handle owned by the caller, to be freed with
/// `flowmlp_destroy`; on error `*out_model` is not written. `config` and `out_model`
/// must not be NULL. This is the only call that allocates.
///
/// Needs the heap: a build without the `std` feature (bare metal) lacks this symbol;
/// use `flowmlp_create_in` there.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn flowmlp_create(
    config: *const flowmlp_config,
    out_model: *mut *mut flowmlp_model,
) -> flowmlp_status {
    ffi_status!({
        let config = non_null!(config);
        let out_model = non_null!(out_model);
        // SAFETY: non-null; the caller guarantees it points to a flowmlp_config.
        let cfg = unsafe { *config }.to_config()?;
        let model = Model::new(&cfg)?;
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out_model = model.into_raw() as *mut flowmlp_model };
        Ok(())
    })
}

/// Bytes of memory `flowmlp_create_in` needs for a model with `*config` (header,
/// parameters, gradients, activations and scratch: the model's whole footprint);
/// 0 for a NULL or invalid config, or one whose size overflows `size_t`.
///
/// # Safety
/// `config` is NULL or points to a `flowmlp_config`.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_arena_size(config: *const flowmlp_config) -> usize {
    ffi_value!(0, {
        if config.is_null() {
            return 0;
        }
        // SAFETY: non-null; the caller guarantees it points to a flowmlp_config.
        let cfg = unsafe { *config }.to_config();
        cfg.and_then(|c| Model::arena_size_for(&c)).unwrap_or(0)
    })
}

/// Create a model inside caller-owned memory, for programs that must not call malloc:
/// the whole model, handle included, lives in `memory[0..size]`, which must be 64-byte
/// aligned and at least `flowmlp_arena_size(config)` bytes (INVALID_ARGUMENT
/// otherwise), must stay valid and untouched by the caller while the model lives, and
/// is the caller's to free after `flowmlp_destroy` (which frees nothing for such a
/// model). Nothing is allocated. On success `*out_model` receives the handle.
///
/// # Safety
/// `memory` is valid for reading and writing `size` bytes; the other pointers as for
/// `flowmlp_create`.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_create_in(
    config: *const flowmlp_config,
    memory: *mut core::ffi::c_void,
    size: usize,
    out_model: *mut *mut flowmlp_model,
) -> flowmlp_status {
    ffi_status!({
        let config = non_null!(config);
        let out_model = non_null!(out_model);
        let memory = non_null!(memory);
        // SAFETY: non-null; the caller guarantees it points to a flowmlp_config.
        let cfg = unsafe { *config }.to_config()?;
        // SAFETY: the caller guarantees `size` bytes at `memory`, exclusively for the model.
        let model = unsafe { Model::new_in(&cfg, memory as *mut u8, size) }?;
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out_model = model.into_raw() as *mut flowmlp_model };
        Ok(())
    })
}

/// Free a model and everything it owns. NULL is a no-op. The handle must not be used
/// afterwards, nor concurrently with this call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_destroy(model: *mut flowmlp_model) {
    ffi_value!((), {
        if let Some(p) = NonNull::new(model as *mut State) {
            // SAFETY: the caller passes a live handle from flowmlp_create and gives it up.
            drop(unsafe { Model::from_raw(p) });
        }
    })
}

/// Forward pass on `n` rows of `x` (`n x d`, row-major), 1 <= n <= max_batch.
/// Writes the `n x m` predictions to `y_out` when it is not NULL (for cross-entropy
/// models: logits, see `FLOWMLP_LOSS_CROSS_ENTROPY`), and keeps the activations (and
/// a copy of `x`) for `flowmlp_backward`.
///
/// Errors: NULL `model` or `x`; `n` = 0 (INVALID_ARGUMENT); `n` > max_batch
/// (BATCH_TOO_LARGE); a NaN or infinity in `x` (NON_FINITE). Not thread-safe on one model.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_forward(
    model: *mut flowmlp_model,
    x: *const f32,
    n: usize,
    y_out: *mut f32,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        non_null!(x);
        check_rows(&m, n)?;
        let cfg = *m.config();
        // SAFETY: the caller guarantees n x d floats at x (n <= max_batch, so no overflow).
        let x = unsafe { floats(x, n * cfg.inputs) }?;
        let y = if y_out.is_null() {
            None
        } else {
            // SAFETY: the caller guarantees n x m writable floats at y_out.
            Some(unsafe { floats_mut(y_out, n * cfg.outputs) }?)
        };
        m.forward(x, y)
    })
}

/// Gradients of the model's loss (mean squared error, or softmax cross-entropy, as
/// configured) of the last forward against targets `y` (`n x m` for that forward's
/// `n`); replaces the model's gradients. Writes the
/// loss to `*loss_out` when `loss_out` is not NULL.
///
/// Errors: NULL `model` or `y`; no forward since creation, the last step or
/// `flowmlp_set_params` (NO_FORWARD); a NaN or infinity in `y` or the loss
/// (NON_FINITE, gradients untouched). Not thread-safe on one model.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_backward(
    model: *mut flowmlp_model,
    y: *const f32,
    loss_out: *mut f32,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        non_null!(y);
        let n = m.kept_rows().ok_or(Error::NoForward)?;
        // SAFETY: the caller guarantees n x m floats at y.
        let y = unsafe { floats(y, n * m.config().outputs) }?;
        let loss = m.backward(y)?;
        if !loss_out.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { *loss_out = loss };
        }
        Ok(())
    })
}

/// One optimizer step with the current gradients: plain SGD (theta <- theta -
/// learning_rate * grad) unless `flowmlp_set_optimizer` chose another.
///
/// Errors: NULL `model`; a negative or non-finite rate (INVALID_ARGUMENT); an update
/// that would make any parameter or optimizer state NaN or infinite (DIVERGED:
/// nothing changes). A successful step ends the kept forward. Not thread-safe on one
/// model.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_step(
    model: *mut flowmlp_model,
    learning_rate: f32,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }?.step(learning_rate)
    })
}

/// Forward, backward and step on `n` rows in one call: `x` is `n x d`, `y` is
/// `n x m`. Same result as the three calls within float tolerance. Writes the loss
/// (before the step) to `*loss_out` when `loss_out` is not NULL.
///
/// Errors: as `flowmlp_forward`, `flowmlp_backward` and `flowmlp_step`; on any error
/// the parameters and gradients are unchanged. This call keeps no forward for
/// `flowmlp_backward`, and once its own forward pass has run (a refusal for a
/// non-finite loss or update) an earlier kept forward may be gone too (a batch's
/// forward overwrites it; one row of a one-hidden-layer, one-output network
/// leaves it).
#[no_mangle]
pub unsafe extern "C" fn flowmlp_train_step(
    model: *mut flowmlp_model,
    x: *const f32,
    y: *const f32,
    n: usize,
    learning_rate: f32,
    loss_out: *mut f32,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        non_null!(x);
        non_null!(y);
        check_rows(&m, n)?;
        let cfg = *m.config();
        // SAFETY: the caller guarantees n x d floats at x and n x m at y.
        let (x, y) = unsafe { (floats(x, n * cfg.inputs)?, floats(y, n * cfg.outputs)?) };
        let loss = m.train_step(x, y, learning_rate)?;
        if !loss_out.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { *loss_out = loss };
        }
        Ok(())
    })
}

/// Use `n` threads for this model's `forward`, `backward`, `step` and `train_step`:
/// the calling thread plus `n - 1` workers that this call starts (and the next
/// `flowmlp_set_threads`, or `flowmlp_destroy`, joins). `n = 0`: one per core
/// available to the process (at most 64); `n = 1`, the default: no workers.
/// Results are bit-identical for every `n`; work too small to pay for the hand-off
/// stays on the calling thread, and idle workers sleep. Besides creation and loading,
/// the only call that allocates. Checkpoints do not record the thread count.
///
/// Errors: NULL `model`; `n` above 256 (INVALID_ARGUMENT); the system refusing a
/// thread (OUT_OF_MEMORY). On an error the model keeps its threads. A child process
/// made by `fork()` has no workers: set 1 thread before forking, or use the model
/// only in the parent. A build without
/// `std` (bare metal) has no threads: `n` 0 and 1 give one, more is INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_set_threads(model: *mut flowmlp_model, n: u32) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        m.set_threads(n as usize).map(|_| ())
    })
}

/// The number of threads the model uses (see `flowmlp_set_threads`); 1 for NULL.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_threads(model: *const flowmlp_model) -> u32 {
    ffi_value!(1, {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }.map_or(1, |m| m.threads() as u32)
    })
}

/// Length of the flat parameter (and gradient) array; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_param_count(model: *const flowmlp_model) -> usize {
    ffi_value!(0, {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }.map_or(0, |m| m.param_count())
    })
}

/// Copy the parameters into `out` in the flat layout: W_1 (h_1 x d, row-major), b_1,
/// ..., W_o (m x h_k), b_o. `len` must equal `flowmlp_param_count` (INVALID_ARGUMENT).
/// Reads only: may run concurrently with other reads of the same model.
///
/// # Safety
/// `out` is NULL or valid for writing `len` floats; `model` is NULL or a live handle
/// that no thread modifies during the call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_get_params(
    model: *const flowmlp_model,
    out: *mut f32,
    len: usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        non_null!(out);
        if len != m.param_count() {
            return Err(refuse!(
                InvalidArgument,
                "len = {len} must be the model's parameter count, {}",
                m.param_count()
            ));
        }
        // SAFETY: the caller guarantees len writable floats at out.
        m.get_params(unsafe { floats_mut(out, len) }?)
    })
}

/// Replace the parameters from `values` (flat layout, `len` = `flowmlp_param_count`).
/// Every value must be finite (NON_FINITE otherwise, nothing changed). Ends the kept
/// forward. Not thread-safe on one model.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_set_params(
    model: *mut flowmlp_model,
    values: *const f32,
    len: usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        non_null!(values);
        if len != m.param_count() {
            return Err(refuse!(
                InvalidArgument,
                "len = {len} must be the model's parameter count, {}",
                m.param_count()
            ));
        }
        // SAFETY: the caller guarantees len floats at values.
        m.set_params(unsafe { floats(values, len) }?)
    })
}

/// Copy the gradients of the last backward (or train_step) into `out` (flat layout,
/// `len` = `flowmlp_param_count`); zeros before the first. Reads only: may run
/// concurrently with other reads of the same model.
///
/// # Safety
/// `out` is NULL or valid for writing `len` floats; `model` is NULL or a live handle
/// that no thread modifies during the call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_get_grads(
    model: *const flowmlp_model,
    out: *mut f32,
    len: usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        non_null!(out);
        if len != m.param_count() {
            return Err(refuse!(
                InvalidArgument,
                "len = {len} must be the model's parameter count, {}",
                m.param_count()
            ));
        }
        // SAFETY: the caller guarantees len writable floats at out.
        m.get_grads(unsafe { floats_mut(out, len) }?)
    })
}

/// The kernel set the model uses: "scalar", "avx2", "avx512" or "neon" (a static
/// string; do not free). NULL for a NULL model.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_isa_name(model: *const flowmlp_model) -> *const c_char {
    ffi_value!(core::ptr::null(), {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }.map_or(core::ptr::null(), |m| m.isa().c_name().as_ptr())
    })
}

/// 1 when this CPU and build can run kernel set `isa` (a `flowmlp_isa` value), else 0.
/// `FLOWMLP_ISA_AUTO` is always supported.
#[no_mangle]
pub extern "C" fn flowmlp_isa_supported(isa: u32) -> c_int {
    ffi_value!(0, {
        match Isa::from_u32(isa) {
            Some(Isa::Auto) => 1,
            Some(isa) => c_int::from(isa.is_supported()),
            None => 0,
        }
    })
}

/// A static, human-readable sentence for a status value (any value, even unknown
/// ones; do not free). It takes an `int` rather than `flowmlp_status` so that any
/// value is well defined, also one that is no status.
#[no_mangle]
pub extern "C" fn flowmlp_status_message(status: c_int) -> *const c_char {
    status::message(status).as_ptr()
}

/// One sentence on the last call that failed on the calling thread: the argument or
/// config field, the value refused and the rule, for example "config.loss = 1
/// (cross-entropy) needs n_outputs >= 2, got 1" or "optimizer.eps must be finite
/// and > 0 (...), got 0". Where a call has nothing more to say than its status, the
/// sentence is `flowmlp_status_message`'s. Successful calls leave it as it is (like
/// `errno`). The string belongs to the thread: valid until its next failed call or
/// its end; do not free. Allocates nothing, now or in the failing call (which formats
/// at most 255 bytes into a per-thread buffer).
///
/// A build without `std` (bare metal) keeps no per-thread text: the sentence is then
/// `flowmlp_status_message`'s for the last failed call in the whole program (static).
#[no_mangle]
pub extern "C" fn flowmlp_last_error_message() -> *const c_char {
    crate::last_error::c_message()
}

/// The library version, e.g. "0.1.0" (a static string).
#[no_mangle]
pub extern "C" fn flowmlp_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr() as *const c_char
}

/// Bytes of `model`'s checkpoint, for the buffer of `flowmlp_save`; 0 for NULL. It
/// depends on the optimizer (`flowmlp_set_optimizer`), whose state the checkpoint
/// carries: ask again after changing it.
///
/// # Safety
/// `model` is NULL or a live handle, not being changed by another thread.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_save_size(model: *const flowmlp_model) -> usize {
    ffi_value!(0, {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }.map_or(0, |m| m.save_size())
    })
}

/// Write `model`'s checkpoint into `buf[0..cap]`: a versioned, little-endian format
/// (the same bytes on every platform and kernel set: topology, loss, flat parameters,
/// the optimizer with its clipping norm, step count and state, CRC-32; see
/// src/checkpoint.rs), `flowmlp_save_size(model)` bytes long. On success `*written`
/// receives that length when `written` is not NULL.
///
/// Errors: NULL `model` or `buf`; `cap` < `flowmlp_save_size(model)`
/// (INVALID_ARGUMENT; nothing written). Reads the model only and allocates nothing.
///
/// # Safety
/// `buf` is NULL or valid for writing `cap` bytes; `written` is NULL or writable;
/// `model` is NULL or a live handle, not being changed by another thread.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_save(
    model: *const flowmlp_model,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        let buf = non_null!(buf);
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
        let n = m.save(unsafe { core::slice::from_raw_parts_mut(buf, cap) })?;
        if !written.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { *written = n };
        }
        Ok(())
    })
}

/// The kernel set a loaded model is created with: a `flowmlp_isa` value, or
/// INVALID_CONFIG, as for `flowmlp_config.isa` in `flowmlp_create` (it becomes that
/// field of the loaded model's config).
fn load_isa(isa: u32) -> Result<Isa, Error> {
    Isa::from_u32(isa).ok_or_else(|| {
        refuse!(
            InvalidConfig,
            "isa = {isa} is not a flowmlp_isa value: 0 (auto), 1 (scalar), 2 (avx2), \
             3 (avx512), 4 (neon)"
        )
    })
}

/// Create a model from a checkpoint written by `flowmlp_save` (`buf[0..len]`), with
/// room for `max_batch` rows and kernel set `isa` (a `flowmlp_isa` value; a
/// checkpoint loads under any set). The loss, the parameters and the optimizer (with
/// its clipping norm, step count and state) come back bit for bit, so training goes
/// on exactly as it would have in the saved model on the same kernel set; gradients
/// are zero and there is no kept forward. On success `*out_model` receives a handle
/// owned by the caller (free it with `flowmlp_destroy`); on error it is not written.
/// `buf` is only read, and may be freed after the call. Allocates the model, like
/// `flowmlp_create`.
///
/// Errors: NULL `buf` or `out_model`; `max_batch` 0 or an unknown `isa` value
/// (INVALID_CONFIG, as in `flowmlp_create`: they become the loaded model's config);
/// truncated, corrupted (CRC-32), another format version, an
/// impossible topology or loss, non-finite parameters, an unknown optimizer,
/// hyperparameters out of range or non-finite optimizer state (BAD_CHECKPOINT, found
/// before anything is allocated); then as `flowmlp_create` (UNSUPPORTED_ISA,
/// INVALID_CONFIG when `max_batch` makes the size overflow, OUT_OF_MEMORY).
///
/// Needs the heap, as `flowmlp_create` (without `std`: `flowmlp_load_in`).
///
/// # Safety
/// `buf` is NULL or valid for reading `len` bytes; `out_model` is NULL or writable.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn flowmlp_load(
    buf: *const u8,
    len: usize,
    max_batch: u32,
    isa: u32,
    out_model: *mut *mut flowmlp_model,
) -> flowmlp_status {
    ffi_status!({
        let buf = non_null!(buf);
        let out_model = non_null!(out_model);
        let isa = load_isa(isa)?;
        // SAFETY: the caller guarantees `len` readable bytes at `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
        let model = Model::load(bytes, max_batch as usize, isa)?;
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out_model = model.into_raw() as *mut flowmlp_model };
        Ok(())
    })
}

/// Bytes of memory `flowmlp_load_in` needs for the model in checkpoint `buf[0..len]`
/// with room for `max_batch` rows and kernel set `isa` (as `flowmlp_arena_size` for
/// its configuration); 0 for a NULL `buf`, a bad checkpoint, `max_batch` 0, an
/// unknown `isa` value, or a size that overflows `size_t`.
///
/// # Safety
/// `buf` is NULL or valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_load_arena_size(
    buf: *const u8,
    len: usize,
    max_batch: u32,
    isa: u32,
) -> usize {
    ffi_value!(0, {
        if buf.is_null() {
            return 0;
        }
        // SAFETY: the caller guarantees `len` readable bytes at `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
        let Some(isa) = Isa::from_u32(isa) else {
            return 0;
        };
        Model::checkpoint_config(bytes, max_batch as usize, isa)
            .and_then(|c| Model::arena_size_for(&c))
            .unwrap_or(0)
    })
}

/// `flowmlp_load` into caller-owned memory, as `flowmlp_create_in`: the model, handle
/// included, lives in `memory[0..size]`, which must be 64-byte aligned and at least
/// `flowmlp_load_arena_size(buf, len, max_batch, isa)` bytes (INVALID_ARGUMENT
/// otherwise) and stays the caller's (`flowmlp_destroy` frees nothing). Nothing is
/// allocated; works in every build, bare metal included.
///
/// Errors: as `flowmlp_load` (the checkpoint is checked first), then as
/// `flowmlp_create_in`.
///
/// # Safety
/// `buf` is NULL or valid for reading `len` bytes; `memory` as for
/// `flowmlp_create_in`; `out_model` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_load_in(
    buf: *const u8,
    len: usize,
    max_batch: u32,
    isa: u32,
    memory: *mut core::ffi::c_void,
    size: usize,
    out_model: *mut *mut flowmlp_model,
) -> flowmlp_status {
    ffi_status!({
        let buf = non_null!(buf);
        let out_model = non_null!(out_model);
        let memory = non_null!(memory);
        let isa = load_isa(isa)?;
        // SAFETY: the caller guarantees `len` readable bytes at `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
        // SAFETY: the caller guarantees `size` bytes at `memory`, exclusively for the model.
        let model =
            unsafe { Model::load_in(bytes, max_batch as usize, isa, memory as *mut u8, size) }?;
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out_model = model.into_raw() as *mut flowmlp_model };
        Ok(())
    })
}

/// A path from C: the bytes of a NUL-terminated string (UTF-8 where the platform's
/// paths are Unicode; INVALID_ARGUMENT otherwise).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[cfg(feature = "std")]
unsafe fn path_arg<'a>(path: *const c_char) -> Result<&'a std::path::Path, Error> {
    let path = non_null!(path);
    // SAFETY: the caller guarantees a NUL-terminated string.
    let bytes = unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        core::str::from_utf8(bytes)
            .map(std::path::Path::new)
            .map_err(|_| refuse!(InvalidArgument, "path is not UTF-8"))
    }
}

/// Save `model`'s checkpoint (as `flowmlp_save`) to the file `path`, atomically: it
/// is written to a temporary file in the same directory, synced, renamed over
/// `path`, and the directory is synced, so a crash, a full disk or an error at any
/// point leaves a previous file at `path` intact (a crash may leave a
/// `.<name>.*.tmp` file behind).
///
/// Errors: NULL `model` or `path`; the file cannot be created, written, synced or
/// renamed (IO). Unlike the other calls on a model this one allocates (the bytes and
/// the temporary file's name). Reads the model only.
///
/// Needs `std` (absent from a build without it).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `model` is NULL or a live handle, not
/// being changed by another thread.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn flowmlp_save_file(
    model: *const flowmlp_model,
    path: *const c_char,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        // SAFETY: the caller passes a NUL-terminated string or NULL.
        let path = unsafe { path_arg(path) }?;
        m.save_file(path)
    })
}

/// `flowmlp_load` from the file `path`. The file is read only as far as its header
/// justifies. Errors: as `flowmlp_load`, plus NULL `path`, and IO when the file
/// cannot be opened or read (a file too short, too long or inconsistent with its
/// header is BAD_CHECKPOINT).
///
/// Needs `std` (absent from a build without it).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out_model` is NULL or writable.
#[cfg(feature = "std")]
#[no_mangle]
pub unsafe extern "C" fn flowmlp_load_file(
    path: *const c_char,
    max_batch: u32,
    isa: u32,
    out_model: *mut *mut flowmlp_model,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a NUL-terminated string or NULL.
        let path = unsafe { path_arg(path) }?;
        let out_model = non_null!(out_model);
        let isa = load_isa(isa)?;
        let model = Model::load_file(path, max_batch as usize, isa)?;
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out_model = model.into_raw() as *mut flowmlp_model };
        Ok(())
    })
}

/// Fill `*out` with the defaults of optimizer `kind` (a `flowmlp_optimizer_kind`
/// value), PyTorch's: SGD without momentum or weight decay; Adam with beta1 0.9,
/// beta2 0.999, eps 1e-8 and no weight decay; AdamW the same with weight decay 0.01;
/// no clipping. Change the fields you want, then pass it to `flowmlp_set_optimizer`.
/// (A zeroed struct is not a default: Adam's eps must be > 0.) The Rust API's
/// `Optimizer::SGD`, `Optimizer::ADAM` and `Optimizer::ADAMW` are the same values.
///
/// Errors: NULL `out`; an unknown `kind` (INVALID_ARGUMENT); `*out` is then not
/// written.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_optimizer_defaults(
    kind: u32,
    out: *mut flowmlp_optimizer,
) -> flowmlp_status {
    ffi_status!({
        let out = non_null!(out);
        let opt = match kind {
            KIND_SGD => Optimizer::SGD,
            KIND_ADAM => Optimizer::ADAM,
            KIND_ADAMW => Optimizer::ADAMW,
            k => {
                return Err(refuse!(
                    InvalidArgument,
                    "kind = {k} is not an optimizer: 0 (SGD), 1 (Adam), 2 (AdamW)"
                ))
            }
        };
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out = flowmlp_optimizer::from_optimizer(opt) };
        Ok(())
    })
}

/// Choose the optimizer of `flowmlp_step` and `flowmlp_train_step` (plain SGD until
/// this is called) and its gradient clipping. Resets the optimizer state (momentum,
/// moments, step count) as a new PyTorch optimizer would; allocates nothing.
///
/// Errors: NULL `model` or `opt`; an unknown `kind`, a `nesterov` other than 0/1, or
/// a hyperparameter out of range (INVALID_ARGUMENT; nothing changed).
///
/// # Safety
/// `model` is NULL or a live handle used by no other thread; `opt` is NULL or points
/// to a `flowmlp_optimizer`.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_set_optimizer(
    model: *mut flowmlp_model,
    opt: *const flowmlp_optimizer,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        let opt = non_null!(opt);
        // SAFETY: non-null; the caller guarantees it points to a flowmlp_optimizer.
        let opt = unsafe { *opt };
        let optimizer = opt.to_optimizer()?;
        optimizer.validate()?;
        if !(opt.clip_norm.is_finite() && opt.clip_norm >= 0.0) {
            return Err(refuse!(
                InvalidArgument,
                "optimizer.clip_norm must be finite and >= 0 (0: no clipping), got {}",
                opt.clip_norm
            ));
        }
        m.set_optimizer(optimizer)?;
        m.set_grad_clip(opt.clip_norm)
    })
}

/// Forward pass on `n` rows of `x`, then the index of the largest of the m outputs of
/// each row into `classes_out` (`n` entries; ties go to the lowest index): the
/// predicted class of a cross-entropy model. Keeps the forward like `flowmlp_forward`.
///
/// Errors: as `flowmlp_forward`, plus NULL `classes_out`.
///
/// # Safety
/// Every pointer is NULL or valid for the sizes stated; `model` is a live handle used
/// by no other thread during the call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_predict_class(
    model: *mut flowmlp_model,
    x: *const f32,
    n: usize,
    classes_out: *mut u32,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let mut m = unsafe { borrow(model) }?;
        non_null!(x);
        let classes_out = non_null!(classes_out);
        check_rows(&m, n)?;
        let d = m.config().inputs;
        // SAFETY: the caller guarantees n x d floats at x and n writable entries.
        let (x, classes) = unsafe {
            (
                floats(x, n * d)?,
                core::slice::from_raw_parts_mut(classes_out, n),
            )
        };
        m.predict_class(x, classes)
    })
}

/// Bytes of workspace `flowmlp_predict` needs to process `n_rows` rows at a time
/// (a smaller workspace processes fewer rows per pass; `n_rows` = 0 counts as 1);
/// 0 for a NULL model.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_predict_workspace_size(
    model: *const flowmlp_model,
    n_rows: usize,
) -> usize {
    ffi_value!(0, {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { borrow(model) }.map_or(0, |m| m.predict_workspace_size(n_rows))
    })
}

/// Inference that only reads the model: `n` rows of `x` (`n x d`; any `n` >= 1, not
/// limited by `max_batch`) into `y_out` (`n x m`; logits for cross-entropy models,
/// see `FLOWMLP_LOSS_CROSS_ENTROPY`), with the activations in the
/// caller's `workspace` of `workspace_len` bytes (any alignment; see
/// `flowmlp_predict_workspace_size`; rows are processed in chunks that fit it).
///
/// Thread safety: any number of threads may call `flowmlp_predict` on the same model
/// at once, each with its own workspace, as long as no thread modifies the model
/// (train, step, set_params, set_optimizer, destroy) meanwhile. Allocates nothing and
/// keeps no forward for `flowmlp_backward`.
///
/// Errors: NULL `model`, `x`, `y_out` or `workspace`; `n` = 0 or a workspace too small
/// for one row (INVALID_ARGUMENT); a NaN or infinity in `x` (NON_FINITE).
///
/// # Safety
/// Every pointer is NULL or valid for the sizes stated; `workspace` is not used by
/// anyone else during the call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_predict(
    model: *const flowmlp_model,
    x: *const f32,
    n: usize,
    y_out: *mut f32,
    workspace: *mut core::ffi::c_void,
    workspace_len: usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        non_null!(x);
        non_null!(y_out);
        let workspace = non_null!(workspace);
        if n == 0 {
            return Err(refuse!(InvalidArgument, "n = 0: give at least one row"));
        }
        let cfg = m.config();
        let (xl, yl) = (
            n.checked_mul(cfg.inputs).ok_or_else(|| too_many_rows(n))?,
            n.checked_mul(cfg.outputs).ok_or_else(|| too_many_rows(n))?,
        );
        // SAFETY: the caller guarantees the sizes stated for x, y_out and workspace.
        let (x, y, ws) = unsafe {
            (
                floats(x, xl)?,
                floats_mut(y_out, yl)?,
                core::slice::from_raw_parts_mut(workspace as *mut u8, workspace_len),
            )
        };
        m.predict(x, y, ws)
    })
}

/// The read-only form of `flowmlp_predict_class`: `flowmlp_predict` on `n` rows of
/// `x` (any `n` >= 1), then the index of the largest of each row's m outputs into
/// `classes_out` (`n` entries; ties go to the lowest index). The outputs stay in the
/// caller's `workspace` (of `flowmlp_predict_workspace_size` bytes, which counts them),
/// so threads may classify with one model at once exactly as they may predict.
/// Allocates nothing and keeps no forward.
///
/// Errors: as `flowmlp_predict`, plus NULL `classes_out`; on an error `classes_out` is
/// not written.
///
/// # Safety
/// Every pointer is NULL or valid for the sizes stated; `workspace` is not used by
/// anyone else during the call.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_classify(
    model: *const flowmlp_model,
    x: *const f32,
    n: usize,
    classes_out: *mut u32,
    workspace: *mut core::ffi::c_void,
    workspace_len: usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        non_null!(x);
        let classes_out = non_null!(classes_out);
        let workspace = non_null!(workspace);
        if n == 0 {
            return Err(refuse!(InvalidArgument, "n = 0: give at least one row"));
        }
        let xl = n
            .checked_mul(m.config().inputs)
            .ok_or_else(|| too_many_rows(n))?;
        // SAFETY: the caller guarantees the sizes stated for x, classes_out and
        // workspace.
        let (x, classes, ws) = unsafe {
            (
                floats(x, xl)?,
                core::slice::from_raw_parts_mut(classes_out, n),
                core::slice::from_raw_parts_mut(workspace as *mut u8, workspace_len),
            )
        };
        m.classify(x, classes, ws)
    })
}

/// Write `model`'s flow graph in Graphviz DOT into `buf[0..cap]`, as a NUL-terminated
/// ASCII string (render it with `dot -Tsvg`): the input X; per hidden layer l the
/// nodes W_l, b_l, matmul, add bias and ReLU; the output layer's W_o, b_o, matmul and
/// add bias; the targets Y, the loss node and the scalar L. Every edge is labelled
/// with the shape flowing along it (`n x d`, `h_1 x d`, ...), where `n` stands for
/// the rows of one call (the graph's title gives `max_batch`). The text depends only
/// on the configuration. Reads the model only and allocates nothing.
///
/// Buffer rules: `*written` (when `written` is not NULL) always receives the size the
/// text needs, NUL included, whenever `model` is not NULL, even when the call fails
/// (as `snprintf` reports the length it needs; the one exception to "output
/// parameters are written only on success"). On success that many bytes were written.
/// `buf` = NULL with `cap` = 0 only asks for the size: FLOWMLP_OK, nothing written.
///
/// Errors: NULL `model`; NULL `buf` with `cap` > 0; `cap` smaller than the size
/// (INVALID_ARGUMENT; nothing written to `buf`, as `flowmlp_save`).
///
/// # Safety
/// `buf` is NULL or valid for writing `cap` bytes; `written` is NULL or writable;
/// `model` is NULL or a live handle, not being changed by another thread.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_graph_dot(
    model: *const flowmlp_model,
    buf: *mut c_char,
    cap: usize,
    written: *mut usize,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        let size = m.graph_dot_size();
        if !written.is_null() {
            // SAFETY: non-null; the caller guarantees it is writable.
            unsafe { *written = size };
        }
        if buf.is_null() {
            return if cap == 0 {
                Ok(())
            } else {
                Err(Error::NullPointer)
            };
        }
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf as *mut u8, cap) };
        m.graph_dot(buf).map(|_| ())
    })
}

/// Copy the configuration of `model` into `*out`: the topology (`hidden` entries past
/// `n_hidden` are 0), `max_batch`, `seed` and `loss` it was created or loaded with,
/// and `isa` resolved to the kernel set in use (never `FLOWMLP_ISA_AUTO`). For a
/// model from `flowmlp_load`, this is how a program learns its shape. Reads only.
///
/// Errors: NULL `model` or `out`.
///
/// # Safety
/// `out` is NULL or writable; `model` is NULL or a live handle, not being changed by
/// another thread.
#[no_mangle]
pub unsafe extern "C" fn flowmlp_get_config(
    model: *const flowmlp_model,
    out: *mut flowmlp_config,
) -> flowmlp_status {
    ffi_status!({
        // SAFETY: the caller passes a live handle or NULL.
        let m = unsafe { borrow(model) }?;
        let out = non_null!(out);
        let cfg = m.config();
        let to_u32 = |v: usize| u32::try_from(v).map_err(|_| Error::Internal);
        let mut c = flowmlp_config {
            n_inputs: to_u32(cfg.inputs)?,
            n_outputs: to_u32(cfg.outputs)?,
            n_hidden: to_u32(cfg.n_hidden)?,
            hidden: [0; MAX_HIDDEN],
            max_batch: to_u32(cfg.max_batch)?,
            seed: cfg.seed,
            isa: m.isa() as u32,
            loss: cfg.loss as u32,
        };
        for (dst, &src) in c.hidden.iter_mut().zip(cfg.hidden_widths()) {
            *dst = to_u32(src)?;
        }
        // SAFETY: non-null; the caller guarantees it is writable.
        unsafe { *out = c };
        Ok(())
    })
}
