//! The committed `include/flowmlp.h` must be what cbindgen generates from the
//! current source (build.rs writes a fresh copy into OUT_DIR on every build).

#[test]
fn committed_header_is_fresh() {
    let fresh = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/flowmlp.h"))
        .expect("build.rs writes OUT_DIR/flowmlp.h");
    let root = env!("CARGO_MANIFEST_DIR");
    // build.rs also rewrites include/flowmlp.h when it is stale, so compare with what
    // git has (the index, i.e. what is committed or staged) where a checkout exists.
    let committed = std::process::Command::new("git")
        .args(["-C", root, "show", ":include/flowmlp.h"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let committed = match committed {
        Some(c) => c,
        None => {
            eprintln!("not a git checkout: comparing with include/flowmlp.h on disk");
            std::fs::read_to_string(format!("{root}/include/flowmlp.h"))
                .expect("include/flowmlp.h exists")
        }
    };
    assert!(
        committed == fresh,
        "include/flowmlp.h is stale: build.rs regenerated it; review and commit the new header"
    );
}
