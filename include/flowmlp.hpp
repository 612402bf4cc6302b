/*
 * flowmlp.hpp: a header-only C++17 wrapper over the C API of flowmlp.h.
 * SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * Design
 *  - flowmlp::Model owns one flowmlp_model (RAII: flowmlp_destroy in the destructor).
 *    It is move-only; a moved-from or default-constructed Model is empty, and every
 *    call on an empty Model fails with FLOWMLP_ERROR_NULL_POINTER.
 *  - Two families of methods, the same operations and overloads in both:
 *      m.train_step(x, y, lr)            throws flowmlp::Error, returns the result;
 *      m.try_train_step(x, y, lr, &loss) noexcept, returns flowmlp_status
 *                                        ([[nodiscard]]), results via out-parameters.
 *    flowmlp::Error derives from std::runtime_error: status() is the flowmlp_status,
 *    what() is "<C function>: <flowmlp_status_message(status)>". Built without
 *    exceptions (-fno-exceptions), or with FLOWMLP_HPP_NO_EXCEPTIONS defined, only the
 *    try_ family (and Model::try_create / try_load / try_load_file) is declared.
 *  - Arrays are passed either as (pointer, rows) exactly as in the C API, or as
 *    flowmlp::span<T>, a pointer + element count built implicitly from std::vector,
 *    std::array, a C array, std::span (C++20) or any contiguous container with
 *    data() and size(). The span overloads check lengths against the model's shape
 *    (x.size() a multiple of d, y.size() == rows * m, ...) and fail with
 *    FLOWMLP_ERROR_INVALID_ARGUMENT before calling C; the pointer overloads trust the
 *    caller as the C API does.
 *  - Nothing here allocates, except the convenience overloads that return a
 *    std::vector or std::string (params(), grads(), save(), graph_dot(), and predict
 *    without a workspace), which say so.
 *  - Thread safety is the C API's: predict (a const method) may run on one Model
 *    from many threads at once, each with its own workspace, while no thread trains
 *    it; everything else needs the Model to itself.
 *
 *    flowmlp::Model model(flowmlp::Config(2, {16}, 1).max_batch(4).seed(7));
 *    std::vector<float> x{0, 0, 0, 1, 1, 0, 1, 1}, y{0, 1, 1, 0}, pred(4);
 *    for (int i = 0; i < 2000; ++i) model.train_step(x, y, 0.1f);
 *    model.forward(x, pred);
 */
#ifndef FLOWMLP_HPP
#define FLOWMLP_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(FLOWMLP_HPP_NO_EXCEPTIONS) && \
    (defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND))
#define FLOWMLP_HPP_EXCEPTIONS 1
#include <stdexcept>
#else
#define FLOWMLP_HPP_EXCEPTIONS 0
#endif

#include "flowmlp.h"

