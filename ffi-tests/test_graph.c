/*
 * test_graph.c: flowmlp_graph_dot and flowmlp_get_config as a C program meets them
 * (C99, -Wall -Wextra -Werror -pedantic): the size query, the buffer rules, the text
 * of the course's network 10 -> 64 -> 1, and the configuration of a loaded model.
 */
#include <stdlib.h>
#include <string.h>

#include "ctest.h"
#include "flowmlp.h"

static int contains(const char *text, const char *what) { return strstr(text, what) != NULL; }

int main(void) {
    flowmlp_config cfg;
    flowmlp_config got;
    flowmlp_model *model = NULL, *loaded = NULL;
    size_t need = 0, written = 0, i;
    char *buf;
    unsigned char *ckpt;

    memset(&cfg, 0, sizeof cfg);
    cfg.n_inputs = 10;
    cfg.n_outputs = 1;
    cfg.n_hidden = 1;
    cfg.hidden[0] = 64;
    cfg.max_batch = 32;
    cfg.seed = 2024;
    cfg.isa = FLOWMLP_ISA_AUTO;
    if (!CHECK_EQ_INT(flowmlp_create(&cfg, &model), FLOWMLP_OK)) return CTEST_SUMMARY();

    /* The size query: NULL buffer, zero capacity. */
    CHECK_EQ_INT(flowmlp_graph_dot(model, NULL, 0, &need), FLOWMLP_OK);
    CHECK(need > 100);
    buf = (char *)malloc(need + 1);
    if (!CHECK(buf != NULL)) return CTEST_SUMMARY();

    /* One byte short: refused, the size reported, the buffer untouched. */
    memset(buf, '#', need + 1);
    CHECK_EQ_INT(flowmlp_graph_dot(model, buf, need - 1, &written), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(written, need);
    for (i = 0; i < need + 1 && buf[i] == '#'; ++i) {
    }
    CHECK_EQ_INT(i, need + 1);
    CHECK_EQ_INT(flowmlp_graph_dot(model, NULL, 4, &written), FLOWMLP_ERROR_NULL_POINTER);
    written = 3;
    CHECK_EQ_INT(flowmlp_graph_dot(NULL, buf, need, &written), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(written, 3);

    /* Exact size: the NUL-terminated DOT text, every node and edge shape. */
    written = 0;
    CHECK_EQ_INT(flowmlp_graph_dot(model, buf, need, &written), FLOWMLP_OK);
    CHECK_EQ_INT(written, need);
    CHECK_EQ_INT(strlen(buf) + 1, need);
    CHECK(buf[need] == '#');
    CHECK(strncmp(buf, "digraph flowmlp {", 17) == 0);
    CHECK(contains(buf, "10 -> 64 -> 1, mean squared error loss"));
    CHECK(contains(buf, "X -> mm1 [label=\"X: n x 10\"];"));
    CHECK(contains(buf, "W1 -> mm1 [label=\"64 x 10\"];"));
    CHECK(contains(buf, "b1 -> add1 [label=\"64\"];"));
    CHECK(contains(buf, "add1 -> relu1 [label=\"Z_1: n x 64\"];"));
    CHECK(contains(buf, "relu1 -> mmo [label=\"H_1: n x 64\"];"));
    CHECK(contains(buf, "Wo -> mmo [label=\"1 x 64\"];"));
    CHECK(contains(buf, "addo -> loss [label=\"Yhat: n x 1\"];"));
    CHECK(contains(buf, "Y -> loss [label=\"Y: n x 1\"];"));
    CHECK(contains(buf, "loss -> L"));
    CHECK_EQ_INT(flowmlp_graph_dot(model, buf, need, NULL), FLOWMLP_OK);

    /* flowmlp_get_config, also for a model that comes from a checkpoint. */
    CHECK_EQ_INT(flowmlp_get_config(model, NULL), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(flowmlp_get_config(NULL, &got), FLOWMLP_ERROR_NULL_POINTER);
    ckpt = (unsigned char *)malloc(flowmlp_save_size(model));
    if (CHECK(ckpt != NULL) &&
        CHECK_EQ_INT(flowmlp_save(model, ckpt, flowmlp_save_size(model), NULL), FLOWMLP_OK) &&
        CHECK_EQ_INT(flowmlp_load(ckpt, flowmlp_save_size(model), 7, FLOWMLP_ISA_SCALAR, &loaded),
                     FLOWMLP_OK)) {
        memset(&got, 0xff, sizeof got);
        CHECK_EQ_INT(flowmlp_get_config(loaded, &got), FLOWMLP_OK);
        CHECK_EQ_INT(got.n_inputs, 10);
        CHECK_EQ_INT(got.n_outputs, 1);
        CHECK_EQ_INT(got.n_hidden, 1);
        CHECK_EQ_INT(got.hidden[0], 64);
        CHECK_EQ_INT(got.hidden[1], 0);
        CHECK_EQ_INT(got.hidden[7], 0);
        CHECK_EQ_INT(got.max_batch, 7);
        CHECK_EQ_INT(got.isa, FLOWMLP_ISA_SCALAR);
        CHECK_EQ_INT(got.loss, FLOWMLP_LOSS_MSE);
        flowmlp_destroy(loaded);
    }
    memset(&got, 0, sizeof got);
    CHECK_EQ_INT(flowmlp_get_config(model, &got), FLOWMLP_OK);
    CHECK(got.isa != FLOWMLP_ISA_AUTO);
    CHECK(got.seed == 2024u);
    CHECK_EQ_INT(got.max_batch, 32);

    free(ckpt);
    free(buf);
    flowmlp_destroy(model);
    return CTEST_SUMMARY();
}
