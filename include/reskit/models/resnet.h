// reskit/models/resnet.h — the notebook's blocks and ResNet-50 (He et al. 2015).
//
// identity_block and convolutional_block follow the notebook's text, with its layer names
// (conv_<stage><block>2a, bn_<stage><block>2a, ..., conv_<stage><block>1 for the shortcut).
// They work on symbolic tensors (building a Model) and on concrete ones (running at once).
#pragma once

#include <array>
#include <string>

#include "reskit/graph/model.h"

namespace reskit {

// x -> conv 1x1 (F1) -> BN -> relu -> conv f x f "same" (F2) -> BN -> relu -> conv 1x1 (F3) -> BN
//   -> Add with x -> relu. F3 must equal x's channel count.
Tensor identity_block(const Tensor& x, int f, std::array<int, 3> filters, const std::string& stage,
                      const std::string& block);

// As identity_block, with stride s in the first 1x1 conv, and a shortcut conv 1x1 (F3, stride s)
// + BN.
Tensor convolutional_block(const Tensor& x, int f, std::array<int, 3> filters, int s,
                           const std::string& stage, const std::string& block);

struct ResNet50Options {
  // Filters (F1, F2, F3) of stages 2..5 and the stride of each stage's convolutional block.
  std::array<std::array<int, 3>, 4> stage_filters{
      {{64, 64, 256}, {128, 128, 512}, {256, 256, 1024}, {512, 512, 2048}}};
  std::array<int, 4> stage_strides{1, 2, 2, 2};
  std::string name = "resnet50";
};

// The variant the notebook's code builds: 126 filters in stage 3, stride 1 in stage 5.
ResNet50Options resnet50_notebook_code_variant();

// ZeroPadding2D(3) -> conv1 7x7/2 (64) -> bn1 -> relu -> MaxPooling2D 3x3/2 -> stages 2..5
// (3, 4, 6, 3 blocks) -> AveragePooling2D 2x2 "avg_pool" -> Flatten -> Dense softmax "fc<classes>".
Model resnet50(const Shape& input_shape = {64, 64, 3}, int classes = 6, ResNet50Options options = {});

}  // namespace reskit
