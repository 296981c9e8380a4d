// Writes the files tests/io/check_h5_layout.py inspects with h5py: a small ResNet (convolutional
// and identity block) compiled with Adam and trained for two steps, saved with save_model, and
// its weights saved with save_weights.
//   reskit_io_write_sample MODEL.h5 WEIGHTS.h5
#include <iostream>

#include "reskit/io/h5.h"
#include "reskit/reskit.h"

int main(int argc, char** argv) {
  using namespace reskit;
  if (argc != 3) {
    std::cerr << "usage: reskit_io_write_sample MODEL.h5 WEIGHTS.h5\n";
    return 2;
  }
  try {
    set_random_seed(1);
    Tensor in = Input({16, 16, 3});
    Tensor x = ZeroPadding2D(std::array<int, 2>{1, 1})(in);
    x = Conv2D(8, {3, 3}, {.strides = {2, 2}, .name = "conv1"})(x);
    x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
    x = Activation("relu")(x);
    x = MaxPooling2D({2, 2})(x);
    x = convolutional_block(x, 3, {4, 4, 16}, 1, "2", "a");
    x = identity_block(x, 3, {4, 4, 16}, "2", "b");
    x = AveragePooling2D({2, 2}, {.padding = "same", .name = "avg_pool"})(x);
    x = Flatten()(x);
    x = Dense(4, {.activation = "softmax", .name = "fc4"})(x);
    Model model(in, x, "sample_resnet");
    model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
    Tensor xb({2, 16, 16, 3}), yb({2, 4});
    for (std::int64_t i = 0; i < xb.numel(); ++i) xb.set(i, static_cast<double>(i % 17) / 17.0);
    yb.set(1, 1.0);
    yb.set(4 + 3, 1.0);
    model.train_on_batch(xb, yb);
    model.train_on_batch(xb, yb);
    save_model(model, argv[1]);
    save_weights(model, argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "reskit_io_write_sample: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
