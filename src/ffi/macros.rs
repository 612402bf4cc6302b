//! The shape every `extern "C"` function has: catch panics, check pointers, map errors.

/// Run `$body` (an expression of type `Result<(), Error>`), turning a panic into
/// `FLOWMLP_ERROR_INTERNAL` so that no unwind crosses the C boundary.
#[cfg(feature = "std")]
macro_rules! ffi_status {
    ($body:block) => {{
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || -> Result<(), $crate::Error> { $body },
        )) {
            Ok(Ok(())) => $crate::ffi::flowmlp_status::FLOWMLP_OK,
            Ok(Err(e)) => {
                $crate::last_error::finish(e);
                $crate::ffi::flowmlp_status::from(e)
            }
            Err(_) => {
                $crate::last_error::finish($crate::Error::Internal);
                $crate::ffi::flowmlp_status::FLOWMLP_ERROR_INTERNAL
            }
        }
    }};
}

/// Like `ffi_status!` for functions that return a plain value: `$fallback` on panic.
#[cfg(feature = "std")]
macro_rules! ffi_value {
    ($fallback:expr, $body:block) => {{
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body)).unwrap_or($fallback)
    }};
}

/// Without `std` nothing unwinds (a panic ends in the panic handler, see the crate
/// docs): run `$body` and map its error.
#[cfg(not(feature = "std"))]
macro_rules! ffi_status {
    ($body:block) => {{
        match (|| -> Result<(), $crate::Error> { $body })() {
            Ok(()) => $crate::ffi::flowmlp_status::FLOWMLP_OK,
            Err(e) => {
                $crate::last_error::finish(e);
                $crate::ffi::flowmlp_status::from(e)
            }
        }
    }};
}

/// Without `std`: run `$body` (no unwinding to catch).
#[cfg(not(feature = "std"))]
macro_rules! ffi_value {
    ($fallback:expr, $body:block) => {{
        (|| $body)()
    }};
}

/// A non-null pointer, or return `Err(Error::NullPointer)` naming the argument.
macro_rules! non_null {
    ($p:expr) => {{
        if $p.is_null() {
            return Err($crate::last_error::refuse!(
                NullPointer,
                "{} is NULL",
                stringify!($p)
            ));
        }
        $p
    }};
}

pub(crate) use {ffi_status, ffi_value, non_null};
