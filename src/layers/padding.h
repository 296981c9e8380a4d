// Keras's "valid" and "same" padding for one spatial axis, in one place: the layers (Conv2D,
// pooling) size their outputs and pads with it, and the ONNX export writes the same pads.
//
// TensorFlow's rule for "same": out = ceil(in / stride), pad_total = max((out − 1)·stride +
// window − in, 0), pad_before = pad_total / 2; the extra row or column goes to the end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "reskit/error.h"

namespace reskit::detail {

struct AxisPadding {
  std::int64_t out = 0, before = 0, after = 0;
};

// padding "valid" or "same"; in may be -1 (unknown) only for symbolic use (out is then -1).
inline AxisPadding resolve_padding(const std::string& padding, std::int64_t in, std::int64_t window,
                                   std::int64_t stride) {
  AxisPadding a;
  if (in < 0) {
    a.out = -1;
    return a;
  }
  if (padding == "valid") {
    a.out = in >= window ? (in - window) / stride + 1 : 0;
    return a;
  }
  a.out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((a.out - 1) * stride + window - in, 0);
  a.before = total / 2;
  a.after = total - a.before;
  return a;
}

inline void check_padding_name(const std::string& where, const std::string& padding) {
  if (padding != "valid" && padding != "same") {
    throw ConfigError(where + ": unknown padding '" + padding + "'; expected 'valid' or 'same'");
  }
}

}  // namespace reskit::detail
