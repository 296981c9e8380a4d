// reskit's float64 gemm for AVX-512 CPUs (dgemm.h). The functions that use AVX-512 carry a target
// attribute (RESKIT_AVX512) instead of the whole file being built with -mavx512f, so that nothing
// else compiled here (inline library code the linker may share with other files) can hold an
// AVX-512 instruction; the driver, its OpenMP region and its buffers are plain x86-64 code.
//
// Loops (Goto/BLIS), per thread over the range of C it owns: for each block of ≤ kNc columns,
// for each depth block of ≤ kKc, op(B)'s block is packed into kNr-wide panels (p-major,
// zero-padded to kNr; read in place where C has ≤ 32 rows and B is not transposed), then for each
// block of ≤ kMc rows op(A) is packed into kMr-high panels (p-major, zero-padded) and the
// micro-kernel runs over its tiles, column panels outer (a panel of B stays in L1 while A's panels
// stream from L2). Threads own contiguous ranges of rows (or of columns, where C is wider than
// tall) and never wait for each other.
// dgemm_avx512_rows: the same loops, op(A)'s blocks filled from rows a function writes (through an
// L1 buffer) instead of read from memory.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

#include "kernels/cpu/dgemm.h"

#define RESKIT_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))

namespace reskit::kernels::cpu {

namespace {

constexpr int kMr = 8;                   // rows of a micro-tile: broadcasts of A
constexpr int kNv = 3;                   // 8-wide vectors per row of a micro-tile
constexpr int kNr = 8 * kNv;             // columns of a micro-tile: 24
constexpr std::int64_t kKc = 192;        // depth of a block: a packed B panel (kKc·kNr·8 = 36 KiB) in L1
constexpr std::int64_t kMc = 24 * kMr;   // rows of a packed A block (kMc·kKc·8 = 288 KiB) in L2
constexpr std::int64_t kNc = 128 * kNr;  // columns of a packed B block (kKc·kNc·8 = 4.5 MiB)
// Up to this many rows of C, an op(B) that is not transposed is read where it lies instead of
// packed: packing it would cost as much as a good part of the product (ResNet-50's tiny-image row
// products: 32 rows). The same values in the same order: the same bits either way.
constexpr std::int64_t kDirectBRows = 32;
// Below this many FLOPs a product runs on the calling thread alone.
constexpr double kParallelFlops = 1 << 20;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// A 64-byte aligned scratch buffer that only grows (one per thread, reused across calls).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  double* get(std::int64_t doubles) {
    if (doubles > size_) {
      std::free(data_);
      const std::size_t bytes = static_cast<std::size_t>(ceil_div(doubles * 8, 64) * 64);
      data_ = static_cast<double*>(std::aligned_alloc(64, bytes));
      size_ = data_ != nullptr ? doubles : 0;
      if (data_ == nullptr) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  double* data_ = nullptr;
  std::int64_t size_ = 0;
};

constexpr __mmask8 kAll = 0xff;

__mmask8 low_lanes(std::int64_t count) {
  return count >= 8 ? __mmask8(0xff) : count <= 0 ? __mmask8(0) : static_cast<__mmask8>((1u << count) - 1);
}

// dst[j·ldd + i] = src[i·lds + j] for i, j < 8. (The zero-masking forms with every lane set are the
// plain instructions; GCC 12 warns of the plain intrinsics' undefined operand in a target-attributed
// function.)
RESKIT_AVX512 __attribute__((always_inline)) inline void transpose8x8(const double* src, std::int64_t lds,
                                                                      double* dst, std::int64_t ldd) {
  __m512d r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_maskz_unpacklo_pd(kAll, r[i], r[i + 1]);      // columns 0 2 4 6 of rows i, i+1
    t[i + 1] = _mm512_maskz_unpackhi_pd(kAll, r[i], r[i + 1]);  // columns 1 3 5 7
  }
  for (int odd = 0; odd < 2; ++odd) {
    const __m512d u0 =
        _mm512_maskz_shuffle_f64x2(kAll, t[0 + odd], t[2 + odd], 0x88);  // columns 0 4 (+odd), rows 0-3
    const __m512d u1 = _mm512_maskz_shuffle_f64x2(kAll, t[4 + odd], t[6 + odd], 0x88);  // the same, rows 4-7
    const __m512d u2 =
        _mm512_maskz_shuffle_f64x2(kAll, t[0 + odd], t[2 + odd], 0xdd);  // columns 2 6 (+odd), rows 0-3
    const __m512d u3 = _mm512_maskz_shuffle_f64x2(kAll, t[4 + odd], t[6 + odd], 0xdd);
    _mm512_storeu_pd(dst + (0 + odd) * ldd, _mm512_maskz_shuffle_f64x2(kAll, u0, u1, 0x88));
    _mm512_storeu_pd(dst + (4 + odd) * ldd, _mm512_maskz_shuffle_f64x2(kAll, u0, u1, 0xdd));
    _mm512_storeu_pd(dst + (2 + odd) * ldd, _mm512_maskz_shuffle_f64x2(kAll, u2, u3, 0x88));
    _mm512_storeu_pd(dst + (6 + odd) * ldd, _mm512_maskz_shuffle_f64x2(kAll, u2, u3, 0xdd));
  }
}

// Where op(A) comes from: a matrix in memory (a, lda), or rows that a function writes (rows: the
// matrix S never stored, op(A) = S or Sᵀ).
struct ASource {
  const double* a;
  std::int64_t lda;
  const DgemmRows* rows;
};

// Rows [i0, i0+mc) and depth [p0, p0+kc) of op(A) as kMr-high panels: panel t holds
// dst[t·kMr·kc + p·kMr + i] = op(A)[i0 + t·kMr + i, p0 + p], zero past row i0+mc. Each row of A is
// read in order of its addresses.
RESKIT_AVX512 void pack_a(bool ta, const ASource& src_a, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                          std::int64_t kc, double* dst) {
  // Rows written by src_a.rows land here first (one row of op(A)ᵀ, or eight rows of op(A)), in L1.
  alignas(64) double staged[kMr * kKc];
  if (ta) {  // A is K×M: row p of A holds op(A)[·, p], contiguous
    for (std::int64_t p = 0; p < kc; ++p) {
      const double* src = staged;
      if (src_a.rows != nullptr) {
        src_a.rows->fill(src_a.rows->context, p0 + p, i0, mc, staged);
      } else {
        src = src_a.a + (p0 + p) * src_a.lda + i0;
      }
      for (std::int64_t ir = 0; ir < mc; ir += kMr)
        _mm512_store_pd(dst + ir * kc + p * kMr, _mm512_maskz_loadu_pd(low_lanes(mc - ir), src + ir));
    }
    return;
  }
  for (std::int64_t ir = 0; ir < mc; ir += kMr, dst += kMr * kc) {
    const std::int64_t mr = std::min<std::int64_t>(kMr, mc - ir);
    const double* src = staged;
    std::int64_t lda = kc;
    if (src_a.rows != nullptr) {
      for (std::int64_t i = 0; i < mr; ++i)
        src_a.rows->fill(src_a.rows->context, i0 + ir + i, p0, kc, staged + i * kc);
    } else {
      src = src_a.a + (i0 + ir) * src_a.lda + p0, lda = src_a.lda;
    }
    std::int64_t p = 0;
    if (mr == kMr) {
      for (; p + 8 <= kc; p += 8) transpose8x8(src + p, lda, dst + p * kMr, kMr);
    }
    for (; p < kc; ++p)
      for (int i = 0; i < kMr; ++i) dst[p * kMr + i] = i < mr ? src[i * lda + p] : 0.0;
  }
}

// The kNr-wide panels [t0, t1) of op(B)'s block at depth [p0, p0+kc) and columns [j0, j0+nc):
// panel t holds dst[t·kNr·kc + p·kNr + j] = op(B)[p0 + p, j0 + t·kNr + j], zero past column j0+nc.
RESKIT_AVX512 void pack_b(bool tb, const double* b, std::int64_t ldb, std::int64_t p0, std::int64_t kc,
                          std::int64_t j0, std::int64_t nc, std::int64_t t0, std::int64_t t1, double* dst) {
  if (!tb) {  // B is K×N: row p of B holds op(B)[p, ·], contiguous
    for (std::int64_t p = 0; p < kc; ++p) {
      const double* src = b + (p0 + p) * ldb + j0;
      for (std::int64_t t = t0; t < t1; ++t)
        for (int v = 0; v < kNv; ++v) {
          const std::int64_t j = t * kNr + 8 * v;
          _mm512_store_pd(dst + t * kNr * kc + p * kNr + 8 * v,
                          _mm512_maskz_loadu_pd(low_lanes(nc - j), src + j));
        }
    }
    return;
  }
  // B is N×K: op(B)[p, j] = b[j·ldb + p]
  for (std::int64_t t = t0; t < t1; ++t) {
    const std::int64_t nr = std::min<std::int64_t>(kNr, nc - t * kNr);
    const double* src = b + (j0 + t * kNr) * ldb + p0;
    double* panel = dst + t * kNr * kc;
    std::int64_t p = 0;
    if (nr == kNr) {
      for (; p + 8 <= kc; p += 8)
        for (int v = 0; v < kNv; ++v) transpose8x8(src + 8 * v * ldb + p, ldb, panel + p * kNr + 8 * v, kNr);
    }
    for (; p < kc; ++p)
      for (int j = 0; j < kNr; ++j) panel[p * kNr + j] = j < nr ? src[j * ldb + p] : 0.0;
  }
}

// The micro-kernel: an Mr×(8·Nv) tile of C from a packed A panel (ap) and a B panel (bp: row p
// of the panel at bp + p·ldbp; packed, or op(B) itself) of depth kc. Each lane is one element's
// chain of fused multiply-adds from zero in k order; then C = alpha·sum + beta·C (C not read when
// beta == 0), then + bias[j] when bias (the tile's first column's) is given: the value C would hold,
// plus the bias, as a separate pass would add it. `last`: the lanes of the last vector that lie
// inside C (and inside B's row).
template <int Mr, int Nv>
RESKIT_AVX512 void micro_tile(std::int64_t kc, const double* __restrict ap, const double* __restrict bp,
                              std::int64_t ldbp, double* c, std::int64_t ldc, double alpha, double beta,
                              __mmask8 last, const double* bias) {
  // C's lines are asked for now, so that the loads and stores at the end find them in cache.
#pragma GCC unroll 8
  for (int i = 0; i < Mr; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < Nv; ++j)
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 8 * j), _MM_HINT_T0);
  __m512d acc[Mr][Nv];
