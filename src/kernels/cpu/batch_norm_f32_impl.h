// The float32 BatchNormalization kernels of batch_norm_f32.h (and the ReLU's backward beside them), compiled
// once per instruction set: the including file defines RESKIT_BN_ISA, the namespace they land in. Everything
// here has internal linkage or lives in that namespace, so no inline function compiled for one instruction
// set can stand in for another's.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/batch_norm_f64.h"  // batch_norm_affine, compiled once in the generic build
#include "kernels/kernels.h"
#include "kernels/ref/bf16.h"

#ifndef RESKIT_BN_ISA
#error "define RESKIT_BN_ISA before including batch_norm_f32_impl.h"
#endif

#if defined(__AVX512BF16__)
#include <immintrin.h>
#endif

namespace reskit::kernels::cpu::RESKIT_BN_ISA {
namespace {

constexpr std::int64_t kBlockRows = 256;  // rows per partial sum (float)
constexpr std::int64_t kTile = 64;        // channels per tile: the accumulators stay in registers

inline std::int64_t lesser(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
// max(0, v) that keeps a NaN, as std::max(v, 0) does.
inline float relu(float v) { return v < 0.0f ? 0.0f : v; }
// An operand's value i: float32 values, or bfloat16 bits widened (BatchNormParams::x_bf16, dy_bf16).
inline float load(const float* __restrict v, std::int64_t i) { return v[i]; }
inline float load(const std::uint16_t* __restrict v, std::int64_t i) { return ref::from_bf16_bits(v[i]); }
// Calls f(v) with the operand as its kernels read it: the bits when given, else the float32 values.
template <class F>
void by_operand(const float* values, const std::uint16_t* bits, F&& f) {
  if (bits != nullptr) return f(bits);
  f(values);
}

// Rows summed into separate accumulators, interleaved, then added in a fixed order: a narrow
// tile's one or two registers per sum would otherwise wait on each addition's latency every row.
template <int W>
constexpr int kUnroll = W == 16   ? 4
                        : W == 32 ? 2
                                  : 1;

// One block of rows [r0, r1) and one tile of channels [c0, c0 + width) of x (rows, C): the sums
// s1[c] and s2[c] the passes below need, in float. W is the tile width at compile time (0: any
// width up to kTile, given at run time), so the accumulators stay in registers. Plain loops over
// restrict pointers, no branches: the compiler vectorises them across the tile.
//   Statistics: s1 = Σ(x − x₀), s2 = Σ(x − x₀)².
template <int W, class X>
void stats_tile(const X* __restrict x, const float* __restrict x0, std::int64_t C, std::int64_t r0,
                std::int64_t r1, std::int64_t width, float* __restrict s1, float* __restrict s2) {
  constexpr int kMax = W > 0 ? W : static_cast<int>(kTile);
  constexpr int U = kUnroll<W>;
  const std::int64_t w = W > 0 ? W : width;
  float a[U][kMax] = {}, b[U][kMax] = {};
  std::int64_t r = r0;
  for (; r + U <= r1; r += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      const X* __restrict xr = x + (r + u) * C;
#pragma omp simd
      for (std::int64_t c = 0; c < w; ++c) {
        const float d = load(xr, c) - x0[c];
        a[u][c] += d;
        b[u][c] += d * d;
      }
    }
  }
  for (; r < r1; ++r) {
    const X* __restrict xr = x + r * C;
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) {
      const float d = load(xr, c) - x0[c];
      a[0][c] += d;
      b[0][c] += d * d;
    }
  }
  for (std::int64_t c = 0; c < w; ++c) {
    float t1 = a[0][c], t2 = b[0][c];
    for (int u = 1; u < U; ++u) t1 += a[u][c], t2 += b[u][c];
    s1[c] = t1;
    s2[c] = t2;
  }
}

// The gradient: g = dy, or dy where y = x·scale + shift > 0 when Relu; s1 = Σg, s2 = Σg·(x − mean).
template <bool Relu>
inline float masked(float dy, float x, float scale, float shift) {
  if constexpr (Relu) return x * scale + shift > 0.0f ? dy : 0.0f;
  return dy;
}
template <int W, bool Relu, class X, class D>
void grad_tile(const X* __restrict x, const D* __restrict dy, const float* __restrict scale,
               const float* __restrict shift, const float* __restrict mean, std::int64_t C, std::int64_t r0,
               std::int64_t r1, std::int64_t width, float* __restrict s1, float* __restrict s2) {
  constexpr int kMax = W > 0 ? W : static_cast<int>(kTile);
  constexpr int U = kUnroll<W>;
  const std::int64_t w = W > 0 ? W : width;
  float a[U][kMax] = {}, b[U][kMax] = {};
  const auto row = [&](std::int64_t r, float* __restrict ar, float* __restrict br) {
    const X* __restrict xr = x + r * C;
    const D* __restrict gr = dy + r * C;
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) {
      const float xv = load(xr, c);
      const float g = masked<Relu>(load(gr, c), xv, scale[c], shift[c]);
      ar[c] += g;
      br[c] += g * (xv - mean[c]);
    }
  };
  std::int64_t r = r0;
  for (; r + U <= r1; r += U) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) row(r + u, a[u], b[u]);
  }
  for (; r < r1; ++r) row(r, a[0], b[0]);
  for (std::int64_t c = 0; c < w; ++c) {
    float t1 = a[0][c], t2 = b[0][c];
    for (int u = 1; u < U; ++u) t1 += a[u][c], t2 += b[u][c];
    s1[c] = t1;
    s2[c] = t2;
  }
}

