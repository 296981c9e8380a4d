// Max and average pooling as OpenMP loops, parallel over images with channels innermost (float
// and double). Padded cells never win a max and are left out of an average's count (Keras).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx);
template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx);

// cells = the offsets in x (n·h·w·c values) of the in-bounds cells of image n's window at output
// (op, oq), in window order (row-major r, s); empty for a window of padding only.
void window_cells(const Pool2DParams& p, std::int64_t n, std::int64_t op, std::int64_t oq,
                  std::vector<std::int64_t>& cells);

// max_pool2d_backward<float>'s AVX-512 build (pool_avx512.cpp), where avx512_available(); the
// same bits.
namespace avx512 {
void max_pool2d_backward(const Pool2DParams& p, const float* x, const float* dy, float* dx);
}

}  // namespace reskit::kernels::cpu
