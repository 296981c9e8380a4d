// Bilinear tf.image.resize of 8-bit pictures, bit-identical to ref::resize_u8 (kernels/image.h's
// resize_u8): the same float32 taps and the same double sums in the same order, read straight
// from the bytes instead of a float copy of the picture, the taps computed once per axis and
// loops fixed to two taps per axis and 1, 3 or 4 channels.
#pragma once

#include <cstdint>

#include "kernels/image.h"

namespace reskit::kernels::cpu {

void resize_bilinear_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y);

}  // namespace reskit::kernels::cpu