// Per-channel sums over all rows: tile(c0, r0, r1, width, s1, s2) fills a block's partial sums
// for channels [c0, c0 + width) (in parallel over blocks and tiles); the blocks are then added in
// double, in order.
template <class Tile>
void channel_sums(std::int64_t rows, std::int64_t C, Tile&& tile, std::vector<double>& s1,
                  std::vector<double>& s2) {
  const std::int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  const std::int64_t tiles = (C + kTile - 1) / kTile;
  std::vector<float> p1(static_cast<std::size_t>(blocks * C)), p2(p1.size());
#pragma omp parallel for collapse(2) schedule(static) if (rows * C > kParallelGrain)
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t r0 = b * kBlockRows, c0 = t * kTile;
      tile(c0, r0, lesser(rows, r0 + kBlockRows), lesser(kTile, C - c0), p1.data() + b * C + c0,
           p2.data() + b * C + c0);
    }
  s1.assign(static_cast<std::size_t>(C), 0.0);
  s2.assign(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t c = 0; c < C; ++c) {
      s1[c] += p1[b * C + c];
      s2[c] += p2[b * C + c];
    }
}

// Calls f.template operator()<W>() with W = the tile width when it is 64, 32 or 16, else 0.
template <class F>
void by_width(std::int64_t width, F&& f) {
  if (width == 64) return f.template operator()<64>();
  if (width == 32) return f.template operator()<32>();
  if (width == 16) return f.template operator()<16>();
  f.template operator()<0>();
}

// How a pass writes its output: float32 only, float32 and its bfloat16 rounding, or the rounding
// alone (BatchNormParams::bf16_only).
enum class Out { f32, both, bf16 };
constexpr bool writes_f32(Out o) { return o != Out::bf16; }
constexpr bool writes_bf16(Out o) { return o != Out::f32; }
inline Out out_kind(const std::uint16_t* bits, bool bf16_only) {
  return bits == nullptr ? Out::f32 : bf16_only ? Out::bf16 : Out::both;
}

// Roundings written 32 at a time by the CPU's own conversion where this build has AVX512-BF16
// (vcvtne2ps2bf16: round to nearest even, a NaN quieted, as ref::bf16_bits; it reads a float32
// subnormal, below 1.2e-38, as a signed zero), in one instruction instead of the ~8 of the
// portable rounding per vector: the elementwise passes below are bound by their instructions
// more than by memory at ResNet-20's sizes.
#if defined(__AVX512BF16__)
constexpr bool kCpuRounding = true;
inline void store_bf16_32(const float* __restrict v, std::uint16_t* __restrict out) {
  const __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(v + 16), _mm512_loadu_ps(v));
  _mm512_storeu_si512(out, reinterpret_cast<__m512i>(r));
}
#else
constexpr bool kCpuRounding = false;
inline void store_bf16_32(const float* __restrict v, std::uint16_t* __restrict out) {
  for (int i = 0; i < 32; ++i) out[i] = ref::bf16_bits(v[i]);
}
#endif
// Calls f.template operator()<O>() with O = out, as by_width does for widths.
template <class F>
void by_out(Out out, F&& f) {
  if (out == Out::bf16) return f.template operator()<Out::bf16>();
  if (out == Out::both) return f.template operator()<Out::both>();
  f.template operator()<Out::f32>();
}

