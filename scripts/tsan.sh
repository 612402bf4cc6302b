#!/usr/bin/env bash
# The threaded tests under ThreadSanitizer: nightly toolchain, -Zsanitizer=thread, the
# standard library rebuilt with it (-Zbuild-std, so that its atomics and thread
# handling are instrumented too), an explicit --target so that the flag stays off
# build scripts and proc macros.
#
# Runs: the lib unit tests that share every product among 2, 3, 4 and 8 threads
# (model::tests::every_thread_count..., a_panicking_worker..., set_threads...), the
# threaded integration tests (tests/threads.rs), the concurrent predictions
# (tests/predict.rs) and concurrent reads and models (tests/errors.rs).
#
# Usage: scripts/tsan.sh [extra libtest args]. Installs the nightly rust-src
# component when missing. Exits non-zero on any failure or race report. Build
# outputs: $TSAN_TARGET_DIR (default target/tsan).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

tc=${TSAN_TOOLCHAIN:-nightly}
rustup toolchain list | grep -q "^$tc" || rustup toolchain install "$tc" --profile minimal
rustup component list --toolchain "$tc" --installed | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain "$tc"
host=$(rustc +"$tc" -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=thread ${RUSTDOCFLAGS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export CARGO_TARGET_DIR=${TSAN_TARGET_DIR:-target/tsan}
run() {
    echo "+ cargo +$tc test -Zbuild-std --target $host $*"
    cargo +"$tc" test -Zbuild-std --target "$host" "$@"
}
run --lib -- model::tests::every_thread_count model::tests::a_panicking_worker \
    model::tests::set_threads "$@"
run --test threads -- "$@"
run --test predict -- "$@"
run --test errors -- concurrent distinct_models "$@"
echo "tsan: the threaded tests passed under ThreadSanitizer"
