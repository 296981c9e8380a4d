// The notebook's identity and convolutional blocks, and ResNet-50.
#include "reskit/models/resnet.h"

#include "reskit/error.h"
#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"
#include "reskit/layers/normalization.h"
#include "reskit/layers/pooling.h"

namespace reskit {

namespace {
std::string block_where(const char* kind, const std::string& stage, const std::string& block) {
  return std::string(kind) + " (stage " + stage + ", block '" + block + "')";
}

void check_block(const char* kind, const Tensor& x, int f, std::array<int, 3> filters, int s,
                 const std::string& stage, const std::string& block) {
  if (x.rank() != 4) {
    throw ShapeError(block_where(kind, stage, block) +
                     ": expected a 4-D input (batch, rows, cols, channels), got shape " +
                     shape_str(x.shape()));
  }
  if (f <= 0 || s <= 0) {
    throw ConfigError(block_where(kind, stage, block) +
                      ": expected positive f and s, got f=" + std::to_string(f) + ", s=" + std::to_string(s));
  }
  for (int v : filters) {
    if (v <= 0) {
      throw ConfigError(block_where(kind, stage, block) + ": expected positive filter counts, got " +
                        std::to_string(v));
    }
  }
}

// conv -> BN (-> relu): the three components of a block's main path.
Tensor main_path(Tensor x, int f, std::array<int, 3> filters, int s, const std::string& conv,
                 const std::string& bn) {
  auto [f1, f2, f3] = filters;
  x = Conv2D(f1, {1, 1}, {.strides = {s, s}, .padding = "valid", .name = conv + "2a"})(x);
  x = BatchNormalization({.axis = 3, .name = bn + "2a"})(x);
  x = Activation("relu")(x);
  x = Conv2D(f2, {f, f}, {.strides = {1, 1}, .padding = "same", .name = conv + "2b"})(x);
  x = BatchNormalization({.axis = 3, .name = bn + "2b"})(x);
  x = Activation("relu")(x);
  x = Conv2D(f3, {1, 1}, {.strides = {1, 1}, .padding = "valid", .name = conv + "2c"})(x);
  return BatchNormalization({.axis = 3, .name = bn + "2c"})(x);
}
}  // namespace

Tensor identity_block(const Tensor& x, int f, std::array<int, 3> filters, const std::string& stage,
                      const std::string& block) {
  check_block("identity_block", x, f, filters, 1, stage, block);
  if (filters[2] != x.dim(3)) {
    throw ShapeError(block_where("identity_block", stage, block) +
                     ": expected the last filter count to equal the input's " + std::to_string(x.dim(3)) +
                     " channels, got " + std::to_string(filters[2]));
  }
  Tensor y = main_path(x, f, filters, 1, "conv_" + stage + block, "bn_" + stage + block);
  y = Add()({y, x});
  return Activation("relu")(y);
}

Tensor convolutional_block(const Tensor& x, int f, std::array<int, 3> filters, int s,
                           const std::string& stage, const std::string& block) {
  check_block("convolutional_block", x, f, filters, s, stage, block);
  const std::string conv = "conv_" + stage + block, bn = "bn_" + stage + block;
  Tensor y = main_path(x, f, filters, s, conv, bn);
  Tensor shortcut =
      Conv2D(filters[2], {1, 1}, {.strides = {s, s}, .padding = "valid", .name = conv + "1"})(x);
  shortcut = BatchNormalization({.axis = 3, .name = bn + "1"})(shortcut);
  y = Add()({y, shortcut});
  return Activation("relu")(y);
}

ResNet50Options resnet50_notebook_code_variant() {
  ResNet50Options o;
  o.stage_filters[1] = {126, 126, 512};
  o.stage_strides[3] = 1;
  return o;
}

Model resnet50(const Shape& input_shape, int classes, ResNet50Options options) {
  if (input_shape.size() != 3) {
    throw ShapeError("resnet50: expected input_shape (rows, cols, channels), got " + shape_str(input_shape));
  }
  if (classes <= 0) throw ConfigError("resnet50: expected classes > 0, got " + std::to_string(classes));
  Tensor input = Input(input_shape);
  Tensor x = ZeroPadding2D(std::array<int, 2>{3, 3})(input);
  x = Conv2D(64, {7, 7}, {.strides = {2, 2}, .name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({3, 3}, {.strides = std::array<int, 2>{2, 2}})(x);
  const int blocks[4] = {3, 4, 6, 3};
  for (int st = 0; st < 4; ++st) {
    const std::string stage = std::to_string(st + 2);
    const auto& filters = options.stage_filters[st];
    x = convolutional_block(x, 3, filters, options.stage_strides[st], stage, "a");
    for (int b = 1; b < blocks[st]; ++b)
      x = identity_block(x, 3, filters, stage, std::string(1, char('a' + b)));
  }
  x = AveragePooling2D({2, 2}, {.padding = "same", .name = "avg_pool"})(x);
  x = Flatten()(x);
  x = Dense(classes, {.activation = "softmax", .name = "fc" + std::to_string(classes)})(x);
  return Model(input, x, options.name);
}

Tensor basic_block(const Tensor& x, int f, int filters, int s, const std::string& stage,
                   const std::string& block) {
  check_block("basic_block", x, f, {filters, filters, filters}, s, stage, block);
  const std::string conv = "conv_" + stage + block, bn = "bn_" + stage + block;
  Tensor y = Conv2D(filters, {f, f},
                    {.strides = {s, s}, .padding = "same", .use_bias = false, .name = conv + "2a"})(x);
  y = BatchNormalization({.axis = 3, .name = bn + "2a"})(y);
  y = Activation("relu")(y);
  y = Conv2D(filters, {f, f}, {.padding = "same", .use_bias = false, .name = conv + "2b"})(y);
  y = BatchNormalization({.axis = 3, .name = bn + "2b"})(y);
  Tensor shortcut = x;
  if (s != 1 || x.dim(3) != filters) {
    shortcut = Conv2D(filters, {1, 1}, {.strides = {s, s}, .use_bias = false, .name = conv + "1"})(x);
    shortcut = BatchNormalization({.axis = 3, .name = bn + "1"})(shortcut);
  }
  y = Add()({y, shortcut});
  return Activation("relu")(y);
}

namespace {
std::string block_letter(int b) { return b < 26 ? std::string(1, char('a' + b)) : "b" + std::to_string(b); }

void check_image_input(const char* what, const Shape& input_shape, int classes, std::int64_t min_side) {
  if (input_shape.size() != 3) {
    throw ShapeError(std::string(what) + ": expected input_shape (rows, cols, channels), got " +
                     shape_str(input_shape));
  }
  if (input_shape[0] < min_side || input_shape[1] < min_side) {
    throw ShapeError(std::string(what) + ": expected an input of at least " + std::to_string(min_side) + "x" +
                     std::to_string(min_side) + ", got " + shape_str(input_shape));
  }
  if (classes <= 0)
    throw ConfigError(std::string(what) + ": expected classes > 0, got " + std::to_string(classes));
}
}  // namespace

Model resnet_imagenet(int depth, const Shape& input_shape, int classes) {
  if (depth == 50) return resnet50(input_shape, classes);
  std::array<int, 4> blocks;
  bool bottleneck = depth > 34;
  switch (depth) {
    case 18:
      blocks = {2, 2, 2, 2};
      break;
    case 34:
      blocks = {3, 4, 6, 3};
      break;
    case 101:
      blocks = {3, 4, 23, 3};
      break;
    case 152:
      blocks = {3, 8, 36, 3};
      break;
    default:
      throw ConfigError("resnet_imagenet: expected depth 18, 34, 50, 101 or 152, got " +
                        std::to_string(depth));
  }
  const std::string name = "resnet" + std::to_string(depth);
  check_image_input(name.c_str(), input_shape, classes, 32);
  Tensor input = Input(input_shape);
  Tensor x = ZeroPadding2D(std::array<int, 2>{3, 3})(input);
  x = Conv2D(64, {7, 7}, {.strides = {2, 2}, .name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
  x = Activation("relu")(x);
  x = ZeroPadding2D(std::array<int, 2>{1, 1})(x);
  x = MaxPooling2D({3, 3}, {.strides = std::array<int, 2>{2, 2}})(x);
  const int widths[4] = {64, 128, 256, 512};
  for (int st = 0; st < 4; ++st) {
    const std::string stage = std::to_string(st + 2);
    const int s = st == 0 ? 1 : 2;
    for (int b = 0; b < blocks[st]; ++b) {
      if (bottleneck) {
        std::array<int, 3> f{widths[st], widths[st], 4 * widths[st]};
        x = b == 0 ? convolutional_block(x, 3, f, s, stage, "a")
                   : identity_block(x, 3, f, stage, block_letter(b));
      } else {
        x = basic_block(x, 3, widths[st], b == 0 ? s : 1, stage, block_letter(b));
      }
    }
  }
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense(classes, {.activation = "softmax", .name = "fc" + std::to_string(classes)})(x);
  return Model(input, x, name);
}

Model resnet_cifar(int depth, const Shape& input_shape, int classes) {
  if (depth < 8 || (depth - 2) % 6 != 0) {
    throw ConfigError("resnet_cifar: expected depth 6n+2 (20, 32, 44, 56, 110), got " +
                      std::to_string(depth));
  }
  const std::string name = "resnet" + std::to_string(depth);
  check_image_input(name.c_str(), input_shape, classes, 4);
  const int n = (depth - 2) / 6;
  Tensor input = Input(input_shape);
  Tensor x = Conv2D(16, {3, 3}, {.padding = "same", .use_bias = false, .name = "conv1"})(input);
  x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
  x = Activation("relu")(x);
  const int widths[3] = {16, 32, 64};
  for (int st = 0; st < 3; ++st) {
    for (int b = 0; b < n; ++b) {
      x = basic_block(x, 3, widths[st], (b == 0 && st > 0) ? 2 : 1, std::to_string(st + 2), block_letter(b));
    }
  }
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense(classes, {.activation = "softmax", .name = "fc" + std::to_string(classes)})(x);
  return Model(input, x, name);
}

}  // namespace reskit
