/*
 * test_api.c: the C API of flowmlp against the contract (shared/API.md, flowmlp.h).
 *
 * Build by hand after `cargo build` (tests/ffi_c.rs does this under `cargo test`, with
 * -fsanitize=address,undefined when the compiler has it):
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude ffi-tests/test_api.c \
 *      target/debug/libflowmlp.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o test_api
 *
 * It trains small networks, checks the flat parameter layout against a reference
 * forward pass written here (in double), checks the gradients by finite differences
 * of that reference, and runs every error row of the contract: each refused call on
 * an existing model must leave its parameters and gradients bit for bit as they were
 * and must not write its output arguments. Prints "N checks, F failed"; exits 0 only
 * when every check passed.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest.h"
#include "flowmlp.h"

/* The out-of-memory test asks for an arena of 2^62 bytes; under AddressSanitizer that
 * must return NULL (as the plain allocator does) instead of aborting the program. (ASan
 * still prints a warning about the failed allocation to stderr.) */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
#endif

#define MAXP 4096 /* largest parameter count of the models below */
#define NSTATUS 13 /* status values 0..NSTATUS-1 exist */

#include "model_checks.h"

/* ---------------------------------------------------------------- helpers */

/* A value no call may write into an output argument of a failed call. */
static const float POISON = -12345.678f;

static void fill(float *v, size_t n, float value) {
    size_t i;
    for (i = 0; i < n; ++i) v[i] = value;
}

static int all_equal(const float *v, size_t n, float value) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (memcmp(&v[i], &value, sizeof value) != 0) return 0;
    return 1;
}

