// Keras's auto-names: per-base counters shared by layers and models, reset by clear_session()
// (reskit/layers/layer.h). Not part of the public API.
#pragma once

#include <string>

namespace reskit::detail {

// Keras backend.unique_object_name: base, base_1, base_2, ... (reset by clear_session()).
std::string unique_object_name(const std::string& base);
// input_1, input_2, ...
std::string unique_input_name();

}  // namespace reskit::detail
