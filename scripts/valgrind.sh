#!/usr/bin/env bash
# The C and C++ programs of the test suite under valgrind memcheck: zero errors and
# zero leaks required (--error-exitcode=1 --leak-check=full; definite, indirect and
# possible leaks all count as errors).
#
#   ffi-tests/test_api.c        every contract error row, reference checks, XOR
#   ffi-tests/test_hardening.c  caller-owned memory (static buffer), checkpoints
#   ffi-tests/test_optim.c      optimizers, cross-entropy, predict_class
#   ffi-tests/test_graph.c      the flow-graph export
#   ffi-tests/smoke.cpp         the header as C++17
#   ffi-tests/test_cpp.cpp      the C++ wrapper
#   examples/c/online.c         the embedded-style example
#
# Each runs with the best kernel set and with FLOWMLP_ISA=scalar. The programs are
# built like tests/ffi_c.rs builds them, but without sanitizers (which do not mix
# with valgrind), with -g, against the static library of `cargo build`.
# Usage: scripts/valgrind.sh. Installs valgrind with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v valgrind >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind
fi
CC=${CC:-cc}
CXX=${CXX:-c++}
target_dir=${CARGO_TARGET_DIR:-target}

echo "==> cargo build (static library)"
cargo build --lib
lib="$target_dir/debug/libflowmlp.a"
[ -f "$lib" ] || { echo "valgrind: $lib not found" >&2; exit 1; }

# What `cargo rustc --lib --crate-type staticlib -- --print native-static-libs` reports.
libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(-g -O1 -Wall -Wextra -Werror -pedantic "-DFLOWMLP_EXPECTED_VERSION=\"$version\"" -Iinclude -Iffi-tests)

build() { # name compiler std source
    "$2" "-std=$3" "${common[@]}" "$4" "$lib" "${libs[@]}" -o "$out/$1"
}
build test_api "$CC" c99 ffi-tests/test_api.c
build test_hardening "$CC" c99 ffi-tests/test_hardening.c
build test_optim "$CC" c99 ffi-tests/test_optim.c
build test_graph "$CC" c99 ffi-tests/test_graph.c
build smoke "$CXX" c++17 ffi-tests/smoke.cpp
build test_cpp "$CXX" c++17 ffi-tests/test_cpp.cpp
build online "$CC" c99 examples/c/online.c

status=0
for prog in test_api test_hardening test_optim test_graph smoke test_cpp online; do
    for isa in "" scalar; do
        echo "==> valgrind $prog (FLOWMLP_ISA=${isa:-unset})"
        log="$out/$prog-${isa:-best}.log"
        if (cd "$out" && FLOWMLP_ISA="$isa" valgrind --error-exitcode=1 --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            --track-origins=yes "./$prog" >"$log.out" 2>"$log"); then
            grep -m1 -E "isa_name|kernel set" "$log.out" || true
            tail -1 "$log.out"
            grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|All heap blocks were freed" "$log" || true
        else
            echo "valgrind: $prog (FLOWMLP_ISA=${isa:-unset}) FAILED"
            tail -80 "$log"
            tail -20 "$log.out"
            status=1
        fi
    done
done
[ $status -eq 0 ] && echo "valgrind: every program clean (0 errors, 0 leaks)"
exit $status
