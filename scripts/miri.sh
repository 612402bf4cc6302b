#!/usr/bin/env bash
# A bounded selection of the test suite under Miri (nightly): undefined behaviour in
# the unsafe code (out-of-bounds accesses and pointer arithmetic, uninitialized
# reads, misalignment, data races, aliasing under Stacked Borrows) fails the run.
# Default checks only: no -Zmiri-disable-* flag, Stacked Borrows (not Tree
# Borrows), isolation on (no file system, no processes, no host environment).
# One flag is set: -Zmiri-deterministic-floats. By default Miri adds a random error
# of a few ulp to every exp, ln, powi and sqrt-like call, a different one on every
# call, to model other platforms' libm; the tests compare two runs of the same
# model bit for bit (thread counts, refused steps) and math::tests compares our
# no_std powi with std's, and within one process a libm gives one answer.
# Miri interprets every operation (about 10^5 MIR blocks a second here), so the
# tests shrink their shapes under cfg(miri) and the selection reaches every unsafe
# path once rather than repeating the numerics.
#
# What runs:
#   lib          every unit test but init::normal_has_unit_moments (200 000 normal
#                draws, no unsafe code): the arena plan; the scalar kernel set (the
#                reference of every comparison); the generic SIMD kernel bodies on
#                the emulated 4-, 8- and 16-lane types with the tile shapes of NEON,
#                AVX2 and AVX-512, on shapes that reach every tile and remainder path
#                (model::tests::MIRI_SHAPES), the forward in chunks of panels, the
#                one-row and one-hidden-layer kernels, fused SGD, the optimizers and
#                clipping; the checkpoint CRC and header; the C status and
#                last-error helpers; and that dispatch picks the scalar set.
#   checkpoint   parsing of valid checkpoints (the format pinned byte by byte,
#                version 1, save buffers) and of corrupt ones (every truncation,
#                every 61st bit flipped, magic and versions, impossible topologies,
#                non-finite values, 100 random ones, load arguments).
#   errors       every error row through the Rust API and through the extern "C"
#                functions called from Rust (checkpoints in memory; the rows that
#                open files are skipped under Miri).
#   caller_memory  Model::new_in and flowmlp_create_in in caller memory between
#                guard bytes, the block reused, refused memory left untouched.
#   predict      predict and classify with caller workspaces at every alignment,
#                canaries after the outputs and the workspace, and three threads
#                predicting on one model at once (Miri's data-race detector).
#   dispatch     AUTO and explicit requests, unsupported sets refused (C and Rust).
#   graph        graph_dot and flowmlp_graph_dot into caller buffers.
#
# Not run under Miri, and why:
#   - tests that spawn processes, compile C/C++ or touch files: tests/ffi_c.rs,
#     tests/install.rs and tests/header.rs (whole targets, not run here); the
#     checkpoint file, crash and fuzz-seed tests, the FLOWMLP_ISA child-process
#     tests and the committed graph (#[cfg_attr(miri, ignore)]); the file rows of
#     tests/errors.rs (skipped under cfg!(miri)).
#   - the std::arch kernel sets (AVX2, AVX-512, NEON): Miri reports only the target
#     features enabled at compile time (RUSTFLAGS is cleared below), so dispatch
#     and the tests see the scalar set alone; their shared bodies run on the
#     emulated lane types instead.
#   - tests that repeat the paths above on bigger shapes or many more inputs, which
#     would take hours: bad_optimizer_sections_are_refused_without_allocating (70
#     re-sealed copies, each through the tests' bit-by-bit CRC; the same parser as
#     the corrupt checkpoints above), the round-trip and resume tests (training
#     loops), predict_matches_forward_for_any_rows_and_workspace (the workspace test
#     covers it, with canaries), reads_of_one_model_may_run_concurrently and
#     distinct_models_are_independent_across_threads (the predict threads cover
#     concurrent reads), the adversarial stream (1 500 steps), the remaining
#     dispatch and graph tests (training loops, files), and the numeric suites
#     tests/gradcheck.rs, cross_entropy.rs, optimizers.rs, guards.rs and
#     no_alloc.rs (the same kernels and API on bigger shapes).
#
# Usage: scripts/miri.sh [libtest arguments for every step, e.g. --test-threads=1].
# Installs the nightly miri and rust-src components when missing. Environment:
# MIRI_TOOLCHAIN (default nightly), MIRIFLAGS (default -Zmiri-deterministic-floats). Integration steps run
# with --exact, and a step whose filters name fewer tests than listed fails. Build outputs:
# target/miri (cargo miri's own). Prints each command and a summary, and exits
# non-zero when any step fails. About 10 minutes on 2 cores once built (the first
# run also builds Miri's sysroot and the dependencies, about 4 minutes more).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
tc=${MIRI_TOOLCHAIN:-nightly}
start=$SECONDS

