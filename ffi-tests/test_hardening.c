/*
 * test_hardening.c: caller-owned memory and checkpoints through the C API.
 *
 *  - flowmlp_arena_size / flowmlp_create_in with a static, 64-byte aligned buffer:
 *    the model lives in it (the handle is its first byte), trains bit for bit like a
 *    flowmlp_create model, never writes past flowmlp_arena_size bytes, and
 *    flowmlp_destroy frees nothing (AddressSanitizer and valgrind would report a free
 *    of static memory); too small, misaligned and NULL memory are refused without
 *    touching the buffer.
 *  - flowmlp_save_size / flowmlp_save / flowmlp_load and the file variants: bit-exact
 *    round trips on every kernel set this CPU runs, across sets; every truncation and
 *    every single bit flip of a small checkpoint is FLOWMLP_ERROR_BAD_CHECKPOINT;
 *    every NULL and bad argument is refused, changes nothing, writes no output.
 *  - Checkpoints carry the loss and the optimizer (flowmlp_set_optimizer): a run with
 *    Adam and clipping, saved, loaded and continued, is bit-identical to the
 *    uninterrupted run on every kernel set; a cross-entropy model comes back as one.
 *
 * Built and run by tests/ffi_c.rs (with -fsanitize=address,undefined when available)
 * and by scripts/valgrind.sh. Prints "N checks, F failed".
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest.h"
#include "flowmlp.h"

#define MAXP 4096

/* A static buffer aligned to 64 bytes: the compiler's attribute where there is one,
 * else a larger buffer aligned by hand. */
#define ARENA_BYTES (1u << 22)
#if defined(__GNUC__) || defined(__clang__)
static unsigned char arena_storage[ARENA_BYTES + 64] __attribute__((aligned(64)));
#define ARENA_ALIGNED_BY_COMPILER 1
#elif defined(_MSC_VER)
__declspec(align(64)) static unsigned char arena_storage[ARENA_BYTES + 64];
#define ARENA_ALIGNED_BY_COMPILER 1
#else
static unsigned char arena_storage[ARENA_BYTES + 128];
#endif

static unsigned char *arena(void) {
#ifdef ARENA_ALIGNED_BY_COMPILER
    return arena_storage;
#else
    uintptr_t p = (uintptr_t)arena_storage;
    return arena_storage + ((64 - p % 64) % 64);
#endif
}

#include "model_checks.h"

static char sentinel_object;
#define SENTINEL ((flowmlp_model *)(void *)&sentinel_object)

static flowmlp_config make_config(uint32_t d, uint32_t h1, uint32_t h2, uint32_t m,
                                  uint32_t max_batch, uint64_t seed, uint32_t isa) {
    flowmlp_config c;
    memset(&c, 0, sizeof c);
    c.n_inputs = d;
    c.n_outputs = m;
    c.n_hidden = h2 ? 2 : 1;
    c.hidden[0] = h1;
    c.hidden[1] = h2;
    c.max_batch = max_batch;
    c.seed = seed;
    c.isa = isa;
    return c;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (p[i] != v) return 0;
    return 1;
}

/* Train `m` on a fixed stream; the same calls on two models must agree bit for bit. */
static void train(flowmlp_model *m, int steps) {
    static const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const float y[4] = {0, 1, 1, 0};
    int i;
    for (i = 0; i < steps; ++i) {
        if (flowmlp_train_step(m, x, y, 4, 0.1f, NULL) != FLOWMLP_OK) {
            fprintf(stderr, "train: train_step failed\n");
            exit(2);
        }
    }
}

/* ------------------------------------------------------------ caller-owned memory */