static int all_finite(const float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static int close_to(double got, double want, double rel) {
    return fabs(got - want) <= rel * (1.0 + fabs(want));
}

static flowmlp_config make_config(uint32_t d, uint32_t k, const uint32_t *hidden, uint32_t m,
                                  uint32_t max_batch, uint64_t seed) {
    flowmlp_config c;
    uint32_t i;
    memset(&c, 0, sizeof c);
    c.n_inputs = d;
    c.n_outputs = m;
    c.n_hidden = k;
    for (i = 0; i < k && i < FLOWMLP_MAX_HIDDEN; ++i) c.hidden[i] = hidden[i];
    c.max_batch = max_batch;
    c.seed = seed;
    c.isa = FLOWMLP_ISA_AUTO;
    return c;
}

/* flowmlp_create must fail with `want` and leave *out_model as it was. */
static char sentinel_object;
#define SENTINEL ((flowmlp_model *)(void *)&sentinel_object)

static void expect_create_fails(const flowmlp_config *c, flowmlp_status want, const char *what,
                                int line) {
    flowmlp_model *m = SENTINEL;
    flowmlp_status got = flowmlp_create(c, &m);
    expect_status(got, want, what, __FILE__, line);
    ctest_check(m == SENTINEL, __FILE__, line, "flowmlp_create left *out_model unwritten");
    if (got == FLOWMLP_OK && m != SENTINEL) flowmlp_destroy(m);
}
#define EXPECT_CREATE_FAILS(cfg, want) \
    expect_create_fails(&(cfg), (want), "flowmlp_create(&" #cfg ", &out_model)", __LINE__)

/* ------------------------------------------- reference network (double, flat layout) */

/* Loss L = (1/n) sum (Yhat - Y)^2 of a config's network with flat parameters theta;
 * writes the predictions to yhat (n x m) when not NULL. */
static double ref_loss(const flowmlp_config *c, const double *theta, const float *x,
                       const float *y, size_t n, double *yhat) {
    double a[64], z[64];
    uint32_t dims[FLOWMLP_MAX_HIDDEN + 2];
    uint32_t k = c->n_hidden, l, i, j, t;
    double loss = 0.0;
    size_t row;
    dims[0] = c->n_inputs;
    for (l = 0; l < k; ++l) dims[l + 1] = c->hidden[l];
    dims[k + 1] = c->n_outputs;
    for (row = 0; row < n; ++row) {
        const double *p = theta;
        for (i = 0; i < dims[0]; ++i) a[i] = x[row * dims[0] + i];
        for (l = 0; l <= k; ++l) {
            uint32_t in = dims[l], out = dims[l + 1];
            for (j = 0; j < out; ++j) {
                double s = p[(size_t)out * in + j]; /* b_l[j] follows W_l */
                for (t = 0; t < in; ++t) s += p[(size_t)j * in + t] * a[t];
                z[j] = (l < k && s < 0.0) ? 0.0 : s;
            }
            p += (size_t)out * in + out;
            for (j = 0; j < out; ++j) a[j] = z[j];
        }
        for (j = 0; j < c->n_outputs; ++j) {
            double e = a[j] - y[row * c->n_outputs + j];
            if (yhat) yhat[row * c->n_outputs + j] = a[j];
            loss += e * e;
        }
    }
    return loss / (double)n;
}

/* ---------------------------------------------------------------------- tests */

static void test_info(void) {
    int s, i, j;
    const char *msgs[NSTATUS];
    const char *unknown[4];
    const char *v = flowmlp_version();
    printf("flowmlp_version() = %s\n", v ? v : "(null)");
    CHECK_STR(v);
#ifdef FLOWMLP_EXPECTED_VERSION
    CHECK(v != NULL && strcmp(v, FLOWMLP_EXPECTED_VERSION) == 0);
#endif
    /* The header's status values are the documented ones. */
    CHECK_EQ_INT(FLOWMLP_OK, 0);
    CHECK_EQ_INT(FLOWMLP_ERROR_NULL_POINTER, 1);
    CHECK_EQ_INT(FLOWMLP_ERROR_INVALID_CONFIG, 2);
    CHECK_EQ_INT(FLOWMLP_ERROR_INVALID_ARGUMENT, 3);
    CHECK_EQ_INT(FLOWMLP_ERROR_BATCH_TOO_LARGE, 4);
    CHECK_EQ_INT(FLOWMLP_ERROR_OUT_OF_MEMORY, 5);
    CHECK_EQ_INT(FLOWMLP_ERROR_NO_FORWARD, 6);
    CHECK_EQ_INT(FLOWMLP_ERROR_NON_FINITE, 7);
    CHECK_EQ_INT(FLOWMLP_ERROR_UNSUPPORTED_ISA, 8);
    CHECK_EQ_INT(FLOWMLP_ERROR_INTERNAL, 9);
    CHECK_EQ_INT(FLOWMLP_ERROR_BAD_CHECKPOINT, 10);
    CHECK_EQ_INT(FLOWMLP_ERROR_IO, 11);
    CHECK_EQ_INT(FLOWMLP_ERROR_DIVERGED, 12);
    CHECK_EQ_INT(FLOWMLP_MAX_HIDDEN, 8);
    /* A non-empty, distinct sentence for every status; one for unknown values too. */
    for (s = 0; s < NSTATUS; ++s) {
        msgs[s] = flowmlp_status_message(s);
        CHECK_STR(msgs[s]);
    }
    for (i = 0; i < NSTATUS; ++i)
        for (j = i + 1; j < NSTATUS; ++j)
            CHECK(msgs[i] && msgs[j] && strcmp(msgs[i], msgs[j]) != 0);
    unknown[0] = flowmlp_status_message(NSTATUS);
    unknown[1] = flowmlp_status_message(-1);
    unknown[2] = flowmlp_status_message(1000);
    unknown[3] = flowmlp_status_message(INT32_MIN);
    for (i = 0; i < 4; ++i) {
        CHECK_STR(unknown[i]);
        for (s = 0; s < NSTATUS; ++s) CHECK(unknown[i] && msgs[s] && strcmp(unknown[i], msgs[s]) != 0);
    }
    printf("flowmlp_status_message(7) = \"%s\"\n", msgs[7] ? msgs[7] : "(null)");
    /* Kernel sets. */
    CHECK_EQ_INT(flowmlp_isa_supported(FLOWMLP_ISA_AUTO), 1);
    CHECK_EQ_INT(flowmlp_isa_supported(FLOWMLP_ISA_SCALAR), 1);
    CHECK_EQ_INT(flowmlp_isa_supported(5), 0);
    CHECK_EQ_INT(flowmlp_isa_supported(77), 0);
    CHECK_EQ_INT(flowmlp_isa_supported(UINT32_MAX), 0);
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
    CHECK_EQ_INT(flowmlp_isa_supported(FLOWMLP_ISA_NEON), 0);
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    CHECK_EQ_INT(flowmlp_isa_supported(FLOWMLP_ISA_AVX2), 0);
    CHECK_EQ_INT(flowmlp_isa_supported(FLOWMLP_ISA_AVX512), 0);
#endif
    printf("supported kernel sets: scalar=%d avx2=%d avx512=%d neon=%d\n",
           flowmlp_isa_supported(FLOWMLP_ISA_SCALAR), flowmlp_isa_supported(FLOWMLP_ISA_AVX2),
           flowmlp_isa_supported(FLOWMLP_ISA_AVX512), flowmlp_isa_supported(FLOWMLP_ISA_NEON));
    /* Functions that take NULL without complaint. */
    CHECK_EQ_INT(flowmlp_param_count(NULL), 0);
    CHECK(flowmlp_isa_name(NULL) == NULL);
    flowmlp_destroy(NULL);
    CHECK(1); /* survived flowmlp_destroy(NULL) */
}

static void test_create_errors(void) {
    static const uint32_t h8[1] = {8};
    const flowmlp_config good = make_config(3, 1, h8, 2, 4, 1);
    flowmlp_config c;
    flowmlp_model *m;
    int isa;

    /* NULL pointers. */
    m = SENTINEL;
    EXPECT(flowmlp_create(NULL, &m), FLOWMLP_ERROR_NULL_POINTER);
    CHECK(m == SENTINEL);
    EXPECT(flowmlp_create(&good, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_create(NULL, NULL), FLOWMLP_ERROR_NULL_POINTER);

    /* Zero dimensions. */
    c = good; c.n_inputs = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_outputs = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.hidden[0] = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_hidden = 3; c.hidden[0] = 4; c.hidden[1] = 0; c.hidden[2] = 4;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_hidden = 8; c.hidden[0] = c.hidden[1] = c.hidden[2] = c.hidden[3] = 2;
    c.hidden[4] = c.hidden[5] = c.hidden[6] = 2; c.hidden[7] = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.max_batch = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_inputs = 0; c.n_outputs = 0; c.hidden[0] = 0; c.max_batch = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);

    /* Hidden layer count outside 1..=8. */
    c = good; c.n_hidden = 0;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_hidden = 9;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_hidden = UINT32_MAX;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);

    /* isa values that are no flowmlp_isa. */
    c = good; c.isa = 5;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.isa = 77;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.isa = UINT32_MAX;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);

    /* Sizes whose arena overflows size_t: the input copy alone is
     * max_batch * n_inputs * 4 bytes = (2^32 - 1)^2 * 4 > 2^64 > SIZE_MAX. */
    CHECK((size_t)UINT32_MAX * UINT32_MAX > SIZE_MAX / sizeof(float) ||
          sizeof(size_t) < 8); /* i.e. the size really overflows on this target */
    c = good; c.n_inputs = UINT32_MAX; c.hidden[0] = UINT32_MAX; c.max_batch = UINT32_MAX;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    /* W_1 alone: 2^32 x (2^32 - 1) floats. */
    c = good; c.n_inputs = UINT32_MAX; c.hidden[0] = UINT32_MAX; c.max_batch = 1;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_hidden = 8; c.max_batch = 1;
    for (isa = 0; isa < 8; ++isa) c.hidden[isa] = UINT32_MAX;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    c = good; c.n_outputs = UINT32_MAX; c.max_batch = UINT32_MAX;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);

    /* An arena that fits size_t but not in memory: 2^30 inputs x 2^30 rows is an
     * input copy of 2^62 bytes (below isize max on 64 bits). */
    c = good; c.n_inputs = 1u << 30; c.hidden[0] = 16; c.max_batch = 1u << 30;
    if (sizeof(size_t) >= 8) {
        EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_OUT_OF_MEMORY);
    } else {
        EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    }
    /* Twice as many rows: the two input buffers alone need 2^64 bytes, past size_t. */
    c.max_batch = 1u << 31;
    if (sizeof(size_t) >= 8) {
        EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_INVALID_CONFIG);
    }

    /* Entries of hidden[] past n_hidden are ignored, whatever they hold. */
    c = good;
    for (isa = 1; isa < 8; ++isa) c.hidden[isa] = isa % 2 ? 0 : UINT32_MAX;
    m = NULL;
    if (EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) {
        CHECK_EQ_INT(flowmlp_param_count(m), 3 * 8 + 8 + 8 * 2 + 2);
        flowmlp_destroy(m);
    }

    /* Kernel sets: every supported one works and says so; the others are refused. */
    for (isa = FLOWMLP_ISA_SCALAR; isa <= FLOWMLP_ISA_NEON; ++isa) {
        static const char *const names[] = {"auto", "scalar", "avx2", "avx512", "neon"};
        c = good;
        c.isa = (uint32_t)isa;
        if (flowmlp_isa_supported((uint32_t)isa)) {
            m = NULL;
            if (EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) {
                const char *name = flowmlp_isa_name(m);
                CHECK(name != NULL && strcmp(name, names[isa]) == 0);
                flowmlp_destroy(m);
            }
        } else {
            printf("kernel set %s is not supported here: expecting UNSUPPORTED_ISA\n", names[isa]);
            EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_UNSUPPORTED_ISA);
        }
    }
