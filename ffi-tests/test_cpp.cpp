// test_cpp.cpp: the C++ wrapper include/flowmlp.hpp (C++17, -Wall -Wextra -Werror
// -pedantic). tests/ffi_c.rs also builds it as C++20 with -fno-exceptions, where only
// the try_ family exists and std::span is passed directly.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctest.h"
#include "flowmlp.hpp"

#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_span)
#include <span>
#endif

using flowmlp::Config;
using flowmlp::Model;

static_assert(!std::is_copy_constructible_v<Model>, "Model is move-only");
static_assert(!std::is_copy_assignable_v<Model>, "Model is move-only");
static_assert(std::is_nothrow_move_constructible_v<Model>, "moves do not throw");
static_assert(std::is_nothrow_move_assignable_v<Model>, "moves do not throw");
static_assert(std::is_convertible_v<std::vector<float> &, flowmlp::span<const float>>);
static_assert(std::is_convertible_v<std::vector<float> &, flowmlp::span<float>>);
static_assert(!std::is_convertible_v<const std::vector<float> &, flowmlp::span<float>>);
static_assert(std::is_convertible_v<std::array<float, 3> &, flowmlp::span<const float>>);
static_assert(std::is_convertible_v<float (&)[4], flowmlp::span<float>>);
static_assert(!std::is_convertible_v<std::vector<double> &, flowmlp::span<const float>>);

static bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

static const float XOR_X[] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_Y[] = {0, 1, 1, 0};

