// Mixed precision's convolution backward-weights with AVX512-BF16 dot products (vdpbf16ps), a
// kernel of our own (conv_bf16_weights_avx512.cpp, its AVX-512 functions built for AVX512-BF16 by
// a target attribute and called only where the CPU has it). kernels/dispatch.cpp decides when it
// runs and why.
//
// dw[r, s, c, k] = Σ_{n, p, q} x[n, p·sh + r − pt, q·sw + s − pl, c] · dy[n, p, q, k], the terms
// whose input pixel lies inside the image. vdpbf16ps sums products in pairs along the reduction,
// and the reduction here runs over pixels: so the batch is taken in pairs of images (2m, 2m+1),
// and x and dy are first interleaved into one 32-bit pair per element (image 2m in the low half;
// a zero image stands in for the second of an odd batch). A pair of images then meets every tap
// the same way, so one interleaved copy of x serves all taps and strides. The products go into
// float32 accumulators held in registers (16 channels of k per register, a block of c × k per
// tap), over chunks of image pairs small enough to stay in L2; each thread takes a range of
// pairs into its own float32 partial dw, and the partials are summed in thread order.
//
// Every product of two bfloat16 values is exact in float32; the sums are float32 in an order of
// this kernel's own (vdpbf16ps adds each pair's two products before the accumulator, rounding to
// nearest even), so dw equals the reference on bfloat16-rounded operands up to float32 rounding
// of the sums.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// Whether this CPU runs it: AVX-512 (F, BW, VL) with AVX512-BF16 (read once).
bool conv_weights_bf16_available();

// dw[R, S, C, K] and db[K] (db may be null) from x[N, H, W, C] and dy[N, P, Q, K] as bfloat16
// bits (NHWC), float32 results; any shape (p's stride and padding; bf16, relu and residual
// unread). Only where conv_weights_bf16_available().
void conv_backward_weights_bf16(const Conv2DParams& p, const std::uint16_t* x, const std::uint16_t* dy,
                                float* dw, float* db);

}  // namespace reskit::kernels::cpu
