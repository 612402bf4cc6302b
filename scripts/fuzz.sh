#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in fuzz/ for a bounded time, starting from the
# committed seed corpus (fuzz/corpus/<target>/seed*); any crash, panic, leak or
# sanitizer report fails the script.
#
#   fuzz/fuzz_targets/checkpoint_load.rs  Model::load / flowmlp_load on arbitrary bytes
#   fuzz/fuzz_targets/api_calls.rs        random sequences of API calls, Rust and C
#
# Usage: scripts/fuzz.sh [target ...]        (default: every target)
# Environment: FUZZ_SECONDS (per target, default 60); CARGO_BUILD_JOBS limits build jobs.
# Needs the nightly toolchain (installed here); installs cargo-fuzz when missing.
# New corpus entries go to a temporary copy, so a run adds nothing to the repository;
# a crashing input is kept in fuzz/artifacts/<target>/ (ignored by git) and printed.
# Prints "fuzz <target>: N executions in S s, ok" per target.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
export PATH="$HOME/.cargo/bin:$PATH"
die() {
    printf 'fuzz: %s\n' "$*" >&2
    exit 1
}

rustup run nightly rustc --version >/dev/null 2>&1 || die "the nightly toolchain is needed"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets"

build_args=()
echo "==> building ${targets[*]}"
cargo +nightly fuzz build "${build_args[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for t in "${targets[@]}"; do
    seeds="corpus/$t"
    ls "$seeds"/seed* >/dev/null 2>&1 || die "no seed corpus in fuzz/$seeds"
    mkdir -p "$work/$t" "artifacts/$t"
    cp "$seeds"/seed* "$work/$t/"
    echo "==> fuzzing $t for ${SECONDS_PER_TARGET}s"
    log="$work/$t.log"
    set +e
    cargo +nightly fuzz run "${build_args[@]}" "$t" "$work/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        tail -60 "$log"
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; crashing inputs:"
        ls -l "artifacts/$t" || true
        summary+=("fuzz $t: FAILED after ${execs:-?} executions")
        status=1
    else
        grep -E '^#[0-9]+ +DONE' "$log" | tail -1 || true
        summary+=("fuzz $t: ${execs:-?} executions in ${SECONDS_PER_TARGET} s (${secs:-?}/s), corpus $(ls "$work/$t" | wc -l) inputs, ok")
    fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status