#pragma GCC unroll 8
  for (int i = 0; i < Mr; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < Nv; ++j) acc[i][j] = _mm512_setzero_pd();
  for (std::int64_t p = 0; p < kc; ++p, ap += kMr, bp += ldbp) {
    __m512d bv[Nv];
#pragma GCC unroll 3
    for (int j = 0; j < Nv - 1; ++j) bv[j] = _mm512_loadu_pd(bp + 8 * j);
    bv[Nv - 1] = _mm512_maskz_loadu_pd(last, bp + 8 * (Nv - 1));
#pragma GCC unroll 8
    for (int i = 0; i < Mr; ++i) {
      const __m512d av = _mm512_set1_pd(ap[i]);
#pragma GCC unroll 3
      for (int j = 0; j < Nv; ++j) acc[i][j] = _mm512_fmadd_pd(av, bv[j], acc[i][j]);
    }
  }
  const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
#pragma GCC unroll 8
  for (int i = 0; i < Mr; ++i) {
    double* row = c + i * ldc;
#pragma GCC unroll 3
    for (int j = 0; j < Nv; ++j) {
      const __mmask8 lanes = j == Nv - 1 ? last : __mmask8(0xff);
      __m512d out = _mm512_mul_pd(acc[i][j], va);
      if (beta != 0.0) out = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(lanes, row + 8 * j), out);
      if (bias != nullptr) out = _mm512_add_pd(out, _mm512_maskz_loadu_pd(lanes, bias + 8 * j));
      _mm512_mask_storeu_pd(row + 8 * j, lanes, out);
    }
  }
}

