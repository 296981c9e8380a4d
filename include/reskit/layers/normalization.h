// reskit/layers/normalization.h — BatchNormalization over the last (channel) axis.
//
// Keras 2.x defaults: momentum 0.99, epsilon 1e-3, gamma 1, beta 0, moving_mean 0,
// moving_variance 1. Training normalises with the batch mean and biased batch variance and
// updates moving = moving·momentum + batch·(1 − momentum). reskit stores the *unbiased* batch
// variance (n/(n−1)) in moving_variance, as TensorFlow's fused float32 kernel and PyTorch do,
// for float32 and float64 alike. Inference uses the moving statistics, and so does a frozen
// layer (set_trainable(false)) in a training pass, leaving them unchanged (TF2 Keras).
//
// SyncBatchNormalization (Keras's layer of that name): in a training pass of data-parallel
// training (reskit/distributed/data_parallel.h) the statistics are the global batch's, as if one
// process normalised the whole batch: the per-channel sums, then the sums of squared deviations
// from the global mean (two passes, no cancellation), and in backward the sums of dy and
// dy·x̂, are added over the ranks (distributed::replica_group()). Alone, and in inference, it is a
// BatchNormalization. Its moving statistics are the same on every rank.
#pragma once

#include <optional>
#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

struct BatchNormalizationOptions {
  int axis = -1;  // only the last axis (3 for NHWC, -1) is supported
  double momentum = 0.99;
  double epsilon = 1e-3;
  // Keras's regularizers and constraints of gamma and beta (reskit/optim/regularizers.h,
  // constraints.h), copied to their Params when the layer builds.
  std::optional<Regularizer> beta_regularizer, gamma_regularizer;
  std::optional<Constraint> beta_constraint, gamma_constraint;
  std::string name;
};

class BatchNormalizationLayer : public Layer {
 public:
  explicit BatchNormalizationLayer(BatchNormalizationOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const BatchNormalizationOptions& options() const { return options_; }
  // The weights, once built, each of shape (C): Keras's gamma, beta, moving_mean,
  // moving_variance (the last two not trainable).
  Param& gamma();
  const Param& gamma() const;
  Param& beta();
  const Param& beta() const;
  Param& moving_mean();
  const Param& moving_mean() const;
  Param& moving_variance();
  const Param& moving_variance() const;
  // Set by the model around an inference pass whose preceding Conv2D applies this layer
  // (Conv2DLayer::set_folded_batch_norm): forward in inference mode then passes its input on.
  void set_folded_into_conv(bool on) { folded_into_conv_ = on; }
  // Set by the model around a mixed-precision training pass where every reader takes the
  // bfloat16 rounding (Tensor::bf16_shadow_only_written): of the output (the Conv2Ds after the
  // fused ReLU), and of the input gradient (the Conv2D before, read by nothing else). The float32
  // copy is then not written; a float32 reader would still get the values, widened.
  void set_bf16_only(bool output, bool input_gradient) {
    bf16_only_output_ = output;
    bf16_only_input_gradient_ = input_gradient;
  }
  // What the last training forward did so: its output written as the rounding alone, and its
  // input gradient to be.
  // Set by the model around a mixed-precision training pass (Model::set_bf16_activations): on a
  // residual block's path, the output written as its bfloat16 rounding alone: the sum with the
  // residual of the Add this layer absorbs (after its ReLU), or the output such a sum reads as
  // its residual, where every reader takes the rounding. Keras's bfloat16 residual stream.
  void set_bf16_only_sum(bool on) { bf16_only_sum_ = on; }
  bool last_output_bf16_only() const { return last_output_bf16_only_; }
  bool last_input_gradient_bf16_only() const { return bf16_only_dx_; }

 protected:
  BatchNormalizationLayer(std::string class_name, BatchNormalizationOptions options);
  void do_build(const std::vector<Shape>& inputs) override;
  // moving = moving·momentum + batch·(1 − momentum), the batch variance unbiased over `rows`.
  void update_moving_statistics(std::int64_t rows);

  BatchNormalizationOptions options_;
  Tensor x_, batch_mean_, batch_var_;
  Tensor y_;  // a frozen layer's output in a training pass that takes the ReLU's backward
  bool last_training_ = false;
  bool relu_backward_ = false;  // the last forward fused the ReLU's backward (fused_relu_backward)
  bool folded_into_conv_ = false;
  bool bf16_only_output_ = false, bf16_only_input_gradient_ = false;  // set_bf16_only
  bool bf16_only_sum_ = false;                                        // set_bf16_only_sum
  bool bf16_only_dx_ = false;  // the last training forward's bf16_only_input_gradient_, for backward
  bool last_output_bf16_only_ = false;
};

struct BatchNormalization : LayerRef<BatchNormalizationLayer> {
  explicit BatchNormalization(BatchNormalizationOptions options = {});
};

class SyncBatchNormalizationLayer : public BatchNormalizationLayer {
 public:
  explicit SyncBatchNormalizationLayer(BatchNormalizationOptions options);
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;

 private:
  bool synced_ = false;          // the last forward reduced over several ranks
  std::int64_t total_rows_ = 0;  // the global batch's N·H·W in that forward
};

struct SyncBatchNormalization : LayerRef<SyncBatchNormalizationLayer> {
  explicit SyncBatchNormalization(BatchNormalizationOptions options = {});
};

}  // namespace reskit
