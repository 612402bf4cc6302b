//! `scripts/install.sh` as a C programmer meets it: install into a temporary prefix
//! (from the libraries this `cargo test` built, via `FLOWMLP_LIB_DIR`, so no nested
//! cargo build), check the files, the symlinks and the SONAME (`readelf -d`), then
//! build and run `examples/c/online.c` with `pkg-config --cflags --libs flowmlp` (and
//! `flowmlp-static`), and with a tiny CMake project using `find_package(flowmlp)`
//! (`flowmlp::flowmlp`, `flowmlp::flowmlp_static`, and the C++ example).
//!
//! Uses `pkg-config`, `cmake`, a C++ compiler and `readelf` (binutils), all optional:
//! without one, the checks that need it are skipped with a line saying what to
//! install; under CI (`CI=true`, or `FLOWMLP_REQUIRE_TOOLS=1`) a missing tool fails.
//!
//! Installing is a host operation: cross runs (`scripts/test-aarch64.sh`, built with
//! `+crt-static` and run under `$FLOWMLP_TEST_RUNNER`) leave this test out.
#![cfg(all(target_os = "linux", not(target_feature = "crt-static")))]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{command_from_env as compiler, run};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The SONAME build.rs gives the shared library: major.minor while the major version
/// is 0 (a new 0.x minor version may change the ABI), the major version from 1.0 on.
const SONAME: &str = if matches!(env!("CARGO_PKG_VERSION_MAJOR").as_bytes(), b"0") {
    concat!(
        "libflowmlp.so.",
        env!("CARGO_PKG_VERSION_MAJOR"),
        ".",
        env!("CARGO_PKG_VERSION_MINOR")
    )
} else {
    concat!("libflowmlp.so.", env!("CARGO_PKG_VERSION_MAJOR"))
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the libflowmlp.a and libflowmlp.so of this build (see
/// tests/ffi_c.rs: `cargo test` writes them to `target/<profile>/deps`).
fn built_libs() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("target/<profile>/deps").to_path_buf();
    for dir in [deps.clone(), deps.parent().unwrap_or(&deps).to_path_buf()] {
        if dir.join("libflowmlp.a").is_file() && dir.join("libflowmlp.so").is_file() {
            return dir;
        }
    }
    panic!(
        "libflowmlp.a and libflowmlp.so not found in {} or its parent: Cargo.toml's \
         [lib] crate-type must list staticlib and cdylib",
        deps.display()
    );
}

/// Whether the library was built with a sanitizer (`-Zsanitizer=address`, as
/// scripts/asan.sh does): its code then calls the ASan runtime.
fn instrumented(lib: &Path) -> bool {
    let bytes = std::fs::read(lib).unwrap_or_else(|e| panic!("reading {}: {e}", lib.display()));
    let needle = b"__asan_report_";
    bytes.windows(needle.len()).any(|w| w == needle)
}

fn work_dir() -> PathBuf {
    // Fresh for every run: the install tree must come from this build only.
    let dir = common::build_dir("install");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Whether `tool` runs; when it does not, the checks that need it are skipped with a
/// line saying so (or fail where tools are required: `CI=true`, see
/// `common::tools_required`).
fn have(tool: &str, version_arg: &str, package: &str, what: &str) -> bool {
    common::optional_tool(&[tool.to_string()], version_arg, package, what)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn readelf_dynamic(path: &Path) -> String {
    run("readelf -d", Command::new("readelf").arg("-d").arg(path))
}

/// Run a program built against the installed library; `ld_path` adds PREFIX/lib to
/// the loader's path (pkg-config builds carry no RPATH; CMake builds do).
fn run_example(what: &str, exe: &Path, ld_path: Option<&Path>) -> String {
    let mut cmd = Command::new(exe);
    cmd.current_dir(exe.parent().expect("the program's directory"))
        .env_remove("LD_LIBRARY_PATH");
    if let Some(p) = ld_path {
        cmd.env("LD_LIBRARY_PATH", p);
    }
    run(what, &mut cmd)
}

#[test]
fn install_then_build_with_pkg_config_and_cmake() {
    if std::env::var_os("FLOWMLP_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        eprintln!("SKIPPED: a cross run (FLOWMLP_TEST_RUNNER is set); install is a host step");
        return;
    }
    let libs = built_libs();
    if instrumented(&libs.join("libflowmlp.a")) {
        eprintln!(
            "SKIPPED: libflowmlp is built with AddressSanitizer (scripts/asan.sh); \
             programs linked against it without -fsanitize cannot link"
        );
        return;
    }
    let work = work_dir();
    let prefix = work.join("prefix");
    let lib = prefix.join("lib");
    let out = run(
        "scripts/install.sh",
        Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .arg(&prefix)
            .env("FLOWMLP_LIB_DIR", &libs)
            .env_remove("DESTDIR")
            .env_remove("LIBDIR"),
    );
    print!("{out}");

    // The files, the symlinks, the headers as in the repository.
    for f in ["libflowmlp.a", &format!("libflowmlp.so.{VERSION}")] {
        assert!(lib.join(f).is_file(), "{f} not installed");
    }
    let link = |name: &str| {
        std::fs::read_link(lib.join(name))
            .unwrap_or_else(|e| panic!("{name} is not a symlink: {e}"))
    };
    assert_eq!(
        link(SONAME),
        PathBuf::from(format!("libflowmlp.so.{VERSION}"))
    );
    assert_eq!(link("libflowmlp.so"), PathBuf::from(SONAME));
    for h in ["flowmlp.h", "flowmlp.hpp"] {
        let installed = std::fs::read(prefix.join("include").join(h)).unwrap();
        let source = std::fs::read(root().join("include").join(h)).unwrap();
        assert!(
            installed == source,
            "installed {h} differs from include/{h}"
        );
    }
    for f in [
        "pkgconfig/flowmlp.pc",
        "pkgconfig/flowmlp-static.pc",
        "cmake/flowmlp/flowmlpConfig.cmake",
        "cmake/flowmlp/flowmlpConfigVersion.cmake",
    ] {
        assert!(lib.join(f).is_file(), "{f} not installed");
    }
    let pc = std::fs::read_to_string(lib.join("pkgconfig/flowmlp.pc")).unwrap();
    assert!(pc.contains(&format!("Version: {VERSION}\n")), "{pc}");
    assert!(
        pc.contains("Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc\n"),
        "{pc}"
    );

    let readelf = have(
        "readelf",
        "--version",
        "binutils",
        "the SONAME checks of the installed library",
    );
    if readelf {
        let dynamic = readelf_dynamic(&lib.join(format!("libflowmlp.so.{VERSION}")));
        assert!(
            dynamic.contains(&format!("Library soname: [{SONAME}]")),
            "the installed shared library has no SONAME {SONAME}:\n{dynamic}"
        );
    }

    let cc = compiler("CC", "cc");
    let online = root().join("examples/c/online.c");

    // pkg-config, shared: the program records the SONAME and runs with the library
    // found through LD_LIBRARY_PATH.
    if have(
        "pkg-config",
        "--version",
        "pkg-config",
        "building examples/c/online.c against the installed library with pkg-config",
    ) {
        let pkg_config = |args: &[&str]| {
            let mut cmd = Command::new("pkg-config");
            cmd.args(args)
                .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
                .env_remove("PKG_CONFIG_LIBDIR")
                .env_remove("PKG_CONFIG_SYSROOT_DIR");
            run("pkg-config", &mut cmd)
        };
        assert_eq!(pkg_config(&["--modversion", "flowmlp"]).trim(), VERSION);
        let flags = words(&pkg_config(&["--cflags", "--libs", "flowmlp"]));
        let exe = work.join("online_pkgconfig");
        run(
            "building online.c with pkg-config --cflags --libs flowmlp",
            Command::new(&cc[0])
                .args(&cc[1..])
                .args([
                    "-std=c99",
                    "-O2",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-pedantic",
                ])
                .arg(&online)
                .args(&flags)
                .arg("-lm") // online.c's own sinf
                .arg("-o")
                .arg(&exe),
        );
        if readelf {
            let dynamic = readelf_dynamic(&exe);
            assert!(
                dynamic.contains(&format!("Shared library: [{SONAME}]")),
                "the pkg-config build does not record NEEDED {SONAME}:\n{dynamic}"
            );
        }
        let out = run_example("online (pkg-config, shared)", &exe, Some(&lib));
        assert!(out.contains("final running loss"), "{out}");

        // pkg-config, static: nothing to find at run time.
        let flags = words(&pkg_config(&["--cflags", "--libs", "flowmlp-static"]));
        let exe = work.join("online_pkgconfig_static");
        run(
            "building online.c with pkg-config --cflags --libs flowmlp-static",
            Command::new(&cc[0])
                .args(&cc[1..])
                .args(["-std=c99", "-O2"])
                .arg(&online)
                .args(&flags)
                .arg("-o")
                .arg(&exe),
        );
        if readelf {
            let dynamic = readelf_dynamic(&exe);
            assert!(!dynamic.contains("libflowmlp"), "{dynamic}");
        }
        let out = run_example("online (pkg-config, static)", &exe, None);
        assert!(out.contains("final running loss"), "{out}");
    }

    // CMake: find_package(flowmlp 0.1) with both targets, C and C++; an incompatible
    // version request is refused. The shared builds run through CMake's build RPATH.
    let what = "building examples/c/online.c and examples/cpp/fit_sine.cpp with CMake's \
                find_package(flowmlp)";
    if have("cmake", "--version", "cmake", what) && common::cxx_compiler(what).is_some() {
        let project = work.join("consumer");
        std::fs::create_dir_all(&project).unwrap();
        let examples = root().join("examples");
        std::fs::write(
            project.join("CMakeLists.txt"),
            format!(
                r#"cmake_minimum_required(VERSION 3.13)
project(flowmlp_consumer LANGUAGES C CXX)

find_package(flowmlp 0.2 QUIET)   # 0.x: another minor version is another ABI
if(flowmlp_FOUND)
  message(FATAL_ERROR "find_package(flowmlp 0.2) accepted flowmlp ${{flowmlp_VERSION}}")
endif()
find_package(flowmlp 0.1 REQUIRED)
message(STATUS "flowmlp ${{flowmlp_VERSION}} from ${{flowmlp_DIR}}")

add_executable(online "{examples}/c/online.c")
target_link_libraries(online PRIVATE flowmlp::flowmlp m)   # m: online.c's own sinf

add_executable(online_static "{examples}/c/online.c")
target_link_libraries(online_static PRIVATE flowmlp::flowmlp_static)

add_executable(fit_sine "{examples}/cpp/fit_sine.cpp")
target_compile_features(fit_sine PRIVATE cxx_std_17)
target_link_libraries(fit_sine PRIVATE flowmlp::flowmlp)
"#,
                examples = examples.display()
            ),
        )
        .unwrap();
        let build = work.join("consumer-build");
        let cxx = compiler("CXX", "c++");
        run(
            "cmake configure",
            Command::new("cmake")
                .arg("-S")
                .arg(&project)
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg(format!("-DCMAKE_C_COMPILER={}", cc[0]))
                .arg(format!("-DCMAKE_CXX_COMPILER={}", cxx[0]))
                .arg("-DCMAKE_BUILD_TYPE=Release"),
        );
        run(
            "cmake build",
            Command::new("cmake")
                .arg("--build")
                .arg(&build)
                .args(["--parallel", "2"]),
        );
        if readelf {
            let dynamic = readelf_dynamic(&build.join("online"));
            assert!(
                dynamic.contains(&format!("Shared library: [{SONAME}]")),
                "the CMake build does not record NEEDED {SONAME}:\n{dynamic}"
            );
        }
        for (name, want) in [
            ("online", "final running loss"),
            ("online_static", "final running loss"),
            ("fit_sine", "largest error on the grid"),
        ] {
            let out = run_example(&format!("{name} (CMake)"), &build.join(name), None);
            assert!(out.contains(want), "{name}: {out}");
        }
    }
}

/// The README's two links against the build tree, without installing: the static
/// library by path with the system libraries `--print native-static-libs` names (also
/// made small with `--gc-sections`), and the shared library with `-L -lflowmlp`, which
/// starts once `libflowmlp.so.<SONAME version>` links to it, as the README says.
#[test]
fn build_tree_links_as_the_readme_says() {
    let libs = built_libs();
    if instrumented(&libs.join("libflowmlp.a")) {
        eprintln!("SKIPPED: libflowmlp is built with AddressSanitizer (scripts/asan.sh)");
        return;
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let native = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";
    assert!(
        readme.contains(&format!("libflowmlp.a {native}")),
        "the README's static link line is not `libflowmlp.a {native}`"
    );
    let link_line = format!("ln -sf libflowmlp.so target/release/{SONAME}");
    assert!(
        readme.contains(&link_line),
        "the README does not show `{link_line}`"
    );
    let work = common::build_dir("build-tree");
    let cc = compiler("CC", "cc");
    let online = root().join("examples/c/online.c");
    let include = root().join("include");

    // Static, by path, then small.
    for (name, extra) in [
        ("online_static", &[][..]),
        ("online_small", &["-Wl,--gc-sections", "-s"][..]),
    ] {
        let exe = work.join(name);
        run(
            &format!("linking {name} against libflowmlp.a"),
            Command::new(&cc[0])
                .args(&cc[1..])
                .args([
                    "-std=c99",
                    "-O2",
                    "-ffunction-sections",
                    "-fdata-sections",
                    "-I",
                ])
                .arg(&include)
                .arg(&online)
                .arg(libs.join("libflowmlp.a"))
                .args(words(native))
                .args(extra)
                .arg("-o")
                .arg(&exe),
        );
        let out = run_example(name, &exe, None);
        assert!(out.contains("final running loss"), "{out}");
        let size = std::fs::metadata(&exe).unwrap().len();
        println!("{name}: {size} bytes");
    }

    // Shared: a copy of the build tree's library directory, as target/release is.
    let tree = work.join("release");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(libs.join("libflowmlp.so"), tree.join("libflowmlp.so")).unwrap();
    std::os::unix::fs::symlink("libflowmlp.so", tree.join(SONAME)).unwrap();
    let exe = work.join("online_shared");
    run(
        "linking online.c with -L -lflowmlp",
        Command::new(&cc[0])
            .args(&cc[1..])
            .args(["-std=c99", "-O2", "-I"])
            .arg(&include)
            .arg(&online)
            .arg("-L")
            .arg(&tree)
            .args(["-lflowmlp", "-lm", "-o"])
            .arg(&exe),
    );
    let out = run_example("online (build tree, shared)", &exe, Some(&tree));
    assert!(out.contains("final running loss"), "{out}");
}
