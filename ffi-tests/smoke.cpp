// smoke.cpp: flowmlp.h compiles as C++17 (-Wall -Wextra -Werror -pedantic) and links.
#include <cmath>
#include <cstdio>
#include <vector>

#include "ctest.h"
#include "flowmlp.h"

int main() {
    flowmlp_config config{};
    config.n_inputs = 2;
    config.n_outputs = 1;
    config.n_hidden = 1;
    config.hidden[0] = 8;
    config.max_batch = 4;
    config.seed = 1;
    config.isa = FLOWMLP_ISA_AUTO;

    flowmlp_model *model = nullptr;
    flowmlp_status status = flowmlp_create(&config, &model);
    CHECK_EQ_INT(status, FLOWMLP_OK);
    CHECK(model != nullptr);
    if (model == nullptr) return CTEST_SUMMARY();
    std::printf("flowmlp %s, kernels %s\n", flowmlp_version(), flowmlp_isa_name(model));

    const float x[] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float y[] = {0, 1, 1, 0};
    float loss = -1.0f;
    CHECK_EQ_INT(flowmlp_train_step(model, x, y, 4, 0.1f, &loss), FLOWMLP_OK);
    CHECK(std::isfinite(loss) && loss > 0.0f);

    std::vector<float> params(flowmlp_param_count(model));
    CHECK_EQ_INT(params.size(), 2 * 8 + 8 + 8 + 1);
    CHECK_EQ_INT(flowmlp_get_params(model, params.data(), params.size()), FLOWMLP_OK);
    CHECK_EQ_INT(flowmlp_train_step(model, x, y, 0, 0.1f, nullptr),
                 FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_STR(flowmlp_status_message(FLOWMLP_ERROR_INVALID_ARGUMENT));

    flowmlp_destroy(model);
    flowmlp_destroy(nullptr);
    return CTEST_SUMMARY();
}
