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
# All targets are built once (cargo fuzz build: ASan, debug assertions), then each
# binary runs on its own, one process on one core. New corpus entries go to a
# temporary copy, so a run adds nothing to the repository; a crashing input is kept
# in fuzz/artifacts/<target>/ (ignored by git) and printed.
# Prints one line per target:
#   fuzz <target>: N executions in S s (E/s), cov C, ft F, corpus K inputs, ok
# where cov and ft are libFuzzer's coverage counters from its final status line
# (cov: edges covered; ft: features, edges with hit-count buckets and more).
# The seed corpus is written by `cargo run --release --example seeds` in fuzz/.
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

# One build for every target asked for (cargo fuzz build builds them all, or the one
# named); the runs below use these binaries, so nothing rebuilds between targets.
echo "==> building ${targets[*]}"
if [ ${#targets[@]} -eq 1 ]; then
    cargo +nightly fuzz build "${targets[0]}"
else
    cargo +nightly fuzz build
fi
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir="target/$triple/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
summary=()
for t in "${targets[@]}"; do
    seeds="corpus/$t"
    [ -x "$bin_dir/$t" ] || die "no fuzz target $t (built: $(cargo +nightly fuzz list | tr '\n' ' '))"
    ls "$seeds"/seed* >/dev/null 2>&1 || die "no seed corpus in fuzz/$seeds"
    mkdir -p "$work/$t" "artifacts/$t"
    cp "$seeds"/seed* "$work/$t/"
    echo "==> fuzzing $t for ${SECONDS_PER_TARGET}s"
    log="$work/$t.log"
    set +e
    "$bin_dir/$t" "$work/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    # The last status line ("#N DONE cov: C ft: F corp: ..." after a full run).
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | grep -E ' cov: [0-9]+ ft: [0-9]+' | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")
    corpus=$(find "$work/$t" -type f | wc -l)
    if [ $rc -ne 0 ]; then
        tail -60 "$log"
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; crashing inputs:"
        ls -l "artifacts/$t" || true
        if [ "$t" = api_calls ]; then
            echo "(to see the calls of an input: API_CALLS_TRACE=1 fuzz/$bin_dir/api_calls FILE)"
        fi
        summary+=("fuzz $t: FAILED after ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}")
        status=1
    else
        [ -z "$last" ] || echo "$last"
        summary+=("fuzz $t: ${execs:-?} executions in ${SECONDS_PER_TARGET} s (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus $corpus inputs, ok")
    fi
done
echo
printf '%s\n' "${summary[@]}"
exit $status