namespace flowmlp {

/* ---------------------------------------------------------------------------------- */
/* span: a pointer and an element count                                               */
/* ---------------------------------------------------------------------------------- */

namespace detail {
template <class C, class T, class = void>
struct is_contiguous_of : std::false_type {};
template <class C, class T>
struct is_contiguous_of<C, T,
                        std::void_t<decltype(std::data(std::declval<C &>())),
                                    decltype(std::size(std::declval<C &>()))>>
    : std::is_convertible<decltype(std::data(std::declval<C &>())), T *> {};
// (C may be a reference type; C & is then that lvalue reference.)
}  // namespace detail

// A view of `size()` elements at `data()` (std::span's subset that flowmlp needs).
template <class T>
class span {
public:
    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    // Any contiguous container or C array of T (for span<const T>, also of non-const T),
    // including std::span and flowmlp::span<T> for span<const T>.
    template <class C, class B = std::remove_cv_t<std::remove_reference_t<C>>,
              class = std::enable_if_t<!std::is_same_v<B, span> &&
                                       detail::is_contiguous_of<C, T>::value>>
    constexpr span(C &&c) noexcept : data_(std::data(c)), size_(std::size(c)) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

/* ---------------------------------------------------------------------------------- */
/* Errors                                                                             */
/* ---------------------------------------------------------------------------------- */

// One sentence on the last call into the C library that failed on this thread.
inline const char *last_error_message() noexcept { return flowmlp_last_error_message(); }

// The sentence flowmlp_status_message gives for `status`.
inline const char *message(flowmlp_status status) noexcept {
    return flowmlp_status_message(static_cast<int>(status));
}

// The library's version, e.g. "0.1.0".
inline const char *version() noexcept { return flowmlp_version(); }

// Whether this CPU and build can run kernel set `isa`.
inline bool isa_supported(flowmlp_isa isa) noexcept {
    return flowmlp_isa_supported(static_cast<uint32_t>(isa)) != 0;
}

#if FLOWMLP_HPP_EXCEPTIONS
// A failed flowmlp call: status() is its flowmlp_status, what() names the C function
// and gives flowmlp_status_message. (flowmlp::last_error_message() names the argument
// or field, for a refusal that the C library made; the wrapper's own length checks
// leave it as it was.)
class Error : public std::runtime_error {
public:
    explicit Error(flowmlp_status status, const char *function = "flowmlp")
        : std::runtime_error(std::string(function) + ": " + message(status)),
          status_(status) {}
    flowmlp_status status() const noexcept { return status_; }

private:
    flowmlp_status status_;
};

namespace detail {
inline void check(flowmlp_status status, const char *function) {
    if (status != FLOWMLP_OK) throw Error(status, function);
}
}  // namespace detail
#endif

/* ---------------------------------------------------------------------------------- */
/* Configuration and optimizers                                                       */
/* ---------------------------------------------------------------------------------- */

// A flowmlp_config with chainable setters: Config(d, {h_1, .., h_k}, m).max_batch(32).
// More than FLOWMLP_MAX_HIDDEN widths are recorded as such, and creation refuses them
// (FLOWMLP_ERROR_INVALID_CONFIG).
class Config {
public:
    Config(uint32_t inputs, std::initializer_list<uint32_t> hidden, uint32_t outputs) noexcept
        : Config(inputs, hidden.begin(), hidden.size(), outputs) {}
    Config(uint32_t inputs, span<const uint32_t> hidden, uint32_t outputs) noexcept
        : Config(inputs, hidden.data(), hidden.size(), outputs) {}
    explicit Config(const flowmlp_config &raw) noexcept : c_(raw) {}

    Config &max_batch(uint32_t rows) noexcept { c_.max_batch = rows; return *this; }
    Config &seed(uint64_t seed) noexcept { c_.seed = seed; return *this; }
    Config &isa(flowmlp_isa isa) noexcept { c_.isa = static_cast<uint32_t>(isa); return *this; }
    Config &loss(flowmlp_loss loss) noexcept { c_.loss = static_cast<uint32_t>(loss); return *this; }

