/*
 * model_checks.h: checks shared by the C tests of the flowmlp API (include after
 * ctest.h and flowmlp.h, with MAXP defined as the largest parameter count used).
 *
 *   EXPECT(call, status)             the call returns exactly that status
 *   EXPECT_REFUSED(m, call, status)  ... and leaves m's parameters and gradients bit
 *                                    for bit as they were
 *   take_snapshot / same_state       the observable state of a model
 *   create_or_die                    setup: a model, or exit(2)
 */
#ifndef FLOWMLP_MODEL_CHECKS_H
#define FLOWMLP_MODEL_CHECKS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MAXP
#error "define MAXP (the largest parameter count of the models) before model_checks.h"
#endif

/* The status's name in the header, for messages. */
static inline const char *status_name(int s) {
    static const char *const names[] = {
        "FLOWMLP_OK",
        "FLOWMLP_ERROR_NULL_POINTER",
        "FLOWMLP_ERROR_INVALID_CONFIG",
        "FLOWMLP_ERROR_INVALID_ARGUMENT",
        "FLOWMLP_ERROR_BATCH_TOO_LARGE",
        "FLOWMLP_ERROR_OUT_OF_MEMORY",
        "FLOWMLP_ERROR_NO_FORWARD",
        "FLOWMLP_ERROR_NON_FINITE",
        "FLOWMLP_ERROR_UNSUPPORTED_ISA",
        "FLOWMLP_ERROR_INTERNAL",
        "FLOWMLP_ERROR_BAD_CHECKPOINT",
        "FLOWMLP_ERROR_IO",
        "FLOWMLP_ERROR_DIVERGED",
    };
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "(unknown status)";
}

static inline int expect_status(flowmlp_status got, flowmlp_status want, const char *call,
                                const char *file, int line) {
    ++ctest_checks;
    if (got != want) {
        ++ctest_failures;
        fprintf(stderr, "%s:%d: %s\n    returned %s (%d: %s), expected %s\n", file, line, call,
                status_name((int)got), (int)got, flowmlp_status_message((int)got),
                status_name((int)want));
        fflush(stderr);
        return 0;
    }
    return 1;
}

#define EXPECT(call, want) expect_status((call), (want), #call, __FILE__, __LINE__)

/* A model that must be created (a test setup step, not a check): exit otherwise. */
static inline flowmlp_model *create_or_die(const flowmlp_config *c) {
    flowmlp_model *m = NULL;
    flowmlp_status s = flowmlp_create(c, &m);
    if (s != FLOWMLP_OK || m == NULL) {
        fprintf(stderr, "flowmlp_create failed: %s\n", flowmlp_status_message((int)s));
        exit(2);
    }
    return m;
}

/* The observable state of a model: its parameters and gradients (flat layout). */
typedef struct {
    size_t n;
    float params[MAXP];
    float grads[MAXP];
} snapshot;

/* Scratch snapshots for EXPECT_REFUSED (and for tests that compare by hand). */
static inline snapshot *snap_slot(int which) {
    static snapshot slots[2];
    return &slots[which];
}
#define snap_before (*snap_slot(0))
#define snap_after (*snap_slot(1))

static inline void take_snapshot(const flowmlp_model *m, snapshot *s) {
    s->n = flowmlp_param_count(m);
    if (s->n == 0 || s->n > MAXP) {
        fprintf(stderr, "take_snapshot: bad parameter count %lu\n", (unsigned long)s->n);
        exit(2);
    }
    if (flowmlp_get_params(m, s->params, s->n) != FLOWMLP_OK ||
        flowmlp_get_grads(m, s->grads, s->n) != FLOWMLP_OK) {
        fprintf(stderr, "take_snapshot: get_params/get_grads failed\n");
        exit(2);
    }
}

static inline int same_state(const flowmlp_model *m, const snapshot *s) {
    take_snapshot(m, &snap_after);
    return snap_after.n == s->n && memcmp(snap_after.params, s->params, s->n * sizeof(float)) == 0 &&
           memcmp(snap_after.grads, s->grads, s->n * sizeof(float)) == 0;
}

#define EXPECT_REFUSED(m, call, want)                                                      \
    do {                                                                                   \
        take_snapshot((m), &snap_before);                                                  \
        EXPECT(call, want);                                                                \
        ctest_check(same_state((m), &snap_before), __FILE__, __LINE__,                     \
                    "parameters and gradients unchanged by " #call);                       \
    } while (0)

#endif /* FLOWMLP_MODEL_CHECKS_H */