// The elementwise passes run over x's rows·C values flattened, in chunks of kChunk values (one
// AVX-512 vector per operand: GCC vectorises a loop of 16 two-byte values only at half width, and
// a runtime row of C = 16 ran its half-width remainder code alone, ~2x slower). Their
// per-channel parameters are repeated to a period of whole chunks (chunk_period: C a multiple
// of kChunk, or a divisor of it); any other C runs row by row.
constexpr std::int64_t kChunk = 32;
inline std::int64_t chunk_period(std::int64_t C) {
  return C % kChunk == 0 ? C : kChunk % C == 0 ? kChunk : 0;
}
// v[0..C) repeated to `period` values (0: v as it is).
struct Repeated {
  std::vector<float> values;
  Repeated(const float* v, std::int64_t C, std::int64_t period) {
    const std::int64_t n = period > 0 ? period : C;
    values.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) values[i] = v[i % C];
  }
  const float* data() const { return values.data(); }
};
// Calls span.template operator()<N>(at, pc, n) for the values [at, at + n) of rows·C, whose
// parameters start at pc of the repeated ones: chunks of N = kChunk, then the rest (whole rows)
// with N = 0; without a period, row by row with N = 0.
template <class Span>
void over_values(std::int64_t rows, std::int64_t C, std::int64_t period, Span&& span) {
  const std::int64_t total = rows * C;
  if (period == 0) {
#pragma omp parallel for schedule(static) if (total > kParallelGrain)
    for (std::int64_t i = 0; i < rows; ++i) span.template operator()<0>(i * C, std::int64_t{0}, C);
    return;
  }
  // Each thread takes one contiguous run of chunks, its parameters' offset advanced chunk by
  // chunk rather than found by a 64-bit division per chunk.
  const std::int64_t chunks = total / kChunk;
#pragma omp parallel if (total > kParallelGrain)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t k0 = chunks * t / nt, k1 = chunks * (t + 1) / nt;
    std::int64_t pc = k0 * kChunk % period;
    for (std::int64_t at = k0 * kChunk; at < k1 * kChunk; at += kChunk) {
      span.template operator()<kChunk>(at, pc, kChunk);
      pc += kChunk;
      if (pc == period) pc = 0;
    }
  }
  for (std::int64_t at = chunks * kChunk; at < total; at += C)
    span.template operator()<0>(at, at % period, C);
}

// y[i,c] = x[i,c]·scale[c] + shift[c] (+ residual[i,c] when Res), then max(0, ·) when Relu, written
// as O says: to y, and rounded to bfloat16 to yb; over the n values from `at` (N: n at compile
// time, or 0), parameters from pc.
template <int N, bool Relu, bool Res, Out O, class X, class R>
inline void scale_shift_span(std::int64_t at, std::int64_t pc, std::int64_t n, const X* __restrict x,
                             const float* __restrict scale, const float* __restrict shift,
                             const R* __restrict residual, float* __restrict y,
                             std::uint16_t* __restrict yb) {
  const X* __restrict xi = x + at;
  const R* __restrict ri = Res ? residual + at : nullptr;
  float* __restrict yi = y + at;
  std::uint16_t* __restrict ybi = writes_bf16(O) ? yb + at : nullptr;
  const float* __restrict sc = scale + pc, * __restrict sh = shift + pc;
  const auto value = [&](std::int64_t c) {
    float v = load(xi, c) * sc[c] + sh[c];
    if constexpr (Res) v += load(ri, c);
    if constexpr (Relu) v = relu(v);
    return v;
  };
  if constexpr (writes_bf16(O) && kCpuRounding && N == kChunk) {
    alignas(64) float t[kChunk];
#pragma omp simd
    for (std::int64_t c = 0; c < kChunk; ++c) {
      t[c] = value(c);
      if constexpr (writes_f32(O)) yi[c] = t[c];
    }
    store_bf16_32(t, ybi);
    return;
  }
#pragma omp simd
  for (std::int64_t c = 0; c < (N > 0 ? N : n); ++c) {
    const float v = value(c);
    if constexpr (writes_f32(O)) yi[c] = v;
    if constexpr (writes_bf16(O)) ybi[c] = ref::bf16_bits(v);
  }
}