    const flowmlp_config &raw() const noexcept { return c_; }

private:
    Config(uint32_t inputs, const uint32_t *hidden, std::size_t k, uint32_t outputs) noexcept
        : c_() {
        c_.n_inputs = inputs;
        c_.n_outputs = outputs;
        c_.n_hidden = static_cast<uint32_t>(k);
        for (std::size_t i = 0; i < k && i < FLOWMLP_MAX_HIDDEN; ++i) c_.hidden[i] = hidden[i];
        c_.max_batch = 1;
        c_.isa = FLOWMLP_ISA_AUTO;
        c_.loss = FLOWMLP_LOSS_MSE;
    }
    flowmlp_config c_;
};

// Optimizers for Model::set_optimizer, with PyTorch's defaults. Gradient clipping:
// set `clip_norm` on the result (0 = none).
inline flowmlp_optimizer sgd(float momentum = 0.0f, bool nesterov = false,
                             float weight_decay = 0.0f) noexcept {
    flowmlp_optimizer o{};
    o.kind = FLOWMLP_OPTIMIZER_SGD;
    o.momentum = momentum;
    o.nesterov = nesterov ? 1u : 0u;
    o.weight_decay = weight_decay;
    return o;
}
inline flowmlp_optimizer adam(float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
                              float weight_decay = 0.0f) noexcept {
    flowmlp_optimizer o{};
    o.kind = FLOWMLP_OPTIMIZER_ADAM;
    o.beta1 = beta1;
    o.beta2 = beta2;
    o.eps = eps;
    o.weight_decay = weight_decay;
    return o;
}
inline flowmlp_optimizer adamw(float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
                               float weight_decay = 0.01f) noexcept {
    flowmlp_optimizer o = adam(beta1, beta2, eps, weight_decay);
    o.kind = FLOWMLP_OPTIMIZER_ADAMW;
    return o;
}

/* ---------------------------------------------------------------------------------- */
/* Model                                                                              */
/* ---------------------------------------------------------------------------------- */

class Model {
public:
    // An empty model (no handle); fill it with try_create / try_load or a move.
    Model() noexcept = default;
    // Take ownership of a handle from flowmlp_create or flowmlp_load (may be NULL).
    explicit Model(flowmlp_model *handle) noexcept : m_(handle) { refresh(); }

    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;
    Model(Model &&other) noexcept
        : m_(std::exchange(other.m_, nullptr)), cfg_(std::exchange(other.cfg_, flowmlp_config{})),
          rows_(std::exchange(other.rows_, 0)) {}
    Model &operator=(Model &&other) noexcept {
        if (this != &other) {
            flowmlp_destroy(m_);
            m_ = std::exchange(other.m_, nullptr);
            cfg_ = std::exchange(other.cfg_, flowmlp_config{});
            rows_ = std::exchange(other.rows_, 0);
        }
        return *this;
    }
    ~Model() { flowmlp_destroy(m_); }

    // The handle, for C calls (still owned by this Model).
    flowmlp_model *get() const noexcept { return m_; }
    // Give up ownership: the caller must flowmlp_destroy the handle.
    flowmlp_model *release() noexcept {
        rows_ = 0;
        cfg_ = flowmlp_config{};
        return std::exchange(m_, nullptr);
    }
    explicit operator bool() const noexcept { return m_ != nullptr; }

    /* Creation ------------------------------------------------------------------- */

    [[nodiscard]] static flowmlp_status try_create(const Config &config, Model &out) noexcept {
        flowmlp_model *h = nullptr;
        flowmlp_status s = flowmlp_create(&config.raw(), &h);
        if (s == FLOWMLP_OK) out = Model(h);
        return s;
    }
    // A model from a checkpoint written by save (flowmlp_load).
    [[nodiscard]] static flowmlp_status try_load(span<const uint8_t> bytes, uint32_t max_batch,
                                                 flowmlp_isa isa, Model &out) noexcept {
        flowmlp_model *h = nullptr;
        flowmlp_status s =
            flowmlp_load(bytes.data(), bytes.size(), max_batch, static_cast<uint32_t>(isa), &h);
        if (s == FLOWMLP_OK) out = Model(h);
        return s;
    }
    [[nodiscard]] static flowmlp_status try_load_file(const char *path, uint32_t max_batch,
                                                      flowmlp_isa isa, Model &out) noexcept {
        flowmlp_model *h = nullptr;
        flowmlp_status s = flowmlp_load_file(path, max_batch, static_cast<uint32_t>(isa), &h);
        if (s == FLOWMLP_OK) out = Model(h);
        return s;
    }

#if FLOWMLP_HPP_EXCEPTIONS
    explicit Model(const Config &config) {
        detail::check(flowmlp_create(&config.raw(), &m_), "flowmlp_create");
        refresh();
    }
    static Model load(span<const uint8_t> bytes, uint32_t max_batch,
                      flowmlp_isa isa = FLOWMLP_ISA_AUTO) {
        Model m;
        detail::check(try_load(bytes, max_batch, isa, m), "flowmlp_load");
        return m;
    }
    static Model load_file(const std::string &path, uint32_t max_batch,
                           flowmlp_isa isa = FLOWMLP_ISA_AUTO) {
        Model m;
        detail::check(try_load_file(path.c_str(), max_batch, isa, m), "flowmlp_load_file");
        return m;
    }
#endif

