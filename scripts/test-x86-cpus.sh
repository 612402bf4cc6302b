#!/usr/bin/env bash
# Kernel dispatch on x86-64 CPUs other than the build machine's, under qemu-user:
#
#   qemu-x86_64 -cpu max      AVX2+FMA, no AVX-512: AUTO must pick avx2 (or avx512, if
#                             this qemu's "max" model has AVX-512F after all)
#   qemu-x86_64 -cpu Nehalem  no AVX at all: AUTO must pick scalar, and asking for
#                             avx2/avx512 must give UnsupportedIsa, never SIGILL
#
# On each model it runs the lib unit tests (model::tests compares every kernel set
# the emulated CPU supports with the scalar reference) and tests/dispatch.rs, with
# FLOWMLP_EXPECT_ISA (the set AUTO must pick) and FLOWMLP_REQUIRE_ISA (sets that must
# be present, so nothing is skipped silently). Test binaries are built once, natively,
# in the ordinary test profile (shared with `cargo test`).
#
# Usage: scripts/test-x86-cpus.sh [extra libtest args, e.g. a test-name filter]
# Installs qemu-user with apt-get when qemu-x86_64 is missing. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'test-x86-cpus: %s\n' "$*" >&2
    exit 1
}

# Each emulated run is bounded so a hang cannot stall CI (a normal run takes < 1 min).
QEMU_TIMEOUT=${QEMU_TIMEOUT:-900}

[ "$(uname -m)" = x86_64 ] || die "needs an x86-64 host (this is $(uname -m))"
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "cargo not found"
case "${RUSTFLAGS:-} ${CARGO_ENCODED_RUSTFLAGS:-}" in
*target-cpu* | *target-feature*)
    die "RUSTFLAGS enables CPU features (${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}); the binaries must run on any x86-64"
    ;;
esac

step "qemu-user"
if ! command -v qemu-x86_64 >/dev/null; then
    [ "$(id -u)" = 0 ] && SUDO="" || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-user
fi
qemu-x86_64 --version | head -n1

step "build the test binaries (lib unit tests, tests/dispatch.rs)"
# Diagnostics rendered on stderr; on stdout, JSON messages that name the executables.
json=$(cargo test --no-run --lib --test dispatch --message-format=json-render-diagnostics) ||
    die "building the test binaries failed"
# Executables of test targets: "profile":{..."test":true} and a non-null "executable".
exes=$(printf '%s\n' "$json" |
    grep '"reason":"compiler-artifact"' |
    grep '"test":true' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || true
lib_tests="" dispatch_tests=""
for exe in $exes; do
    case "$(basename "$exe")" in
    flowmlp-*) lib_tests=$exe ;;
    dispatch-*) dispatch_tests=$exe ;;
    esac
done
[ -x "$lib_tests" ] || die "lib unit test executable not found in cargo's output"
[ -x "$dispatch_tests" ] || die "tests/dispatch.rs executable not found in cargo's output"
echo "lib unit tests: $lib_tests"
echo "dispatch tests: $dispatch_tests"

# What run-time detection sees on a CPU model, by the kernels' gates: avx512 needs
# AVX-512F, avx2 needs AVX2 and FMA.
step "probe the emulated CPU models"
probe_dir=target/x86-cpus
mkdir -p "$probe_dir"
cat >"$probe_dir/probe.rs" <<'EOF'
fn main() {
    let isa = if is_x86_feature_detected!("avx512f") {
        "avx512"
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        "avx2"
    } else {
        "scalar"
    };
    println!("{isa}");
}
EOF
rustc --edition 2021 -O -o "$probe_dir/probe" "$probe_dir/probe.rs"
max_isa=$(qemu-x86_64 -cpu max "$probe_dir/probe")
nehalem_isa=$(qemu-x86_64 -cpu Nehalem "$probe_dir/probe")
echo "qemu -cpu max detects: $max_isa; -cpu Nehalem detects: $nehalem_isa"
case "$max_isa" in
avx2) ;;
avx512) echo "note: this qemu's -cpu max has AVX-512F: expecting avx512 there" ;;
*) die "qemu -cpu max detects '$max_isa', not AVX2+FMA: this qemu cannot test the AVX2 kernels" ;;
esac
[ "$nehalem_isa" = scalar ] || die "qemu -cpu Nehalem detects '$nehalem_isa', expected no AVX"

# run CPU EXPECT REQUIRE: both test binaries on one CPU model.
run() {
    local cpu=$1 expect=$2 require=$3 exe name start
    step "qemu-x86_64 -cpu $cpu: AUTO must pick $expect (required sets: $require)"
    for exe in "$lib_tests" "$dispatch_tests"; do
        name=$(basename "$exe")
        start=$SECONDS
        echo "--- $name"
        env FLOWMLP_EXPECT_ISA="$expect" FLOWMLP_REQUIRE_ISA="$require" \
            FLOWMLP_TEST_RUNNER="qemu-x86_64 -cpu $cpu" \
            timeout "$QEMU_TIMEOUT" qemu-x86_64 -cpu "$cpu" "$exe" --show-output "${@:4}" ||
            die "$name failed under qemu-x86_64 -cpu $cpu (exit $?)"
        echo "--- $name: passed under -cpu $cpu in $((SECONDS - start)) s"
    done
    echo "kernel set exercised by AUTO under -cpu $cpu: $expect"
}

# The threads' bit-identity tests are dispatch-independent and run natively (and
# under qemu-aarch64 for NEON); emulated here they would take minutes.
skip=(--skip model::tests::every_thread_count_gives_bit_identical_results)
run max "$max_isa" "scalar,$max_isa" "${skip[@]}" "$@"
run Nehalem scalar scalar "${skip[@]}" "$@"

echo
echo "x86 CPU models passed: -cpu max -> $max_isa, -cpu Nehalem -> scalar (avx2/avx512 refused)"
