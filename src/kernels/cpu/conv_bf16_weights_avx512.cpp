// Mixed precision's backward-weights on AVX512-BF16 (conv_bf16_weights.h). The functions that use
// AVX-512 carry a target attribute (RESKIT_AVX512_BF16) rather than the whole file being built
// with the flags, so no inline library code compiled here can hold an AVX-512 instruction; the
// driver, its OpenMP region and its buffers are plain x86-64 code.
//
// Per thread, over its range of image pairs, chunk by chunk (chunks that fit in L2): the chunk's x
// and dy interleaved into 32-bit pairs in the thread's buffer (pack_pairs; db summed on the way,
// one cache line aligned start for dy's pairs), then every tap (r, s), block of k (kv registers of
// 16 channels) and block of c (cb channels): cb·kv accumulators loaded from the thread's partial
// dw, one vdpbf16ps per (c, k register) and output pixel pair over every row of the chunk whose
// input row lies inside, stored back. cb·kv ≤ 24 of the 32 registers; a block reads a register of
// dy and broadcasts one x pair per c.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>

#include "kernels/cpu/conv_bf16_weights.h"
#include "kernels/cpu/onednn_engine.h"  // Scratch
#include "kernels/ref/bf16.h"

#define RESKIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace reskit::kernels::cpu {

namespace {

// Bytes of x and dy pairs per chunk: about a quarter of a 1 MiB L2, so a chunk stays there while
// its taps and blocks go over it.
constexpr std::int64_t kChunkBytes = std::int64_t{1} << 18;

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return -floor_div(-a, b); }

// Interleaved 32-bit pairs of images (2m, 2m+1): out[m − m0][i] = a[i] | b[i] << 16 over one
// image's `image` elements, for pairs [m0, m1) of an n-image tensor `v` (a zero image past the
// last: Pair false). With `sums` (dy: images of rows of `cols`), also sums[j] += a[i] + b[i] for
// column j of each row, in row order.
template <bool Pair>
RESKIT_AVX512_BF16 void pack_pair(const std::uint16_t* __restrict a, const std::uint16_t* __restrict b,
                                  std::int64_t image, std::int64_t width, std::uint32_t* __restrict o,
                                  float* __restrict sums) {
  for (std::int64_t row = 0; row < image; row += width) {
    for (std::int64_t j = 0; j < width; ++j)
      o[row + j] = std::uint32_t{a[row + j]} | (Pair ? std::uint32_t{b[row + j]} << 16 : 0u);
    if (sums == nullptr) continue;
    for (std::int64_t j = 0; j < width; ++j)
      sums[j] += ref::from_bf16_bits(a[row + j]) + (Pair ? ref::from_bf16_bits(b[row + j]) : 0.0f);
  }
}
void pack_pairs(const std::uint16_t* v, std::int64_t n, std::int64_t image, std::int64_t m0, std::int64_t m1,
                std::uint32_t* out, std::int64_t cols = 0, float* sums = nullptr) {
  const std::int64_t width = sums != nullptr ? cols : image;
  for (std::int64_t m = m0; m < m1; ++m) {
    const std::uint16_t* a = v + 2 * m * image;
    std::uint32_t* o = out + (m - m0) * image;
    if (2 * m + 1 < n) {
      pack_pair<true>(a, a + image, image, width, o, sums);
    } else {
      pack_pair<false>(a, nullptr, image, width, o, sums);
    }
  }
}

// One block: taps (r, s), channels [c0, c0 + Cb) of x and k registers from k0 (kv of them, the
// last masked to `last` lanes), over image pairs [m0, m1) of the packed X and D, into dw (the
// thread's partial, R·S·C·K floats). Output columns [qlo, qhi) are those whose input column lies
// inside the image.
struct Block {
  const Conv2DParams* p;
  const std::uint32_t *X, *D;
  std::int64_t m0, m1, r, s, c0, k0, qlo, qhi;
  __mmask16 last;
  float* dw;
};

template <int Cb, int Kv>
RESKIT_AVX512_BF16 void run_block(const Block& b) {
  // Everything the loops read, in locals: nothing is reloaded through b, and the accumulators
  // live in registers only.
  const std::int64_t K = b.p->k, C = b.p->c, H = b.p->h, W = b.p->w, P = b.p->p, Q = b.p->q;
  const std::int64_t sh = b.p->stride_h, pt = b.p->pad_top;
  const std::int64_t qlo = b.qlo, qhi = b.qhi, r = b.r, m0 = b.m0, m1 = b.m1;
  const std::int64_t x_step = b.p->stride_w * C;
  const std::uint32_t* X = b.X + (qlo * b.p->stride_w + b.s - b.p->pad_left) * C + b.c0;
  const std::uint32_t* D = b.D + qlo * K + b.k0;
  const __mmask16 last = b.last;
  float* out = b.dw + ((b.r * b.p->s + b.s) * C + b.c0) * K + b.k0;
  __m512 acc[Cb][Kv];
#pragma GCC unroll 16
  for (int i = 0; i < Cb; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < Kv; ++j)
      acc[i][j] = _mm512_maskz_loadu_ps(j + 1 < Kv ? 0xFFFF : last, out + i * K + 16 * j);
  }
  for (std::int64_t m = m0; m < m1; ++m) {
    for (std::int64_t row = 0; row < P; ++row) {
      const std::int64_t h = row * sh + r - pt;
      if (h < 0 || h >= H) continue;
      const std::uint32_t* xp = X + (m * H + h) * W * C;
      const std::uint32_t* dp = D + (m * P + row) * Q * K;
      for (std::int64_t q = qlo; q < qhi; ++q, xp += x_step, dp += K) {
        __m512bh d[Kv];
#pragma GCC unroll 4
        for (int j = 0; j < Kv; ++j) {
          d[j] = (__m512bh)_mm512_maskz_loadu_epi32(j + 1 < Kv ? 0xFFFF : last, dp + 16 * j);
        }
#pragma GCC unroll 16
        for (int i = 0; i < Cb; ++i) {
          const __m512bh xv = (__m512bh)_mm512_set1_epi32(static_cast<int>(xp[i]));
#pragma GCC unroll 4
          for (int j = 0; j < Kv; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], d[j], xv);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < Cb; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < Kv; ++j)
      _mm512_mask_storeu_ps(out + i * K + 16 * j, j + 1 < Kv ? 0xFFFF : last, acc[i][j]);
  }
}