    /* Shape -------------------------------------------------------------------------- */

    // The configuration (flowmlp_get_config; isa resolved); zeros for an empty model.
    const flowmlp_config &config() const noexcept { return cfg_; }
    std::size_t inputs() const noexcept { return cfg_.n_inputs; }
    std::size_t outputs() const noexcept { return cfg_.n_outputs; }
    std::size_t max_batch() const noexcept { return cfg_.max_batch; }
    std::size_t param_count() const noexcept { return flowmlp_param_count(m_); }
    // "scalar", "avx2", "avx512" or "neon"; "" for an empty model.
    const char *isa_name() const noexcept {
        const char *s = flowmlp_isa_name(m_);
        return s != nullptr ? s : "";
    }

    /* Threads ------------------------------------------------------------------------ */

    // Use n threads for forward, backward, step and train_step (0: one per core, 1: the
    // default); results are bit-identical for every n (flowmlp_set_threads).
    [[nodiscard]] flowmlp_status try_set_threads(uint32_t n) noexcept {
        return flowmlp_set_threads(m_, n);
    }
#if FLOWMLP_HPP_EXCEPTIONS
    void set_threads(uint32_t n) { detail::check(try_set_threads(n), "flowmlp_set_threads"); }
#endif
    // Threads in use; 1 for an empty model.
    uint32_t threads() const noexcept { return flowmlp_threads(m_); }

    /* Training ----------------------------------------------------------------------- */

    // Forward pass on n rows of x (n x d); predictions (n x m) into y_out when not NULL.
    [[nodiscard]] flowmlp_status try_forward(const float *x, std::size_t n,
                                             float *y_out = nullptr) noexcept {
        flowmlp_status s = flowmlp_forward(m_, x, n, y_out);
        if (s == FLOWMLP_OK) rows_ = n;
        return s;
    }
    [[nodiscard]] flowmlp_status try_forward(span<const float> x, span<float> y_out) noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        if (y_out.size() != n * outputs()) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return try_forward(x.data(), n, y_out.data());
    }
    [[nodiscard]] flowmlp_status try_forward(span<const float> x) noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        return try_forward(x.data(), n, nullptr);
    }

    // Gradients of the loss of the last forward against y (rows x m of that forward).
    [[nodiscard]] flowmlp_status try_backward(const float *y, float *loss_out = nullptr) noexcept {
        return flowmlp_backward(m_, y, loss_out);
    }
    // The span overload checks y against the rows of this wrapper's last forward.
    [[nodiscard]] flowmlp_status try_backward(span<const float> y,
                                              float *loss_out = nullptr) noexcept {
        if (rows_ == 0) return m_ == nullptr ? FLOWMLP_ERROR_NULL_POINTER : FLOWMLP_ERROR_NO_FORWARD;
        if (y.size() != rows_ * outputs()) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return flowmlp_backward(m_, y.data(), loss_out);
    }

    // One step of the optimizer (plain SGD unless set_optimizer chose another).
    [[nodiscard]] flowmlp_status try_step(float learning_rate) noexcept {
        flowmlp_status s = flowmlp_step(m_, learning_rate);
        if (s == FLOWMLP_OK) rows_ = 0;
        return s;
    }

