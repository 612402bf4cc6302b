#!/usr/bin/env bash
# The README's test command as a new user runs it: `cargo test` on a machine with only
# the Rust toolchain and a C compiler. The optional tools (cmake, pkg-config, a C++
# compiler, valgrind, qemu) are hidden from PATH, CI's variables are removed, and the
# run must pass and say, one line each, what it skipped for want of them.
#
# The hidden PATH is a folder of links to every program on PATH except the hidden
# ones, so the C compiler, the linker and cargo stay where they are. Build outputs are
# cargo's usual target/ (nothing is rebuilt for the PATH change).
#
# Usage: scripts/test-without-optional-tools.sh [cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Programs a new user may lack; glob patterns matched against a program's name.
hidden=(cmake 'ctest' 'cpack' 'pkg-config' '*-pkg-config' 'pkgconf' 'c++' 'g++' 'g++-*'
    '*-g++' '*-g++-*' 'clang++*' 'valgrind*' 'qemu-*')

shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
is_hidden() {
    local p
    for p in "${hidden[@]}"; do
        # shellcheck disable=SC2053
        [[ $1 == $p ]] && return 0
    done
    return 1
}
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
        name=${f##*/}
        [ -x "$f" ] && [ ! -d "$f" ] || continue
        is_hidden "$name" && continue
        # The first directory on PATH wins, as for the shell.
        [ -e "$shadow/$name" ] || ln -s "$f" "$shadow/$name"
    done
done

for tool in cmake pkg-config c++ g++ valgrind qemu-aarch64; do
    if PATH=$shadow command -v "$tool" >/dev/null 2>&1; then
        echo "test-without-optional-tools: $tool is still on the hidden PATH" >&2
        exit 1
    fi
done
PATH=$shadow command -v cc >/dev/null || {
    echo "test-without-optional-tools: no C compiler (cc) on PATH" >&2
    exit 1
}

log=$(mktemp)
trap 'rm -rf "$shadow" "$log"' EXIT
set +e
env -u CI -u FLOWMLP_REQUIRE_TOOLS -u CXX PATH="$shadow" cargo test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || {
    echo "test-without-optional-tools: cargo test failed (exit $rc) without the optional tools" >&2
    exit 1
}

# Each optional tool the suite uses must have said what it skipped.
missing=0
for tool in cmake pkg-config c++; do
    if ! grep -q "SKIPPED: .*\`$tool\` not found" "$log"; then
        echo "test-without-optional-tools: no skip line for $tool" >&2
        missing=1
    fi
done
[ $missing -eq 0 ] || exit 1
echo
echo "test-without-optional-tools: cargo test passed without the optional tools; it skipped:"
grep -o "SKIPPED: .*" "$log" | sort | uniq -c
