//! The kernel sets by name, which of them this CPU runs, and which one a model gets:
//! `FLOWMLP_ISA` and the best supported set, each decided once per process.
//!
//! Without `std` there is no run-time probe and no environment: a set is supported
//! when the build targets it (`cfg!(target_feature = ...)`: `-C
//! target-feature=+avx2,+fma` or `+avx512f`, or a `target-cpu` that has them; NEON is
//! on by default for aarch64 targets), which is sound on any CPU the binary runs on
//! and needs nothing from the operating system (on bare-metal x86 the firmware must
//! have enabled the AVX state it compiled for).
//!
//! A leaf: the kernels build their tables on this, and the configuration names it.

use crate::last_error::refuse;
use crate::Error;

/// A kernel set. `Auto` picks the best the running CPU supports, unless the
/// environment variable `FLOWMLP_ISA` names one (`scalar`, `avx2`, `avx512`, `neon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum Isa {
    /// Best available (or `FLOWMLP_ISA`).
    #[default]
    Auto = 0,
    /// Plain Rust loops: the reference every other set is tested against.
    Scalar = 1,
    /// x86-64 AVX2 with FMA.
    Avx2 = 2,
    /// x86-64 AVX-512 (F, plus the subsets the kernels use).
    Avx512 = 3,
    /// aarch64 Advanced SIMD.
    Neon = 4,
}

impl Isa {
    /// Every concrete kernel set, best last.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The name used by `FLOWMLP_ISA` and `flowmlp_isa_name`.
    pub const fn name(self) -> &'static str {
        match self.c_name().to_str() {
            Ok(name) => name,
            Err(_) => panic!("ISA names are ASCII"),
        }
    }

    /// The name, NUL-terminated (the one spelling of each name).
    pub(crate) const fn c_name(self) -> &'static core::ffi::CStr {
        match self {
            Isa::Auto => c"auto",
            Isa::Scalar => c"scalar",
            Isa::Avx2 => c"avx2",
            Isa::Avx512 => c"avx512",
            Isa::Neon => c"neon",
        }
    }

    /// Parse a name as `FLOWMLP_ISA` spells it (case-insensitive).
    pub fn from_name(s: &str) -> Option<Isa> {
        let s = s.trim();
        [Isa::Auto, Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon]
            .into_iter()
            .find(|isa| s.eq_ignore_ascii_case(isa.name()))
    }

    /// Convert a value coming from C; out-of-range values are `None`, never UB.
    pub const fn from_u32(v: u32) -> Option<Isa> {
        Some(match v {
            0 => Isa::Auto,
            1 => Isa::Scalar,
            2 => Isa::Avx2,
            3 => Isa::Avx512,
            4 => Isa::Neon,
            _ => return None,
        })
    }

    /// Whether this CPU (and this build's target) can run the set. Feature detection
    /// is cached by the standard library. Without `std`: whether the build targets
    /// the set (see the module docs).
    #[cfg(feature = "std")]
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            _ => false,
        }
    }

    /// Whether this CPU (and this build's target) can run the set. Without `std`, the
    /// features the build targets decide (see the module docs).
    #[cfg(not(feature = "std"))]
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => cfg!(all(target_feature = "avx2", target_feature = "fma")),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => cfg!(target_feature = "avx512f"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => cfg!(target_feature = "neon"),
            _ => false,
        }
    }
}

/// The best set this CPU runs, detected once per process.
#[cfg(feature = "std")]
pub(crate) fn best() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find(|isa| isa.is_supported())
            .unwrap_or(Isa::Scalar)
    })
}

/// The best set this build targets (no run-time probe without `std`).
#[cfg(not(feature = "std"))]
pub(crate) fn best() -> Isa {
    [Isa::Avx512, Isa::Avx2, Isa::Neon]
        .into_iter()
        .find(|isa| isa.is_supported())
        .unwrap_or(Isa::Scalar)
}

/// `FLOWMLP_ISA`, read once per process: `None` when unset, empty or `auto`;
/// `Some(None)` when it names no kernel set.
#[cfg(feature = "std")]
fn env_request() -> Option<Option<Isa>> {
    static ENV: std::sync::OnceLock<Option<Option<Isa>>> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| {
        let v = std::env::var_os("FLOWMLP_ISA")?;
        let s = v.to_str().unwrap_or("?").trim();
        if s.is_empty() {
            return None;
        }
        match Isa::from_name(s) {
            Some(Isa::Auto) => None,
            other => Some(other),
        }
    })
}

/// No environment without `std`: `Auto` is the best set.
#[cfg(not(feature = "std"))]
fn env_request() -> Option<Option<Isa>> {
    None
}

/// The set a model asking for `requested` gets: `Auto` means `FLOWMLP_ISA` if set
/// (with `std`), else the best; refused with `UnsupportedIsa` when this CPU or build
/// lacks it.
pub(crate) fn resolve(requested: Isa) -> Result<Isa, Error> {
    let isa = match requested {
        Isa::Auto => match env_request() {
            None => return Ok(best()),
            Some(named) => named.ok_or_else(env_refused)?,
        },
        isa => isa,
    };
    if isa.is_supported() {
        Ok(isa)
    } else {
        Err(refuse!(
            UnsupportedIsa,
            "kernel set {} is not supported by this CPU or build (flowmlp_isa_supported)",
            isa.name()
        ))
    }
}

/// `FLOWMLP_ISA` names no kernel set.
#[cfg(feature = "std")]
#[cold]
fn env_refused() -> Error {
    let v = std::env::var_os("FLOWMLP_ISA").unwrap_or_default();
    refuse!(
        UnsupportedIsa,
        "FLOWMLP_ISA={} is not a kernel set: scalar, avx2, avx512, neon or auto",
        v.to_string_lossy()
    )
}

#[cfg(not(feature = "std"))]
fn env_refused() -> Error {
    Error::UnsupportedIsa
}
