/*
 * test_optim.c: the C API of the optimizers, the loss selection and class prediction
 * (flowmlp_set_optimizer, flowmlp_config.loss, flowmlp_predict_class).
 *
 * Build by hand after `cargo build` (tests/ffi_c.rs does this under `cargo test`, with
 * -fsanitize=address,undefined when the compiler has it):
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -Iffi-tests \
 *      ffi-tests/test_optim.c target/debug/libflowmlp.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o test_optim
 *
 * Checks: every optimizer kind is accepted and its first step is the one its rule
 * gives (SGD: -lr g; Nesterov: -lr (1 + mu) g; Adam: -lr g / (|g| + eps); AdamW: the
 * same after p *= 1 - lr wd); every invalid kind or hyperparameter is
 * INVALID_ARGUMENT and changes nothing, neither the parameters and gradients (bit for
 * bit) nor the optimizer state (the model goes on exactly like an untouched twin);
 * NULL pointers; the loss field (0, 1, anything else INVALID_CONFIG); the
 * cross-entropy loss value against double; predict_class against the argmax of
 * flowmlp_forward, with its NULL, n = 0 and n > max_batch refusals; and a small
 * cross-entropy classifier trained with Adam through the C API. Prints
 * "N checks, F failed"; exits 0 only when every check passed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest.h"
#include "flowmlp.h"

#define MAXP 1024 /* largest parameter count of the models below */

/* ---------------------------------------------------------------- helpers */

#include "model_checks.h"

static flowmlp_config make_config(uint32_t d, uint32_t h, uint32_t m, uint32_t max_batch,
                                  uint64_t seed, uint32_t loss) {
    flowmlp_config c;
    memset(&c, 0, sizeof c);
    c.n_inputs = d;
    c.n_outputs = m;
    c.n_hidden = 1;
    c.hidden[0] = h;
    c.max_batch = max_batch;
    c.seed = seed;
    c.isa = FLOWMLP_ISA_AUTO;
    c.loss = loss;
    return c;
}

/* Deterministic data in [-1, 1). */
static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static float uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}
static void fill_uniform(float *v, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) v[i] = uniform();
}

static flowmlp_optimizer sgd(float momentum, uint32_t nesterov, float weight_decay) {
    flowmlp_optimizer o;
    memset(&o, 0, sizeof o);
    o.kind = FLOWMLP_OPTIMIZER_SGD;
    o.momentum = momentum;
    o.nesterov = nesterov;
    o.weight_decay = weight_decay;
    return o;
}

static flowmlp_optimizer adam(uint32_t kind, float weight_decay) {
    flowmlp_optimizer o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.weight_decay = weight_decay;
    return o;
}

/* Index of the first largest of m values. */
static uint32_t argmax(const float *row, uint32_t m) {
    uint32_t j, best = 0;
    for (j = 1; j < m; ++j)
        if (row[j] > row[best]) best = j;
    return best;
}

/* ------------------------------------------------------------------ tests */

/* D -> H -> M, batch N: the model of the optimizer tests. */
enum { D = 5, H = 7, M = 3, N = 4 };

/* One step of `opt` from the same parameters and gradients: every parameter moves as
 * `want(p, g)` says, within float tolerance. */
typedef double (*rule_fn)(double p, double g);
static double lr_g;
static double mu_g;
static double wd_g;
static double rule_sgd(double p, double g) { return p - lr_g * (g + wd_g * p); }
static double rule_nesterov(double p, double g) { return p - lr_g * (1.0 + mu_g) * g; }
static double rule_adam(double p, double g) {
    double gw = g + wd_g * p; /* Adam's L2 */
    return p - lr_g * gw / (fabs(gw) + 1e-8);
}
static double rule_adamw(double p, double g) {
    return p * (1.0 - lr_g * wd_g) - lr_g * g / (fabs(g) + 1e-8);
}