#if defined(__x86_64__) || defined(_M_X64)
    c = good; c.isa = FLOWMLP_ISA_NEON;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_UNSUPPORTED_ISA);
#elif defined(__aarch64__) || defined(_M_ARM64)
    c = good; c.isa = FLOWMLP_ISA_AVX2;
    EXPECT_CREATE_FAILS(c, FLOWMLP_ERROR_UNSUPPORTED_ISA);
#endif
}

/* Same seed, same weights; He initialization with zero biases in the flat layout. */
static void test_init(void) {
    static const uint32_t h[2] = {8, 5};
    static float p1[MAXP], p2[MAXP];
    flowmlp_config c = make_config(3, 2, h, 2, 4, 7);
    flowmlp_model *a = create_or_die(&c), *b = create_or_die(&c);
    size_t n = flowmlp_param_count(a), i;
    int biases_zero = 1, weights_nonzero = 1;
    CHECK_EQ_INT(n, 3 * 8 + 8 + 8 * 5 + 5 + 5 * 2 + 2);
    CHECK_EQ_INT(flowmlp_param_count(b), n);
    EXPECT(flowmlp_get_params(a, p1, n), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(b, p2, n), FLOWMLP_OK);
    CHECK(memcmp(p1, p2, n * sizeof(float)) == 0);
    CHECK(all_finite(p1, n));
    /* b_1 at [24, 32), b_2 at [72, 77), b_o at [87, 89). */
    for (i = 24; i < 32; ++i) biases_zero &= p1[i] == 0.0f;
    for (i = 72; i < 77; ++i) biases_zero &= p1[i] == 0.0f;
    for (i = 87; i < 89; ++i) biases_zero &= p1[i] == 0.0f;
    for (i = 0; i < 24; ++i) weights_nonzero &= p1[i] != 0.0f;
    CHECK(biases_zero);
    CHECK(weights_nonzero);
    flowmlp_destroy(b);
    c.seed = 8;
    b = create_or_die(&c);
    EXPECT(flowmlp_get_params(b, p2, n), FLOWMLP_OK);
    CHECK(memcmp(p1, p2, n * sizeof(float)) != 0);
    flowmlp_destroy(a);
    flowmlp_destroy(b);
}