using MicroTile = void (*)(std::int64_t, const double*, const double*, std::int64_t, double*, std::int64_t,
                           double, double, __mmask8, const double*);

template <int Mr>
constexpr MicroTile kByWidth[kNv] = {micro_tile<Mr, 1>, micro_tile<Mr, 2>, micro_tile<Mr, 3>};
// kTiles[mr − 1][vectors − 1]
constexpr const MicroTile* kTiles[kMr] = {kByWidth<1>, kByWidth<2>, kByWidth<3>, kByWidth<4>,
                                          kByWidth<5>, kByWidth<6>, kByWidth<7>, kByWidth<8>};

// Where the micro-kernel reads op(B)'s block: packed panels (panel t at base + t·kNr·kc, rows kNr
// apart), or op(B) itself, not transposed (panel t at base + t·kNr, rows ldb apart).
struct BPanels {
  const double* base;
  std::int64_t panel_step, row_step;
};

// The tiles of C[i0 .. i0+mc, columns of panels [t0, t1)] from packed A (ap: rows i0..) and B's
// block (column j0 is panel 0's first); nc: the block's width; bias (null: none) from the block's
// first column.
RESKIT_AVX512 void run_tiles(std::int64_t kc, std::int64_t mc, std::int64_t nc, std::int64_t t0,
                             std::int64_t t1, const double* ap, BPanels bp, double* c, std::int64_t ldc,
                             double alpha, double beta, const double* bias) {
  for (std::int64_t t = t0; t < t1; ++t) {
    const std::int64_t nr = std::min<std::int64_t>(kNr, nc - t * kNr);
    const std::int64_t vectors = ceil_div(nr, 8);
    const __mmask8 last = low_lanes(nr - 8 * (vectors - 1));
    const double* panel = bp.base + t * bp.panel_step;
    for (std::int64_t ir = 0; ir < mc; ir += kMr) {
      const std::int64_t mr = std::min<std::int64_t>(kMr, mc - ir);
      kTiles[mr - 1][vectors - 1](kc, ap + ir * kc, panel, bp.row_step, c + ir * ldc + t * kNr, ldc, alpha,
                                  beta, last, bias != nullptr ? bias + t * kNr : nullptr);
    }
  }
}

