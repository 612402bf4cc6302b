//! Links the shared library with its SONAME. With the `header` feature (maintainers
//! only), also regenerates `include/flowmlp.h` from the `extern "C"` items in
//! `src/ffi` with cbindgen, writing it only when its content changes; the header is
//! committed, and `tests/header.rs` fails when the committed copy is stale.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The shared library's SONAME, recorded by the programs linked against it
    // (scripts/install.sh installs the usual symlinks). It names the versions that
    // keep the ABI: the major version from 1.0 on, and major.minor before (0.1.x and
    // 0.2.x may differ, as Cargo's own compatibility rules say).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
        let minor = std::env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets it");
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libflowmlp.so.{abi}");
    }
    #[cfg(feature = "header")]
    write_header();
}

#[cfg(feature = "header")]
fn write_header() {
    use std::path::PathBuf;
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
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
    let target = root.join("include").join("flowmlp.h");
    if std::fs::read(&target).ok().as_deref() != Some(&fresh[..]) {
        std::fs::create_dir_all(root.join("include")).expect("include/ can be created");
        std::fs::write(&target, &fresh).expect("include/flowmlp.h is writable");
    }
}
