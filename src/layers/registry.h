// The layer registry (internal): what io, export and the model's fusion planner know about each
// layer class, registered by the layer beside its own code (register_* in src/layers/<family>.cpp,
// listed once in registry.cpp). One entry per Keras class name:
//
//  - from_config: calls a new layer, made from its Keras config, on its inputs (load_model,
//    model_from_json); `aliases` are older Keras names read the same way, `also_reads` other
//    Keras classes read into this layer (ReLU as Activation("relu"));
//  - to_config: the layer's tf.keras 2.6 get_config;
//  - to_onnx: its ONNX nodes, or no_onnx saying why there are none;
//  - fusion: what the Model may fuse it with (Model's constructor asks these, never the classes).
//
// Tests loop over every entry (tests/unit/test_registry.cpp): a new layer without a sample there
// fails them.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "layers/keras_json.h"
#include "layers/onnx_export.h"
#include "reskit/layers/layer.h"

namespace reskit::layers {

// Calls a new layer described by its Keras config on its inputs; FileError (keras::bad) on
// options reskit cannot reproduce. Weights are counted against the budget before they exist.
using FromConfig = std::function<Tensor(const keras::Json& config, const keras::LayerCtx& layer,
                                        const std::vector<Tensor>& inputs, keras::WeightBudget& budget)>;
// The layer's Keras config (its node's output shape given).
using ToConfig = std::function<keras::Json(const Layer& layer, const Shape& output_shape)>;
// Adds the layer's ONNX nodes; returns the value holding its output.
using ToOnnx = std::function<onnx_export::Value(onnx_export::NodeExport& node)>;

// What the Model's fusion planner may do with a layer (see Model::set_fuse_relu and
// Model::set_fold_batch_norm). Every function is given a layer of the entry's class.
struct FusionTraits {
  // The layer is a ReLU that its producer may apply in its own pass (Activation("relu")).
  std::function<bool(const Layer&)> is_relu;
  // The layer can apply a following ReLU in its own forward pass (Layer::set_fused_relu), and
  // also its backward (a training pass).
  bool takes_relu = false;
  bool takes_relu_backward = false;
  // A convolution that can apply a following BatchNormalization (and ReLU) in inference; fold
  // sets or clears (bn nullptr) that normalization.
  std::function<bool(const Layer&)> can_fold_batch_norm;
  std::function<void(Layer& conv, Layer* bn, bool relu)> fold_batch_norm;
  // A convolution that, with a normalization folded in, can also add the other input of the Add
  // that alone reads that normalization (then apply the Add's fused ReLU when relu) in its own
  // pass, taking that input as its second input; on false clears it.
  std::function<void(Layer& conv, bool on, bool relu)> set_folded_residual;
  // A normalization that can fold into the preceding convolution: folded_into_conv tells it so.
  std::function<void(Layer&, bool)> folded_into_conv;
  // A layer that alone feeding one input of a two-input Add can add the Add's other input (and
  // apply the Add's fused ReLU) in its own pass, taking that input as its second input.
  bool absorbs_add_input = false;
  // An Add whose input `input` (-1: none) was summed by its producer: it passes that input on.
  std::function<void(Layer&, int input)> set_sum_input;
  // Mixed precision, training: a layer that reads its input, and the gradient of its output, only
  // through their bfloat16 roundings (Tensor::bf16_shadow) when they have them (a linear Conv2D).
  std::function<bool(const Layer&)> reads_bf16_only;
  // Mixed precision, training: a layer that can write its output, or its input gradient, as the
  // bfloat16 rounding alone (Tensor::bf16_shadow_only_written) where every reader takes that
  // (BatchNormalizationLayer::set_bf16_only); on false for both it writes float32 again.
  std::function<void(Layer&, bool output, bool input_gradient)> set_bf16_only;
  // Mixed precision, training: a layer that can write its output, or its input gradient, as the
  // bfloat16 rounding alone for a BatchNormalization that reads it alone, which then computes on
  // the rounded values: Keras's bfloat16 activations (Conv2DLayer::set_bf16_only).
  std::function<void(Layer&, bool output, bool input_gradient)> set_bf16_activations;
  // Mixed precision, training: a layer whose training backward reads the gradient of its output
  // through its bfloat16 rounding when that is all the gradient holds, without widening it (a
  // BatchNormalization, a linear Conv2D, a ReLU Activation).
  std::function<bool(const Layer&)> reads_bf16_gradient;
  // An Add: its backward hands the gradient of its output to every input unchanged.
  bool passes_gradient = false;
  // Mixed precision, training: a ReLU whose own backward applies its mask can write its input
  // gradient as the bfloat16 rounding alone (ActivationLayer::set_bf16_only_input_gradient).
  std::function<void(Layer&, bool)> set_bf16_only_input_gradient;
  // Mixed precision, training: a normalization on a residual block's path that can write its
  // output as the rounding alone (BatchNormalizationLayer::set_bf16_only_sum).
  std::function<void(Layer&, bool)> set_bf16_only_sum;
};

struct LayerEntry {
  std::string class_name;  // Layer::class_name() and Keras's class_name
  FromConfig from_config;
  std::vector<std::string> aliases;
  std::vector<std::pair<std::string, FromConfig>> also_reads;
  ToConfig to_config;
  ToOnnx to_onnx;
  std::string no_onnx;
  FusionTraits fusion;
};

// Every entry, in the order the lists in messages name them.
const std::vector<LayerEntry>& layer_entries();
// The entry of a layer's class, or nullptr (a layer class defined outside reskit).
const LayerEntry* find_layer(std::string_view class_name);
// The reader of a Keras class name (a class, an alias or an also_reads name), or nullptr.
const FromConfig* find_reader(std::string_view keras_class_name);
// Keras class names load_model reads: every class, then its also_reads names (aliases left out).
std::vector<std::string> readable_classes();
// "a, b and c" (last = " and ") or "a, b, c" (last = ", ").
std::string join_names(const std::vector<std::string>& names, const std::string& last);

// The registrations, one per layer class (or family), each defined beside the layer's code.
void register_input_layer(std::vector<LayerEntry>& out);
void register_zero_padding2d(std::vector<LayerEntry>& out);
void register_conv2d(std::vector<LayerEntry>& out);
void register_batch_normalization(std::vector<LayerEntry>& out);
void register_sync_batch_normalization(std::vector<LayerEntry>& out);
void register_activation(std::vector<LayerEntry>& out);
void register_add(std::vector<LayerEntry>& out);
void register_pooling2d(std::vector<LayerEntry>& out);
void register_global_pooling2d(std::vector<LayerEntry>& out);
void register_flatten(std::vector<LayerEntry>& out);
void register_dense(std::vector<LayerEntry>& out);
void register_dropout(std::vector<LayerEntry>& out);
// Resizing, CenterCrop, RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast.
void register_preprocessing_image(std::vector<LayerEntry>& out);
void register_rescaling(std::vector<LayerEntry>& out);
void register_normalization(std::vector<LayerEntry>& out);
void register_relu(std::vector<LayerEntry>& out);
void register_leaky_relu(std::vector<LayerEntry>& out);
void register_softmax(std::vector<LayerEntry>& out);
void register_concatenate(std::vector<LayerEntry>& out);

}  // namespace reskit::layers
