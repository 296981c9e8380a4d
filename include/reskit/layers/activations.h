// reskit/layers/activations.h — the activation layers of Keras: ReLU (with max_value,
// negative_slope and threshold), LeakyReLU and Softmax (over any axis). Activation("relu") and
// the others by name are in core.h.
//
// ReLU follows Keras's backend.relu: y = min(x·[x > threshold], max_value) − negative_slope·
// max(threshold − x, 0) (no min without max_value); so x for threshold < x < max_value,
// max_value above, negative_slope·(x − threshold) below the threshold. All three are >= 0 (Keras
// refuses negative ones). LeakyReLU: y = x for x > 0, alpha·x otherwise (Keras 3 calls alpha
// negative_slope; default 0.3 in both). A Softmax over the last axis is an output a
// cross-entropy loss may take the logits of, as Activation("softmax").
#pragma once

#include <optional>
#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

struct ReLUOptions {
  std::optional<double> max_value;
  double negative_slope = 0.0;
  double threshold = 0.0;
  std::string name;
};

class ReLULayer : public Layer {
 public:
  explicit ReLULayer(ReLUOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const ReLUOptions& options() const { return options_; }
  // Without options: max(x, 0), which a producer may fuse (Model::set_fuse_relu).
  bool plain() const;

 private:
  ReLUOptions options_;
  Tensor x_;
  bool pass_gradient_ = false;  // the producer's backward takes this ReLU's (fused_relu_backward)
};

struct ReLU : LayerRef<ReLULayer> {
  explicit ReLU(ReLUOptions options = {});
};

struct LeakyReLUOptions {
  double alpha = 0.3;  // Keras 3's negative_slope
  std::string name;
};

class LeakyReLULayer : public Layer {
 public:
  explicit LeakyReLULayer(LeakyReLUOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const LeakyReLUOptions& options() const { return options_; }

 private:
  LeakyReLUOptions options_;
  Tensor x_;
};

struct LeakyReLU : LayerRef<LeakyReLULayer> {
  explicit LeakyReLU(LeakyReLUOptions options = {});
};

struct SoftmaxOptions {
  int axis = -1;
  std::string name;
};

class SoftmaxLayer : public Layer {
 public:
  explicit SoftmaxLayer(SoftmaxOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  bool outputs_softmax() const override;
  Tensor logits() const override { return x_; }
  std::vector<Tensor> backward_from_logits(const Tensor& grad_logits) override;
  const SoftmaxOptions& options() const { return options_; }

 protected:
  void do_build(const std::vector<Shape>& inputs) override;

 private:
  SoftmaxOptions options_;
  Tensor x_, y_;
  int rank_ = 0;  // of the input the layer was built for
};

struct Softmax : LayerRef<SoftmaxLayer> {
  explicit Softmax(SoftmaxOptions options = {});
};

}  // namespace reskit
