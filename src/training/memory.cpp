// Lower bounds of a model's memory, from its graph (see reskit/training/memory.h).
#include "reskit/training/memory.h"

#include <algorithm>
#include <set>
#include <vector>

#include "reskit/error.h"
#include "reskit/runtime.h"

namespace reskit {

namespace {

std::int64_t mul(std::int64_t a, std::int64_t b) {
  // Saturating: an absurd shape must give an absurd estimate, not a wrapped-around small one.
  constexpr std::int64_t kMax = std::int64_t{1} << 62;
  if (a <= 0 || b <= 0) return 0;
  return a > kMax / b ? kMax : a * b;
}

std::int64_t add(std::int64_t a, std::int64_t b) {
  constexpr std::int64_t kMax = std::int64_t{1} << 62;
  return a > kMax - b ? kMax : a + b;
}

// Every node the outputs depend on, once.
void collect(const std::shared_ptr<graph::Node>& node, std::set<const graph::Node*>& seen,
             std::vector<const graph::Node*>& out) {
  if (!node || !seen.insert(node.get()).second) return;
  out.push_back(node.get());
  for (const Tensor& t : node->inputs) collect(t.node(), seen, out);
}

}  // namespace

MemoryEstimate estimate_memory(const Model& model, std::int64_t batch, bool training) {
  const auto elem = static_cast<std::int64_t>(dtype_size(model.dtype()));
  MemoryEstimate e;
  // values; gradients and Adam's two moments when training
  e.parameters = mul(mul(model.count_params(), elem), training ? 4 : 1);
  std::set<const graph::Node*> seen;
  std::vector<const graph::Node*> nodes;
  for (const Tensor& t : model.outputs()) collect(t.node(), seen, nodes);
  std::int64_t sum = 0, largest = 0;
  for (const graph::Node* n : nodes) {
    std::int64_t per_sample = 1;
    for (std::size_t i = 1; i < n->output_shape.size(); ++i) per_sample = mul(per_sample, n->output_shape[i]);
    const std::int64_t bytes = mul(mul(per_sample, batch), elem);
    sum = add(sum, bytes);
    largest = std::max(largest, bytes);
  }
  e.activations = training ? sum : largest;
  return e;
}

void check_model_fits(const Model& model, std::int64_t batch, bool training) {
  const MemoryEstimate e = estimate_memory(model, batch, training);
  // The parameters' values exist already: what is available now is what remains besides them.
  const std::int64_t have = available_memory();
  const std::int64_t existing =
      mul(model.count_params(), static_cast<std::int64_t>(dtype_size(model.dtype())));
  const std::int64_t need = e.total() - existing;
  if (need <= have) return;
  throw ResourceError("model '" + model.name() + "': " + (training ? "training" : "inference") +
                      " at batch size " + std::to_string(batch) + " needs at least " +
                      format_bytes(e.total()) + " (layer outputs " + format_bytes(e.activations) +
                      ", parameters" + (training ? " with gradients and optimizer state " : " ") +
                      format_bytes(e.parameters) + "), more than the " + format_bytes(have + existing) +
                      " of memory available; use a smaller batch size or input");
}

}  // namespace reskit
