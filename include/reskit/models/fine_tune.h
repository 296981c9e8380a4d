// reskit/models/fine_tune.h — the second stage of Keras's transfer learning: unfreeze the top of a
// base model from a named layer on.
//
// Keras's fine-tuning recipe keeps BatchNormalization in inference mode while the top blocks
// train: the transfer-learning guide calls the base with training=False, and the EfficientNet
// fine-tuning example leaves every BatchNormalization layer frozen when it unfreezes the top
// blocks ("if not isinstance(layer, layers.BatchNormalization)"), so that the moving statistics
// learnt on the large data are not overwritten by a small dataset's batches. unfreeze_from does
// what that example does; with UnfreezeOptions::batch_norm the normalizations train too (in
// training mode, their moving statistics updated). Not done here: Keras's other form, gamma and beta
// training while the layer normalises with its moving statistics.
#pragma once

#include <cstddef>
#include <string>

#include "reskit/graph/model.h"

namespace reskit {

struct UnfreezeOptions {
  // Also unfreeze the BatchNormalization (and SyncBatchNormalization) layers at and after the point.
  bool batch_norm = false;
};

// Freezes every layer of model.layers() before the first one named `name` (or, when none is, the
// first whose name begins with `name` + "_", e.g. "conv5_block1" for conv5_block1_1_conv) and
// unfreezes that layer and every later one, BatchNormalization layers aside (they are frozen)
// unless options.batch_norm. Returns the index of that layer. ConfigError naming the nearest layer
// names when no layer fits (the model is then unchanged).
std::size_t unfreeze_from(Model& model, const std::string& name, UnfreezeOptions options = {});

}  // namespace reskit
