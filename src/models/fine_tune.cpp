// unfreeze_from: the trainable flags of a fine-tuning stage (reskit/models/fine_tune.h).
#include "reskit/models/fine_tune.h"

#include "reskit/layers/normalization.h"

namespace reskit {

std::size_t unfreeze_from(Model& model, const std::string& name, UnfreezeOptions options) {
  const auto& layers = model.layers();
  std::size_t first = layers.size();
  for (std::size_t i = 0; i < layers.size() && first == layers.size(); ++i)
    if (layers[i]->name() == name) first = i;
  for (std::size_t i = 0; i < layers.size() && first == layers.size(); ++i)
    if (layers[i]->name().rfind(name + "_", 0) == 0) first = i;
  if (first == layers.size()) model.get_layer(name);  // throws, naming the nearest layers
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const bool batch_norm = dynamic_cast<const BatchNormalizationLayer*>(layers[i].get()) != nullptr;
    layers[i]->set_trainable(i >= first && (options.batch_norm || !batch_norm));
  }
  return first;
}

}  // namespace reskit