/* Predictions, loss and gradients against the reference in double. */
static void test_against_reference(void) {
    static const uint32_t h[2] = {6, 5};
    static const float x[4 * 3] = {0.5f, -1.0f, 0.25f, -0.75f, 0.1f, 0.9f,
                                   1.5f, 0.3f, -0.2f, 0.05f, -0.6f, -1.1f};
    static const float y[4 * 2] = {0.3f, -0.2f, 1.0f, 0.5f, -0.4f, 0.8f, 0.0f, -1.0f};
    static float params[MAXP], grads[MAXP];
    static double theta[MAXP];
    double ref_yhat[8], ref_l, worst = 0.0;
    float yhat[8], loss = POISON;
    flowmlp_config c = make_config(3, 2, h, 2, 4, 3);
    flowmlp_model *m = create_or_die(&c);
    size_t n = flowmlp_param_count(m), i;
    int ok_fwd = 1, ok_grad = 1;

    /* Set distinct, reproducible parameters so that the layout matters. */
    for (i = 0; i < n; ++i) params[i] = (float)(0.5 * sin(1.7 * (double)i + 0.3));
    EXPECT(flowmlp_set_params(m, params, n), FLOWMLP_OK);
    for (i = 0; i < n; ++i) theta[i] = params[i];

    EXPECT(flowmlp_forward(m, x, 4, yhat), FLOWMLP_OK);
    ref_l = ref_loss(&c, theta, x, y, 4, ref_yhat);
    for (i = 0; i < 8; ++i) ok_fwd &= close_to(yhat[i], ref_yhat[i], 1e-5);
    CHECK(ok_fwd);
    EXPECT(flowmlp_backward(m, y, &loss), FLOWMLP_OK);
    CHECK(close_to(loss, ref_l, 1e-5));
    EXPECT(flowmlp_get_grads(m, grads, n), FLOWMLP_OK);

    /* Central differences of the reference loss, parameter by parameter. */
    for (i = 0; i < n; ++i) {
        const double eps = 1e-6, keep = theta[i];
        double lp, lm, fd;
        theta[i] = keep + eps;
        lp = ref_loss(&c, theta, x, y, 4, NULL);
        theta[i] = keep - eps;
        lm = ref_loss(&c, theta, x, y, 4, NULL);
        theta[i] = keep;
        fd = (lp - lm) / (2.0 * eps);
        if (fabs(grads[i] - fd) > worst) worst = fabs(grads[i] - fd);
        if (!close_to(grads[i], fd, 1e-4)) {
            ok_grad = 0;
            fprintf(stderr, "gradient %lu: flowmlp %.9g, finite differences %.9g\n",
                    (unsigned long)i, grads[i], fd);
        }
    }
    CHECK(ok_grad);
    printf("gradients vs finite differences: max abs difference %.3g over %lu parameters\n",
           worst, (unsigned long)n);

    /* Forward with one row after a batch of four: only that row counts. */
    EXPECT(flowmlp_forward(m, x + 3, 1, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y + 2, &loss), FLOWMLP_OK);
    CHECK(close_to(loss, ref_loss(&c, theta, x + 3, y + 2, 1, NULL), 1e-5));
    flowmlp_destroy(m);
}

