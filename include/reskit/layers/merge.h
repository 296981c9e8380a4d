// reskit/layers/merge.h — Concatenate: several tensors joined along one axis (Keras's default the
// last, the channels), the others equal. Add, the other merge layer reskit has, is in core.h.
#pragma once

#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

struct ConcatenateOptions {
  int axis = -1;  // not the batch axis
  std::string name;
};

class ConcatenateLayer : public Layer {
 public:
  explicit ConcatenateLayer(ConcatenateOptions options);
  int expected_inputs() const override { return kAnyInputs; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const ConcatenateOptions& options() const { return options_; }

 private:
  // The axis, non-negative, for inputs of this rank.
  std::size_t resolved_axis(std::size_t rank) const;

  ConcatenateOptions options_;
  std::vector<Shape> input_shapes_;  // of the last forward
};

struct Concatenate : LayerRef<ConcatenateLayer> {
  explicit Concatenate(ConcatenateOptions options = {});
};

}  // namespace reskit
