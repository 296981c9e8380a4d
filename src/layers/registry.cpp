// The layer registry: the one list of registrations, called at first use (a list rather than
// static registrar objects, so that neither static-initialisation order nor a static library
// that drops unreferenced objects can lose a layer).
#include "layers/registry.h"

namespace reskit::layers {

const std::vector<LayerEntry>& layer_entries() {
  static const std::vector<LayerEntry> entries = [] {
    std::vector<LayerEntry> e;
    register_input_layer(e);
    register_zero_padding2d(e);
    register_conv2d(e);
    register_batch_normalization(e);
    register_sync_batch_normalization(e);
    register_activation(e);
    register_add(e);
    register_pooling2d(e);
    register_global_pooling2d(e);
    register_flatten(e);
    register_dense(e);
    register_dropout(e);
    register_preprocessing_image(e);
    register_rescaling(e);
    register_normalization(e);
    register_relu(e);
    register_leaky_relu(e);
    register_softmax(e);
    register_concatenate(e);
    return e;
  }();
  return entries;
}

const LayerEntry* find_layer(std::string_view class_name) {
  for (const auto& e : layer_entries())
    if (e.class_name == class_name) return &e;
  return nullptr;
}

const FromConfig* find_reader(std::string_view keras_class_name) {
  for (const auto& e : layer_entries()) {
    if (e.class_name == keras_class_name) return &e.from_config;
    for (const auto& a : e.aliases)
      if (a == keras_class_name) return &e.from_config;
    for (const auto& [name, reader] : e.also_reads)
      if (name == keras_class_name) return &reader;
  }
  return nullptr;
}

std::vector<std::string> readable_classes() {
  std::vector<std::string> out;
  for (const auto& e : layer_entries()) {
    out.push_back(e.class_name);
    for (const auto& r : e.also_reads) out.push_back(r.first);
  }
  return out;
}

std::string join_names(const std::vector<std::string>& names, const std::string& last) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i == 0 ? "" : i + 1 == names.size() ? last : ", ") + names[i];
  return s;
}

}  // namespace reskit::layers
