// reskit/training/memory.h — whether a model can run in the memory there is, asked before it runs.
//
// The estimates are lower bounds, so a refusal is certain and a run that fits is never refused:
// a training step holds at least every layer's output for the batch, the parameters, their
// gradients and the optimizer's moments (Adam keeps two per parameter); inference holds at least
// the largest layer output. fit, evaluate and predict call check_model_fits before their first
// batch; `reskit train` therefore fails with a clear message, not by running out of memory, when
// the input is too large. available_memory() and set_memory_limit() are in reskit/runtime.h.
#pragma once

#include <cstdint>

#include "reskit/graph/model.h"

namespace reskit {

struct MemoryEstimate {
  std::int64_t parameters = 0;   // values (and, when training, gradients and optimizer moments)
  std::int64_t activations = 0;  // layer outputs held at once for the batch
  std::int64_t total() const { return parameters + activations; }
};

// A lower bound of what training (or inference) of `model` on batches of `batch` samples takes.
MemoryEstimate estimate_memory(const Model& model, std::int64_t batch, bool training);

// Throws ResourceError naming the model, the estimate and what is available when the estimate
// exceeds available_memory() less what the model's parameters already take (they exist).
void check_model_fits(const Model& model, std::int64_t batch, bool training);

}  // namespace reskit