template <class X, class R>
void scale_shift_with(std::int64_t rows, std::int64_t C, bool with_relu, const X* x, const float* scale,
                      const float* shift, const R* residual, float* y, std::uint16_t* yb, Out out) {
  const std::int64_t period = chunk_period(C);
  const Repeated sc(scale, C, period), sh(shift, C, period);
  const auto run = [&]<bool Relu, bool Res>() {
    by_out(out, [&]<Out O>() {
      over_values(rows, C, period, [&]<int N>(std::int64_t at, std::int64_t pc, std::int64_t n) {
        scale_shift_span<N, Relu, Res, O>(at, pc, n, x, sc.data(), sh.data(), residual, y, yb);
      });
    });
  };
  if (residual != nullptr) {
    if (with_relu) return run.template operator()<true, true>();
    return run.template operator()<false, true>();
  }
  if (with_relu) return run.template operator()<true, false>();
  run.template operator()<false, false>();
}

// The residual as float32 values or, where given, bfloat16 bits (BatchNormParams::residual_bf16).
template <class X>
void scale_shift(std::int64_t rows, std::int64_t C, bool with_relu, const X* x, const float* scale,
                 const float* shift, const float* residual, const std::uint16_t* residual_bits, float* y,
                 std::uint16_t* yb, Out out) {
  if (residual_bits != nullptr) {
    return scale_shift_with(rows, C, with_relu, x, scale, shift, residual_bits, y, yb, out);
  }
  scale_shift_with(rows, C, with_relu, x, scale, shift, residual, y, yb, out);
}

// dx = a·(g − gm) + b·(x − mean) per channel, g as in grad_tile, written as O says: to dx, and
// rounded to bfloat16 to dxb; over a span as scale_shift_span, the parameters in `k`.
struct GradInputParams {
  const float *scale, *shift, *mean, *a, *gm, *b;
};
template <int N, bool Relu, Out O, class X, class D>
inline void grad_input_span(std::int64_t at, std::int64_t pc, std::int64_t n, const X* __restrict x,
                            const D* __restrict dy, const GradInputParams& k, float* __restrict dx,
                            std::uint16_t* __restrict dxb) {
  const X* __restrict xi = x + at;
  const D* __restrict gi = dy + at;
  float* __restrict out = dx + at;
  std::uint16_t* __restrict outb = writes_bf16(O) ? dxb + at : nullptr;
  const float* __restrict sc = k.scale + pc, * __restrict sh = k.shift + pc, * __restrict mu = k.mean + pc;
  const float* __restrict ac = k.a + pc, * __restrict gmc = k.gm + pc, * __restrict bc = k.b + pc;
  const auto value = [&](std::int64_t c) {
    const float xv = load(xi, c);
    const float g = masked<Relu>(load(gi, c), xv, sc[c], sh[c]);
    return ac[c] * (g - gmc[c]) + bc[c] * (xv - mu[c]);
  };
  if constexpr (writes_bf16(O) && kCpuRounding && N == kChunk) {
    alignas(64) float t[kChunk];
#pragma omp simd
    for (std::int64_t c = 0; c < kChunk; ++c) {
      t[c] = value(c);
      if constexpr (writes_f32(O)) out[c] = t[c];
    }
    store_bf16_32(t, outb);
    return;
  }
#pragma omp simd
  for (std::int64_t c = 0; c < (N > 0 ? N : n); ++c) {
    const float v = value(c);
    if constexpr (writes_f32(O)) out[c] = v;
    if constexpr (writes_bf16(O)) outb[c] = ref::bf16_bits(v);
  }
}