    // Forward, backward and step on n rows in one call; the loss before the step.
    [[nodiscard]] flowmlp_status try_train_step(const float *x, const float *y, std::size_t n,
                                                float learning_rate,
                                                float *loss_out = nullptr) noexcept {
        flowmlp_status s = flowmlp_train_step(m_, x, y, n, learning_rate, loss_out);
        // train_step keeps no forward, and drops an earlier one once its own forward ran
        // (a NON_FINITE or DIVERGED refusal); other refusals keep it.
        if (s == FLOWMLP_OK || s == FLOWMLP_ERROR_NON_FINITE || s == FLOWMLP_ERROR_DIVERGED)
            rows_ = 0;
        return s;
    }
    [[nodiscard]] flowmlp_status try_train_step(span<const float> x, span<const float> y,
                                                float learning_rate,
                                                float *loss_out = nullptr) noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        if (y.size() != n * outputs()) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return try_train_step(x.data(), y.data(), n, learning_rate, loss_out);
    }

    [[nodiscard]] flowmlp_status try_set_optimizer(const flowmlp_optimizer &opt) noexcept {
        return flowmlp_set_optimizer(m_, &opt);
    }

    /* Inference ---------------------------------------------------------------------- */

    // Bytes of workspace predict needs to process n_rows rows per pass.
    std::size_t predict_workspace_size(std::size_t n_rows) const noexcept {
        return flowmlp_predict_workspace_size(m_, n_rows);
    }
    // Read-only inference on any number of rows, activations in the caller's workspace:
    // safe from many threads at once on one model (each with its own workspace).
    [[nodiscard]] flowmlp_status try_predict(const float *x, std::size_t n, float *y_out,
                                             void *workspace,
                                             std::size_t workspace_len) const noexcept {
        return flowmlp_predict(m_, x, n, y_out, workspace, workspace_len);
    }
    [[nodiscard]] flowmlp_status try_predict(span<const float> x, span<float> y_out,
                                             span<unsigned char> workspace) const noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        if (y_out.size() != n * outputs()) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return flowmlp_predict(m_, x.data(), n, y_out.data(), workspace.data(), workspace.size());
    }

    // Forward pass, then the index of the largest output of each row (n entries).
    [[nodiscard]] flowmlp_status try_predict_class(const float *x, std::size_t n,
                                                   uint32_t *classes_out) noexcept {
        flowmlp_status s = flowmlp_predict_class(m_, x, n, classes_out);
        if (s == FLOWMLP_OK) rows_ = n;
        return s;
    }
    [[nodiscard]] flowmlp_status try_predict_class(span<const float> x,
                                                   span<uint32_t> classes_out) noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        if (classes_out.size() != n) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return try_predict_class(x.data(), n, classes_out.data());
    }
    // Read-only classes (predict, then the largest output of each row), with the
    // outputs in the caller's workspace: safe from many threads, like try_predict.
    [[nodiscard]] flowmlp_status try_classify(const float *x, std::size_t n,
                                              uint32_t *classes_out, void *workspace,
                                              std::size_t workspace_len) const noexcept {
        return flowmlp_classify(m_, x, n, classes_out, workspace, workspace_len);
    }
    [[nodiscard]] flowmlp_status try_classify(span<const float> x, span<uint32_t> classes_out,
                                              span<unsigned char> workspace) const noexcept {
        std::size_t n = 0;
        if (flowmlp_status s = rows_of(x, &n); s != FLOWMLP_OK) return s;
        if (classes_out.size() != n) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        return flowmlp_classify(m_, x.data(), n, classes_out.data(), workspace.data(),
                                workspace.size());
    }

    /* Parameters and gradients (flat layout: W_1, b_1, ..., W_o, b_o) ------------------ */

    [[nodiscard]] flowmlp_status try_get_params(float *out, std::size_t len) const noexcept {
        return flowmlp_get_params(m_, out, len);
    }
    [[nodiscard]] flowmlp_status try_get_params(span<float> out) const noexcept {
        return flowmlp_get_params(m_, out.data(), out.size());
    }
    [[nodiscard]] flowmlp_status try_set_params(const float *values, std::size_t len) noexcept {
        flowmlp_status s = flowmlp_set_params(m_, values, len);
        if (s == FLOWMLP_OK) rows_ = 0;
        return s;
    }
    [[nodiscard]] flowmlp_status try_set_params(span<const float> values) noexcept {
        return try_set_params(values.data(), values.size());
    }
    [[nodiscard]] flowmlp_status try_get_grads(float *out, std::size_t len) const noexcept {
        return flowmlp_get_grads(m_, out, len);
    }
    [[nodiscard]] flowmlp_status try_get_grads(span<float> out) const noexcept {
        return flowmlp_get_grads(m_, out.data(), out.size());
    }

    /* Checkpoints and the flow graph --------------------------------------------------- */

    std::size_t save_size() const noexcept { return flowmlp_save_size(m_); }
    [[nodiscard]] flowmlp_status try_save(uint8_t *buf, std::size_t cap,
                                          std::size_t *written = nullptr) const noexcept {
        return flowmlp_save(m_, buf, cap, written);
    }
    [[nodiscard]] flowmlp_status try_save(span<uint8_t> buf,
                                          std::size_t *written = nullptr) const noexcept {
        return flowmlp_save(m_, buf.data(), buf.size(), written);
    }
    [[nodiscard]] flowmlp_status try_save_file(const char *path) const noexcept {
        return flowmlp_save_file(m_, path);
    }
    // The DOT text's size, NUL included (0 for an empty model).
    std::size_t graph_dot_size() const noexcept {
        std::size_t need = 0;
        return flowmlp_graph_dot(m_, nullptr, 0, &need) == FLOWMLP_OK ? need : 0;
    }
    // The flow graph in Graphviz DOT, NUL-terminated, into buf (see flowmlp_graph_dot).
    [[nodiscard]] flowmlp_status try_graph_dot(char *buf, std::size_t cap,
                                               std::size_t *written = nullptr) const noexcept {
        return flowmlp_graph_dot(m_, buf, cap, written);
    }

