/*
 * online.c: learn from a sensor stream, one sample at a time, as firmware would.
 *
 * The model is created once (its only allocation); then every incoming sample is
 * one flowmlp_train_step on a batch of one row. The "sensor" is simulated: three
 * readings in [-1, 1] and a target that depends on them nonlinearly, plus noise.
 *
 * Build and run from the repository root (after `cargo build`):
 *   cc -std=c99 -O2 -Iinclude examples/c/online.c target/debug/libflowmlp.a \
 *      -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o online && ./online
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "flowmlp.h"

#define SAMPLES 20000
#define REPORT_EVERY 1000

/* A small portable PRNG (xorshift32), so the stream is the same everywhere. */
static uint32_t rng_state = 2463534242u;

static float uniform(void) { /* in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

/* One reading of the simulated sensor: inputs x[3] and the measured target. */
static float read_sensor(float x[3]) {
    x[0] = uniform();
    x[1] = uniform();
    x[2] = uniform();
    return sinf(2.0f * x[0]) + x[1] * x[2] + 0.5f * x[2] * x[2] + 0.05f * uniform();
}

int main(void) {
    flowmlp_config config = {0};
    flowmlp_model *model = NULL;
    flowmlp_status status;
    float x[3], y, loss, running = 0.0f, first = 0.0f;
    long i;

    config.n_inputs = 3;
    config.n_outputs = 1;
    config.n_hidden = 1;
    config.hidden[0] = 32;
    config.max_batch = 1;
    config.seed = 42;
    config.isa = FLOWMLP_ISA_AUTO;
    status = flowmlp_create(&config, &model);
    if (status != FLOWMLP_OK) {
        fprintf(stderr, "flowmlp_create: %s\n", flowmlp_status_message(status));
        return 1;
    }
    printf("flowmlp %s (%s kernels), 3 -> 32 -> 1, one sample per step\n", flowmlp_version(),
           flowmlp_isa_name(model));

    for (i = 1; i <= SAMPLES; ++i) {
        y = read_sensor(x);
        status = flowmlp_train_step(model, x, &y, 1, 0.01f, &loss);
        if (status != FLOWMLP_OK) {
            fprintf(stderr, "sample %ld: %s\n", i, flowmlp_status_message(status));
            flowmlp_destroy(model);
            return 1;
        }
        /* Exponentially averaged loss over roughly the last 200 samples. */
        running = (i == 1) ? loss : 0.995f * running + 0.005f * loss;
        if (i == 200) first = running;
        if (i % REPORT_EVERY == 0) printf("sample %5ld  running loss %.5f\n", i, running);
    }

    printf("final running loss %.5f (after 200 samples: %.5f)\n", running, first);
    flowmlp_destroy(model);
    return running < first / 3.0f ? 0 : 1;
}
