/*
 * test_threads.c: flowmlp_set_threads and flowmlp_threads through the C API.
 *
 * Build by hand after `cargo build` (tests/ffi_c.rs does this under `cargo test`):
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -Iffi-tests \
 *      ffi-tests/test_threads.c target/debug/libflowmlp.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o test_threads
 *
 * Checks: a fresh model uses 1 thread; NULL model (NULL_POINTER; flowmlp_threads(NULL)
 * is 1); n above 256 (INVALID_ARGUMENT, the count unchanged, a message naming n);
 * n = 0 picks at least one; a model trained with 1, 2, 3 and 4 threads (a shape large
 * enough to be shared: 64 -> 256 -> 256 -> 4, 96 rows, Adam) ends with the same
 * parameters, bit for bit, and the same losses; a checkpoint of a threaded model
 * loads with 1 thread; destroying a model with workers joins them. Prints
 * "N checks, F failed"; exits 0 only when every check passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest.h"
#include "flowmlp.h"

enum { D = 64, H = 256, M = 4, N = 96, STEPS = 4 };

static flowmlp_config config(void) {
    flowmlp_config c;
    memset(&c, 0, sizeof c);
    c.n_inputs = D;
    c.n_outputs = M;
    c.n_hidden = 2;
    c.hidden[0] = H;
    c.hidden[1] = H;
    c.max_batch = N;
    c.seed = 11;
    c.isa = FLOWMLP_ISA_AUTO;
    return c;
}

/* Train a fresh model with `threads` threads; parameters into params (count floats),
 * the losses into losses. */
static void train(uint32_t threads, float *params, size_t count, float *losses) {
    flowmlp_config c = config();
    flowmlp_model *m = NULL;
    static float x[N * D], y[N * M];
    uint32_t state = 12345u;
    size_t i;
    flowmlp_optimizer opt;
    int s;
    CHECK_EQ_INT(flowmlp_create(&c, &m), FLOWMLP_OK);
    if (m == NULL) return;
    CHECK_EQ_INT(flowmlp_set_threads(m, threads), FLOWMLP_OK);
    CHECK_EQ_INT(flowmlp_threads(m), threads);
    CHECK_EQ_INT(flowmlp_optimizer_defaults(FLOWMLP_OPTIMIZER_ADAM, &opt), FLOWMLP_OK);
    CHECK_EQ_INT(flowmlp_set_optimizer(m, &opt), FLOWMLP_OK);
    for (i = 0; i < (size_t)N * D; ++i) {
        state = state * 1664525u + 1013904223u;
        x[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
    }
    for (i = 0; i < (size_t)N * M; ++i) y[i] = (float)(i % 7) / 7.0f;
    for (s = 0; s < STEPS; ++s) {
        CHECK_EQ_INT(flowmlp_train_step(m, x, y, N, 1e-3f, &losses[s]), FLOWMLP_OK);
    }
    CHECK_EQ_INT(flowmlp_get_params(m, params, count), FLOWMLP_OK);
    flowmlp_destroy(m); /* joins the workers */
}

static void test_counts_and_errors(void) {
    flowmlp_config c = config();
    flowmlp_model *m = NULL;
    const char *msg;
    CHECK_EQ_INT(flowmlp_create(&c, &m), FLOWMLP_OK);
    if (m == NULL) return;
    CHECK_EQ_INT(flowmlp_threads(m), 1);
    CHECK_EQ_INT(flowmlp_threads(NULL), 1);
    CHECK_EQ_INT(flowmlp_set_threads(NULL, 2), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(flowmlp_set_threads(m, 2), FLOWMLP_OK);
    CHECK_EQ_INT(flowmlp_set_threads(m, 257), FLOWMLP_ERROR_INVALID_ARGUMENT);
    msg = flowmlp_last_error_message();
    CHECK(msg != NULL && strstr(msg, "257") != NULL);
    CHECK_EQ_INT(flowmlp_threads(m), 2);
    CHECK_EQ_INT(flowmlp_set_threads(m, 0), FLOWMLP_OK);
    CHECK(flowmlp_threads(m) >= 1);
    CHECK_EQ_INT(flowmlp_set_threads(m, 1), FLOWMLP_OK);
    CHECK_EQ_INT(flowmlp_threads(m), 1);
    flowmlp_destroy(m);
}

static void test_checkpoint_does_not_carry_threads(void) {
    flowmlp_config c = config();
    flowmlp_model *m = NULL, *back = NULL;
    unsigned char *buf;
    size_t size, written = 0;
    CHECK_EQ_INT(flowmlp_create(&c, &m), FLOWMLP_OK);
    if (m == NULL) return;
    CHECK_EQ_INT(flowmlp_set_threads(m, 3), FLOWMLP_OK);
    size = flowmlp_save_size(m);
    buf = (unsigned char *)malloc(size);
    if (buf != NULL) {
        CHECK_EQ_INT(flowmlp_save(m, buf, size, &written), FLOWMLP_OK);
        CHECK_EQ_INT(flowmlp_load(buf, written, N, FLOWMLP_ISA_AUTO, &back), FLOWMLP_OK);
        CHECK_EQ_INT(flowmlp_threads(back), 1);
        flowmlp_destroy(back);
        free(buf);
    }
    flowmlp_destroy(m);
}

int main(void) {
    static float p1[300000], pn[300000];
    float l1[STEPS], ln[STEPS];
    uint32_t t;
    flowmlp_config c = config();
    flowmlp_model *m = NULL;
    size_t count;
    CHECK_EQ_INT(flowmlp_create(&c, &m), FLOWMLP_OK);
    count = flowmlp_param_count(m);
    flowmlp_destroy(m);
    CHECK(count <= sizeof p1 / sizeof p1[0]);
    test_counts_and_errors();
    test_checkpoint_does_not_carry_threads();
    train(1, p1, count, l1);
    for (t = 2; t <= 4; ++t) {
        train(t, pn, count, ln);
        CHECK(memcmp(p1, pn, count * sizeof(float)) == 0);
        CHECK(memcmp(l1, ln, sizeof l1) == 0);
    }
    return CTEST_SUMMARY();
}
