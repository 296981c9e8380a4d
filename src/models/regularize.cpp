// regularize_kernels: the kernel regularizer of every Conv2D and Dense layer.
#include "reskit/models/regularize.h"

#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"

namespace reskit {

void regularize_kernels(Model& model, const std::optional<Regularizer>& regularizer) {
  if (regularizer) check_regularizer(*regularizer, "regularize_kernels");
  for (const auto& layer : model.layers()) {
    if (auto* conv = dynamic_cast<Conv2DLayer*>(layer.get())) conv->kernel().regularizer = regularizer;
    if (auto* dense = dynamic_cast<DenseLayer*>(layer.get())) dense->kernel().regularizer = regularizer;
  }
}

}  // namespace reskit
