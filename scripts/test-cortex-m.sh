#!/usr/bin/env bash
# Bare metal: flowmlp without `std` on a Cortex-M4F, from Rust and from C, under
# qemu-system-arm (machine mps2-an386, semihosting). Recipe:
# ../shared/TESTING-OTHER-CPUS.md ("Cortex-M").
#
# 1. the library builds `#![no_std]` for thumbv7em-none-eabihf (rlib and staticlib);
# 2. examples/cortex-m/rust: the Rust firmware (cortex-m-rt, static arena);
# 3. examples/cortex-m/c: the C firmware (arm-none-eabi-gcc + newlib's rdimon for
#    printf), including include/flowmlp.h and linking the staticlib of step 1;
# 4. both run under qemu with a time limit and must exit 0: the loss fell at least
#    tenfold, a checkpoint saved to bytes reloads into caller memory with the same
#    predictions (the C one also checks a refused call's status);
# 5. each firmware's trained parameters and window losses are compared with the same
#    session on this machine's scalar kernels (examples/cortex_m_reference.rs; the
#    tolerance is stated there: 1e-4 relative per parameter, 1e-3 on the losses);
# 6. the flash and RAM the firmwares take (arm-none-eabi-size), and the library's
#    share of the C firmware (from the linker map).
#
# Outputs under target/cortex-m/. Installs what it needs (rustup target, Debian
# packages). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

start=$(date +%s)
step() { printf '\n==> %s  [%ds]\n' "$*" "$(($(date +%s) - start))"; }
die() {
    printf 'test-cortex-m: %s\n' "$*" >&2
    exit 1
}

TARGET=thumbv7em-none-eabihf
# qemu runs each firmware in a few seconds; a hang must not stall CI.
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
out=target/cortex-m
mkdir -p "$out"

step "toolchain: rustup target $TARGET, Debian packages"
if ! rustc --print target-libdir --target "$TARGET" 2>/dev/null | xargs test -d 2>/dev/null; then
    rustup target add "$TARGET"
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
missing=()
for p in qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
qemu-system-arm --version | head -1
arm-none-eabi-gcc --version | head -1

step "the library without std for $TARGET (rlib + staticlib)"
cargo build --release --lib --no-default-features --target "$TARGET"
lib="target/$TARGET/release/libflowmlp.a"
[ -f "$lib" ] || die "no $lib"

step "Rust firmware (examples/cortex-m/rust)"
(cd examples/cortex-m/rust && cargo build --release --locked --target-dir "$root/$out/rust")
rust_elf="$out/rust/$TARGET/release/flowmlp-cortex-m"

step "C firmware (examples/cortex-m/c)"
c_elf="$out/flowmlp-c.elf"
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
    -O2 -ffp-contract=off -std=c11 -Wall -Wextra -Wpedantic -Werror \
    -ffunction-sections -fdata-sections -I include \
    examples/cortex-m/c/main.c examples/cortex-m/c/startup.c \
    -T examples/cortex-m/c/link.ld -nostartfiles --specs=rdimon.specs \
    -Wl,--gc-sections -Wl,--no-warn-execstack -Wl,-Map="$out/flowmlp-c.map" \
    "$lib" -lm -o "$c_elf"

run_qemu() {
    local name=$1 elf=$2 log="$out/$1.log" rc=0
    step "run the $name firmware under qemu-system-arm (mps2-an386, cortex-m4; limit ${QEMU_TIMEOUT}s)"
    local t0=$(date +%s)
    timeout "$QEMU_TIMEOUT" qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
        -semihosting-config enable=on,target=native -kernel "$elf" >"$log" 2>&1 || rc=$?
    grep -v '^param ' "$log" || true
    echo "($(grep -c '^param ' "$log" || true) parameter lines in $log; qemu ran $(($(date +%s) - t0)) s)"
    [ "$rc" -eq 0 ] || die "the $name firmware failed (exit status $rc; 124 is the time limit)"
}
run_qemu rust "$rust_elf"
run_qemu c "$c_elf"

step "compare with the same session on this machine's scalar kernels"
cargo run --release --quiet --example cortex_m_reference -- "$out/rust.log"
cargo run --release --quiet --example cortex_m_reference -- "$out/c.log"

step "footprint"
arm-none-eabi-size "$rust_elf" "$c_elf"
# The library's share of the C firmware: the input sections from libflowmlp.a that
# the linker kept (code and constants in flash; data and bss in RAM).
awk '
    function hex(s,    i, n) {
        n = 0
        for (i = 3; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
        return n
    }
    /^Linker script and memory map/ { kept = 1 }
    !kept { next }
    /^ \.[^ ]+$/ { sec = $1; next }
    /^ \.[^ ]+ +0x/ { sec = $1; addr = $2; size = $3; file = $4 }
    /^ +0x[0-9a-f]+ +0x[0-9a-f]+ / { addr = $1; size = $2; file = $3 }
    /libflowmlp\.a\(/ && size != "" {
        n = hex(size)
        if (sec ~ /^\.(text|rodata|ARM)/) flash += n
        else if (sec ~ /^\.(data|bss)/) ram += n
    }
    { size = "" }
    END { printf "libflowmlp.a in the C firmware: %d bytes of flash (code and constants), %d bytes of static RAM\n", flash, ram }
' "$out/flowmlp-c.map"

echo "test-cortex-m: both firmwares passed in $(($(date +%s) - start)) s"
