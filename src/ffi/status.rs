//! `flowmlp_status`: the result of every fallible C function.

use crate::Error;

/// Result of a flowmlp call. `FLOWMLP_OK` is 0; every other value is an error, and a
/// call that returns one has changed nothing (see `flowmlp_status_message`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum flowmlp_status {
    /// Success.
    FLOWMLP_OK = 0,
    /// A required pointer argument was NULL.
    FLOWMLP_ERROR_NULL_POINTER = 1,
    /// A config field out of range: a zero dimension, more than 8 hidden layers, an
    /// unknown `isa` or `loss` value, cross-entropy with fewer than 2 outputs, or sizes
    /// whose arena would overflow `size_t` (`flowmlp_last_error_message` names it).
    FLOWMLP_ERROR_INVALID_CONFIG = 2,
    /// An argument out of range: a wrong length, `n` = 0, a negative or non-finite
    /// learning rate, an optimizer hyperparameter, a buffer too small
    /// (`flowmlp_last_error_message` names it).
    FLOWMLP_ERROR_INVALID_ARGUMENT = 3,
    /// `n` is larger than the model's `max_batch`.
    FLOWMLP_ERROR_BATCH_TOO_LARGE = 4,
    /// The model's memory could not be allocated.
    FLOWMLP_ERROR_OUT_OF_MEMORY = 5,
    /// `flowmlp_backward` without a forward pass on the current parameters.
    FLOWMLP_ERROR_NO_FORWARD = 6,
    /// A NaN or infinity in what the caller passed (inputs, targets, parameters):
    /// nothing was applied; skip that sample. (Finite inputs whose step would not be
    /// finite are `FLOWMLP_ERROR_DIVERGED`.)
    FLOWMLP_ERROR_NON_FINITE = 7,
    /// The requested kernel set is not supported by this CPU or build.
    FLOWMLP_ERROR_UNSUPPORTED_ISA = 8,
    /// An internal error (a bug in flowmlp); the model was not changed.
    FLOWMLP_ERROR_INTERNAL = 9,
    /// A checkpoint is truncated, corrupted (CRC-32 mismatch), of an unknown format
    /// version, describes an impossible model, or holds non-finite parameters or an
    /// invalid optimizer state.
    FLOWMLP_ERROR_BAD_CHECKPOINT = 10,
    /// A checkpoint file could not be created, written, synced, renamed or read; a
    /// failed `flowmlp_save_file` leaves any previous file at the path intact.
    FLOWMLP_ERROR_IO = 11,
    /// Finite inputs and targets, but the loss, a gradient, an update or the optimizer
    /// state would be non-finite (a learning rate too high, exploding weights): nothing
    /// was applied; lower the learning rate or reload a checkpoint.
    FLOWMLP_ERROR_DIVERGED = 12,
}

impl From<Error> for flowmlp_status {
    fn from(e: Error) -> Self {
        match e {
            Error::NullPointer => flowmlp_status::FLOWMLP_ERROR_NULL_POINTER,
            Error::InvalidConfig => flowmlp_status::FLOWMLP_ERROR_INVALID_CONFIG,
            Error::InvalidArgument => flowmlp_status::FLOWMLP_ERROR_INVALID_ARGUMENT,
            Error::BatchTooLarge => flowmlp_status::FLOWMLP_ERROR_BATCH_TOO_LARGE,
            Error::OutOfMemory => flowmlp_status::FLOWMLP_ERROR_OUT_OF_MEMORY,
            Error::NoForward => flowmlp_status::FLOWMLP_ERROR_NO_FORWARD,
            Error::NonFinite => flowmlp_status::FLOWMLP_ERROR_NON_FINITE,
            Error::UnsupportedIsa => flowmlp_status::FLOWMLP_ERROR_UNSUPPORTED_ISA,
            Error::Internal => flowmlp_status::FLOWMLP_ERROR_INTERNAL,
            Error::BadCheckpoint => flowmlp_status::FLOWMLP_ERROR_BAD_CHECKPOINT,
            Error::Io => flowmlp_status::FLOWMLP_ERROR_IO,
            Error::Diverged => flowmlp_status::FLOWMLP_ERROR_DIVERGED,
        }
    }
}

/// Errors in status order (index = status value - 1).
const ERRORS: [Error; 12] = Error::ALL;

/// NUL-terminated message for a status value; unknown values get a sentence too.
pub(crate) fn message(status: i32) -> &'static core::ffi::CStr {
    match status {
        0 => c"success",
        s if (1..=ERRORS.len() as i32).contains(&s) => ERRORS[(s - 1) as usize].c_message(),
        _ => c"unknown flowmlp status value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_has_a_message() {
        for (i, e) in ERRORS.iter().enumerate() {
            let s = flowmlp_status::from(*e);
            assert_eq!(s as i32, i as i32 + 1);
            assert!(!message(s as i32).to_bytes().is_empty());
        }
        assert_eq!(message(0).to_str().unwrap(), "success");
        assert_eq!(
            message(99).to_str().unwrap(),
            "unknown flowmlp status value"
        );
        assert_eq!(
            message(-1).to_str().unwrap(),
            "unknown flowmlp status value"
        );
        assert_eq!(
            message(ERRORS.len() as i32 + 1).to_str().unwrap(),
            "unknown flowmlp status value"
        );
    }

    /// The rule "a Rust panic never crosses the C boundary": the wrappers
    /// every `extern "C"` function is built from turn one into INTERNAL (or the
    /// fallback value).
    #[test]
    fn a_panic_becomes_internal() {
        use super::super::macros::{ffi_status, ffi_value};
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = ffi_status!({
            if core::hint::black_box(true) {
                panic!("a bug");
            }
            Ok(())
        });
        let v: usize = ffi_value!(7, {
            if core::hint::black_box(true) {
                panic!("a bug");
            }
            1
        });
        std::panic::set_hook(quiet);
        assert_eq!(s, flowmlp_status::FLOWMLP_ERROR_INTERNAL);
        assert_eq!(v, 7);
        assert_eq!(
            ffi_status!({ Err(Error::NoForward) }),
            flowmlp_status::FLOWMLP_ERROR_NO_FORWARD
        );
    }
}
