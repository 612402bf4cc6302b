//! The C API as C and C++ users meet it: compile the programs in `ffi-tests/` and
//! `examples/c/` against the static library that `cargo test` builds
//! (`target/<profile>/libflowmlp.a`), run them, and fail with their output when they
//! fail. Compilers: `$CC` (default `cc`) and `$CXX` (default `c++`). The C API test is
//! built with `-fsanitize=address,undefined` when the C compiler supports it.
//!
//! Cross runs (`scripts/test-aarch64.sh`): `$CC`/`$CXX` name the cross compilers (with
//! `-static`), and `$FLOWMLP_TEST_RUNNER` (whitespace-separated words, e.g.
//! `qemu-aarch64`) is the command the built programs run under.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{command_from_env as compiler, run};
use std::sync::OnceLock;

/// Libraries a Rust staticlib needs, as `cargo rustc --lib --crate-type staticlib --
/// --print native-static-libs` reports them for this crate.
#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];
/// The same for a build with `-C target-feature=+crt-static` (the aarch64 cross run,
/// whose programs are linked with `-static`): libgcc's static unwinder, no libgcc_s.
#[cfg(all(target_os = "linux", target_feature = "crt-static"))]
const NATIVE_LIBS: &[&str] = &[
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
    "-lgcc_eh",
    "-lgcc",
    "-lc",
];
#[cfg(target_os = "macos")]
const NATIVE_LIBS: &[&str] = &["-lSystem", "-lc", "-lm"];
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
const NATIVE_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"];
const SANITIZE: &[&str] = &[
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The static library of this build. This test runs as `target/<profile>/deps/ffi_c-*`;
/// `cargo test` writes the library it builds (crate types rlib, cdylib and staticlib in
/// one rustc call) next to it, into `deps/`, and only `cargo build` copies it up to
/// `target/<profile>/libflowmlp.a`, which can therefore be stale: prefer `deps/`.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe
        .parent()
        .expect("the test executable lives in target/<profile>/deps");
    let candidates = [
        deps.join("libflowmlp.a"),
        deps.parent().unwrap_or(deps).join("libflowmlp.a"),
    ];
    let found = candidates.iter().find(|p| p.is_file());
    found.cloned().unwrap_or_else(|| {
        panic!(
            "static library libflowmlp.a not found at {} or {}: cargo builds it because \
             Cargo.toml lists crate-type \"staticlib\"; check [lib] crate-type",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// A directory for one program's build outputs, per profile.
fn out_dir(name: &str) -> PathBuf {
    let dir = common::build_dir("ffi_c").join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A command running the built program `exe`: under `$FLOWMLP_TEST_RUNNER` (an
/// emulator and its arguments) when that is set, else directly.
fn program(exe: &Path) -> Command {
    let runner = compiler("FLOWMLP_TEST_RUNNER", "");
    match runner.split_first() {
        Some((first, args)) if !first.is_empty() => {
            let mut cmd = Command::new(first);
            cmd.args(args).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    }
}

/// The sanitizer flags when `$CC` can build and run a program with them, else none.
fn sanitizer_flags() -> &'static [&'static str] {
    static FLAGS: OnceLock<&'static [&'static str]> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let dir = out_dir("sanitizer-probe");
        let (src, exe) = (dir.join("probe.c"), dir.join("probe"));
        std::fs::write(&src, "int main(void) { return 0; }\n").expect("writing the probe");
        let cc = compiler("CC", "cc");
        let built = Command::new(&cc[0])
            .args(&cc[1..])
            .args(SANITIZE)
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
            .is_ok_and(|o| o.status.success());
        if built && program(&exe).output().is_ok_and(|o| o.status.success()) {
            SANITIZE
        } else if let Ok(why) = std::env::var("FLOWMLP_WITHOUT_SANITIZERS") {
            // A run that states why it has no sanitizers (the static aarch64 cross
            // build, scripts/test-aarch64.sh) is not a silent skip.
            common::say_skipped(&format!(
                "the C programs' sanitizer build: FLOWMLP_WITHOUT_SANITIZERS={why}"
            ));
            &[]
        } else {
            assert!(
                !common::tools_required(),
                "{} cannot build and run a program with {SANITIZE:?} (CI=true or \
                 FLOWMLP_REQUIRE_TOOLS=1 requires the sanitizers; Debian/Ubuntu: gcc \
                 brings libasan and libubsan)",
                cc[0]
            );
            common::say_skipped(&format!(
                "the C programs' sanitizer build: {} cannot build with {SANITIZE:?}; \
                 they run without it",
                cc[0]
            ));
            &[]
        }
    })
}

/// Compile `source` (relative to the crate root) with `compiler` and `flags` and link
/// the static library; returns the executable.
fn build(name: &str, compiler: &[String], flags: &[&str], source: &str) -> PathBuf {
    let lib = static_lib();
    let exe = out_dir(name).join(name);
    let _ = std::fs::remove_file(&exe);
    run(
        &format!("compiling {source}"),
        Command::new(&compiler[0])
            .args(&compiler[1..])
            .args(flags)
            .arg(format!(
                "-DFLOWMLP_EXPECTED_VERSION=\"{}\"",
                env!("CARGO_PKG_VERSION")
            ))
            .arg("-I")
            .arg(root().join("include"))
            .arg("-I")
            .arg(root().join("ffi-tests"))
            .arg(root().join(source))
            .arg(&lib)
            .args(NATIVE_LIBS)
            .arg("-o")
            .arg(&exe),
    );
    exe
}

/// Run a built program with `FLOWMLP_ISA` set to `isa` (unset for `None`); its stdout.
fn run_program(exe: &Path, isa: Option<&str>) -> String {
    let mut cmd = program(exe);
    cmd.current_dir(exe.parent().expect("the program's directory"))
        .env("UBSAN_OPTIONS", "print_stacktrace=1");
    match isa {
        Some(isa) => cmd.env("FLOWMLP_ISA", isa),
        None => cmd.env_remove("FLOWMLP_ISA"),
    };
    run(
        &format!("running {} with FLOWMLP_ISA={isa:?}", exe.display()),
        &mut cmd,
    )
}

/// Which compiler a program takes.
#[derive(Clone, Copy)]
enum Lang {
    C,
    Cxx,
}

/// Which kernel sets a program runs on (through `FLOWMLP_ISA`, which steers
/// `FLOWMLP_ISA_AUTO`).
#[derive(Clone, Copy)]
enum Sets {
    /// `FLOWMLP_ISA` unset: the best set.
    Best,
    /// The best set, then each set this machine runs by name (`common::isas`, which
    /// fails a run that lacks a set `FLOWMLP_REQUIRE_ISA` names).
    Every,
}

impl Sets {
    fn values(self) -> Vec<Option<&'static str>> {
        let mut v = vec![None];
        if let Sets::Every = self {
            v.extend(common::isas().into_iter().map(|isa| Some(isa.name())));
        }
        v
    }
}

/// Build `source` with the strict flags of its language (plus `extra`) and the
/// sanitizers where available (also so that it links against the instrumented library
/// of scripts/asan.sh), run it on the kernel sets `sets` names, and check that its
/// output contains `expect`.
fn build_and_run(name: &str, lang: Lang, extra: &[&str], source: &str, sets: Sets, expect: &str) {
    let (compiler, strict) = match lang {
        Lang::C => (compiler("CC", "cc"), C_FLAGS),
        Lang::Cxx => match common::cxx_compiler(&format!("{source} (C++)")) {
            Some(cxx) => (cxx, CXX_FLAGS),
            None => return,
        },
    };
    let flags: Vec<&str> = strict
        .iter()
        .chain(extra)
        .chain(sanitizer_flags())
        .copied()
        .collect();
    let exe = build(name, &compiler, &flags, source);
    for isa in sets.values() {
        let out = run_program(&exe, isa);
        assert!(
            out.contains(expect),
            "{source} (FLOWMLP_ISA={isa:?}) printed no {expect:?}:\n{out}"
        );
    }
}

const PASSED: &str = " checks, 0 failed";

#[test]
fn c_api_test_program_passes() {
    build_and_run(
        "test_api",
        Lang::C,
        &[],
        "ffi-tests/test_api.c",
        Sets::Every,
        PASSED,
    );
}

#[test]
fn header_compiles_and_links_as_cpp17() {
    build_and_run(
        "smoke",
        Lang::Cxx,
        &[],
        "ffi-tests/smoke.cpp",
        Sets::Best,
        PASSED,
    );
}

#[test]
fn c_online_example_learns() {
    build_and_run(
        "online",
        Lang::C,
        &["-O2"],
        "examples/c/online.c",
        Sets::Best,
        "final running loss",
    );
}

#[test]
fn c_hardening_test_program_passes() {
    build_and_run(
        "test_hardening",
        Lang::C,
        &[],
        "ffi-tests/test_hardening.c",
        Sets::Every,
        PASSED,
    );
}

#[test]
fn c_optimizer_test_program_passes() {
    build_and_run(
        "test_optim",
        Lang::C,
        &[],
        "ffi-tests/test_optim.c",
        Sets::Every,
        PASSED,
    );
}

#[test]
fn c_threads_test_program_passes() {
    build_and_run(
        "test_threads",
        Lang::C,
        &[],
        "ffi-tests/test_threads.c",
        Sets::Every,
        PASSED,
    );
}

#[test]
fn c_graph_dot_test_program_passes() {
    build_and_run(
        "test_graph",
        Lang::C,
        &[],
        "ffi-tests/test_graph.c",
        Sets::Best,
        PASSED,
    );
}

/// `include/flowmlp.hpp` as C++17 (both method families, eight predicting threads).
#[test]
fn cpp_wrapper_test_program_passes() {
    build_and_run(
        "test_cpp",
        Lang::Cxx,
        &[],
        "ffi-tests/test_cpp.cpp",
        Sets::Every,
        PASSED,
    );
}

/// The wrapper without exceptions (only the try_ family), as C++20 so that std::span
/// is passed directly. Skipped, with a note, when `$CXX` does not accept `-std=c++20`
/// (a failure where tools are required).
#[test]
fn cpp_wrapper_without_exceptions_as_cpp20() {
    let Some(cxx) = common::cxx_compiler("ffi-tests/test_cpp.cpp as C++20") else {
        return;
    };
    let dir = out_dir("cxx20-probe");
    let src = dir.join("probe.cpp");
    std::fs::write(&src, "#include <span>\nint main() { return 0; }\n").expect("writing the probe");
    let probe = Command::new(&cxx[0])
        .args(&cxx[1..])
        .args(["-std=c++20", "-fsyntax-only"])
        .arg(&src)
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            !common::tools_required(),
            "{} does not accept -std=c++20 with <span> (CI=true or FLOWMLP_REQUIRE_TOOLS=1 \
             requires it: g++ 10 or later)",
            cxx[0]
        );
        common::say_skipped(&format!(
            "ffi-tests/test_cpp.cpp as C++20: {} does not accept -std=c++20 with <span>",
            cxx[0]
        ));
        return;
    }
    let flags: Vec<&str> = [
        "-std=c++20",
        "-fno-exceptions",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ]
    .iter()
    .chain(sanitizer_flags())
    .copied()
    .collect();
    let exe = build("test_cpp20", &cxx, &flags, "ffi-tests/test_cpp.cpp");
    let out = run_program(&exe, None);
    assert!(
        out.contains("std::span overloads exercised")
            && out.contains("the try_ family only")
            && out.contains(" checks, 0 failed"),
        "ffi-tests/test_cpp.cpp as C++20 without exceptions:\n{out}"
    );
}