// C = beta·C (k == 0 or alpha == 0: no product), then + bias[j] when given.
void scale(std::int64_t m, std::int64_t n, double beta, double* c, std::int64_t ldc, const double* bias) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const double v = beta == 0.0 ? 0.0 : beta * c[i * ldc + j];
      c[i * ldc + j] = bias != nullptr ? v + bias[j] : v;
    }
}

// C[i0..i1, j0..j1] = alpha·op(A)[i0..i1, :]·op(B)[:, j0..j1] + beta·C on the calling thread: for
// each block of ≤ kNc columns and each depth block, op(B)'s block packed into bp (or read in
// place), then each block of ≤ kMc rows of op(A) packed into ap and its tiles run (the last depth
// block's adding the bias, when given).
void product(bool ta, bool tb, std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
             std::int64_t k, std::int64_t kc_max, double alpha, const ASource& a, const double* b,
             std::int64_t ldb, double beta, double* c, std::int64_t ldc, const double* bias, double* ap,
             double* bp) {
  const bool direct_b = !tb && i1 - i0 <= kDirectBRows;
  for (std::int64_t jc = j0; jc < j1; jc += kNc) {
    const std::int64_t nc = std::min(kNc, j1 - jc);
    const std::int64_t panels = ceil_div(nc, kNr);
    for (std::int64_t p0 = 0; p0 < k; p0 += kc_max) {
      const std::int64_t kc = std::min(kc_max, k - p0);
      BPanels panels_at{bp, kNr * kc, kNr};
      if (direct_b) {
        panels_at = {b + p0 * ldb + jc, kNr, ldb};
      } else {
        pack_b(tb, b, ldb, p0, kc, jc, nc, 0, panels, bp);
      }
      for (std::int64_t ic = i0; ic < i1; ic += kMc) {
        const std::int64_t mc = std::min(kMc, i1 - ic);
        pack_a(ta, a, ic, mc, p0, kc, ap);
        run_tiles(kc, mc, nc, 0, panels, ap, panels_at, c + ic * ldc + jc, ldc, alpha, p0 == 0 ? beta : 1.0,
                  bias != nullptr && p0 + kc >= k ? bias + jc : nullptr);
      }
    }
  }
}

}  // namespace

