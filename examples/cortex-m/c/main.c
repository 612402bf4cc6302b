/*
 * flowmlp from C on a Cortex-M4F without an operating system or a heap for the
 * model: the same session as the Rust firmware (../session.rs, value for value),
 * through include/flowmlp.h and the crate's static library built for
 * thumbv7em-none-eabihf without `std`. Prints through semihosting (newlib's
 * rdimon), exits with a failure status unless the loss fell at least tenfold.
 *
 * Built and run by scripts/test-cortex-m.sh. Compile with -ffp-contract=off: the
 * signal must round as the Rust code's does (no fused multiply-adds).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "flowmlp.h"

#define INPUTS 4
#define HIDDEN 16
#define STEPS 4000
#define WINDOW 250
#define LR 0.01f
#define HALVE 1000
#define SEED 2024
#define SHOWN 6
#define PARAMS ((INPUTS + 1) * HIDDEN + HIDDEN + 1)

#define ARENA (16 * 1024)
#define CHECKPOINT (2 * 1024)

static _Alignas(64) uint8_t trained_arena[ARENA];
static _Alignas(64) uint8_t reloaded_arena[ARENA];
static uint8_t saved[CHECKPOINT];

void semihosting_exit(int ok); /* startup.c */

/* cos and sin of the two angular steps, 0.1 and 0.37 rad (as in session.rs). */
static const float COS1 = 0.9950042f, SIN1 = 0.09983342f;
static const float COS2 = 0.9323275f, SIN2 = 0.3616151f;

struct signal {
    float c1, s1, c2, s2;
    float window[INPUTS + 1];
};

static float signal_value(const struct signal *s) { return 0.7f * s->s1 + 0.3f * s->s1 * s->c2; }

static void signal_advance(struct signal *s) {
    float c1 = s->c1 * COS1 - s->s1 * SIN1;
    float s1 = s->s1 * COS1 + s->c1 * SIN1;
    float c2 = s->c2 * COS2 - s->s2 * SIN2;
    float s2 = s->s2 * COS2 + s->c2 * SIN2;
    s->c1 = c1;
    s->s1 = s1;
    s->c2 = c2;
    s->s2 = s2;
    memmove(s->window, s->window + 1, INPUTS * sizeof(float));
    s->window[INPUTS] = signal_value(s);
}

static void signal_init(struct signal *s) {
    memset(s, 0, sizeof *s);
    s->c1 = 1.0f;
    s->c2 = 1.0f;
    for (int i = 0; i <= INPUTS; i++) signal_advance(s);
}

static float signal_next(struct signal *s, float x[INPUTS]) {
    memcpy(x, s->window, INPUTS * sizeof(float));
    float y = s->window[INPUTS];
    signal_advance(s);
    return y;
}

static uint32_t bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* Report a failed call and return 0. */
static int check(flowmlp_status st, const char *what) {
    if (st == FLOWMLP_OK) return 1;
    printf("%s failed: %s (%s)\n", what, flowmlp_status_message(st), flowmlp_last_error_message());
    return 0;
}

static int run(void) {
    flowmlp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_inputs = INPUTS;
    cfg.n_outputs = 1;
    cfg.n_hidden = 1;
    cfg.hidden[0] = HIDDEN;
    cfg.max_batch = 1;
    cfg.seed = SEED;
    cfg.isa = FLOWMLP_ISA_SCALAR;
    cfg.loss = FLOWMLP_LOSS_MSE;
    size_t need = flowmlp_arena_size(&cfg);
    flowmlp_model *model = NULL;
    if (!check(flowmlp_create_in(&cfg, trained_arena, sizeof trained_arena, &model), "flowmlp_create_in"))
        return 0;
    printf("flowmlp %s on a Cortex-M4F (C, no heap): %d -> %d -> 1, %u parameters, arena %u bytes, kernels %s\n",
           flowmlp_version(), INPUTS, HIDDEN, (unsigned)flowmlp_param_count(model), (unsigned)need,
           flowmlp_isa_name(model));
    flowmlp_optimizer adam;
    if (!check(flowmlp_optimizer_defaults(FLOWMLP_OPTIMIZER_ADAM, &adam), "flowmlp_optimizer_defaults") ||
        !check(flowmlp_set_optimizer(model, &adam), "flowmlp_set_optimizer"))
        return 0;

    struct signal sig;
    signal_init(&sig);
    float x[INPUTS], y, loss, first = 0.0f, last = 0.0f, sum = 0.0f, lr = LR;
    for (int step = 0; step < STEPS; step++) {
        if (step > 0 && step % HALVE == 0) lr *= 0.5f;
        y = signal_next(&sig, x);
        if (!check(flowmlp_train_step(model, x, &y, 1, lr, &loss), "flowmlp_train_step")) return 0;
        sum += loss;
        if ((step + 1) % WINDOW == 0) {
            float mean = sum / (float)WINDOW;
            if (step + 1 == WINDOW) first = mean;
            last = mean;
            printf("steps %4d  mean loss %.6f\n", step + 1, (double)mean);
            sum = 0.0f;
        }
    }
    for (int i = 0; i < SHOWN; i++) {
        float yhat;
        y = signal_next(&sig, x);
        if (!check(flowmlp_forward(model, x, 1, &yhat), "flowmlp_forward")) return 0;
        printf("predict  target %9.5f  model %9.5f\n", (double)y, (double)yhat);
    }
    float params[PARAMS];
    if (!check(flowmlp_get_params(model, params, PARAMS), "flowmlp_get_params")) return 0;
    for (int i = 0; i < PARAMS; i++) printf("param %d %08lx\n", i, (unsigned long)bits(params[i]));
    printf("loss first %.6f last %.6f: fell %.1fx\n", (double)first, (double)last, (double)(first / last));

    /* A checkpoint in a byte buffer, loaded into the second arena: same predictions. */
    size_t n = 0;
    flowmlp_model *copy = NULL;
    if (!check(flowmlp_save(model, saved, sizeof saved, &n), "flowmlp_save") ||
        !check(flowmlp_load_in(saved, n, 1, FLOWMLP_ISA_SCALAR, reloaded_arena, sizeof reloaded_arena, &copy),
               "flowmlp_load_in"))
        return 0;
    const float probe[INPUTS] = {0.1f, 0.2f, 0.3f, 0.4f};
    float a, b;
    if (!check(flowmlp_forward(model, probe, 1, &a), "flowmlp_forward") ||
        !check(flowmlp_forward(copy, probe, 1, &b), "flowmlp_forward"))
        return 0;
    int same = bits(a) == bits(b);
    printf("checkpoint %u bytes, reloaded in caller memory: %s\n", (unsigned)n,
           same ? "same predictions" : "DIFFERENT predictions");
    /* A refused call: the status and its sentence, without std. */
    flowmlp_status st = flowmlp_train_step(model, x, &y, 2, lr, NULL);
    printf("a batch of 2 rows (max_batch 1) is refused: %s\n", flowmlp_last_error_message());
    flowmlp_destroy(copy);
    flowmlp_destroy(model);
    int fell = first >= 10.0f * last;
    if (!fell) printf("FAIL: the loss did not fall tenfold\n");
    return fell && same && st == FLOWMLP_ERROR_BATCH_TOO_LARGE;
}

int main(void) {
    int ok = run();
    fflush(stdout);
    semihosting_exit(ok);
    return ok ? 0 : 1;
}