#[test]
fn cpp_example_fits_the_sine() {
    build_and_run(
        "fit_sine",
        Lang::Cxx,
        &["-O2"],
        "examples/cpp/fit_sine.cpp",
        Sets::Best,
        "largest error on the grid",
    );
}

/// `include/flowmlp.h` as a microcontroller's freestanding C99 compiler takes it:
/// `-std=c99 -pedantic-errors -ffreestanding`, every warning an error, and block
/// comments only (no `//` documentation lines).
#[test]
fn header_is_freestanding_c99() {
    let header = std::fs::read_to_string(root().join("include/flowmlp.h")).unwrap();
    let line_comments: Vec<&str> = header
        .lines()
        .filter(|l| l.trim_start().starts_with("//"))
        .collect();
    assert!(
        line_comments.is_empty(),
        "include/flowmlp.h has // comments: {line_comments:?}"
    );
    let dir = out_dir("freestanding");
    let src = dir.join("include_only.c");
    std::fs::write(
        &src,
        "#include \"flowmlp.h\"\nint flowmlp_header_only(void) { return FLOWMLP_OK; }\n",
    )
    .unwrap();
    let cc = compiler("CC", "cc");
    run(
        "compiling include/flowmlp.h freestanding",
        Command::new(&cc[0])
            .args(&cc[1..])
            .args([
                "-std=c99",
                "-pedantic-errors",
                "-ffreestanding",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(root().join("include"))
            .arg(&src),
    );
}
