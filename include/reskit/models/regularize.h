// reskit/models/regularize.h — one regularizer on every kernel of a model.
//
// What keras.io's CIFAR-10 ResNet does by passing kernel_regularizer=l2(1e-4) to every Conv2D
// and Dense, for a model already built (a built-in one, or one loaded from a file); `reskit
// train --l2 1e-4` calls it. Keras's L2 has no factor 1/2: L2(1e-4) adds 1e-4·Σw² to the loss.
// This is not AdamW's decoupled weight decay (AdamOptions::weight_decay), which stays separate.
#pragma once

#include <optional>

#include "reskit/graph/model.h"
#include "reskit/optim/regularizers.h"

namespace reskit {

// Sets (or, with nullopt, clears) the kernel regularizer of every Conv2D and Dense layer of the
// model; other weights and layers keep theirs. Saved files then carry it in each layer's config.
void regularize_kernels(Model& model, const std::optional<Regularizer>& regularizer);

}  // namespace reskit