/* train_step gives the same loss and parameters as forward + backward + step. */
static void test_train_step_matches_three_calls(void) {
    static const uint32_t h[2] = {8, 5};
    static const float x[4 * 3] = {0.5f, -1.0f, 0.25f, -0.75f, 0.1f, 0.9f,
                                   1.5f, 0.3f, -0.2f, 0.05f, -0.6f, -1.1f};
    static const float y[4 * 2] = {0.3f, -0.2f, 1.0f, 0.5f, -0.4f, 0.8f, 0.0f, -1.0f};
    static float pa[MAXP], pb[MAXP], ga[MAXP], gb[MAXP];
    flowmlp_config c = make_config(3, 2, h, 2, 4, 11);
    flowmlp_model *a = create_or_die(&c), *b = create_or_die(&c);
    size_t n = flowmlp_param_count(a), i;
    float la = POISON, lb = POISON;
    int step, ok = 1;
    for (step = 0; step < 3; ++step) {
        EXPECT(flowmlp_train_step(a, x, y, 4, 0.05f, &la), FLOWMLP_OK);
        EXPECT(flowmlp_forward(b, x, 4, NULL), FLOWMLP_OK);
        EXPECT(flowmlp_backward(b, y, &lb), FLOWMLP_OK);
        EXPECT(flowmlp_step(b, 0.05f), FLOWMLP_OK);
        CHECK(close_to(la, lb, 1e-5));
    }
    EXPECT(flowmlp_get_params(a, pa, n), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(b, pb, n), FLOWMLP_OK);
    EXPECT(flowmlp_get_grads(a, ga, n), FLOWMLP_OK);
    EXPECT(flowmlp_get_grads(b, gb, n), FLOWMLP_OK);
    for (i = 0; i < n; ++i) ok &= close_to(pa[i], pb[i], 1e-5) && close_to(ga[i], gb[i], 1e-4);
    CHECK(ok);
    /* train_step with loss_out NULL. */
    EXPECT(flowmlp_train_step(a, x, y, 4, 0.05f, NULL), FLOWMLP_OK);
    flowmlp_destroy(a);
    flowmlp_destroy(b);
}

/* XOR with 2 -> 8 -> 1: the loss must fall a lot. */
static void test_xor(void) {
    static const uint32_t h[1] = {8};
    static const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const float y[4] = {0, 1, 1, 0};
    flowmlp_config c = make_config(2, 1, h, 1, 4, 2024);
    flowmlp_model *m = create_or_die(&c);
    float first = POISON, loss = POISON, yhat[4];
    int i, ok = 1;
    const char *isa = flowmlp_isa_name(m);
    printf("flowmlp_isa_name(model) = %s\n", isa ? isa : "(null)");
    CHECK(isa != NULL && (strcmp(isa, "scalar") == 0 || strcmp(isa, "avx2") == 0 ||
                          strcmp(isa, "avx512") == 0 || strcmp(isa, "neon") == 0));
    CHECK_EQ_INT(flowmlp_param_count(m), 2 * 8 + 8 + 8 + 1);
    for (i = 0; i < 2000; ++i) {
        ok &= flowmlp_train_step(m, x, y, 4, 0.1f, &loss) == FLOWMLP_OK;
        if (i == 0) first = loss;
    }
    CHECK(ok);
    EXPECT(flowmlp_forward(m, x, 4, yhat), FLOWMLP_OK);
    printf("XOR: loss %.4g -> %.4g; predictions %.3f %.3f %.3f %.3f\n", first, loss, yhat[0],
           yhat[1], yhat[2], yhat[3]);
    CHECK(loss < first / 50.0f);
    CHECK(loss < 0.01f);
    for (i = 0; i < 4; ++i) CHECK(fabs(yhat[i] - y[i]) < 0.2);
    flowmlp_destroy(m);
}

