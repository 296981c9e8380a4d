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
// avg_pool uses padding "same": identical to the notebook's "valid" whenever the last stage is
// at least 2x2 (inputs of 64x64 and more), and it lets inputs down to 32x32 through.
Model resnet50(const Shape& input_shape = {64, 64, 3}, int classes = 6, ResNet50Options options = {});

// The basic block of ResNet-18/34 and the CIFAR ResNets (He et al. 2015, Fig. 2 left):
// conv f x f (stride s) -> BN -> relu -> conv f x f -> BN -> Add shortcut -> relu. The shortcut is
// x itself, or a 1x1 conv (stride s) + BN when the shape changes (option B). Convolutions have no
// bias (BatchNormalization follows each). Names as in the notebook: conv_<stage><block>2a, 2b, 1.
Tensor basic_block(const Tensor& x, int f, int filters, int s, const std::string& stage,
                   const std::string& block);

// ImageNet layout (He et al. 2015, Table 1) for depth 18, 34, 101, 152: ZeroPadding2D(3) ->
// conv1 7x7/2 -> bn1 -> relu -> ZeroPadding2D(1) -> MaxPooling2D 3x3/2 -> four stages ->
// GlobalAveragePooling2D "avg_pool" -> Dense softmax "fc<classes>". Depth 50 is resnet50() above
// (the notebook's). Inputs of at least 32x32.
Model resnet_imagenet(int depth, const Shape& input_shape, int classes);

// CIFAR layout (He et al. 2015, §4.2) for depth 6n+2 (20, 32, 44, 56, 110): conv1 3x3 (16) -> bn1
// -> relu -> three stages of n basic blocks with 16, 32, 64 filters (stride 2 entering stages 3
// and 4, projection shortcuts) -> GlobalAveragePooling2D "avg_pool" -> Dense softmax.
Model resnet_cifar(int depth, const Shape& input_shape, int classes);

}  // namespace reskit
