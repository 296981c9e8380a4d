// The reference of kernels::resize_u8 (kernels/image.h): the pixels as float through
// resize_forward<float>, rounded back to 8 bits. The fast bilinear twin is cpu/resize_u8.h.
#pragma once

#include <cstdint>

#include "kernels/image.h"

namespace reskit::kernels::ref {

void resize_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y);

}  // namespace reskit::kernels::ref