// The backward passes (Relu: the fused ReLU's mask).
template <bool Relu, class X, class D>
void backward_passes(std::int64_t m, std::int64_t C, const X* x, const D* dy, const float* scale,
                     const float* shift, const float* mean, const double* rstd, const float* gamma, float* dx,
                     float* dgamma, float* dbeta, std::uint16_t* dxb, Out out) {
  std::vector<double> sg, sgx;  // Σg, Σg·(x − mean)
  channel_sums(
      m, C,
      [&](std::int64_t c0, std::int64_t r0, std::int64_t r1, std::int64_t width, float* s1, float* s2) {
        by_width(width, [&]<int W>() {
          grad_tile<W, Relu>(x + c0, dy + c0, scale + c0, shift + c0, mean + c0, C, r0, r1, width, s1, s2);
        });
      },
      sg, sgx);
  // dx = gamma·rstd/M·(M·g − Σg − x̂·Σg·x̂) = a·(g − Σg/M) + b·(x − mean)
  std::vector<float> a(static_cast<std::size_t>(C)), b(a.size()), gm(a.size());
  const double M = static_cast<double>(m);
  for (std::int64_t c = 0; c < C; ++c) {
    const double gr = double(gamma[c]) * rstd[c];
    a[c] = static_cast<float>(gr);
    b[c] = static_cast<float>(-gr * sgx[c] * rstd[c] * rstd[c] / M);
    gm[c] = static_cast<float>(sg[c] / M);
    dgamma[c] = static_cast<float>(sgx[c] * rstd[c]);
    dbeta[c] = static_cast<float>(sg[c]);
  }
  const std::int64_t period = chunk_period(C);
  const Repeated sc(scale, C, period), sh(shift, C, period), mu(mean, C, period), ar(a.data(), C, period),
      gmr(gm.data(), C, period), br(b.data(), C, period);
  const GradInputParams k{sc.data(), sh.data(), mu.data(), ar.data(), gmr.data(), br.data()};
  by_out(out, [&]<Out O>() {
    over_values(m, C, period, [&]<int N>(std::int64_t at, std::int64_t pc, std::int64_t n) {
      grad_input_span<N, Relu, O>(at, pc, n, x, dy, k, dx, dxb);
    });
  });
}

}  // namespace

namespace {
// The training forward over x as its kernels read it (float32 values, or bfloat16 bits).
template <class X>
void forward_training(const BatchNormParams& p, const X* x, const float* gamma, const float* beta, float* y,
                      float* mean, float* var, const float* residual) {
  const std::int64_t m = p.rows, C = p.channels;
  std::vector<float> x0(static_cast<std::size_t>(C));  // the shift: the first row
  for (std::int64_t c = 0; c < C; ++c) x0[c] = load(x, c);
  std::vector<double> s1, s2;
  channel_sums(
      m, C,
      [&](std::int64_t c0, std::int64_t r0, std::int64_t r1, std::int64_t width, float* t1, float* t2) {
        by_width(width, [&]<int W>() { stats_tile<W>(x + c0, x0.data() + c0, C, r0, r1, width, t1, t2); });
      },
      s1, s2);
  std::vector<float> scale(static_cast<std::size_t>(C)), shift(scale.size());
  const double M = static_cast<double>(m);
  for (std::int64_t c = 0; c < C; ++c) {
    const double d = s1[c] / M;
    const double mu = double(x0[c]) + d;
    const double v = s2[c] / M - d * d;
    const double v0 = v > 0.0 ? v : 0.0;
    const double s = double(gamma[c]) / std::sqrt(v0 + p.epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(double(beta[c]) - mu * s);
    mean[c] = static_cast<float>(mu);
    var[c] = static_cast<float>(v0);
  }
  scale_shift(m, C, p.relu, x, scale.data(), shift.data(), residual, p.residual_bf16, y, p.out_bf16,
              out_kind(p.out_bf16, p.bf16_only));
}
}  // namespace

void batch_norm_forward_training(const BatchNormParams& p, const float* x, const float* gamma,
                                 const float* beta, float* y, float* mean, float* var,
                                 const float* residual) {
  by_operand(x, p.x_bf16,
             [&](const auto* xs) { forward_training(p, xs, gamma, beta, y, mean, var, residual); });
}

void batch_norm_forward_inference(const BatchNormParams& p, const float* x, const float* gamma,
                                  const float* beta, const float* mean, const float* var, float* y,
                                  const float* residual) {
  std::vector<float> scale, shift;
  std::vector<double> rstd;
  cpu::batch_norm_affine(p.channels, p.epsilon, gamma, beta, mean, var, scale, shift, rstd);
  by_operand(x, p.x_bf16, [&](const auto* xs) {
    scale_shift(p.rows, p.channels, p.relu, xs, scale.data(), shift.data(), residual, p.residual_bf16, y,
                nullptr, Out::f32);
  });
}

void batch_norm_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                         const float* beta, const float* mean, const float* var, float* dx, float* dgamma,
                         float* dbeta) {
  const std::int64_t m = p.rows, C = p.channels;
  // The forward's scale and shift, from the returned statistics: y > 0 where the ReLU passed.
  std::vector<float> scale, shift;
  std::vector<double> rstd;
  cpu::batch_norm_affine(C, p.epsilon, gamma, beta, mean, var, scale, shift, rstd);
  const Out out = out_kind(p.out_bf16, p.bf16_only);
  by_operand(x, p.x_bf16, [&](const auto* xs) {
    by_operand(dy, p.dy_bf16, [&](const auto* dys) {
      if (p.relu) {
        return backward_passes<true>(m, C, xs, dys, scale.data(), shift.data(), mean, rstd.data(), gamma, dx,
                                     dgamma, dbeta, p.out_bf16, out);
      }
      backward_passes<false>(m, C, xs, dys, scale.data(), shift.data(), mean, rstd.data(), gamma, dx, dgamma,
                             dbeta, p.out_bf16, out);
    });
  });
}

