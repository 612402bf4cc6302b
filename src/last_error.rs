//! The sentence behind the last failed C call on this thread: which argument or config
//! field, the value refused and the rule ("optimizer.eps must be > 0, got 0").
//!
//! A check that refuses something records its sentence with [`fail`]; the C boundary
//! ([`finish`]) keeps it when the call fails with that same error, and otherwise
//! writes the status's own sentence. The buffer is a fixed thread-local array, so
//! recording allocates nothing and successful calls never touch it; a failure costs
//! the formatting of one short sentence.
//!
//! Without `std` there are no thread-locals: the last failed call's error is kept in
//! one atomic for the whole program (sound under interrupts and threads; a race only
//! chooses which of two failures is reported), and the message is that error's
//! static sentence. The argument-level sentences are not formatted at all.

#[cfg(feature = "std")]
pub(crate) use per_thread::{c_message, fail, finish};
#[cfg(not(feature = "std"))]
pub(crate) use program::{c_message, fail, finish};

#[cfg(feature = "std")]
mod per_thread {
    use core::cell::RefCell;
    use core::fmt::{self, Write};

    use crate::Error;

    /// Longest sentence kept, NUL included; longer ones are cut.
    pub(super) const CAP: usize = 256;

    struct Slot {
        /// The error the sentence explains while it waits for the C boundary.
        pending: Option<Error>,
        len: usize,
        bytes: [u8; CAP],
    }

    impl Write for Slot {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            // Keep one byte for the NUL; cut at a character boundary.
            let room = CAP - 1 - self.len;
            let mut take = s.len().min(room);
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
            Ok(())
        }
    }

    impl Slot {
        fn set(&mut self, args: fmt::Arguments<'_>) {
            self.len = 0;
            let _ = self.write_fmt(args);
            self.bytes[self.len] = 0;
        }
    }

    std::thread_local! {
        static LAST: RefCell<Slot> = const {
            RefCell::new(Slot {
                pending: None,
                len: 0,
                bytes: [0; CAP],
            })
        };
    }

    /// Record why `e` is returned, and return it: `return Err(fail(e, format_args!(..)))`.
    #[cold]
    pub(crate) fn fail(e: Error, args: fmt::Arguments<'_>) -> Error {
        let _ = LAST.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                slot.set(args);
                slot.pending = Some(e);
            }
        });
        e
    }

    /// At the C boundary, after a call failed with `e`: keep the sentence recorded for it
    /// during the call, or else the status's own sentence.
    #[cold]
    pub(crate) fn finish(e: Error) {
        let _ = LAST.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                if slot.pending != Some(e) {
                    slot.set(format_args!("{}", e.message()));
                }
                slot.pending = None;
            }
        });
    }

    /// The last sentence, NUL-terminated, valid until the next failed call on this
    /// thread (or the thread's end); "no call has failed on this thread" before any.
    pub(crate) fn c_message() -> *const core::ffi::c_char {
        LAST.try_with(|slot| match slot.try_borrow() {
            Ok(slot) if slot.len > 0 => slot.bytes.as_ptr() as *const core::ffi::c_char,
            _ => c"no call has failed on this thread".as_ptr(),
        })
        .unwrap_or(c"no call has failed on this thread".as_ptr())
    }
}

#[cfg(not(feature = "std"))]
mod program {
    use core::fmt;
    use core::sync::atomic::{AtomicU8, Ordering};

    use crate::Error;

    /// 0 before any failure, else 1 + the error's index in `Error::ALL`.
    static LAST: AtomicU8 = AtomicU8::new(0);

    /// Return `e` (the sentence is not kept without `std`).
    #[inline]
    pub(crate) fn fail(e: Error, _args: fmt::Arguments<'_>) -> Error {
        e
    }

    /// At the C boundary, after a call failed with `e`: keep `e`.
    #[cold]
    pub(crate) fn finish(e: Error) {
        if let Some(i) = Error::ALL.iter().position(|&a| a == e) {
            LAST.store(i as u8 + 1, Ordering::Relaxed);
        }
    }

    /// The static sentence of the last failed call's error (in the whole program).
    pub(crate) fn c_message() -> *const core::ffi::c_char {
        match LAST.load(Ordering::Relaxed) {
            0 => c"no call has failed".as_ptr(),
            i => Error::ALL[usize::from(i) - 1].c_message().as_ptr(),
        }
    }
}

/// `fail` with a format string: `return Err(refuse!(InvalidArgument, "n = {n} ..."))`.
macro_rules! refuse {
    ($kind:ident, $($arg:tt)+) => {
        $crate::last_error::fail($crate::Error::$kind, format_args!($($arg)+))
    };
}
pub(crate) use refuse;

#[cfg(test)]
mod tests {
    use super::per_thread::CAP;
    use super::*;
    use crate::Error;

    fn last() -> String {
        // SAFETY: c_message returns a NUL-terminated string that lives as long as the
        // thread's slot, and nothing records on this thread while it is read.
        unsafe { core::ffi::CStr::from_ptr(c_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_recorded_sentence_is_kept_only_for_its_own_error() {
        assert_eq!(last(), "no call has failed on this thread");
        let e = refuse!(InvalidArgument, "n = {} must be >= 1", 0);
        finish(e);
        assert_eq!(last(), "n = 0 must be >= 1");
        // A different error at the boundary: the status's own sentence.
        let _ = refuse!(InvalidConfig, "config.n_inputs = 0 must be >= 1");
        finish(Error::BadCheckpoint);
        assert_eq!(last(), Error::BadCheckpoint.message());
        // Nothing recorded: the status's sentence.
        finish(Error::NoForward);
        assert_eq!(last(), Error::NoForward.message());
    }

    #[test]
    fn long_sentences_are_cut_at_a_character() {
        let long = "é".repeat(CAP);
        finish(fail(Error::InvalidArgument, format_args!("{long}")));
        let s = last();
        assert!(s.len() < CAP && s.len() >= CAP - 2, "{}", s.len());
        assert!(s.chars().all(|c| c == 'é'));
    }
}
