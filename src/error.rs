//! The typed error of the safe API; the C layer maps it one to one onto `flowmlp_status`.

use core::fmt;

/// Why a call was refused. A refused call leaves the model as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required pointer was NULL (C API only).
    NullPointer,
    /// The configuration has a zero dimension, too many hidden layers, or sizes that overflow.
    InvalidConfig,
    /// A length, batch size of zero, learning rate, or caller buffer (too small,
    /// misaligned) is not acceptable.
    InvalidArgument,
    /// More rows than the model's `max_batch`.
    BatchTooLarge,
    /// The arena could not be allocated.
    OutOfMemory,
    /// `backward` without a kept `forward` (none yet, or the parameters changed since).
    NoForward,
    /// A NaN or infinity in what the caller passed (inputs, targets, parameters):
    /// skip that sample.
    NonFinite,
    /// The requested kernel set is not supported by this CPU or build.
    UnsupportedIsa,
    /// A bug in flowmlp (for example a caught panic).
    Internal,
    /// A checkpoint is truncated, corrupted (its CRC-32 does not match), of an unknown
    /// format version, describes an impossible model, or holds non-finite parameters or
    /// an invalid optimizer state.
    BadCheckpoint,
    /// A checkpoint file could not be created, written, synced, renamed or read.
    Io,
    /// The inputs and targets were finite, but the loss, a gradient, an update or the
    /// optimizer state would not be (a learning rate too high, exploding weights):
    /// nothing was applied; lower the rate or go back to a checkpoint.
    Diverged,
}

impl Error {
    /// Every error, in declaration order: the order of the C status values
    /// (`FLOWMLP_ERROR_*` = index + 1).
    pub(crate) const ALL: [Error; 12] = [
        Error::NullPointer,
        Error::InvalidConfig,
        Error::InvalidArgument,
        Error::BatchTooLarge,
        Error::OutOfMemory,
        Error::NoForward,
        Error::NonFinite,
        Error::UnsupportedIsa,
        Error::Internal,
        Error::BadCheckpoint,
        Error::Io,
        Error::Diverged,
    ];

    /// One static, human-readable sentence.
    pub fn message(self) -> &'static str {
        self.c_message().to_str().unwrap_or("flowmlp error")
    }

    /// The same sentence, NUL-terminated for the C API.
    pub(crate) const fn c_message(self) -> &'static core::ffi::CStr {
        match self {
            Error::NullPointer => c"a required pointer was NULL",
            Error::InvalidConfig => {
                c"invalid configuration: a zero dimension, more than 8 hidden layers, an unknown isa or loss value, cross-entropy with one output, or sizes that overflow"
            }
            Error::InvalidArgument => {
                c"invalid argument: a wrong length, zero rows, a negative or non-finite learning rate, an optimizer hyperparameter out of range, or a buffer too small or misaligned"
            }
            Error::BatchTooLarge => c"the batch has more rows than the model's max_batch",
            Error::OutOfMemory => c"the model's memory could not be allocated",
            Error::NoForward => c"backward needs a forward pass on the current parameters first",
            Error::NonFinite => {
                c"a NaN or infinity in the values passed (inputs, targets or parameters); nothing was changed"
            }
            Error::UnsupportedIsa => c"the requested kernel set is not supported on this CPU",
            Error::Internal => c"internal error in flowmlp (please report it)",
            Error::BadCheckpoint => {
                c"bad checkpoint: truncated, corrupted, an unknown format version, an impossible model, or non-finite or out-of-range values"
            }
            Error::Io => {
                c"the checkpoint file could not be written or read (the previous file, if any, is intact)"
            }
            Error::Diverged => {
                c"diverged: the loss, a gradient, an update or the optimizer state would be non-finite with finite inputs (lower the learning rate); nothing was changed"
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for Error {}
