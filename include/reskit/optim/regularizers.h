// reskit/optim/regularizers.h — Keras's weight and activity regularizers: L1, L2, L1L2.
//
// penalty(w) = l1·Σ|w| + l2·Σw² (Keras's L2 has no factor 1/2); its gradient l1·sign(w) + 2·l2·w
// (sign(0) = 0, as tf.abs's gradient). A layer's kernel_regularizer, bias_regularizer (Conv2D,
// Dense) and gamma_regularizer, beta_regularizer (BatchNormalization) live on the weight's
// Param; Model::train_on_batch and test_on_batch add the penalties of the weights as they are
// before the update to the loss they report, and the gradients to the update. An
// activity_regularizer penalises the layer's output, divided by the batch size (tf.keras 2.x
// base_layer: "batch-agnostic"); in evaluation, the inference output's.
//
// Not here: Keras 2.10's OrthogonalRegularizer and custom regularizers (files naming them are
// refused by name); AdamW's decoupled weight decay, which is the optimizer's (AdamOptions).
#pragma once

#include <string>
#include <vector>

#include "reskit/tensor.h"

namespace reskit {

struct Param;

// The Keras class a regularizer came from (kept so that a file reads back as it was written).
enum class RegularizerKind { l1, l2, l1_l2 };

struct Regularizer {
  RegularizerKind kind = RegularizerKind::l1_l2;
  double l1 = 0.0;
  double l2 = 0.0;
  bool operator==(const Regularizer&) const = default;
};

// Keras's constructors and their defaults; ConfigError for a negative or non-finite factor.
struct L1 : Regularizer {
  explicit L1(double l1 = 0.01);
};
struct L2 : Regularizer {
  explicit L2(double l2 = 0.01);
};
struct L1L2 : Regularizer {
  explicit L1L2(double l1 = 0.0, double l2 = 0.0);
};

// "L2(l2=0.0001)": how messages and tests print one.
std::string regularizer_str(const Regularizer& r);
// Throws ConfigError naming `where` for a negative or non-finite factor.
void check_regularizer(const Regularizer& r, const std::string& where);

// l1·Σ|w| + l2·Σw², summed in float64.
double penalty(const Regularizer& r, const Tensor& w);
// grad += scale·(l1·sign(w) + 2·l2·w), in grad's dtype (w's shape and dtype).
void add_penalty_gradient(const Regularizer& r, const Tensor& w, Tensor& grad, double scale = 1.0);

// An activity regularizer on a layer's output y (batch first): penalty(y) / batch.
double activity_penalty(const Regularizer& r, const Tensor& y);
// Its gradient with respect to y; with through_softmax, y = softmax(z) over the last axis and the
// result is the gradient with respect to z (for an output layer trained from its logits). `scale`
// multiplies it (a replica's share of the global batch in data-parallel training).
Tensor activity_gradient(const Regularizer& r, const Tensor& y, bool through_softmax, double scale = 1.0);

// Σ penalty over the parameters that carry a regularizer (Keras's regularization losses).
double weight_penalty(const std::vector<Param*>& params);
// Adds each trainable parameter's penalty gradient, times `scale`, to its grad.
void add_weight_penalty_gradients(const std::vector<Param*>& params, double scale = 1.0);

}  // namespace reskit