/* Every refused call on an existing model. */
static void test_errors_on_model(void) {
    static const uint32_t h[2] = {8, 5};
    static const float x[5 * 3] = {0.5f, -1.0f, 0.25f, -0.75f, 0.1f, 0.9f, 1.5f, 0.3f,
                                   -0.2f, 0.05f, -0.6f, -1.1f, 0.4f, 0.4f, -0.4f};
    static const float y[5 * 2] = {0.3f, -0.2f, 1.0f, 0.5f, -0.4f, 0.8f, 0.0f, -1.0f, 1.0f, 1.0f};
    static float buf[MAXP + 8], vals[MAXP], grads0[MAXP], bad_x[5 * 3], bad_y[5 * 2];
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const float bad_lr[5] = {-1.0f, -FLT_MIN, NAN, INFINITY, -INFINITY};
    flowmlp_config c = make_config(3, 2, h, 2, 4, 5);
    flowmlp_model *m = create_or_die(&c);
    const size_t n = flowmlp_param_count(m);
    float out[5 * 2], loss;
    size_t lens[4];
    int i, j;
    lens[0] = 0;
    lens[1] = n - 1;
    lens[2] = n + 1;
    lens[3] = SIZE_MAX;

    /* Fresh model: gradients are zero; no forward to differentiate. */
    EXPECT(flowmlp_get_grads(m, grads0, n), FLOWMLP_OK);
    CHECK(all_equal(grads0, n, 0.0f));
    loss = POISON;
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);
    CHECK(loss == POISON);
    EXPECT_REFUSED(m, flowmlp_backward(m, y, NULL), FLOWMLP_ERROR_NO_FORWARD);

    /* NULL pointers, model by model and argument by argument. */
    fill(out, 10, POISON);
    EXPECT_REFUSED(m, flowmlp_forward(NULL, x, 1, out), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_forward(m, NULL, 1, out), FLOWMLP_ERROR_NULL_POINTER);
    CHECK(all_equal(out, 10, POISON));
    EXPECT_REFUSED(m, flowmlp_backward(NULL, y, &loss), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_step(NULL, 0.1f), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_train_step(NULL, x, y, 1, 0.1f, &loss), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_train_step(m, NULL, y, 1, 0.1f, &loss), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_train_step(m, x, NULL, 1, 0.1f, &loss), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_train_step(m, NULL, NULL, 1, 0.1f, NULL), FLOWMLP_ERROR_NULL_POINTER);
    CHECK(loss == POISON);
    fill(buf, n, POISON);
    EXPECT_REFUSED(m, flowmlp_get_params(NULL, buf, n), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_get_params(m, NULL, n), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_get_grads(NULL, buf, n), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_get_grads(m, NULL, n), FLOWMLP_ERROR_NULL_POINTER);
    CHECK(all_equal(buf, n, POISON));
    for (i = 0; i < (int)n; ++i) vals[i] = 0.25f;
    EXPECT_REFUSED(m, flowmlp_set_params(NULL, vals, n), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_set_params(m, NULL, n), FLOWMLP_ERROR_NULL_POINTER);

    /* n = 0 and n > max_batch (4). */
    EXPECT_REFUSED(m, flowmlp_forward(m, x, 0, out), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT_REFUSED(m, flowmlp_train_step(m, x, y, 0, 0.1f, &loss), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT_REFUSED(m, flowmlp_forward(m, x, 5, out), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    EXPECT_REFUSED(m, flowmlp_forward(m, x, SIZE_MAX, out), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    EXPECT_REFUSED(m, flowmlp_forward(m, x, SIZE_MAX / 3 + 1, out), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    EXPECT_REFUSED(m, flowmlp_train_step(m, x, y, 5, 0.1f, &loss), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    EXPECT_REFUSED(m, flowmlp_train_step(m, x, y, SIZE_MAX, 0.1f, &loss),
                   FLOWMLP_ERROR_BATCH_TOO_LARGE);
    CHECK(all_equal(out, 10, POISON));
    CHECK(loss == POISON);
    /* A refused forward kept nothing: backward still has no forward. */
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);

    /* Wrong lengths. */
    for (i = 0; i < 4; ++i) {
        fill(buf, n + 8, POISON);
        EXPECT_REFUSED(m, flowmlp_get_params(m, buf, lens[i]), FLOWMLP_ERROR_INVALID_ARGUMENT);
        EXPECT_REFUSED(m, flowmlp_get_grads(m, buf, lens[i]), FLOWMLP_ERROR_INVALID_ARGUMENT);
        CHECK(all_equal(buf, n + 8, POISON));
        fill(buf, n + 8, 0.5f);
        EXPECT_REFUSED(m, flowmlp_set_params(m, buf, lens[i]), FLOWMLP_ERROR_INVALID_ARGUMENT);
    }

    /* Non-finite parameters for set_params: first, middle, last position. */
    for (i = 0; i < 3; ++i) {
        const size_t at[3] = {0, n / 2, n - 1};
        for (j = 0; j < 3; ++j) {
            take_snapshot(m, &snap_before);
            memcpy(vals, snap_before.params, n * sizeof(float));
            vals[at[j]] = bad[i];
            EXPECT_REFUSED(m, flowmlp_set_params(m, vals, n), FLOWMLP_ERROR_NON_FINITE);
        }
    }

    /* Non-finite inputs to forward and train_step (in the last value of the batch). */
    for (i = 0; i < 3; ++i) {
        memcpy(bad_x, x, sizeof x);
        bad_x[4 * 3 - 1] = bad[i];
        loss = POISON;
        fill(out, 10, POISON);
        EXPECT_REFUSED(m, flowmlp_forward(m, bad_x, 4, out), FLOWMLP_ERROR_NON_FINITE);
        EXPECT_REFUSED(m, flowmlp_train_step(m, bad_x, y, 4, 0.1f, &loss), FLOWMLP_ERROR_NON_FINITE);
        bad_x[4 * 3 - 1] = x[4 * 3 - 1];
        bad_x[0] = bad[i];
        EXPECT_REFUSED(m, flowmlp_forward(m, bad_x, 1, out), FLOWMLP_ERROR_NON_FINITE);
        CHECK(all_equal(out, 10, POISON));
        CHECK(loss == POISON);
    }
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);

    /* Now a real forward and backward, so that the gradients are non-zero. */
    EXPECT(flowmlp_forward(m, x, 4, out), FLOWMLP_OK);
    CHECK(all_finite(out, 8));
    CHECK(all_equal(out + 8, 2, POISON)); /* only n x m predictions written */
    EXPECT(flowmlp_backward(m, y, &loss), FLOWMLP_OK);
    CHECK(loss != POISON && isfinite(loss) && loss > 0.0f);
    EXPECT(flowmlp_get_grads(m, grads0, n), FLOWMLP_OK);
    CHECK(!all_equal(grads0, n, 0.0f));
    CHECK(all_finite(grads0, n));
    /* backward again on the same kept forward: the same gradients, bit for bit. */
    EXPECT_REFUSED(m, flowmlp_backward(m, y, NULL), FLOWMLP_OK);

    /* Bad learning rates, for step and train_step. */
    for (i = 0; i < 5; ++i) {
        loss = POISON;
        EXPECT_REFUSED(m, flowmlp_step(m, bad_lr[i]), FLOWMLP_ERROR_INVALID_ARGUMENT);
        EXPECT_REFUSED(m, flowmlp_train_step(m, x, y, 4, bad_lr[i], &loss),
                       FLOWMLP_ERROR_INVALID_ARGUMENT);
        CHECK(loss == POISON);
    }

    /* Non-finite targets for backward and train_step. */
    for (i = 0; i < 3; ++i) {
        memcpy(bad_y, y, sizeof y);
        bad_y[4 * 2 - 1] = bad[i];
        loss = POISON;
        EXPECT_REFUSED(m, flowmlp_backward(m, bad_y, &loss), FLOWMLP_ERROR_NON_FINITE);
        EXPECT_REFUSED(m, flowmlp_train_step(m, x, bad_y, 4, 0.1f, &loss),
                       FLOWMLP_ERROR_NON_FINITE);
        bad_y[4 * 2 - 1] = y[4 * 2 - 1];
        bad_y[0] = bad[i];
        EXPECT_REFUSED(m, flowmlp_backward(m, bad_y, &loss), FLOWMLP_ERROR_NON_FINITE);
        CHECK(loss == POISON);
    }
    /* Finite targets whose loss overflows: (1e30)^2 is infinite in float. */
    fill(bad_y, 10, 1e30f);
    EXPECT_REFUSED(m, flowmlp_backward(m, bad_y, &loss), FLOWMLP_ERROR_DIVERGED);
    CHECK(loss == POISON);

    /* Every refusal above kept the forward: backward works and reproduces the gradients. */
    EXPECT_REFUSED(m, flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    CHECK(same_state(m, &snap_before) && memcmp(snap_before.grads, grads0, n * sizeof(float)) == 0);

    /* A rate of zero is allowed and changes no parameter; it ends the kept forward. */
    take_snapshot(m, &snap_before);
    EXPECT(flowmlp_step(m, 0.0f), FLOWMLP_OK);
    CHECK(same_state(m, &snap_before));
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);

    /* NO_FORWARD after set_params (even with the same values) and after a step. */
    EXPECT(flowmlp_forward(m, x, 4, NULL), FLOWMLP_OK);
    take_snapshot(m, &snap_before);
    EXPECT(flowmlp_set_params(m, snap_before.params, n), FLOWMLP_OK);
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);
    EXPECT(flowmlp_forward(m, x, 4, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_step(m, 0.01f), FLOWMLP_OK);
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);
    /* ... and after a successful train_step. */
    EXPECT(flowmlp_forward(m, x, 4, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_train_step(m, x, y, 4, 0.01f, NULL), FLOWMLP_OK);
    EXPECT_REFUSED(m, flowmlp_backward(m, y, &loss), FLOWMLP_ERROR_NO_FORWARD);
    flowmlp_destroy(m);
}

/* A step whose update overflows is refused and changes no parameter. */
static void test_overflowing_step(void) {
    static const uint32_t h[1] = {8};
    static const float x[2 * 2] = {0.0f, 0.5f, 0.0f, -0.25f}; /* input 0 is always 0 */
    static const float y_big[2] = {1e9f, 1e9f};
    static const float y[2] = {0.5f, -0.5f};
    static float p[MAXP];
    flowmlp_config c = make_config(2, 1, h, 1, 2, 9);
    flowmlp_model *m = create_or_die(&c);
    size_t n = flowmlp_param_count(m);
    float loss = POISON;

    /* W_1[0][0] = 3e38 multiplies input 0, which is 0: predictions stay finite. */
    EXPECT(flowmlp_get_params(m, p, n), FLOWMLP_OK);
    p[0] = 3e38f;
    EXPECT(flowmlp_set_params(m, p, n), FLOWMLP_OK);
    EXPECT(flowmlp_forward(m, x, 2, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y_big, &loss), FLOWMLP_OK);
    CHECK(isfinite(loss) && loss > 1e17f);
    /* gradient of b_o is about -2e9: 1e30 * 2e9 is not a float. */
    EXPECT_REFUSED(m, flowmlp_step(m, 1e30f), FLOWMLP_ERROR_DIVERGED);
    EXPECT_REFUSED(m, flowmlp_step(m, FLT_MAX), FLOWMLP_ERROR_DIVERGED);
    take_snapshot(m, &snap_before);
    CHECK(snap_before.params[0] == 3e38f);
    /* The refused step kept the forward. */
    EXPECT_REFUSED(m, flowmlp_backward(m, y_big, NULL), FLOWMLP_OK);

    /* The same through train_step: nothing applied, parameters and gradients kept.
     * (Gradients first from a different batch, so that a leak would show.) */
    EXPECT(flowmlp_forward(m, x, 2, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    loss = POISON;
    take_snapshot(m, &snap_before);
    EXPECT(flowmlp_train_step(m, x, y_big, 2, 1e30f, &loss), FLOWMLP_ERROR_DIVERGED);
    CHECK(loss == POISON);
    take_snapshot(m, &snap_after);
    CHECK(memcmp(snap_after.params, snap_before.params, n * sizeof(float)) == 0);
    /* The refused batch's gradients are not kept either. */
    CHECK(memcmp(snap_after.grads, snap_before.grads, n * sizeof(float)) == 0);
    /* Documented: a batch's train_step refused after its forward pass ran drops the
     * kept forward (one row of this network may keep it). */
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_ERROR_NO_FORWARD);
    EXPECT(flowmlp_forward(m, x, 2, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    take_snapshot(m, &snap_before);
    EXPECT(flowmlp_train_step(m, x, y_big, 1, FLT_MAX, &loss), FLOWMLP_ERROR_DIVERGED);
    CHECK(loss == POISON);
    take_snapshot(m, &snap_after);
    CHECK(memcmp(snap_after.params, snap_before.params, n * sizeof(float)) == 0);
    CHECK(memcmp(snap_after.grads, snap_before.grads, n * sizeof(float)) == 0);
    /* A train_step whose loss overflows. */
    {
        const float y_huge[2] = {1e30f, -1e30f};
        EXPECT_REFUSED(m, flowmlp_train_step(m, x, y_huge, 2, 0.1f, &loss),
                       FLOWMLP_ERROR_DIVERGED);
        CHECK(loss == POISON);
    }

    /* A sane step still works, and keeps the large parameter finite. */
    EXPECT(flowmlp_train_step(m, x, y, 2, 0.01f, &loss), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(m, p, n), FLOWMLP_OK);
    CHECK(all_finite(p, n));
    CHECK(p[0] == 3e38f); /* its gradient is 0: input 0 is 0 */
    flowmlp_destroy(m);
}

int main(void) {
    test_info();
    test_create_errors();
    test_init();
    test_against_reference();
    test_train_step_matches_three_calls();
    test_xor();
    test_errors_on_model();
    test_overflowing_step();
    return CTEST_SUMMARY();
}
