//! The committed `include/flowmlp.h` must be what cbindgen generates from the current
//! source. The header is generated here, in memory, and compared with the file as
//! committed; nothing is written (`cargo build --features header` regenerates it).
#![cfg(not(miri))]

#[test]
fn committed_header_is_fresh() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header from src/ffi");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let committed = std::fs::read(root.join("include/flowmlp.h")).expect("include/flowmlp.h");
    assert!(
        committed == fresh,
        "include/flowmlp.h is stale: regenerate it with `cargo build --features header`, \
         review and commit it"
    );
}
