//! Regenerates `include/flowmlp.h` from the `extern "C"` items in `src/ffi` with
//! cbindgen, writing it only when its content changes (so builds stay incremental).
//! The header is committed; `tests/header.rs` fails when the committed copy is stale.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    // The shared library's SONAME, so that programs linked against it record
    // libflowmlp.so.0 (scripts/install.sh installs the usual symlinks).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libflowmlp.so.0");
    }
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let bindings = match cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            // A half-edited source must not break the build of everything else.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("flowmlp.h");
    std::fs::write(&out, &fresh).expect("OUT_DIR is writable");
    let target = root.join("include").join("flowmlp.h");
    if std::fs::read(&target).ok().as_deref() != Some(&fresh[..]) {
        std::fs::create_dir_all(root.join("include")).expect("include/ can be created");
        std::fs::write(&target, &fresh).expect("include/flowmlp.h is writable");
    }
}
