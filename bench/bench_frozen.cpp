// Step time of head-only training (every layer but the classifier frozen) against full training:
// the notebook's ResNet-50, one fixed batch, Adam. A frozen base runs forward only (its
// normalizations in inference mode) and no backward at all.
//   bench_frozen [--size 64] [--batch 32] [--steps 3] [--threads N]
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "reskit/reskit.h"

using namespace reskit;

namespace {
double seconds_per_step(Model& model, const Tensor& x, const Tensor& y, int steps) {
  model.train_on_batch(x, y);  // warm-up: caches, primitives, slots
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) model.train_on_batch(x, y);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
}
}  // namespace

int main(int argc, char** argv) {
  int size = 64, batch = 32, steps = 3, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--size")
      size = value;
    else if (flag == "--batch")
      batch = value;
    else if (flag == "--steps")
      steps = value;
    else if (flag == "--threads")
      threads = value;
    else {
      std::cerr << "bench_frozen: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (threads > 0) set_num_threads(threads);
  set_random_seed(1);
  Model model = resnet50({size, size, 3}, 6);
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  Tensor x({batch, size, size, 3}), y({batch, 6});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, static_cast<double>(i % 251) / 251.0);
  for (int i = 0; i < batch; ++i) y.set(i * 6 + i % 6, 1.0);

  const double full = seconds_per_step(model, x, y, steps);
  model.set_trainable(false);
  model.get_layer("fc6")->set_trainable(true);
  const double head = seconds_per_step(model, x, y, steps);
  std::cout << "resnet50 " << size << "x" << size << " batch " << batch << ", " << steps << " steps: full "
            << full * 1e3 << " ms/step, head only (base frozen) " << head * 1e3 << " ms/step, ratio "
            << full / head << "\n";
}