// The widest c block for kv registers of k: cb·kv accumulators, at most 16 (kv 1), 24 (kv 2, 4).
constexpr int max_cb(int kv) { return kv == 1 ? 16 : kv == 2 ? 12 : 6; }

template <int Kv, int Cb = max_cb(Kv)>
void run_block_of(int cb, const Block& b) {
  if constexpr (Cb > 1) {
    if (cb < Cb) return run_block_of<Kv, Cb - 1>(cb, b);
  }
  run_block<Cb, Kv>(b);
}

// All blocks of one chunk of pairs [m0, m1) into dw.
void run_chunk(const Conv2DParams& p, const std::uint32_t* X, const std::uint32_t* D, std::int64_t m0,
               std::int64_t m1, float* dw) {
  const int kv_full = p.k >= 64 ? 4 : p.k >= 32 ? 2 : 1;
  for (std::int64_t r = 0; r < p.r; ++r) {
    for (std::int64_t s = 0; s < p.s; ++s) {
      Block b{&p, X, D, m0, m1, r, s, 0, 0, 0, 0, 0, dw};
      b.qlo = std::max<std::int64_t>(0, ceil_div(p.pad_left - s, p.stride_w));
      b.qhi = std::min<std::int64_t>(p.q, floor_div(p.w - 1 + p.pad_left - s, p.stride_w) + 1);
      if (b.qlo >= b.qhi) continue;
      for (std::int64_t k0 = 0; k0 < p.k;) {
        // Full blocks of kv_full registers, then the rest one register at a time, the last masked.
        const int kv = p.k - k0 >= 16 * kv_full ? kv_full : 1;
        const std::int64_t lanes = std::min<std::int64_t>(16 * kv, p.k - k0);
        const std::int64_t tail = lanes - 16 * (kv - 1);
        b.k0 = k0;
        b.last = static_cast<__mmask16>((1u << tail) - 1u);
        for (std::int64_t c0 = 0; c0 < p.c; c0 += max_cb(kv)) {
          b.c0 = c0;
          const int cb = static_cast<int>(std::min<std::int64_t>(max_cb(kv), p.c - c0));
          if (kv == 4) {
            run_block_of<4>(cb, b);
          } else if (kv == 2) {
            run_block_of<2>(cb, b);
          } else {
            run_block_of<1>(cb, b);
          }
        }
        k0 += lanes;
      }
    }
  }
}

// Per thread of a call: one chunk's packed pairs (x, then dy), and its partial dw and db.
onednn::Scratch& pairs_scratch() {
  thread_local onednn::Scratch s;
  return s;
}
onednn::Scratch& partials_scratch() {
  thread_local onednn::Scratch s;  // all threads' partials, on the calling thread
  return s;
}

}  // namespace

bool conv_weights_bf16_available() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return yes;
}

void conv_backward_weights_bf16(const Conv2DParams& p, const std::uint16_t* x, const std::uint16_t* dy,
                                float* dw, float* db) {
  const std::int64_t weights = p.r * p.s * p.c * p.k;
  const std::int64_t pairs = (p.n + 1) / 2;
  const std::int64_t x_image = p.h * p.w * p.c, dy_image = p.p * p.q * p.k;
  const int threads =
      static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), std::max<std::int64_t>(pairs, 1)));
  const std::int64_t chunk = std::max<std::int64_t>(1, kChunkBytes / ((x_image + dy_image) * 4));
  const std::int64_t partial = weights + p.k;  // a thread's dw, then its db
  auto* partials = static_cast<float*>(
      partials_scratch().get(static_cast<std::size_t>(threads * partial) * sizeof(float)));
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t m0 = pairs * t / nt, m1 = pairs * (t + 1) / nt;
    const std::int64_t span = std::min(chunk, std::max<std::int64_t>(m1 - m0, 1));
    // dy's pairs start on a cache line (Scratch is 64-byte aligned): its registers load whole lines.
    const std::int64_t x_words = (span * x_image + 15) / 16 * 16;
    auto* X = static_cast<std::uint32_t*>(
        pairs_scratch().get(static_cast<std::size_t>(x_words + span * dy_image) * sizeof(std::uint32_t)));
    std::uint32_t* D = X + x_words;
    float* mine = partials + t * partial;
    std::fill(mine, mine + partial, 0.0f);
    for (std::int64_t c = m0; c < m1; c += chunk) {
      const std::int64_t end = std::min(m1, c + chunk);
      pack_pairs(x, p.n, x_image, c, end, X);
      pack_pairs(dy, p.n, dy_image, c, end, D, p.k, mine + weights);
      run_chunk(p, X, D, 0, end - c, mine);
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < partial; ++i) {
      float sum = partials[i];
      for (std::int64_t u = 1; u < nt; ++u) sum += partials[u * partial + i];
      if (i < weights) {
        dw[i] = sum;
      } else if (db != nullptr) {
        db[i - weights] = sum;
      }
    }
  }
}

}  // namespace reskit::kernels::cpu