namespace {
// relu_backward over the operands as they come (float32 values or bfloat16 bits), in blocks of
// values per thread; b read only when Sum, dz written as bits when Bits.
template <bool Sum, bool Bits, class Z, class A, class B>
void relu_backward_values(std::int64_t n, const Z* __restrict z, const A* __restrict a, const B* __restrict b,
                          float* __restrict dz, std::uint16_t* __restrict dz_bits) {
  constexpr std::int64_t kBlock = 4096;
  const std::int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (std::int64_t k = 0; k < blocks; ++k) {
    std::int64_t lo = k * kBlock;
    const std::int64_t hi = lesser(n, lo + kBlock);
    const auto value = [&](std::int64_t i) {
      float g = load(a, i);
      if constexpr (Sum) g += load(b, i);
      return (load(z, i) > 0.0f) * g;  // the reference's select, in a form that vectorises
    };
    if constexpr (Bits && kCpuRounding) {
      for (; lo + kChunk <= hi; lo += kChunk) {
        alignas(64) float t[kChunk];
#pragma omp simd
        for (std::int64_t i = 0; i < kChunk; ++i) t[i] = value(lo + i);
        store_bf16_32(t, dz_bits + lo);
      }
    }
#pragma omp simd
    for (std::int64_t i = lo; i < hi; ++i) {
      const float v = value(i);
      if constexpr (Bits) {
        dz_bits[i] = ref::bf16_bits(v);
      } else {
        dz[i] = v;
      }
    }
  }
}
}  // namespace

void relu_backward(const ReluBackwardParams& p) {
  by_operand(p.z, p.z_bits, [&](const auto* z) {
    by_operand(p.a, p.a_bits, [&](const auto* a) {
      const auto out = [&]<bool Sum>(const auto* b) {
        if (p.dz_bits != nullptr) return relu_backward_values<Sum, true>(p.n, z, a, b, p.dz, p.dz_bits);
        relu_backward_values<Sum, false>(p.n, z, a, b, p.dz, p.dz_bits);
      };
      if (p.b == nullptr && p.b_bits == nullptr) return out.template operator()<false>(a);
      by_operand(p.b, p.b_bits, [&](const auto* b) { out.template operator()<true>(b); });
    });
  });
}

}  // namespace reskit::kernels::cpu::RESKIT_BN_ISA
