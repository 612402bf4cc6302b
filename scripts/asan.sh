#!/usr/bin/env bash
# The Rust test suite under AddressSanitizer (and LeakSanitizer): nightly toolchain,
# -Zsanitizer=address, with an explicit --target so that the flag stays off build
# scripts and proc macros.
#
# The instrumented static library needs an ASan runtime in every C program linked
# with it: tests/ffi_c.rs builds ffi-tests/test_api.c and ffi-tests/test_hardening.c
# with -fsanitize=address,undefined, so those run (the C side under ASan too); the
# C++ header smoke test and examples/c/online.c are built without sanitizers and
# cannot link, so they are skipped here (scripts/valgrind.sh and the plain
# `cargo test` cover them).
#
# Usage: scripts/asan.sh [extra libtest args]. Exits non-zero on any failure or
# sanitizer report. Build outputs: $ASAN_TARGET_DIR (default target/asan).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

host=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=address ${RUSTDOCFLAGS:-}"
# Tests ask for arenas of 2^62 bytes on purpose: ASan must return NULL (as the system
# allocator does) rather than abort.
export ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export CARGO_TARGET_DIR=${ASAN_TARGET_DIR:-target/asan}
# committed_header_is_fresh runs cbindgen, not the library: it is left to the plain run.
cargo +nightly test --no-fail-fast --target "$host" -- \
    --skip header_compiles_and_links_as_cpp17 --skip c_online_example_learns \
    --skip committed_header_is_fresh "$@"
echo "asan: the test suite passed under AddressSanitizer"
