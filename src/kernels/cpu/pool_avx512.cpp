// Max pooling's float32 backward in AVX-512 registers (pool.cpp calls it where the CPU has
// AVX-512; this file is compiled with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma). Per
// window and 16 channels: the first maximal cell of each channel by compare and blend over the
// window's cells in order, then the gradient added to that cell alone by one masked add per cell.
// Each dx value gets its windows' terms in window order: the reference's bits.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/pool.h"

namespace reskit::kernels::cpu::avx512 {

void max_pool2d_backward(const Pool2DParams& p, const float* x, const float* dy, float* dx) {
  const std::int64_t C = p.c;
#pragma omp parallel if (p.n * p.p * p.q * p.c * p.r * p.s > kParallelGrain)
  {
    std::vector<std::int64_t> cells;  // offsets of the window's valid cells in x
#pragma omp for schedule(static)
    for (std::int64_t n = 0; n < p.n; ++n) {
      std::fill_n(dx + n * p.h * p.w * C, p.h * p.w * C, 0.0f);  // this image's dx, by its thread
      for (std::int64_t op = 0; op < p.p; ++op)
        for (std::int64_t oq = 0; oq < p.q; ++oq) {
          window_cells(p, n, op, oq, cells);
          const auto count = static_cast<std::int32_t>(cells.size());
          if (count == 0) continue;  // a window of padding only
          const float* g = dy + ((n * p.p + op) * p.q + oq) * C;
          for (std::int64_t c0 = 0; c0 < C; c0 += 16) {
            const __mmask16 lanes = C - c0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (C - c0)) - 1u);
            __m512 best = _mm512_maskz_loadu_ps(lanes, x + cells[0] + c0);
            __m512i arg = _mm512_setzero_si512();
            for (std::int32_t k = 1; k < count; ++k) {
              const __m512 v = _mm512_maskz_loadu_ps(lanes, x + cells[k] + c0);
              const __mmask16 greater = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);  // a NaN never wins
              best = _mm512_mask_mov_ps(best, greater, v);
              arg = _mm512_mask_mov_epi32(arg, greater, _mm512_set1_epi32(k));
            }
            const __m512 grad = _mm512_maskz_loadu_ps(lanes, g + c0);
            for (std::int32_t k = 0; k < count; ++k) {
              const __mmask16 won = _mm512_mask_cmpeq_epi32_mask(lanes, arg, _mm512_set1_epi32(k));
              if (won == 0) continue;
              float* d = dx + cells[k] + c0;
              _mm512_mask_storeu_ps(d, won, _mm512_add_ps(_mm512_maskz_loadu_ps(won, d), grad));
            }
          }
        }
    }
  }
}

}  // namespace reskit::kernels::cpu::avx512