// The non-throwing family: statuses, never exceptions.
static void try_family() {
    Model empty;
    CHECK(!empty);
    float loss = -1.0f;
    CHECK_EQ_INT(empty.try_train_step(XOR_X, XOR_Y, 4, 0.1f, &loss), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(empty.try_forward(XOR_X), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(empty.param_count(), 0);
    CHECK_EQ_INT(empty.graph_dot_size(), 0);

    Model m;
    CHECK_EQ_INT(Model::try_create(Config(2, {0}, 1), m), FLOWMLP_ERROR_INVALID_CONFIG);
    CHECK(!m);
    CHECK_EQ_INT(Model::try_create(Config(2, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1), m),
                 FLOWMLP_ERROR_INVALID_CONFIG);
    if (!CHECK_EQ_INT(Model::try_create(Config(2, {8}, 1).max_batch(4).seed(1), m), FLOWMLP_OK))
        return;
    CHECK(static_cast<bool>(m));
    CHECK_EQ_INT(m.inputs(), 2);
    CHECK_EQ_INT(m.outputs(), 1);
    CHECK_EQ_INT(m.max_batch(), 4);
    CHECK_EQ_INT(m.config().hidden[0], 8);
    CHECK(m.config().isa != FLOWMLP_ISA_AUTO);
    // Threads: the default, a count, a refusal that keeps it, and back to one.
    CHECK_EQ_INT(m.threads(), 1);
    CHECK_EQ_INT(m.try_set_threads(2), FLOWMLP_OK);
    CHECK_EQ_INT(m.threads(), 2);
    CHECK_EQ_INT(m.try_set_threads(1000), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.threads(), 2);
    CHECK_EQ_INT(m.try_set_threads(1), FLOWMLP_OK);

    // Lengths are checked before C sees them.
    const std::vector<float> x(XOR_X, XOR_X + 8), y(XOR_Y, XOR_Y + 4);
    const std::vector<float> x_odd(7, 0.0f), y_short(3, 0.0f);
    CHECK_EQ_INT(m.try_train_step(x_odd, y, 0.1f), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.try_train_step(x, y_short, 0.1f), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.try_train_step(std::vector<float>{}, std::vector<float>{}, 0.1f),
                 FLOWMLP_ERROR_INVALID_ARGUMENT);
    // And C's own checks come through.
    std::vector<float> x5(10, 0.0f), y5(5, 0.0f);
    CHECK_EQ_INT(m.try_train_step(x5, y5, 0.1f), FLOWMLP_ERROR_BATCH_TOO_LARGE);
    CHECK_EQ_INT(m.try_train_step(x, y, -1.0f), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.try_backward(y), FLOWMLP_ERROR_NO_FORWARD);
    std::vector<float> nan_x = x;
    nan_x[3] = std::nanf("");
    CHECK_EQ_INT(m.try_forward(nan_x), FLOWMLP_ERROR_NON_FINITE);

    // Forward, backward, step through the pointer and the span overloads.
    std::vector<float> pred(4), pred2(4), grads(m.param_count());
    CHECK_EQ_INT(m.try_forward(x, pred), FLOWMLP_OK);
    CHECK_EQ_INT(m.try_forward(XOR_X, 4, pred2.data()), FLOWMLP_OK);
    CHECK(same_bits(pred, pred2));
    CHECK_EQ_INT(m.try_backward(y_short), FLOWMLP_ERROR_INVALID_ARGUMENT);
    loss = -1.0f;
    CHECK_EQ_INT(m.try_backward(y, &loss), FLOWMLP_OK);
    CHECK(std::isfinite(loss) && loss > 0.0f);
    CHECK_EQ_INT(m.try_get_grads(grads), FLOWMLP_OK);
    CHECK_EQ_INT(m.try_step(0.1f), FLOWMLP_OK);
    CHECK_EQ_INT(m.try_backward(y), FLOWMLP_ERROR_NO_FORWARD);

    // Parameters: wrong length refused, round trip exact.
    std::vector<float> p(m.param_count()), wrong(m.param_count() + 1);
    CHECK_EQ_INT(m.try_get_params(wrong), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.try_get_params(p), FLOWMLP_OK);
    CHECK_EQ_INT(m.try_set_params(p), FLOWMLP_OK);

    // The flow graph into a fixed buffer, checkpoints into a span.
    std::array<char, 8> tiny{};
    std::size_t need = 0;
    CHECK_EQ_INT(m.try_graph_dot(tiny.data(), tiny.size(), &need), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(need, m.graph_dot_size());
    std::vector<char> dot(need);
    CHECK_EQ_INT(m.try_graph_dot(dot.data(), dot.size()), FLOWMLP_OK);
    CHECK(std::strstr(dot.data(), "W1 -> mm1 [label=\"8 x 2\"];") != nullptr);
    std::vector<uint8_t> bytes(m.save_size());
    std::size_t written = 0;
    CHECK_EQ_INT(m.try_save(bytes, &written), FLOWMLP_OK);
    CHECK_EQ_INT(written, bytes.size());
    Model back;
    CHECK_EQ_INT(Model::try_load(bytes, 2, FLOWMLP_ISA_AUTO, back), FLOWMLP_OK);
    std::vector<float> q(back.param_count());
    CHECK_EQ_INT(back.try_get_params(q), FLOWMLP_OK);
    CHECK(same_bits(p, q));
    CHECK_EQ_INT(back.max_batch(), 2);
    bytes[bytes.size() / 2] ^= 0x40;
    Model bad;
    CHECK_EQ_INT(Model::try_load(bytes, 2, FLOWMLP_ISA_AUTO, bad), FLOWMLP_ERROR_BAD_CHECKPOINT);
    CHECK(!bad);

    // predict with a caller workspace; predict_class.
    std::vector<unsigned char> ws(m.predict_workspace_size(3));
    std::vector<float> out(4);
    CHECK_EQ_INT(m.try_predict(x, out, ws), FLOWMLP_OK);
    std::vector<unsigned char> none(1);
    CHECK_EQ_INT(m.try_predict(x, out, none), FLOWMLP_ERROR_INVALID_ARGUMENT);
    std::vector<uint32_t> classes(4), classes_short(3);
    CHECK_EQ_INT(m.try_predict_class(x, classes), FLOWMLP_OK);
    CHECK_EQ_INT(m.try_predict_class(x, classes_short), FLOWMLP_ERROR_INVALID_ARGUMENT);
    CHECK_EQ_INT(m.try_set_optimizer(flowmlp::adam()), FLOWMLP_OK);
    flowmlp_optimizer bad_opt = flowmlp::sgd(0.0f, true);  // Nesterov needs momentum
    CHECK_EQ_INT(m.try_set_optimizer(bad_opt), FLOWMLP_ERROR_INVALID_ARGUMENT);

#if defined(__cpp_lib_span)
    std::span<const float> sx(x);
    std::span<float> sy(out);
    CHECK_EQ_INT(m.try_predict(sx, sy, std::span<unsigned char>(ws)), FLOWMLP_OK);
    CTEST_NOTE("std::span overloads exercised\n");
#endif

    // Moves hand the handle over; the moved-from model is empty.
    Model moved(std::move(m));
    CHECK(!m);  // NOLINT(bugprone-use-after-move): the documented empty state
    CHECK_EQ_INT(m.inputs(), 0);
    CHECK_EQ_INT(m.try_step(0.1f), FLOWMLP_ERROR_NULL_POINTER);
    CHECK_EQ_INT(moved.try_train_step(x, y, 0.1f), FLOWMLP_OK);
    m = std::move(moved);
    CHECK(static_cast<bool>(m) && !moved);
    flowmlp_model *raw = m.release();
    CHECK(!m && raw != nullptr);
    Model adopted(raw);
    CHECK_EQ_INT(adopted.inputs(), 2);
}

#if FLOWMLP_HPP_EXCEPTIONS
// The throwing family.
static void throwing_family() {
    Model m(Config(2, {16}, 1).max_batch(4).seed(7));
    std::printf("flowmlp %s, kernels %s\n", flowmlp::version(), m.isa_name());
    std::vector<float> x(XOR_X, XOR_X + 8), y(XOR_Y, XOR_Y + 4);
    m.set_optimizer(flowmlp::adam());
    float first = m.train_step(x, y, 0.01f), last = first;
    for (int i = 0; i < 1500; ++i) last = m.train_step(x, y, 0.01f);
    CTEST_NOTE("XOR loss %.5f -> %.6f\n", first, last);
    CHECK(last < first / 20.0f);
    std::vector<float> pred(4);
    m.forward(x, pred);
    for (int i = 0; i < 4; ++i) CHECK(std::fabs(pred[i] - y[i]) < 0.2f);
    CHECK(m.backward(y) >= 0.0f);
    CHECK_EQ_INT(m.grads().size(), m.param_count());
    m.step(0.0f);

    // Errors carry the status and the message of flowmlp_status_message.
    bool threw = false;
    try {
        m.train_step(x.data(), y.data(), 5, 0.1f);
    } catch (const flowmlp::Error &e) {
        threw = true;
        CHECK_EQ_INT(e.status(), FLOWMLP_ERROR_BATCH_TOO_LARGE);
        CHECK(std::strstr(e.what(), "flowmlp_train_step: ") == e.what());
        CHECK(std::strstr(e.what(), flowmlp::message(FLOWMLP_ERROR_BATCH_TOO_LARGE)) != nullptr);
    }
    CHECK(threw);
    threw = false;
    try {
        std::vector<float> short_y(3);
        m.train_step(x, short_y, 0.1f);
    } catch (const std::runtime_error &e) {  // flowmlp::Error is a std::runtime_error
        threw = true;
        CHECK(std::strstr(e.what(), "invalid argument") != nullptr);
    }
    CHECK(threw);
    threw = false;
    try {
        Model bad(Config(0, {4}, 1));
    } catch (const flowmlp::Error &e) {
        threw = e.status() == FLOWMLP_ERROR_INVALID_CONFIG;
    }
    CHECK(threw);

    // Checkpoints in memory and on disk give the same parameters bit for bit.
    std::vector<uint8_t> bytes = m.save();
    Model a = Model::load(bytes, 8);
    CHECK(same_bits(a.params(), m.params()));
    m.save_file("test_cpp.ckpt");
    Model b = Model::load_file("test_cpp.ckpt", 1, FLOWMLP_ISA_SCALAR);
    CHECK(same_bits(b.params(), m.params()));
    CHECK(std::string(b.isa_name()) == "scalar");
    std::remove("test_cpp.ckpt");
    threw = false;
    try {
        Model::load_file("no/such/dir/model.ckpt", 1);
    } catch (const flowmlp::Error &e) {
        threw = e.status() == FLOWMLP_ERROR_IO;
    }
    CHECK(threw);

    // set_params round trip; the flow graph as a string.
    std::vector<float> p = m.params();
    p[0] += 1.0f;
    m.set_params(p);
    CHECK(same_bits(m.params(), p));
    std::string dot = m.graph_dot();
    CHECK(dot.rfind("digraph flowmlp {", 0) == 0);
    CHECK(dot.find("relu1 -> mmo [label=\"H_1: n x 16\"];") != std::string::npos);
    CHECK_EQ_INT(dot.size() + 1, m.graph_dot_size());

    // Cross-entropy and predict_class.
    Model c(Config(2, {16}, 2).max_batch(4).seed(3).loss(FLOWMLP_LOSS_CROSS_ENTROPY));
    c.set_optimizer(flowmlp::adamw(0.9f, 0.999f, 1e-8f, 0.0f));
    const float onehot[] = {1, 0, 0, 1, 0, 1, 1, 0};
    for (int i = 0; i < 1500; ++i) c.train_step(x, onehot, 0.01f);
    std::array<uint32_t, 4> classes{};
    c.predict_class(x, classes);
    CHECK(classes[0] == 0 && classes[1] == 1 && classes[2] == 1 && classes[3] == 0);

    // Read-only predict from eight threads at once, bit-identical to one thread.
    std::vector<float> many(2 * 1000);
    for (std::size_t i = 0; i < many.size(); ++i) many[i] = std::sin(0.37f * float(i));
    const Model &shared = m;
    std::vector<float> want = shared.predict(many);
    CHECK_EQ_INT(want.size(), 1000);
    std::vector<std::vector<float>> got(8, std::vector<float>(1000));
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&shared, &many, &got, t] {
            std::vector<unsigned char> ws(shared.predict_workspace_size(7 + t));
            for (int rep = 0; rep < 20; ++rep) shared.predict(many, got[t], ws);
        });
    }
    for (auto &th : threads) th.join();
    for (int t = 0; t < 8; ++t) CHECK(same_bits(got[t], want));
}
#endif

int main() {
    try_family();
#if FLOWMLP_HPP_EXCEPTIONS
    try {
        throwing_family();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
        CHECK(false);
    }
#else
    CTEST_NOTE("built without exceptions: the try_ family only\n");
#endif
    return CTEST_SUMMARY();
}
