#!/usr/bin/env bash
# The full Rust test suite with the NEON kernels: cross-build for
# aarch64-unknown-linux-gnu with Debian's Rust toolchain (rustc-web, which ships an
# aarch64 standard library; rustup's toolchain here has none) and run every test
# binary, and the C/C++ programs of tests/ffi_c.rs, under qemu-aarch64.
# Recipe: ../shared/TESTING-OTHER-CPUS.md.
#
# - Statically linked (+crt-static, and -static for the C programs): dynamically
#   linked aarch64 binaries hang under qemu-user 7.2 at their first thread.
# - FLOWMLP_EXPECT_ISA=neon: AUTO must pick neon (tests/dispatch.rs);
#   FLOWMLP_REQUIRE_ISA=neon: a run without NEON fails instead of skipping.
# - Separate target dir (target/aarch64) so the two toolchains do not rebuild each
#   other's artifacts. Debug profile (the crate's dev profile is opt-level 1).
#
# Usage: scripts/test-aarch64.sh [extra `cargo test` args, e.g. --release or -- filter]
# Installs what it needs with apt-get when missing. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'test-aarch64: %s\n' "$*" >&2
    exit 1
}

TARGET=aarch64-unknown-linux-gnu
# Bound the emulated test run so a hang cannot stall CI (a normal run: a few minutes).
QEMU_TIMEOUT=${QEMU_TIMEOUT:-1800}

step "packages"
# Debian's Rust 1.96 with the aarch64 std, the cross C/C++ toolchain, qemu-user.
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
    g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    [ "$(id -u)" = 0 ] && SUDO="" || SUDO=sudo
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "all present: ${packages[*]}"
fi

# Debian's toolchain by absolute path: rustup's (first on PATH) cannot build for aarch64.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
CARGO=/usr/bin/cargo
"$RUSTC" --version
"$CARGO" --version
sysroot=$("$RUSTC" --print sysroot)
[ -d "$sysroot/lib/rustlib/$TARGET/lib" ] ||
    die "$RUSTC has no $TARGET standard library (libstd-rust-web-dev:arm64 at its version?)"
qemu-aarch64 --version | head -n1
aarch64-linux-gnu-gcc --version | head -n1

export CARGO_TARGET_DIR="$PWD/target/aarch64"
# Line tables only: a failure's backtrace still names functions and lines, and the
# cross-build (most of this script's time in CI) writes far less debug information.
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export RUSTFLAGS="-C target-feature=+crt-static"
export RUSTDOCFLAGS="-C target-feature=+crt-static"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64

step "cross-build the test suite for $TARGET"
start=$SECONDS
# Diagnostics rendered on stderr; on stdout, JSON messages that name the executables.
json=$("$CARGO" test --locked --target "$TARGET" --no-run \
    --message-format=json-render-diagnostics "$@") || die "the cross-build failed"
echo "built in $((SECONDS - start)) s"
# The dispatch test binary, for the summary at the end.
dispatch_tests=$(printf '%s\n' "$json" |
    grep '"reason":"compiler-artifact"' | grep '"test":true' |
    sed -n 's/.*"executable":"\([^"]*\/dispatch-[^"/]*\)".*/\1/p') || true
[ -x "$dispatch_tests" ] || die "tests/dispatch.rs executable not found in cargo's output"

step "run the full test suite under qemu-aarch64 (FLOWMLP_EXPECT_ISA=neon, FLOWMLP_REQUIRE_ISA=neon)"
start=$SECONDS
# tests/ffi_c.rs compiles C/C++ programs with $CC/$CXX against the aarch64 static
# library and runs them under $FLOWMLP_TEST_RUNNER; tests/dispatch.rs starts its child
# processes under it too. Only the test run sees these (not build scripts).
# --no-fail-fast: every test binary runs, so one slow emulated run shows all failures.
# The programs are static, and the sanitizers need their dynamic runtimes: stated,
# so that the skip is not silent (tests/ffi_c.rs prints it).
CC="aarch64-linux-gnu-gcc -static" \
    CXX="aarch64-linux-gnu-g++ -static" \
    FLOWMLP_WITHOUT_SANITIZERS="static aarch64 programs under qemu: no ASan/UBSan runtime" \
    FLOWMLP_TEST_RUNNER=qemu-aarch64 \
    FLOWMLP_EXPECT_ISA=neon \
    FLOWMLP_REQUIRE_ISA=neon \
    timeout "$QEMU_TIMEOUT" "$CARGO" test --locked --no-fail-fast --target "$TARGET" "$@" ||
    die "the test suite failed under qemu-aarch64 (exit $?)"
echo "tests ran in $((SECONDS - start)) s"

step "kernel set exercised"
picked=$(FLOWMLP_EXPECT_ISA=neon qemu-aarch64 "$dispatch_tests" auto_picks_the_best_supported_set \
    --exact --show-output | grep 'dispatch: AUTO picked') ||
    die "tests/dispatch.rs printed no 'dispatch: AUTO picked' line"
echo "$picked"
echo
echo "aarch64 passed: the full test suite and the C/C++ programs under qemu-aarch64;"
echo "AUTO picked neon, and model::tests compared the NEON kernels with the scalar reference"