static void check_first_step(const char *name, flowmlp_optimizer opt, rule_fn rule,
                             const float *x, const float *y) {
    flowmlp_config c = make_config(D, H, M, N, 3, FLOWMLP_LOSS_MSE);
    flowmlp_model *m = create_or_die(&c);
    static float p0[MAXP], p1[MAXP], g[MAXP];
    size_t i, np = flowmlp_param_count(m), bad = 0;
    const float lr = 0.01f;
    EXPECT(flowmlp_set_optimizer(m, &opt), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(m, p0, np), FLOWMLP_OK);
    EXPECT(flowmlp_forward(m, x, N, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    EXPECT(flowmlp_get_grads(m, g, np), FLOWMLP_OK);
    EXPECT(flowmlp_step(m, lr), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(m, p1, np), FLOWMLP_OK);
    lr_g = lr;
    for (i = 0; i < np; ++i) {
        double want;
        /* Adam's first step is lr times the sign of the (decayed) gradient, which is
         * ill-conditioned where that is about 0: skip those. */
        if (rule == rule_adam && fabs(g[i] + wd_g * p0[i]) < 1e-4) continue;
        if (rule == rule_adamw && fabs(g[i]) < 1e-4) continue;
        want = rule(p0[i], g[i]);
        if (fabs(p1[i] - want) > 1e-5 * (fabs(want) + 0.1)) {
            if (bad++ == 0)
                fprintf(stderr, "%s: parameter %lu is %.9g after one step, expected %.9g\n",
                        name, (unsigned long)i, p1[i], want);
        }
    }
    CTEST_NOTE("first step of %s: %lu of %lu parameters off the rule\n", name,
               (unsigned long)bad, (unsigned long)np);
    CHECK(bad == 0);
    flowmlp_destroy(m);
}

static void test_each_kind(void) {
    float x[N * D], y[N * M];
    fill_uniform(x, N * D);
    fill_uniform(y, N * M);
    wd_g = 0.0;
    check_first_step("SGD", sgd(0.0f, 0, 0.0f), rule_sgd, x, y);
    /* The first momentum step is plain SGD (the buffer starts as the gradient). */
    check_first_step("SGD momentum", sgd(0.9f, 0, 0.0f), rule_sgd, x, y);
    mu_g = 0.9f;
    check_first_step("SGD Nesterov", sgd(0.9f, 1, 0.0f), rule_nesterov, x, y);
    wd_g = 0.25f;
    check_first_step("SGD weight decay", sgd(0.0f, 0, 0.25f), rule_sgd, x, y);
    wd_g = 0.0;
    check_first_step("Adam", adam(FLOWMLP_OPTIMIZER_ADAM, 0.0f), rule_adam, x, y);
    wd_g = 0.5f;
    check_first_step("Adam weight decay", adam(FLOWMLP_OPTIMIZER_ADAM, 0.5f), rule_adam, x, y);
    check_first_step("AdamW", adam(FLOWMLP_OPTIMIZER_ADAMW, 0.5f), rule_adamw, x, y);
}

/* Train `m` `steps` steps on batches drawn from `*seed`. */
static void train(flowmlp_model *m, int steps, uint64_t seed) {
    float x[N * D], y[N * M];
    int s;
    rng_state = seed;
    for (s = 0; s < steps; ++s) {
        fill_uniform(x, N * D);
        fill_uniform(y, N * M);
        if (flowmlp_train_step(m, x, y, N, 0.01f, NULL) != FLOWMLP_OK) {
            fprintf(stderr, "train: step %d failed\n", s);
            exit(2);
        }
    }
}

static void test_invalid_optimizers(void) {
    flowmlp_config c = make_config(D, H, M, N, 5, FLOWMLP_LOSS_MSE);
    flowmlp_model *a = create_or_die(&c), *b = create_or_die(&c);
    flowmlp_optimizer good = adam(FLOWMLP_OPTIMIZER_ADAM, 0.01f), bad[32];
    float pa[MAXP], pb[MAXP];
    size_t i, nbad = 0, np = flowmlp_param_count(a);
    good.clip_norm = 0.5f;
    EXPECT(flowmlp_set_optimizer(a, &good), FLOWMLP_OK);
    EXPECT(flowmlp_set_optimizer(b, &good), FLOWMLP_OK);
    train(a, 3, 101);
    train(b, 3, 101);

    /* BAD(field, value): `good` with one field changed. */
#define BAD(field, value) (bad[nbad] = good, bad[nbad].field = (value), ++nbad)
    BAD(kind, 3u);
    BAD(kind, UINT32_MAX);
    bad[nbad++] = sgd(0.9f, 2, 0.0f);            /* nesterov not 0/1 */
    bad[nbad++] = sgd(0.0f, 1, 0.0f);            /* Nesterov without momentum */
    bad[nbad++] = sgd(1.0f, 0, 0.0f);            /* momentum 1 */
    bad[nbad++] = sgd(-0.5f, 0, 0.0f);           /* momentum < 0 */
    bad[nbad++] = sgd((float)NAN, 0, 0.0f);      /* momentum NaN */
    bad[nbad++] = sgd(0.9f, 0, -1.0f);           /* weight decay < 0 */
    bad[nbad++] = sgd(0.9f, 0, (float)INFINITY); /* weight decay inf */
    BAD(beta1, 1.0f);
    BAD(beta1, -0.1f);
    BAD(beta1, (float)NAN);
    BAD(beta2, 1.0f);
    BAD(beta2, -0.1f);
    BAD(eps, 0.0f);
    BAD(eps, -1e-8f);
    BAD(eps, (float)NAN);
    BAD(eps, (float)INFINITY);
    BAD(weight_decay, -0.01f);
    BAD(weight_decay, (float)NAN);
    BAD(clip_norm, -1.0f);
    BAD(clip_norm, (float)NAN);
    BAD(clip_norm, (float)INFINITY);
    good.kind = FLOWMLP_OPTIMIZER_ADAMW;
    BAD(beta2, 1.5f);
    BAD(eps, 0.0f);
    BAD(weight_decay, -1.0f);
    good.kind = FLOWMLP_OPTIMIZER_ADAM;
#undef BAD
    for (i = 0; i < nbad; ++i) {
        take_snapshot(a, &snap_before);
        if (!EXPECT(flowmlp_set_optimizer(a, &bad[i]), FLOWMLP_ERROR_INVALID_ARGUMENT))
            fprintf(stderr, "    (invalid optimizer number %lu)\n", (unsigned long)i);
        CHECK(same_state(a, &snap_before));
    }
    EXPECT_REFUSED(a, flowmlp_set_optimizer(a, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_set_optimizer(NULL, &good), FLOWMLP_ERROR_NULL_POINTER);

    /* The moments, step count and clipping were kept: the same future as the twin. */
    train(a, 4, 102);
    train(b, 4, 102);
    EXPECT(flowmlp_get_params(a, pa, np), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(b, pb, np), FLOWMLP_OK);
    CHECK(memcmp(pa, pb, np * sizeof(float)) == 0);

    /* Setting the optimizer again starts from fresh state: a fresh model with the
     * same parameters goes on identically. */
    {
        flowmlp_model *f = create_or_die(&c);
        EXPECT(flowmlp_set_params(f, pa, np), FLOWMLP_OK);
        EXPECT(flowmlp_set_optimizer(f, &good), FLOWMLP_OK);
        EXPECT(flowmlp_set_optimizer(a, &good), FLOWMLP_OK);
        train(a, 4, 103);
        train(f, 4, 103);
        EXPECT(flowmlp_get_params(a, pa, np), FLOWMLP_OK);
        EXPECT(flowmlp_get_params(f, pb, np), FLOWMLP_OK);
        CHECK(memcmp(pa, pb, np * sizeof(float)) == 0);
        flowmlp_destroy(f);
    }
    flowmlp_destroy(a);
    flowmlp_destroy(b);
}

static void test_loss_field(void) {
    flowmlp_config c = make_config(3, 4, 2, 2, 1, FLOWMLP_LOSS_MSE);
    flowmlp_model *m = NULL;
    char sentinel;
    flowmlp_model *const marker = (flowmlp_model *)(void *)&sentinel;
    uint32_t bad[3] = {2u, 7u, UINT32_MAX};
    int i;
    for (i = 0; i < 3; ++i) {
        c.loss = bad[i];
        m = marker;
        EXPECT(flowmlp_create(&c, &m), FLOWMLP_ERROR_INVALID_CONFIG);
        CHECK(m == marker);
        CHECK(flowmlp_arena_size(&c) == 0);
    }
    c.loss = FLOWMLP_LOSS_CROSS_ENTROPY;
    CHECK(flowmlp_arena_size(&c) > 0);
    m = NULL;
    if (EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) {
        /* The loss of backward is (1/n) sum_i (logsumexp(z_i) - sum_j y_ij z_ij) for
         * rows of probabilities y_i; against double on flowmlp's own outputs. */
        float x[6] = {0.5f, -1.0f, 0.25f, 2.0f, 0.0f, -0.75f};
        float y[4] = {1.0f, 0.0f, 0.3f, 0.7f};
        float z[4], loss = 0.0f;
        double want = 0.0;
        int r;
        EXPECT(flowmlp_forward(m, x, 2, z), FLOWMLP_OK);
        EXPECT(flowmlp_backward(m, y, &loss), FLOWMLP_OK);
        for (r = 0; r < 2; ++r) {
            double mx = z[2 * r] > z[2 * r + 1] ? z[2 * r] : z[2 * r + 1];
            double lse = mx + log(exp(z[2 * r] - mx) + exp(z[2 * r + 1] - mx));
            want += lse - (y[2 * r] * z[2 * r] + y[2 * r + 1] * z[2 * r + 1]);
        }
        want /= 2.0;
        CTEST_NOTE("cross-entropy loss %.9g, double %.9g\n", loss, want);
        CHECK(fabs(loss - want) <= 1e-6 * (fabs(want) + 1e-3));
        flowmlp_destroy(m);
    }
}

static void test_predict_class(void) {
    enum { PD = 4, PM = 5, PB = 6 };
    flowmlp_config c = make_config(PD, 9, PM, PB, 17, FLOWMLP_LOSS_CROSS_ENTROPY);
    flowmlp_model *m = create_or_die(&c);
    float x[(PB + 1) * PD], z[PB * PM], y[PB * PM];
    uint32_t classes[PB + 1];
    size_t n, i;
    fill_uniform(x, (PB + 1) * PD);
    for (n = 1; n <= PB; ++n) {
        int ok = 1;
        EXPECT(flowmlp_forward(m, x, n, z), FLOWMLP_OK);
        for (i = 0; i <= PB; ++i) classes[i] = 0xDEADBEEFu;
        EXPECT(flowmlp_predict_class(m, x, n, classes), FLOWMLP_OK);
        for (i = 0; i < n; ++i) ok &= classes[i] == argmax(&z[i * PM], PM);
        CHECK(ok);
        CHECK(classes[n] == 0xDEADBEEFu); /* nothing past n */
    }
    /* predict_class keeps the forward, like flowmlp_forward. */
    for (i = 0; i < PB * PM; ++i) y[i] = i % PM == 2 ? 1.0f : 0.0f;
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);

    for (i = 0; i <= PB; ++i) classes[i] = 0xDEADBEEFu;
    EXPECT_REFUSED(m, flowmlp_predict_class(NULL, x, 1, classes), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_predict_class(m, NULL, 1, classes), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_predict_class(m, x, 1, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_predict_class(m, x, 0, classes), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT_REFUSED(m, flowmlp_predict_class(m, x, PB + 1, classes),
                   FLOWMLP_ERROR_BATCH_TOO_LARGE);
    x[PD + 1] = (float)NAN;
    EXPECT_REFUSED(m, flowmlp_predict_class(m, x, 2, classes), FLOWMLP_ERROR_NON_FINITE);
    {
        int untouched = 1;
        for (i = 0; i <= PB; ++i) untouched &= classes[i] == 0xDEADBEEFu;
        CHECK(untouched);
    }
    /* The refusals left the kept forward: backward still works. */
    EXPECT(flowmlp_backward(m, y, NULL), FLOWMLP_OK);
    flowmlp_destroy(m);
}

/* flowmlp_classify: predict_class's classes from a const model, any number of rows,
 * the outputs in the caller's workspace (one row a pass, unaligned); refusals write
 * no class. */
static void test_classify(void) {
    enum { PD = 3, PM = 7, PB = 4, N = 11 };
    flowmlp_config c = make_config(PD, 2, PM, PB, 31, FLOWMLP_LOSS_CROSS_ENTROPY);
    flowmlp_model *m = create_or_die(&c);
    const flowmlp_model *cm = m;
    float x[N * PD];
    uint32_t want[N], got[N + 1];
    size_t ws_len = flowmlp_predict_workspace_size(cm, 1), i, done;
    unsigned char *ws = (unsigned char *)malloc(ws_len + 1);
    int same = 1;
    if (!ws) {
        CHECK(ws != NULL);
        flowmlp_destroy(m);
        return;
    }
    fill_uniform(x, N * PD);
    for (done = 0; done < N; done += PB) {
        size_t rows = N - done < PB ? N - done : PB;
        EXPECT(flowmlp_predict_class(m, x + done * PD, rows, want + done), FLOWMLP_OK);
    }
    for (i = 0; i <= N; ++i) got[i] = 0xDEADBEEFu;
    EXPECT(flowmlp_classify(cm, x, N, got, ws + 1, ws_len), FLOWMLP_OK);
    for (i = 0; i < N; ++i) same &= got[i] == want[i];
    CHECK(same);
    CHECK(got[N] == 0xDEADBEEFu); /* nothing past n */

    for (i = 0; i <= N; ++i) got[i] = 0xDEADBEEFu;
    EXPECT(flowmlp_classify(NULL, x, 1, got, ws, ws_len), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_classify(cm, NULL, 1, got, ws, ws_len), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_classify(cm, x, 1, NULL, ws, ws_len), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_classify(cm, x, 1, got, NULL, ws_len), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_classify(cm, x, 0, got, ws, ws_len), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_classify(cm, x, 1, got, ws, ws_len - 1), FLOWMLP_ERROR_INVALID_ARGUMENT);
    x[N * PD - 1] = (float)NAN;
    EXPECT(flowmlp_classify(cm, x, N, got, ws, ws_len), FLOWMLP_ERROR_NON_FINITE);
    {
        int untouched = 1;
        for (i = 0; i <= N; ++i) untouched &= got[i] == 0xDEADBEEFu;
        CHECK(untouched);
    }
    free(ws);
    flowmlp_destroy(m);
}

/* Three Gaussian-ish blobs in the plane, learned with cross-entropy and Adam. */
static void test_classifier(void) {
    enum { CN = 96, CK = 3 };
    static const float centers[CK][2] = {{-2.0f, 0.0f}, {2.0f, 1.0f}, {0.0f, -2.5f}};
    flowmlp_config c = make_config(2, 16, CK, CN, 23, FLOWMLP_LOSS_CROSS_ENTROPY);
    flowmlp_model *m = create_or_die(&c);
    flowmlp_optimizer opt = adam(FLOWMLP_OPTIMIZER_ADAM, 0.0f);
    float x[CN * 2], y[CN * CK], loss = 0.0f, first = 0.0f;
    uint32_t label[CN], pred[CN];
    int i, epoch, right = 0;
    rng_state = 7;
    for (i = 0; i < CN; ++i) {
        int k = i % CK, j;
        label[i] = (uint32_t)k;
        x[2 * i] = centers[k][0] + 0.6f * uniform();
        x[2 * i + 1] = centers[k][1] + 0.6f * uniform();
        for (j = 0; j < CK; ++j) y[i * CK + j] = j == k ? 1.0f : 0.0f;
    }
    EXPECT(flowmlp_set_optimizer(m, &opt), FLOWMLP_OK);
    for (epoch = 0; epoch < 100; ++epoch) {
        if (flowmlp_train_step(m, x, y, CN, 0.01f, &loss) != FLOWMLP_OK) break;
        if (epoch == 0) first = loss;
    }
    CHECK(epoch == 100);
    EXPECT(flowmlp_predict_class(m, x, CN, pred), FLOWMLP_OK);
    for (i = 0; i < CN; ++i) right += pred[i] == label[i];
    CTEST_NOTE("blobs: loss %.4f -> %.4f, %d of %d right\n", first, loss, right, CN);
    CHECK(loss < 0.1f * first);
    CHECK(right == CN);
    flowmlp_destroy(m);
}

/* The sentence of the last failure contains `want`. */
static void expect_last_error(const char *want, const char *call) {
    const char *got = flowmlp_last_error_message();
    int ok = got != NULL && strstr(got, want) != NULL;
    CHECK(ok);
    if (!ok) fprintf(stderr, "    after %s: \"%s\" does not say \"%s\"\n", call, got, want);
}

/* flowmlp_optimizer_defaults: a zeroed struct filled with a kind's defaults is
 * accepted, and trains; unknown kinds and NULL are refused without writing. The
 * issue's three sentences name the field and the value. */
static void test_defaults_and_last_error(void) {
    flowmlp_config c = make_config(3, 8, 2, 4, 3, FLOWMLP_LOSS_MSE);
    flowmlp_model *m = create_or_die(&c);
    flowmlp_model *out = NULL;
    float x[4 * 3], y[4 * 2];
    uint32_t kind;
    fill_uniform(x, 4 * 3);
    fill_uniform(y, 4 * 2);
    for (kind = FLOWMLP_OPTIMIZER_SGD; kind <= FLOWMLP_OPTIMIZER_ADAMW; ++kind) {
        flowmlp_optimizer o;
        memset(&o, 0, sizeof o);
        EXPECT(flowmlp_optimizer_defaults(kind, &o), FLOWMLP_OK);
        CHECK(o.kind == kind);
        CHECK(o.clip_norm == 0.0f);
        if (kind != FLOWMLP_OPTIMIZER_SGD) {
            CHECK(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f);
            CHECK(o.weight_decay == (kind == FLOWMLP_OPTIMIZER_ADAMW ? 0.01f : 0.0f));
        } else {
            CHECK(o.momentum == 0.0f && o.nesterov == 0 && o.weight_decay == 0.0f);
        }
        EXPECT(flowmlp_set_optimizer(m, &o), FLOWMLP_OK);
        EXPECT(flowmlp_train_step(m, x, y, 4, 0.01f, NULL), FLOWMLP_OK);
    }
    {
        flowmlp_optimizer o;
        memset(&o, 0xAB, sizeof o);
        EXPECT(flowmlp_optimizer_defaults(3, &o), FLOWMLP_ERROR_INVALID_ARGUMENT);
        expect_last_error("kind = 3", "flowmlp_optimizer_defaults(3)");
        CHECK(o.kind == 0xABABABABu); /* not written */
        EXPECT(flowmlp_optimizer_defaults(FLOWMLP_OPTIMIZER_ADAM, NULL),
               FLOWMLP_ERROR_NULL_POINTER);
        expect_last_error("out is NULL", "flowmlp_optimizer_defaults(NULL)");
        /* A zeroed Adam struct: eps 0, named. */
        memset(&o, 0, sizeof o);
        o.kind = FLOWMLP_OPTIMIZER_ADAM;
        EXPECT(flowmlp_set_optimizer(m, &o), FLOWMLP_ERROR_INVALID_ARGUMENT);
        expect_last_error("optimizer.eps must be finite and > 0", "set_optimizer(zeroed Adam)");
        expect_last_error("got 0", "set_optimizer(zeroed Adam)");
        o.eps = 1e-8f;
        o.beta2 = 1.0f;
        EXPECT(flowmlp_set_optimizer(m, &o), FLOWMLP_ERROR_INVALID_ARGUMENT);
        expect_last_error("optimizer.beta2 must be in [0, 1), got 1", "set_optimizer(beta2 1)");
    }
    /* Cross-entropy with one output; an unknown loss. */
    c = make_config(3, 8, 1, 4, 3, FLOWMLP_LOSS_CROSS_ENTROPY);
    EXPECT(flowmlp_create(&c, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    expect_last_error("config.loss = 1 (cross-entropy) needs n_outputs >= 2, got 1",
                      "create(cross-entropy, m = 1)");
    c.loss = 7;
    EXPECT(flowmlp_create(&c, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    expect_last_error("config.loss = 7", "create(loss 7)");
    /* A learning rate, a row count. */
    EXPECT(flowmlp_train_step(m, x, y, 4, -1.0f, NULL), FLOWMLP_ERROR_INVALID_ARGUMENT);
    expect_last_error("learning_rate must be finite and >= 0, got -1", "train_step(lr -1)");
    EXPECT(flowmlp_forward(m, x, 5, NULL), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    expect_last_error("n = 5", "forward(n 5)");
    /* Successful calls leave the sentence alone. */
    EXPECT(flowmlp_train_step(m, x, y, 4, 0.01f, NULL), FLOWMLP_OK);
    expect_last_error("n = 5", "a successful train_step");
    CHECK(out == NULL);
    flowmlp_destroy(m);
}

int main(void) {
    test_defaults_and_last_error();
    test_each_kind();
    test_invalid_optimizers();
    test_loss_field();
    test_predict_class();
    test_classify();
    test_classifier();
    return CTEST_SUMMARY();
}