installed=$(rustup component list --toolchain "$tc" --installed 2>/dev/null || true)
missing=()
for c in miri rust-src; do
    grep -q "^$c" <<<"$installed" || missing+=("$c")
done
if ((${#missing[@]})); then
    echo "+ rustup component add ${missing[*]} --toolchain $tc"
    rustup component add "${missing[@]}" --toolchain "$tc" || exit 1
fi
echo "+ cargo +$tc miri setup"
cargo "+$tc" miri setup || exit 1

# The std::arch sets stay off: enabling their features at compile time would make
# detection report them.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# Under Miri the scalar set is the only one the CPU "has" (see above): CI's list of
# required sets (.ci/run, from /proc/cpuinfo) is for native runs.
export FLOWMLP_REQUIRE_ISA=scalar
unset FLOWMLP_EXPECT_ISA
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-deterministic-floats}"
echo "MIRIFLAGS=$MIRIFLAGS (the default checks, Stacked Borrows)"

steps=(
    "--lib -- --skip init::tests::normal_has_unit_moments"
    "--test checkpoint -- the_format_is_little_endian_and_versioned
        the_optimizer_section_is_pinned_byte_by_byte version_1_checkpoints_still_load
        save_needs_a_large_enough_buffer_and_writes_nothing_else
        truncated_at_every_length_is_refused every_single_bit_flip_is_refused
        wrong_magic_and_other_versions_are_refused
        impossible_topologies_and_absurd_sizes_are_refused_without_allocating
        non_finite_parameters_are_refused_even_with_a_matching_crc
        random_bytes_are_refused load_arguments_are_checked"
    "--test errors -- every_error_row_through_the_rust_api_changes_nothing
        every_error_row_through_the_c_api_changes_nothing"
    "--test caller_memory --"
    "--test predict -- predict_refuses_bad_input_without_touching_the_model
        outputs_and_workspaces_are_written_exactly_and_match_f64
        classify_matches_predict_class_without_changing_the_model
        eight_threads_predict_on_one_model_bit_identically"
    "--test dispatch -- auto_picks_the_best_supported_set support_matches_the_architecture
        unsupported_requests_are_refused"
    "--test graph -- graph_dot_follows_the_buffer_rules_and_allocates_nothing
        c_graph_dot_reports_the_size_and_refuses_short_buffers"
)

failed=()
summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for step in "${steps[@]}"; do
    # shellcheck disable=SC2206 # the step is a list of words
    args=($step)
    name=${args[1]}
    filters=("${args[@]:3}")
    exact=(--exact)
    if [[ ${args[0]} == --lib ]]; then
        name=lib filters=() exact=()
    fi
    t0=$SECONDS
    echo
    echo "+ cargo +$tc miri test ${args[*]} ${exact[*]} $*"
    status=ok
    cargo "+$tc" miri test "${args[@]}" "${exact[@]}" "$@" 2>&1 | tee "$log" || status=FAILED
    # A filter that names no test (a renamed one) must not pass silently.
    ran=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log")
    if [[ $status == ok && ${ran:-0} -lt ${#filters[@]} || ${ran:-0} -eq 0 ]]; then
        echo "miri: $name ran ${ran:-0} tests, expected ${#filters[@]}"
        status=FAILED
    fi
    summary+=("$(printf '%-7s %5ss  %s' "$status" $((SECONDS - t0)) "$name")")
    [[ $status == ok ]] || failed+=("$name")
done

echo
echo "miri summary ($((SECONDS - start))s in all):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "miri: ${#failed[@]} step(s) failed: ${failed[*]}"
    exit 1
fi
echo "miri: every step passed"
