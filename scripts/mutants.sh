#!/usr/bin/env bash
# Mutation testing with cargo-mutants: each mutant (an operator flipped, a function
# body replaced by a default value) must make a test fail. A surviving ("missed")
# mutant fails the script, unless it is listed in .cargo/mutants.toml's exclusions
# with the reason it is equivalent.
#
# Usage:
#   scripts/mutants.sh diff [BASE]    mutants on the lines changed since BASE (default:
#                                     HEAD~1), as CI runs it on each change
#   scripts/mutants.sh files F...     every mutant in the files F (a long run: about a
#                                     minute per mutant on 2 cores)
# Environment: MUTANTS_SECONDS bounds the whole run (default 600); when the bound is
# reached the mutants tested so far count and the rest are reported as not run.
# cargo-mutants leaves `unsafe fn` bodies alone (most kernel bodies): their tests are
# the kernel comparisons, Miri and the guard tests rather than mutants.
# The tests run are the library's unit tests and the Rust integration tests that
# exercise the numerics and the guards (not the C, install and dispatch programs,
# which rebuild C code for every mutant); see TEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

mode=${1:-diff}
shift || true
seconds=${MUTANTS_SECONDS:-600}
# MUTANTS_OUT keeps cargo-mutants' report (mutants.out/) there; else a temporary folder.
if [ -n "${MUTANTS_OUT:-}" ]; then
    out=$MUTANTS_OUT
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi

TEST_ARGS=(--lib --test errors --test guards --test optimizers --test checkpoint
    --test gradcheck --test predict --test cross_entropy --test caller_memory)
args=(--no-shuffle -j 1 --timeout 120 --output "$out" --cargo-test-arg=--no-fail-fast)
for a in "${TEST_ARGS[@]}"; do args+=("--cargo-test-arg=$a"); done

case "$mode" in
diff)
    base=${1:-HEAD~1}
    if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
        echo "mutants: $base is not a commit here (a shallow clone?): nothing to compare"
        exit 0
    fi
    git diff "$base" -- src/ >"$out/changes.diff"
    if [ ! -s "$out/changes.diff" ]; then
        echo "mutants: no change in src/ since $base"
        exit 0
    fi
    args+=(--in-diff "$out/changes.diff")
    ;;
files)
    [ $# -gt 0 ] || { echo "usage: scripts/mutants.sh files FILE..." >&2; exit 2; }
    for f in "$@"; do args+=(-f "$f"); done
    ;;
*)
    echo "usage: scripts/mutants.sh diff [BASE] | files FILE..." >&2
    exit 2
    ;;
esac

# Installed only now: a change with nothing in src/ needs no build of it (minutes in CI).
if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants"
    cargo install cargo-mutants --locked
fi

echo "==> cargo mutants ${args[*]} (at most ${seconds}s)"
set +e
timeout --signal=INT "$seconds" cargo mutants "${args[@]}"
rc=$?
set -e
dir="$out/mutants.out"
count() {
    local n=0
    [ -f "$dir/$1.txt" ] && n=$(grep -c . "$dir/$1.txt" || true)
    echo "${n:-0}"
}
echo
echo "mutants: caught $(count caught), missed $(count missed), timeout $(count timeout), unviable $(count unviable)"
if [ -s "$dir/missed.txt" ]; then
    echo "mutants that no test caught:"
    cat "$dir/missed.txt"
    exit 1
fi
case $rc in
0 | 2 | 3) ;; # 2: missed (handled above), 3: a mutant ran past its timeout (caught)
124 | 130) echo "mutants: stopped at the ${seconds}s bound; the mutants above are all that ran" ;;
*)
    echo "mutants: cargo mutants failed (exit $rc)"
    exit 1
    ;;
esac
