#!/usr/bin/env bash
# The library without its default feature `std`:
# 1. builds `#![no_std]` for a bare-metal target, thumbv7em-none-eabihf (Cortex-M4F),
#    exactly as the crate docs say (`cargo build --lib --no-default-features --target
#    thumbv7em-none-eabihf`);
# 2. passes tests/no_std.rs on this machine built the same way (`libm` is the
#    feature a hosted target needs for its float functions; bare metal takes it
#    anyway): caller memory, training, checkpoints in bytes, the errors, the C ABI.
# scripts/test-cortex-m.sh then runs it on a (qemu) Cortex-M4F.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=thumbv7em-none-eabihf
if ! rustc --print target-libdir --target "$TARGET" 2>/dev/null | xargs test -d 2>/dev/null; then
    rustup target add "$TARGET"
fi
echo "==> cargo build --lib --no-default-features --target $TARGET"
cargo build --lib --no-default-features --target "$TARGET"
echo "==> cargo test --no-default-features --features libm --test no_std"
cargo test --no-default-features --features libm --test no_std