bool dgemm_avx512_available() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq");
  return yes;
}

namespace {

void run(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const ASource& a,
         const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc, const double* bias) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0) return scale(m, n, beta, c, ldc, bias);
  // Depth blocks of equal size (≤ kKc), so that no block is a sliver; a fixed function of k.
  const std::int64_t kc_max = ceil_div(k, ceil_div(k, kKc));
  const int threads =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) < kParallelFlops
          ? 1
          : omp_get_max_threads();
  // Each thread owns one contiguous range of C's rows (whole micro-tiles), or of its columns where
  // C is wider than tall, and runs the blocked product over it alone with its own packed blocks:
  // no barrier (a busy machine that preempts one thread leaves the others running), at the cost of
  // packing the shared operand once per thread.
  const bool by_rows = m >= n || ceil_div(n, kNr) < threads;
  // Whole micro-tiles per thread, as even as they go (counts differ by at most one tile; e.g. 256
  // columns, 10⅔ tiles of 24: 120 and 136 columns, not 144 and 112).
  const std::int64_t tile = by_rows ? kMr : kNr, extent = by_rows ? m : n, tiles = ceil_div(extent, tile);
  const auto edge = [&](std::int64_t id) { return std::min(extent, tiles * id / threads * tile); };
  const std::int64_t span = ceil_div(tiles, threads) * tile;  // the largest share
  // The calling thread's buffers, one pair per thread, allocated here (a failed allocation throws
  // to the caller, not inside the parallel region) and handed to the threads as pointers (a
  // thread_local named inside the region would be each thread's own).
  thread_local std::vector<Buffer> buffers;
  if (buffers.size() < 2 * static_cast<std::size_t>(threads)) buffers = std::vector<Buffer>(2 * threads);
  const std::int64_t rows = std::min(kMc, by_rows ? span : m);
  const std::int64_t cols = std::min(kNc, ceil_div(by_rows ? n : span, kNr) * kNr);
  std::vector<double*> blocks(2 * static_cast<std::size_t>(threads));
  for (std::size_t t = 0; t < blocks.size(); t += 2) {
    blocks[t] = buffers[t].get(ceil_div(rows, kMr) * kMr * kc_max);
    blocks[t + 1] = buffers[t + 1].get(cols * kc_max);
  }

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const std::int64_t id = omp_get_num_threads() == threads ? omp_get_thread_num() : 0;
    const std::int64_t first = edge(id), last = omp_get_num_threads() == threads ? edge(id + 1) : m + n;
    const std::int64_t i0 = by_rows ? std::min(first, m) : 0, i1 = by_rows ? std::min(last, m) : m;
    const std::int64_t j0 = by_rows ? 0 : std::min(first, n), j1 = by_rows ? n : std::min(last, n);
    if (i0 < i1 && j0 < j1) {
      product(ta, tb, i0, i1, j0, j1, k, kc_max, alpha, a, b, ldb, beta, c, ldc, bias,
              blocks[2 * static_cast<std::size_t>(id)], blocks[2 * static_cast<std::size_t>(id) + 1]);
    }
  }
}

}  // namespace

void dgemm_avx512(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                  const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                  double* c, std::int64_t ldc, const double* bias) {
  run(ta, tb, m, n, k, alpha, ASource{a, lda, nullptr}, b, ldb, beta, c, ldc, bias);
}

void dgemm_avx512_rows(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                       const DgemmRows& a, const double* b, std::int64_t ldb, double beta, double* c,
                       std::int64_t ldc, const double* bias) {
  run(ta, tb, m, n, k, alpha, ASource{nullptr, 0, &a}, b, ldb, beta, c, ldc, bias);
}

}  // namespace reskit::kernels::cpu
