// fit_sine.cpp: flowmlp from C++17 with include/flowmlp.hpp.
//
// Fits y = sin(3x) on [-1, 1] with a 1 -> 32 -> 32 -> 1 network and Adam, in
// mini-batches of 32, then predicts a grid of points from four threads at once (one
// model, read-only, a workspace per thread) and checks the fit.
//
// Build and run from the repository root (after `cargo build --release`):
//   c++ -std=c++17 -O2 -Iinclude examples/cpp/fit_sine.cpp target/release/libflowmlp.a
//       -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o fit_sine && ./fit_sine
// or against an installed flowmlp (scripts/install.sh):
//   c++ -std=c++17 -O2 examples/cpp/fit_sine.cpp $(pkg-config --cflags --libs flowmlp)
//       -o fit_sine
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "flowmlp.hpp"

int main() try {
    constexpr std::size_t batch = 32;
    flowmlp::Model model(flowmlp::Config(1, {32, 32}, 1).max_batch(batch).seed(11));
    model.set_optimizer(flowmlp::adam());
    std::printf("flowmlp %s (%s kernels), 1 -> 32 -> 32 -> 1\n", flowmlp::version(),
                model.isa_name());

    // Training: fresh random points every step (a small linear congruential generator).
    std::vector<float> x(batch), y(batch);
    unsigned state = 12345u;
    float loss = 0.0f;
    for (int step = 1; step <= 3000; ++step) {
        for (std::size_t i = 0; i < batch; ++i) {
            state = state * 1664525u + 1013904223u;
            x[i] = float(state >> 8) / 8388608.0f - 1.0f;  // in [-1, 1)
            y[i] = std::sin(3.0f * x[i]);
        }
        loss = model.train_step(x, y, 0.003f);  // throws flowmlp::Error on failure
        if (step % 500 == 0) std::printf("step %4d  loss %.6f\n", step, loss);
    }

    // Inference: 4 threads share the model, each predicting a quarter of the grid.
    constexpr std::size_t points = 400, threads = 4, part = points / threads;
    std::vector<float> grid(points), pred(points);
    for (std::size_t i = 0; i < points; ++i) grid[i] = -1.0f + 2.0f * float(i) / (points - 1);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::vector<unsigned char> workspace(model.predict_workspace_size(part));
            flowmlp::span<const float> in(grid.data() + t * part, part);
            flowmlp::span<float> out(pred.data() + t * part, part);
            model.predict(in, out, workspace);  // const: safe from many threads
        });
    }
    for (auto &th : pool) th.join();

    float worst = 0.0f;
    for (std::size_t i = 0; i < points; ++i)
        worst = std::fmax(worst, std::fabs(pred[i] - std::sin(3.0f * grid[i])));
    for (std::size_t i = 0; i < points; i += 80)
        std::printf("x = %+.2f  sin(3x) = %+.3f  model = %+.3f\n", grid[i],
                    std::sin(3.0f * grid[i]), pred[i]);
    std::printf("largest error on the grid: %.4f\n", worst);
    return worst < 0.1f ? 0 : 1;
} catch (const flowmlp::Error &e) {
    std::fprintf(stderr, "%s (status %d)\n", e.what(), static_cast<int>(e.status()));
    return 1;
}
