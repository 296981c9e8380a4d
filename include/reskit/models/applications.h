// reskit/models/applications.h — the Keras Applications ResNets (keras.applications.ResNet50 …
// ResNet152V2), their input preprocessing and the decoding of ImageNet predictions.
//
// The builders make exactly the layers of keras/applications/resnet.py and resnet_v2.py: the same
// names (conv1_pad, conv1_conv, conv1_bn, conv2_block1_0_conv, …, post_bn, avg_pool, predictions),
// the same weights (Conv2D with bias, BatchNormalization epsilon 1.001e-5) and so the same
// parameter counts (ResNet50: 25,636,712 with the top, 23,587,712 without). Keras's published
// weight files (resnet50_weights_tf_dim_ordering_tf_kernels.h5 and …_notop.h5) then load by layer
// name: load_weights(model, path, {.by_name = true, .require_all = true}) (reskit/io/h5.h).
//
// Not here: downloading weights (nothing is fetched), frozen layers, files.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "reskit/graph/model.h"

namespace reskit::applications {

// The arguments of keras.applications.ResNet50(...) that shape the model (weights are loaded
// afterwards with load_weights by name).
struct ApplicationOptions {
  bool include_top = true;  // GlobalAveragePooling2D "avg_pool" + Dense "predictions"
  Shape input_shape{224, 224, 3};
  // Without the top: "" (the 4-D output of the last block), "avg" (GlobalAveragePooling2D
  // "avg_pool") or "max" (GlobalMaxPooling2D "max_pool").
  std::string pooling;
  int classes = 1000;
  std::string classifier_activation = "softmax";  // "softmax" or "linear" (Keras's None)
};

// keras.applications.resnet: stack1 blocks (post-activation, stride in the first 1x1 conv of
// each stack's first block), conv1_bn/conv1_relu after the stem.
Model resnet50(const ApplicationOptions& options = {});
Model resnet101(const ApplicationOptions& options = {});
Model resnet152(const ApplicationOptions& options = {});
// keras.applications.resnet_v2: stack2 blocks (pre-activation, stride in the 3x3 conv of each
// stack's last block, conv5 without), post_bn/post_relu before the top.
Model resnet50_v2(const ApplicationOptions& options = {});
Model resnet101_v2(const ApplicationOptions& options = {});
Model resnet152_v2(const ApplicationOptions& options = {});

// The Keras model names these build: resnet50, resnet101, resnet152, resnet50v2, resnet101v2,
// resnet152v2.
const std::vector<std::string>& architecture_names();
// Builds one by its Keras model name; ConfigError for another name.
Model build(const std::string& architecture, const ApplicationOptions& options = {});

// keras.applications.imagenet_utils.preprocess_input's modes.
enum class PreprocessMode {
  caffe,  // RGB -> BGR, minus the ImageNet means (B 103.939, G 116.779, R 123.68), not scaled
  tf,     // x / 127.5 - 1, in [-1, 1]
  torch,  // x / 255, minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225)
};
// "caffe", "tf", "torch"; ConfigError for another word.
PreprocessMode preprocess_mode(const std::string& word);
std::string preprocess_mode_name(PreprocessMode mode);
// The mode an architecture expects: caffe for ResNet50/101/152, tf for the V2s.
PreprocessMode preprocess_mode_of(const std::string& architecture);

// Pixels in [0, 255], (…, 3) channels-last RGB (as Keras's image.img_to_array gives them) ->
// the model's input, in a new float tensor of x's dtype. ShapeError unless the last axis is 3.
Tensor preprocess_input(const Tensor& x, PreprocessMode mode);

// One decoded prediction: ("n01440764", "tench", 0.93).
struct Prediction {
  std::string class_id;
  std::string name;
  double score = 0.0;
};

// The ImageNet classes in the form of Keras's imagenet_class_index.json:
// {"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"], …}; entry i is class i.
using ClassIndex = std::vector<std::pair<std::string, std::string>>;
// Reads such a file; FileError naming the file and the entry that is malformed, missing or
// duplicated.
ClassIndex read_class_index(const std::string& path);
// Parses such JSON text; ConfigError naming `where`.
ClassIndex parse_class_index(const std::string& json, const std::string& where);

// keras.applications.imagenet_utils.decode_predictions: per sample of preds (N, K), its top
// classes, highest score first (ties: the lower class first). ShapeError unless preds is
// (N, K) with K = index.size(); ConfigError unless top >= 1 (top > K gives K).
std::vector<std::vector<Prediction>> decode_predictions(const Tensor& preds, const ClassIndex& index,
                                                        int top = 5);

}  // namespace reskit::applications