static void test_create_in_static_buffer(void) {
    unsigned char *buf = arena();
    flowmlp_config c = make_config(2, 16, 0, 1, 4, 2024, FLOWMLP_ISA_AUTO);
    flowmlp_config bad;
    flowmlp_model *m = SENTINEL, *ref = NULL;
    size_t size = flowmlp_arena_size(&c);
    static float pa[MAXP], pb[MAXP];
    float loss = -1.0f, yhat[4];
    static const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const float y[4] = {0, 1, 1, 0};
    size_t n, i;
    uint32_t isa;

    printf("flowmlp_arena_size(2 -> 16 -> 1, max_batch 4) = %lu bytes\n", (unsigned long)size);
    CHECK((uintptr_t)buf % 64 == 0);
    CHECK(size > 0 && size <= ARENA_BYTES);
    CHECK(size % 64 == 0);
    if (size == 0 || size > ARENA_BYTES) return;

    /* Invalid configs have no size. */
    CHECK_EQ_INT(flowmlp_arena_size(NULL), 0);
    bad = c; bad.n_inputs = 0;
    CHECK_EQ_INT(flowmlp_arena_size(&bad), 0);
    bad = c; bad.n_hidden = 9;
    CHECK_EQ_INT(flowmlp_arena_size(&bad), 0);
    bad = c; bad.isa = 99;
    CHECK_EQ_INT(flowmlp_arena_size(&bad), 0);
    bad = c; bad.n_inputs = UINT32_MAX; bad.hidden[0] = UINT32_MAX; bad.max_batch = UINT32_MAX;
    CHECK_EQ_INT(flowmlp_arena_size(&bad), 0);

    /* Refusals touch neither the buffer nor *out_model. */
    memset(buf, 0xA5, ARENA_BYTES);
    EXPECT(flowmlp_create_in(&c, buf, size - 1, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, buf, 0, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, buf + 1, size, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, buf + 8, size, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, buf + 32, size, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, buf + 63, size, &m), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT(flowmlp_create_in(&c, NULL, size, &m), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_create_in(NULL, buf, size, &m), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_create_in(&c, buf, size, NULL), FLOWMLP_ERROR_NULL_POINTER);
    bad = c; bad.isa = 99;
    EXPECT(flowmlp_create_in(&bad, buf, size, &m), FLOWMLP_ERROR_INVALID_CONFIG);
    bad = c; bad.max_batch = 0;
    EXPECT(flowmlp_create_in(&bad, buf, size, &m), FLOWMLP_ERROR_INVALID_CONFIG);
    CHECK(m == SENTINEL);
    CHECK(all_bytes(buf, ARENA_BYTES, 0xA5));

    /* The model lives in the buffer and matches a flowmlp_create model bit for bit. */
    m = NULL;
    if (!EXPECT(flowmlp_create_in(&c, buf, size, &m), FLOWMLP_OK)) return;
    CHECK((void *)m == (void *)buf);
    CHECK(all_bytes(buf + size, ARENA_BYTES - size, 0xA5)); /* nothing past the arena */
    if (!EXPECT(flowmlp_create(&c, &ref), FLOWMLP_OK)) return;
    CHECK(strcmp(flowmlp_isa_name(m), flowmlp_isa_name(ref)) == 0);
    train(m, 1500);
    train(ref, 1500);
    n = flowmlp_param_count(m);
    EXPECT(flowmlp_get_params(m, pa, n), FLOWMLP_OK);
    EXPECT(flowmlp_get_params(ref, pb, n), FLOWMLP_OK);
    CHECK(memcmp(pa, pb, n * sizeof(float)) == 0);
    EXPECT(flowmlp_forward(m, x, 4, yhat), FLOWMLP_OK);
    EXPECT(flowmlp_backward(m, y, &loss), FLOWMLP_OK);
    printf("XOR in a static buffer: loss %.5f, predictions %.3f %.3f %.3f %.3f\n", loss, yhat[0],
           yhat[1], yhat[2], yhat[3]);
    CHECK(loss < 0.01f);
    for (i = 0; i < 4; ++i) CHECK(fabs(yhat[i] - y[i]) < 0.2);
    CHECK(all_bytes(buf + size, ARENA_BYTES - size, 0xA5));

    /* destroy frees nothing (a free of static memory would abort under ASan/valgrind);
     * the buffer is the caller's again and can hold another model. */
    flowmlp_destroy(m);
    flowmlp_destroy(ref);
    c.seed = 7;
    m = NULL;
    if (EXPECT(flowmlp_create_in(&c, buf, size, &m), FLOWMLP_OK)) {
        ref = NULL;
        EXPECT(flowmlp_create(&c, &ref), FLOWMLP_OK);
        EXPECT(flowmlp_get_params(m, pa, n), FLOWMLP_OK);
        EXPECT(flowmlp_get_params(ref, pb, n), FLOWMLP_OK);
        CHECK(memcmp(pa, pb, n * sizeof(float)) == 0);
        flowmlp_destroy(m);
        flowmlp_destroy(ref);
    }

    /* A model with the largest footprint that fits: every kernel set this CPU runs. */
    for (isa = FLOWMLP_ISA_SCALAR; isa <= FLOWMLP_ISA_NEON; ++isa) {
        flowmlp_config big = make_config(64, 256, 128, 4, 32, 1, isa);
        size_t s = flowmlp_arena_size(&big);
        if (!flowmlp_isa_supported(isa)) {
            m = SENTINEL;
            EXPECT(flowmlp_create_in(&big, buf, ARENA_BYTES, &m), FLOWMLP_ERROR_UNSUPPORTED_ISA);
            CHECK(m == SENTINEL);
            continue;
        }
        CHECK(s > 0 && s <= ARENA_BYTES);
        if (s == 0 || s > ARENA_BYTES) continue;
        memset(buf, 0xA5, ARENA_BYTES);
        m = NULL;
        if (EXPECT(flowmlp_create_in(&big, buf, s, &m), FLOWMLP_OK)) {
            static float xb[32 * 64], yb[32 * 4];
            size_t j;
            for (j = 0; j < 32 * 64; ++j) xb[j] = (float)sin(0.37 * (double)j);
            for (j = 0; j < 32 * 4; ++j) yb[j] = (float)cos(0.11 * (double)j);
            for (j = 0; j < 20; ++j)
                EXPECT(flowmlp_train_step(m, xb, yb, 32 - j, 0.01f, NULL), FLOWMLP_OK);
            CHECK(all_bytes(buf + s, ARENA_BYTES - s, 0xA5));
            flowmlp_destroy(m);
        }
    }
}

/* ------------------------------------------------------------------ checkpoints */

static unsigned char *save_or_die(const flowmlp_model *m, size_t *len) {
    size_t n = flowmlp_save_size(m), written = 0;
    unsigned char *b = (unsigned char *)malloc(n);
    if (!b || flowmlp_save(m, b, n, &written) != FLOWMLP_OK || written != n) {
        fprintf(stderr, "save failed\n");
        exit(2);
    }
    *len = n;
    return b;
}

static void test_checkpoint_round_trips(void) {
    static float p0[MAXP], p1[MAXP];
    flowmlp_config c = make_config(3, 8, 5, 2, 4, 5, FLOWMLP_ISA_AUTO);
    flowmlp_model *m = NULL;
    unsigned char *bytes, *again;
    size_t len, len2, n;
    uint32_t from, to;
    for (from = FLOWMLP_ISA_SCALAR; from <= FLOWMLP_ISA_NEON; ++from) {
        if (!flowmlp_isa_supported(from)) continue;
        c.isa = from;
        if (!EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) return;
        {
            static const float x[2 * 3] = {0.5f, -1.0f, 0.25f, -0.75f, 0.1f, 0.9f};
            static const float y[2 * 2] = {0.3f, -0.2f, 1.0f, 0.5f};
            int s;
            for (s = 0; s < 10; ++s) EXPECT(flowmlp_train_step(m, x, y, 2, 0.05f, NULL), FLOWMLP_OK);
        }
        n = flowmlp_param_count(m);
        EXPECT(flowmlp_get_params(m, p0, n), FLOWMLP_OK);
        bytes = save_or_die(m, &len);
        /* Plain SGD: the OPTIMIZER section holds 40 bytes of settings and no state. */
        CHECK(len == 112 + 16 + 4 * n + 16 + 40 + 4);
        CHECK(memcmp(bytes, "\x89" "FLOWMLP", 8) == 0);
        for (to = FLOWMLP_ISA_AUTO; to <= FLOWMLP_ISA_NEON; ++to) {
            flowmlp_model *back = SENTINEL;
            if (!flowmlp_isa_supported(to)) {
                EXPECT(flowmlp_load(bytes, len, 4, to, &back), FLOWMLP_ERROR_UNSUPPORTED_ISA);
                CHECK(back == SENTINEL);
                continue;
            }
            if (!EXPECT(flowmlp_load(bytes, len, 1 + to, to, &back), FLOWMLP_OK)) continue;
            CHECK_EQ_INT(flowmlp_param_count(back), n);
            EXPECT(flowmlp_get_params(back, p1, n), FLOWMLP_OK);
            CHECK(memcmp(p0, p1, n * sizeof(float)) == 0);
            again = save_or_die(back, &len2);
            CHECK(len2 == len && memcmp(bytes, again, len) == 0);
            free(again);
            flowmlp_destroy(back);
        }
        free(bytes);
        flowmlp_destroy(m);
    }
}

static void test_checkpoint_errors(void) {
    flowmlp_config c = make_config(2, 3, 0, 1, 4, 9, FLOWMLP_ISA_AUTO);
    flowmlp_model *m = NULL, *out = SENTINEL;
    unsigned char *bytes, *copy, buf[512];
    size_t len, i, written = 12345, bad_len = 0, bad_bit = 0;
    if (!EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) return;
    train(m, 3);
    bytes = save_or_die(m, &len);
    CHECK(len < sizeof buf);

    /* Saving: NULLs, a buffer too small; nothing written; the model unchanged. */
    CHECK_EQ_INT(flowmlp_save_size(NULL), 0);
    memset(buf, 0xA5, sizeof buf);
    EXPECT_REFUSED(m, flowmlp_save(NULL, buf, sizeof buf, &written), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_save(m, NULL, sizeof buf, &written), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_save(m, buf, 0, &written), FLOWMLP_ERROR_INVALID_ARGUMENT);
    EXPECT_REFUSED(m, flowmlp_save(m, buf, len - 1, &written), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK(all_bytes(buf, sizeof buf, 0xA5));
    CHECK(written == 12345);
    /* A larger buffer: exactly len bytes written; `written` may be NULL. */
    EXPECT_REFUSED(m, flowmlp_save(m, buf, sizeof buf, NULL), FLOWMLP_OK);
    CHECK(memcmp(buf, bytes, len) == 0 && all_bytes(buf + len, sizeof buf - len, 0xA5));

    /* Loading: NULLs and bad arguments; *out_model never written. */
    EXPECT(flowmlp_load(NULL, len, 2, 0, &out), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_load(bytes, len, 2, 0, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_load(bytes, len, 0, 0, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    EXPECT(flowmlp_load(bytes, len, 2, 5, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    EXPECT(flowmlp_load(bytes, len, 2, UINT32_MAX, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    CHECK(out == SENTINEL);

    /* Every truncation and every single bit flip: BAD_CHECKPOINT. */
    copy = (unsigned char *)malloc(len);
    for (i = 0; i < len; ++i) {
        if (flowmlp_load(bytes, i, 2, 0, &out) != FLOWMLP_ERROR_BAD_CHECKPOINT) ++bad_len;
    }
    memcpy(copy, bytes, len);
    for (i = 0; i < 8 * len; ++i) {
        copy[i / 8] ^= (unsigned char)(1u << (i % 8));
        if (flowmlp_load(copy, len, 2, 0, &out) != FLOWMLP_ERROR_BAD_CHECKPOINT) ++bad_bit;
        copy[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    printf("checkpoint of %lu bytes: %lu truncations and %lu bit flips refused\n",
           (unsigned long)len, (unsigned long)(len - bad_len), (unsigned long)(8 * len - bad_bit));
    CHECK_EQ_INT(bad_len, 0);
    CHECK_EQ_INT(bad_bit, 0);
    CHECK(out == SENTINEL);
    /* Wrong magic, a future version: refused even with a matching length. */
    memcpy(copy, bytes, len);
    copy[1] = 'X';
    EXPECT(flowmlp_load(copy, len, 2, 0, &out), FLOWMLP_ERROR_BAD_CHECKPOINT);
    CHECK(bytes[8] == 2 && bytes[9] == 0 && bytes[10] == 0 && bytes[11] == 0);
    memcpy(copy, bytes, len);
    copy[8] = 3;
    EXPECT(flowmlp_load(copy, len, 2, 0, &out), FLOWMLP_ERROR_BAD_CHECKPOINT);
    CHECK(out == SENTINEL);
    free(copy);
    EXPECT(flowmlp_load(bytes, len, 2, 0, &out), FLOWMLP_OK);
    if (out != SENTINEL) flowmlp_destroy(out);
    free(bytes);
    flowmlp_destroy(m);
}

static void test_checkpoint_files(void) {
    static float p0[MAXP], p1[MAXP];
    const char *path = "hardening-test.ckpt";
    flowmlp_config c = make_config(2, 16, 0, 1, 4, 3, FLOWMLP_ISA_AUTO);
    flowmlp_model *m = NULL, *b = NULL, *out = SENTINEL;
    FILE *f;
    size_t n;
    unsigned char *bytes;
    size_t len;
    if (!EXPECT(flowmlp_create(&c, &m), FLOWMLP_OK)) return;
    train(m, 50);
    n = flowmlp_param_count(m);
    EXPECT(flowmlp_get_params(m, p0, n), FLOWMLP_OK);
    remove(path);
    EXPECT_REFUSED(m, flowmlp_save_file(m, path), FLOWMLP_OK);
    /* Replace it with a newer checkpoint of the same model. */
    train(m, 50);
    EXPECT(flowmlp_get_params(m, p0, n), FLOWMLP_OK);
    EXPECT_REFUSED(m, flowmlp_save_file(m, path), FLOWMLP_OK);
    if (EXPECT(flowmlp_load_file(path, 1, FLOWMLP_ISA_SCALAR, &b), FLOWMLP_OK)) {
        EXPECT(flowmlp_get_params(b, p1, n), FLOWMLP_OK);
        CHECK(memcmp(p0, p1, n * sizeof(float)) == 0);
        flowmlp_destroy(b);
    }
    /* Errors. */
    EXPECT_REFUSED(m, flowmlp_save_file(NULL, path), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_save_file(m, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT_REFUSED(m, flowmlp_save_file(m, "no-such-directory/x.ckpt"), FLOWMLP_ERROR_IO);
    EXPECT_REFUSED(m, flowmlp_save_file(m, ""), FLOWMLP_ERROR_IO);
    EXPECT(flowmlp_load_file(NULL, 1, 0, &out), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_load_file(path, 1, 0, NULL), FLOWMLP_ERROR_NULL_POINTER);
    EXPECT(flowmlp_load_file(path, 0, 0, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    EXPECT(flowmlp_load_file(path, 1, 77, &out), FLOWMLP_ERROR_INVALID_CONFIG);
    EXPECT(flowmlp_load_file("no-such-file.ckpt", 1, 0, &out), FLOWMLP_ERROR_IO);
    EXPECT(flowmlp_load_file(".", 1, 0, &out), FLOWMLP_ERROR_IO);
    /* A truncated file. */
    bytes = save_or_die(m, &len);
    f = fopen("hardening-short.ckpt", "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(bytes, 1, len - 3, f) == len - 3);
        fclose(f);
        EXPECT(flowmlp_load_file("hardening-short.ckpt", 1, 0, &out), FLOWMLP_ERROR_BAD_CHECKPOINT);
        remove("hardening-short.ckpt");
    }
    CHECK(out == SENTINEL);
    /* The failed saves left the good file intact. */
    if (EXPECT(flowmlp_load_file(path, 1, 0, &b), FLOWMLP_OK)) {
        EXPECT(flowmlp_get_params(b, p1, n), FLOWMLP_OK);
        CHECK(memcmp(p0, p1, n * sizeof(float)) == 0);
        flowmlp_destroy(b);
    }
    free(bytes);
    remove(path);
    flowmlp_destroy(m);
}

/* A model in static memory can be checkpointed, and a checkpoint restored into one
 * (load, then copy the parameters in). */
static void test_static_model_checkpoints(void) {
    static float p0[MAXP], p1[MAXP];
    unsigned char *buf = arena();
    flowmlp_config c = make_config(2, 16, 0, 1, 4, 11, FLOWMLP_ISA_AUTO);
    size_t size = flowmlp_arena_size(&c), n, len;
    flowmlp_model *m = NULL, *loaded = NULL;
    unsigned char *bytes;
    if (size == 0 || size > ARENA_BYTES) return;
    if (!EXPECT(flowmlp_create_in(&c, buf, size, &m), FLOWMLP_OK)) return;
    train(m, 30);
    n = flowmlp_param_count(m);
    EXPECT(flowmlp_get_params(m, p0, n), FLOWMLP_OK);
    bytes = save_or_die(m, &len);
    flowmlp_destroy(m);
    if (EXPECT(flowmlp_load(bytes, len, 4, 0, &loaded), FLOWMLP_OK)) {
        EXPECT(flowmlp_get_params(loaded, p1, n), FLOWMLP_OK);
        CHECK(memcmp(p0, p1, n * sizeof(float)) == 0);
        m = NULL;
        c.seed = 12;
        EXPECT(flowmlp_create_in(&c, buf, size, &m), FLOWMLP_OK);
        EXPECT(flowmlp_set_params(m, p1, n), FLOWMLP_OK);
        EXPECT(flowmlp_get_params(m, p0, n), FLOWMLP_OK);
        CHECK(memcmp(p0, p1, n * sizeof(float)) == 0);
        flowmlp_destroy(m);
        flowmlp_destroy(loaded);
    }
    free(bytes);
}

/* Adam with weight decay and gradient clipping, and a cross-entropy loss: train 6
 * steps, save, load (same kernel set), train 6 more; the parameters, the losses and a
 * second save equal the uninterrupted 12-step run's, bit for bit. */
static void test_checkpoint_optimizer_resume(void) {
    static float pa[MAXP], pb[MAXP];
    static const float x[3 * 3] = {0.5f, -1.0f, 0.25f, -0.75f, 0.1f, 0.9f, 0.3f, 0.3f, -0.6f};
    static const float y[3 * 2] = {1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f};
    flowmlp_config c = make_config(3, 8, 5, 2, 3, 17, FLOWMLP_ISA_AUTO);
    flowmlp_optimizer opt;
    uint32_t isa;
    memset(&opt, 0, sizeof opt);
    opt.kind = FLOWMLP_OPTIMIZER_ADAM;
    opt.beta1 = 0.9f;
    opt.beta2 = 0.999f;
    opt.eps = 1e-8f;
    opt.weight_decay = 0.01f;
    opt.clip_norm = 0.5f;
    c.loss = FLOWMLP_LOSS_CROSS_ENTROPY;
    for (isa = FLOWMLP_ISA_SCALAR; isa <= FLOWMLP_ISA_NEON; ++isa) {
        flowmlp_model *whole = NULL, *first = NULL, *back = NULL;
        flowmlp_config got;
        unsigned char *bytes, *b1, *b2;
        size_t len, len1, len2, n;
        float la[12], lb[12];
        int s, same = 1;
        if (!flowmlp_isa_supported(isa)) continue;
        c.isa = isa;
        if (!EXPECT(flowmlp_create(&c, &whole), FLOWMLP_OK)) return;
        if (!EXPECT(flowmlp_create(&c, &first), FLOWMLP_OK)) return;
        EXPECT(flowmlp_set_optimizer(whole, &opt), FLOWMLP_OK);
        EXPECT(flowmlp_set_optimizer(first, &opt), FLOWMLP_OK);
        for (s = 0; s < 12; ++s)
            EXPECT(flowmlp_train_step(whole, x, y, 1 + s % 3, 0.01f, &la[s]), FLOWMLP_OK);
        for (s = 0; s < 6; ++s)
            EXPECT(flowmlp_train_step(first, x, y, 1 + s % 3, 0.01f, &lb[s]), FLOWMLP_OK);
        n = flowmlp_param_count(first);
        bytes = save_or_die(first, &len);
        /* Settings, then Adam's two moments. */
        CHECK(len == 112 + 16 + 4 * n + 16 + 40 + 2 * 4 * n + 4);
        flowmlp_destroy(first);
        if (EXPECT(flowmlp_load(bytes, len, 3, isa, &back), FLOWMLP_OK)) {
            EXPECT(flowmlp_get_config(back, &got), FLOWMLP_OK);
            CHECK_EQ_INT(got.loss, FLOWMLP_LOSS_CROSS_ENTROPY);
            for (s = 6; s < 12; ++s)
                EXPECT(flowmlp_train_step(back, x, y, 1 + s % 3, 0.01f, &lb[s]), FLOWMLP_OK);
            EXPECT(flowmlp_get_params(whole, pa, n), FLOWMLP_OK);
            EXPECT(flowmlp_get_params(back, pb, n), FLOWMLP_OK);
            CHECK(memcmp(pa, pb, n * sizeof(float)) == 0);
            CHECK(memcmp(la, lb, sizeof la) == 0);
            b1 = save_or_die(whole, &len1);
            b2 = save_or_die(back, &len2);
            same = len1 == len2 && memcmp(b1, b2, len1) == 0;
            CHECK(same);
            CTEST_NOTE("%s: Adam run resumed from a %lu-byte checkpoint: %s\n",
                       flowmlp_isa_name(back), (unsigned long)len,
                       same ? "bit-identical" : "DIFFERENT");
            free(b1);
            free(b2);
            flowmlp_destroy(back);
        }
        free(bytes);
        flowmlp_destroy(whole);
    }
}

static void test_new_statuses(void) {
    const char *a = flowmlp_status_message(FLOWMLP_ERROR_BAD_CHECKPOINT);
    const char *b = flowmlp_status_message(FLOWMLP_ERROR_IO);
    CHECK_EQ_INT(FLOWMLP_ERROR_BAD_CHECKPOINT, 10);
    CHECK_EQ_INT(FLOWMLP_ERROR_IO, 11);
    CHECK_STR(a);
    CHECK_STR(b);
    CHECK(a && b && strcmp(a, b) != 0);
    CHECK_EQ_INT(FLOWMLP_ERROR_DIVERGED, 12);
    CHECK(strcmp(flowmlp_status_message(13), "unknown flowmlp status value") == 0);
    printf("flowmlp_status_message(BAD_CHECKPOINT) = \"%s\"\n", a ? a : "(null)");
}

/* NON_FINITE is a NaN or infinity the caller passed (skip the sample); DIVERGED is a
 * step whose loss, gradients or update overflow from finite values (lower the rate).
 * On every kernel set this machine runs (not only FLOWMLP_ISA's), through step and
 * train_step, one row and a batch, plain SGD and momentum; each refusal changes
 * nothing. */
static void test_non_finite_versus_diverged(void) {
    static const uint32_t shapes[][3] = {{3, 5, 0}, {3, 5, 4}, {6, 17, 9}};
    uint32_t isa, s, mom;
    size_t n, i;
    for (isa = FLOWMLP_ISA_SCALAR; isa <= FLOWMLP_ISA_NEON; ++isa) {
        if (!flowmlp_isa_supported(isa)) continue;
        for (s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
            for (mom = 0; mom < 2; ++mom) {
                uint32_t d = shapes[s][0], mo = 2;
                flowmlp_config c = make_config(d, shapes[s][1], shapes[s][2], mo, 4, 5, isa);
                flowmlp_model *m;
                flowmlp_optimizer opt;
                float x[4 * 6], y[4 * 2], y_big[4 * 2], bad[4 * 6], bad_y[4 * 2];
                if (shapes[s][2] == 0) mo = c.n_outputs = 1;
                m = create_or_die(&c);
                memset(&opt, 0, sizeof opt);
                opt.kind = FLOWMLP_OPTIMIZER_SGD;
                opt.momentum = mom ? 0.9f : 0.0f;
                EXPECT(flowmlp_set_optimizer(m, &opt), FLOWMLP_OK);
                for (i = 0; i < 4 * d; ++i) x[i] = (float)((i * 7) % 5) * 0.25f - 0.5f;
                for (i = 0; i < 4 * mo; ++i) {
                    y[i] = 0.5f;
                    y_big[i] = 1e15f;
                }
                for (n = 1; n <= 4; n += 3) {
                    memcpy(bad, x, sizeof x);
                    bad[n * d - 1] = (float)NAN;
                    memcpy(bad_y, y, sizeof y);
                    bad_y[0] = (float)INFINITY;
                    EXPECT_REFUSED(m, flowmlp_train_step(m, bad, y, n, 0.01f, NULL),
                                   FLOWMLP_ERROR_NON_FINITE);
                    EXPECT_REFUSED(m, flowmlp_train_step(m, x, bad_y, n, 0.01f, NULL),
                                   FLOWMLP_ERROR_NON_FINITE);
                    EXPECT_REFUSED(m, flowmlp_train_step(m, x, y_big, n, FLT_MAX, NULL),
                                   FLOWMLP_ERROR_DIVERGED);
                    EXPECT(flowmlp_forward(m, x, n, NULL), FLOWMLP_OK);
                    EXPECT(flowmlp_backward(m, y_big, NULL), FLOWMLP_OK);
                    EXPECT_REFUSED(m, flowmlp_step(m, FLT_MAX), FLOWMLP_ERROR_DIVERGED);
                    EXPECT_REFUSED(m, flowmlp_forward(m, bad, n, NULL), FLOWMLP_ERROR_NON_FINITE);
                    /* Training goes on after every refusal. */
                    EXPECT(flowmlp_train_step(m, x, y, n, 0.01f, NULL), FLOWMLP_OK);
                }
                flowmlp_destroy(m);
            }
        }
    }
}

int main(void) {
    test_new_statuses();
    test_non_finite_versus_diverged();
    test_create_in_static_buffer();
    test_checkpoint_round_trips();
    test_checkpoint_errors();
    test_checkpoint_files();
    test_static_model_checkpoints();
    test_checkpoint_optimizer_resume();
    return CTEST_SUMMARY();
}