#if FLOWMLP_HPP_EXCEPTIONS
    /* The throwing family ------------------------------------------------------------- */

    void forward(const float *x, std::size_t n, float *y_out = nullptr) {
        detail::check(try_forward(x, n, y_out), "flowmlp_forward");
    }
    void forward(span<const float> x, span<float> y_out) {
        detail::check(try_forward(x, y_out), "flowmlp_forward");
    }
    void forward(span<const float> x) { detail::check(try_forward(x), "flowmlp_forward"); }

    float backward(const float *y) {
        float loss = 0.0f;
        detail::check(try_backward(y, &loss), "flowmlp_backward");
        return loss;
    }
    float backward(span<const float> y) {
        float loss = 0.0f;
        detail::check(try_backward(y, &loss), "flowmlp_backward");
        return loss;
    }

    void step(float learning_rate) { detail::check(try_step(learning_rate), "flowmlp_step"); }

    float train_step(const float *x, const float *y, std::size_t n, float learning_rate) {
        float loss = 0.0f;
        detail::check(try_train_step(x, y, n, learning_rate, &loss), "flowmlp_train_step");
        return loss;
    }
    float train_step(span<const float> x, span<const float> y, float learning_rate) {
        float loss = 0.0f;
        detail::check(try_train_step(x, y, learning_rate, &loss), "flowmlp_train_step");
        return loss;
    }

    void set_optimizer(const flowmlp_optimizer &opt) {
        detail::check(try_set_optimizer(opt), "flowmlp_set_optimizer");
    }

    void predict(const float *x, std::size_t n, float *y_out, void *workspace,
                 std::size_t workspace_len) const {
        detail::check(try_predict(x, n, y_out, workspace, workspace_len), "flowmlp_predict");
    }
    void predict(span<const float> x, span<float> y_out, span<unsigned char> workspace) const {
        detail::check(try_predict(x, y_out, workspace), "flowmlp_predict");
    }
    // Allocates a workspace for up to 256 rows per pass, then predicts.
    void predict(span<const float> x, span<float> y_out) const {
        std::size_t rows = inputs() == 0 ? 1 : x.size() / inputs();
        std::vector<unsigned char> ws(predict_workspace_size(rows < 256 ? rows : 256));
        predict(x, y_out, ws);
    }
    // Allocates the predictions (and a workspace).
    std::vector<float> predict(span<const float> x) const {
        std::vector<float> y(inputs() == 0 ? 0 : x.size() / inputs() * outputs());
        predict(x, y);
        return y;
    }

    void predict_class(const float *x, std::size_t n, uint32_t *classes_out) {
        detail::check(try_predict_class(x, n, classes_out), "flowmlp_predict_class");
    }
    void predict_class(span<const float> x, span<uint32_t> classes_out) {
        detail::check(try_predict_class(x, classes_out), "flowmlp_predict_class");
    }
    void classify(span<const float> x, span<uint32_t> classes_out,
                  span<unsigned char> workspace) const {
        detail::check(try_classify(x, classes_out, workspace), "flowmlp_classify");
    }
    // Allocates the classes and a workspace for up to 256 rows per pass.
    std::vector<uint32_t> classify(span<const float> x) const {
        std::size_t rows = inputs() == 0 ? 1 : x.size() / inputs();
        std::vector<uint32_t> classes(inputs() == 0 ? 0 : x.size() / inputs());
        std::vector<unsigned char> ws(predict_workspace_size(rows < 256 ? rows : 256));
        classify(x, classes, ws);
        return classes;
    }

    void get_params(float *out, std::size_t len) const {
        detail::check(try_get_params(out, len), "flowmlp_get_params");
    }
    void get_params(span<float> out) const {
        detail::check(try_get_params(out), "flowmlp_get_params");
    }
    // Allocates.
    std::vector<float> params() const {
        std::vector<float> p(param_count());
        get_params(p);
        return p;
    }
    void set_params(const float *values, std::size_t len) {
        detail::check(try_set_params(values, len), "flowmlp_set_params");
    }
    void set_params(span<const float> values) {
        detail::check(try_set_params(values), "flowmlp_set_params");
    }
    void get_grads(float *out, std::size_t len) const {
        detail::check(try_get_grads(out, len), "flowmlp_get_grads");
    }
    void get_grads(span<float> out) const {
        detail::check(try_get_grads(out), "flowmlp_get_grads");
    }
    // Allocates.
    std::vector<float> grads() const {
        std::vector<float> g(param_count());
        get_grads(g);
        return g;
    }

    // Bytes written.
    std::size_t save(uint8_t *buf, std::size_t cap) const {
        std::size_t written = 0;
        detail::check(try_save(buf, cap, &written), "flowmlp_save");
        return written;
    }
    std::size_t save(span<uint8_t> buf) const { return save(buf.data(), buf.size()); }
    // Allocates.
    std::vector<uint8_t> save() const {
        std::vector<uint8_t> bytes(save_size());
        save(bytes);
        return bytes;
    }
    void save_file(const std::string &path) const {
        detail::check(try_save_file(path.c_str()), "flowmlp_save_file");
    }

    // Bytes written, NUL included.
    std::size_t graph_dot(char *buf, std::size_t cap) const {
        std::size_t written = 0;
        detail::check(try_graph_dot(buf, cap, &written), "flowmlp_graph_dot");
        return written;
    }
    // Allocates.
    std::string graph_dot() const {
        std::size_t need = 0;
        detail::check(try_graph_dot(nullptr, 0, &need), "flowmlp_graph_dot");
        std::string text(need, '\0');
        graph_dot(&text[0], need);
        text.resize(need - 1);
        return text;
    }
#endif

private:
    void refresh() noexcept {
        cfg_ = flowmlp_config{};
        rows_ = 0;
        if (m_ != nullptr && flowmlp_get_config(m_, &cfg_) != FLOWMLP_OK) cfg_ = flowmlp_config{};
    }
    // Rows of an n x d array into *n: NULL_POINTER for an empty model, INVALID_ARGUMENT
    // when the length is not a positive multiple of d.
    flowmlp_status rows_of(span<const float> x, std::size_t *n) const noexcept {
        if (m_ == nullptr) return FLOWMLP_ERROR_NULL_POINTER;
        std::size_t d = inputs();
        if (d == 0 || x.empty() || x.size() % d != 0) return FLOWMLP_ERROR_INVALID_ARGUMENT;
        *n = x.size() / d;
        return FLOWMLP_OK;
    }

    flowmlp_model *m_ = nullptr;
    flowmlp_config cfg_{};
    std::size_t rows_ = 0;  // rows of the forward this wrapper last kept (0: none)
};

}  // namespace flowmlp

#endif  // FLOWMLP_HPP
