// reskit's Winograd kernels for float32 (winograd.h): the transforms, one tile (or one input
// channel's kernels) at a time across the channels, and the products: batched through oneDNN's
// matmul, or block by block of images through an AVX-512 kernel of ours (fused).
#include "kernels/cpu/winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::onednn {

namespace {

// 3x3, stride 1, padding 1 on every side, output the input's size: where the transforms apply.
bool applies(const Conv2DParams& p) {
  return p.r == 3 && p.s == 3 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 1 && p.pad_left == 1 &&
         p.pad_bottom == 1 && p.pad_right == 1 && p.p == p.h && p.q == p.w && p.n > 0 && p.c > 0 && p.k > 0;
}

// What both F(4x4) entries' rules ask of the shape: P, Q >= 4, C and K multiples of 16, at least
// 32 tiles of 4x4, no residual. They differ in the channel counts (and the fused one in the CPU).
bool f4_shape(const Conv2DParams& p) {
  const std::int64_t tiles = p.n * ((p.p + 3) / 4) * ((p.q + 3) / 4);
  return applies(p) && p.p >= 4 && p.q >= 4 && p.c % 16 == 0 && p.k % 16 == 0 && tiles >= 32 &&
         p.residual == nullptr;
}

}  // namespace

bool own_winograd_f2(const Conv2DParams& p) {
  return applies(p) && p.p == 4 && p.q == 4 && p.n >= 4 && p.residual == nullptr;
}

bool own_winograd_f4(const Conv2DParams& p) { return f4_shape(p) && p.c >= 64 && p.k >= 64; }

namespace {

// ---- the matrices ----

template <std::size_t R, std::size_t C>
using Matrix = std::array<std::array<float, C>, R>;

template <std::size_t R, std::size_t C>
constexpr Matrix<C, R> transposed(const Matrix<R, C>& m) {
  Matrix<C, R> t{};
  for (std::size_t i = 0; i < R; ++i)
    for (std::size_t j = 0; j < C; ++j) t[j][i] = m[i][j];
  return t;
}

// F(m x m, 3x3): Bᵀ (α x α), G (α x 3), Aᵀ (m x α), and the transposes the backward passes use.
template <int M>
struct Tile;

template <>
struct Tile<2> {
  static constexpr Matrix<4, 4> Bt{{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}};
  static constexpr Matrix<4, 3> G{{{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}}};
  static constexpr Matrix<2, 4> At{{{1, 1, 1, 0}, {0, 1, -1, -1}}};
};

template <>
struct Tile<4> {
  static constexpr Matrix<6, 6> Bt{{{4, 0, -5, 0, 1, 0},
                                    {0, -4, -4, 1, 1, 0},
                                    {0, 4, -4, -1, 1, 0},
                                    {0, -2, -1, 2, 1, 0},
                                    {0, 2, -1, -2, 1, 0},
                                    {0, 4, 0, -5, 0, 1}}};
  static constexpr Matrix<6, 3> G{{{1.0f / 4, 0, 0},
                                   {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                   {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                   {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                   {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                   {0, 0, 1}}};
  static constexpr Matrix<4, 6> At{
      {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};
};

template <int M>
struct Transposes {
  static constexpr auto B = transposed(Tile<M>::Bt);
  static constexpr auto Gt = transposed(Tile<M>::G);
  static constexpr auto A = transposed(Tile<M>::At);
};

// The transforms' small arrays must live in registers for their channel loops to vectorise; the
// sanitizers' stack instrumentation keeps them in memory (ResNet-20's training step took ~2.4 s
// under the sanitizer preset instead of ~0.3), so in sanitizer builds these loops, and every helper
// and lambda they inline (whose reads would otherwise be checked against a stack the uninstrumented
// caller never unpoisons), are left uninstrumented. What they compute is checked against the
// reference kernels by the kernel tests in every build. Elsewhere both macros are empty.
#if defined(__SANITIZE_ADDRESS__)
#define RESKIT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RESKIT_SANITIZED 1
#endif
#endif
#ifdef RESKIT_SANITIZED
#define RESKIT_UNINSTRUMENTED __attribute__((no_sanitize("address", "undefined")))
#define RESKIT_INLINE __attribute__((always_inline, no_sanitize("address", "undefined")))
#else
#define RESKIT_UNINSTRUMENTED
#define RESKIT_INLINE
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RESKIT_AVX512_CLONE __attribute__((target_clones("avx512f", "default"))) RESKIT_UNINSTRUMENTED
#else
#define RESKIT_AVX512_CLONE RESKIT_UNINSTRUMENTED
#endif

// Σ_j L[i][j]·in(j) over the nonzero coefficients of row i, in order of j: a coefficient of ±1 as
// an addition or subtraction, the first term as it is. All resolved at compile time.
template <const auto& L, std::size_t I, class In, std::size_t... J>
[[gnu::always_inline]] RESKIT_INLINE inline float row_sum(In&& in, std::index_sequence<J...>) {
  constexpr int first = [] {
    for (std::size_t j = 0; j < L[I].size(); ++j)
      if (L[I][j] != 0.0f) return static_cast<int>(j);
    return -1;
  }();
  static_assert(first >= 0, "a zero row");
  float acc = 0.0f;
  (
      [&]() RESKIT_INLINE {
        constexpr float c = L[I][J];
        if constexpr (static_cast<int>(J) == first) {
          if constexpr (c == 1.0f)
            acc = in(J);
          else if constexpr (c == -1.0f)
            acc = -in(J);
          else
            acc = c * in(J);
        } else if constexpr (c == 1.0f) {
          acc += in(J);
        } else if constexpr (c == -1.0f) {
          acc -= in(J);
        } else if constexpr (c != 0.0f) {
          acc += c * in(J);
        }
      }(),
      ...);
  return acc;
}

// out = L·in (in: K x N, out: R x N, L: R x K).
template <const auto& L, std::size_t R, std::size_t K, std::size_t N>
[[gnu::always_inline]] RESKIT_INLINE inline void left(const float (&in)[K][N], float (&out)[R][N]) {
  [&]<std::size_t... I>(std::index_sequence<I...>) RESKIT_INLINE {
    (
        [&]() RESKIT_INLINE {
#pragma GCC unroll 64
          for (std::size_t j = 0; j < N; ++j)
            out[I][j] = row_sum<L, I>([&](std::size_t k) RESKIT_INLINE { return in[k][j]; },
                                      std::make_index_sequence<K>{});
        }(),
        ...);
  }
  (std::make_index_sequence<R>{});
}

// out = in·Rmᵀ (in: N x K, out: N x C, Rm: C x K).
template <const auto& Rm, std::size_t N, std::size_t K, std::size_t C>
[[gnu::always_inline]] RESKIT_INLINE inline void right(const float (&in)[N][K], float (&out)[N][C]) {
  [&]<std::size_t... J>(std::index_sequence<J...>) RESKIT_INLINE {
    (
        [&]() RESKIT_INLINE {
#pragma GCC unroll 64
          for (std::size_t i = 0; i < N; ++i)
            out[i][J] = row_sum<Rm, J>([&](std::size_t k) RESKIT_INLINE { return in[i][k]; },
                                       std::make_index_sequence<K>{});
        }(),
        ...);
  }
  (std::make_index_sequence<C>{});
}

// out = L·in·Lᵀ (in: K x K, out: R x R, L: R x K): a transform's two sides.
template <const auto& L, std::size_t R, std::size_t K>
[[gnu::always_inline]] RESKIT_INLINE inline void both_sides(const float (&in)[K][K], float (&out)[R][R]) {
  float t[R][K];
  left<L>(in, t);
  right<L>(t, out);
}

// ---- the transforms: each over one run of channels, a vector loop; e = α·i + j indexes the α x α
// transformed tile, whose α² planes lie `plane` floats apart ----

// u[e][ci][·] = (G g Gᵀ)[e] for the kernels g = w[·, ·, ci, ·] of one input channel (w HWIO).
template <int M>
RESKIT_AVX512_CLONE void weights_row(const float* __restrict w, std::int64_t c, std::int64_t k,
                                     std::int64_t ci, float* __restrict u) {
  constexpr int kA = M + 2;
  const std::int64_t tap = c * k, plane = c * k;
  const float* __restrict g0 = w + ci * k;
  float* __restrict u0 = u + ci * k;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float g[3][3], o[kA][kA];
#pragma GCC unroll 64
    for (int r = 0; r < 3; ++r)
#pragma GCC unroll 64
      for (int s = 0; s < 3; ++s) g[r][s] = g0[(r * 3 + s) * tap + j];
    both_sides<Tile<M>::G>(g, o);
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) u0[e * plane + j] = o[e / kA][e % kA];
  }
}

// dw[·, ·, ci, ·] = Gᵀ du G, the weight gradient from its transform.
template <int M>
RESKIT_AVX512_CLONE void weight_gradient_row(const float* __restrict du, std::int64_t c, std::int64_t k,
                                             std::int64_t ci, float* __restrict dw) {
  constexpr int kA = M + 2;
  const std::int64_t tap = c * k, plane = c * k;
  const float* __restrict u0 = du + ci * k;
  float* __restrict g0 = dw + ci * k;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float m[kA][kA], o[3][3];
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) m[e / kA][e % kA] = u0[e * plane + j];
    both_sides<Transposes<M>::Gt>(m, o);
#pragma GCC unroll 64
    for (int r = 0; r < 3; ++r)
#pragma GCC unroll 64
      for (int s = 0; s < 3; ++s) g0[(r * 3 + s) * tap + j] = o[r][s];
  }
}

// v[e][·] = (Bᵀ d B)[e] for one tile, d's α² pixels given as rows of c channels.
template <int M>
RESKIT_AVX512_CLONE void input_tile(const float* const* rows, std::int64_t c, std::int64_t plane,
                                    float* __restrict v) {
  constexpr int kA = M + 2;
#pragma omp simd
  for (std::int64_t ci = 0; ci < c; ++ci) {
    float d[kA][kA], o[kA][kA];
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) d[e / kA][e % kA] = rows[e][ci];
    both_sides<Tile<M>::Bt>(d, o);
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) v[e * plane + ci] = o[e / kA][e % kA];
  }
}

// The m² outputs of one tile, Aᵀ t A + bias, then max(0, ·) when Relu.
template <int M, bool Relu>
RESKIT_AVX512_CLONE void output_tile(const float* __restrict m, std::int64_t k, std::int64_t plane,
                                     const float* __restrict bias, float* const* out) {
  constexpr int kA = M + 2;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float t[kA][kA], o[M][M];
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) t[e / kA][e % kA] = m[e * plane + j];
    both_sides<Tile<M>::At>(t, o);
#pragma GCC unroll 64
    for (int e = 0; e < M * M; ++e) {
      float v = o[e / M][e % M] + bias[j];
      if constexpr (Relu) v = v < 0.0f ? 0.0f : v;  // max(0, v) that keeps a NaN
      out[e][j] = v;
    }
  }
}

template <int M>
void write_outputs(bool relu, const float* m, std::int64_t k, std::int64_t plane, const float* bias,
                   const std::array<float*, M * M>& out) {
  if (relu)
    output_tile<M, true>(m, k, plane, bias, out.data());
  else
    output_tile<M, false>(m, k, plane, bias, out.data());
}

// dm[e][·] = (A dy Aᵀ)[e] for one tile, dy's m² pixels given as rows of k channels.
template <int M>
RESKIT_AVX512_CLONE void gradient_tile(const float* const* rows, std::int64_t k, std::int64_t plane,
                                       float* __restrict dm) {
  constexpr int kA = M + 2;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float y[M][M], o[kA][kA];
#pragma GCC unroll 64
    for (int e = 0; e < M * M; ++e) y[e / M][e % M] = rows[e][j];
    both_sides<Transposes<M>::A>(y, o);
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) dm[e * plane + j] = o[e / kA][e % kA];
  }
}

// out[e] += (B dv Bᵀ)[e] for one tile: its α² input pixels' share of dx (distinct rows).
template <int M>
RESKIT_AVX512_CLONE void input_gradient_tile(const float* __restrict dv, std::int64_t c, std::int64_t plane,
                                             float* const* out) {
  constexpr int kA = M + 2;
#pragma omp simd
  for (std::int64_t ci = 0; ci < c; ++ci) {
    float m[kA][kA], o[kA][kA];
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) m[e / kA][e % kA] = dv[e * plane + ci];
    both_sides<Transposes<M>::B>(m, o);
#pragma GCC unroll 64
    for (int e = 0; e < kA * kA; ++e) out[e][ci] += o[e / kA][e % kA];
  }
}

// ---- the loops over tiles and channels ----

// Whether a loop of `work` values is worth a parallel region.
bool parallel(std::int64_t work) { return work > kParallelGrain; }

// The tiles of m x m outputs: th x tw per image (the last row or column partial where m does not
// divide P or Q), t over the batch, numbered (image, tile row, tile column).
struct Tiling {
  std::int64_t m, th, tw, t;
  std::int64_t image(std::int64_t tile) const { return tile / (th * tw); }
  std::int64_t row(std::int64_t tile) const { return (tile / tw) % th * m; }  // its first output row
  std::int64_t col(std::int64_t tile) const { return tile % tw * m; }
};
Tiling tiling_of(const Conv2DParams& p, std::int64_t m) {
  const std::int64_t th = (p.p + m - 1) / m, tw = (p.q + m - 1) / m;
  return {m, th, tw, p.n * th * tw};
}

// Per-thread rows: a row of zeros (padding, outputs past the image read as zero) and a row that
// absorbs writes to pixels past the image; one row each of `width` floats per thread.
struct EdgeRows {
  std::vector<float> zero, discard;
  std::int64_t width;
  EdgeRows(std::int64_t width, int threads)
      : zero(static_cast<std::size_t>(width)),
        discard(static_cast<std::size_t>(width * threads)),
        width(width) {}
  float* discard_row() { return discard.data() + omp_get_thread_num() * width; }
};

// u = G w Gᵀ for every (c, k): α² planes of (c, k).
template <int M>
void transform_weights(const Conv2DParams& p, const float* w, float* u) {
#pragma omp parallel for schedule(static) if (parallel(9 * p.c * p.k))
  for (std::int64_t ci = 0; ci < p.c; ++ci) weights_row<M>(w, p.c, p.k, ci, u);
}

// A tile's pixels as rows of channels (NHWC), row-major over the window.
//   input_window: its α x α input window in x[N,H,W,C] (padding: the zero row);
//   output_window: its m x m outputs in y[N,P,Q,K] (past the image: the discard row);
//   gradient_window: its m x m outputs in dy[N,P,Q,K] (past the image: the zero row);
//   input_gradient_window: its α x α input window in one image of dx[H,W,C] (padding: discard).
template <int M>
std::array<const float*, (M + 2) * (M + 2)> input_window(const Conv2DParams& p, const Tiling& tl,
                                                         std::int64_t t, const float* x, const float* zero) {
  constexpr int kA = M + 2;
  const std::int64_t n = tl.image(t), i0 = tl.row(t) - 1, j0 = tl.col(t) - 1;
  std::array<const float*, kA * kA> rows;
#pragma GCC unroll 64
  for (int e = 0; e < kA * kA; ++e) {
    const std::int64_t a = i0 + e / kA, b = j0 + e % kA;
    rows[e] = a >= 0 && a < p.h && b >= 0 && b < p.w ? x + ((n * p.h + a) * p.w + b) * p.c : zero;
  }
  return rows;
}
template <int M, class T>  // T: float (y) or const float (dy)
std::array<T*, M * M> output_window(const Conv2DParams& p, const Tiling& tl, std::int64_t t, T* y,
                                    T* discard) {
  const std::int64_t n = tl.image(t), i0 = tl.row(t), j0 = tl.col(t);
  std::array<T*, M * M> out;
#pragma GCC unroll 64
  for (int o = 0; o < M * M; ++o) {
    const std::int64_t a = i0 + o / M, c = j0 + o % M;
    out[o] = a < p.p && c < p.q ? y + ((n * p.p + a) * p.q + c) * p.k : discard;
  }
  return out;
}
template <int M>
std::array<const float*, M * M> gradient_window(const Conv2DParams& p, const Tiling& tl, std::int64_t t,
                                                const float* dy, const float* zero) {
  return output_window<M, const float>(p, tl, t, dy, zero);
}
template <int M>
std::array<float*, (M + 2) * (M + 2)> input_gradient_window(const Conv2DParams& p, const Tiling& tl,
                                                            std::int64_t t, float* image, float* discard) {
  constexpr int kA = M + 2;
  const std::int64_t i0 = tl.row(t) - 1, j0 = tl.col(t) - 1;
  std::array<float*, kA * kA> out;
#pragma GCC unroll 64
  for (int o = 0; o < kA * kA; ++o) {
    const std::int64_t a = i0 + o / kA, b = j0 + o % kA;
    out[o] = a >= 0 && a < p.h && b >= 0 && b < p.w ? image + (a * p.w + b) * p.c : discard;
  }
  return out;
}

// v = Bᵀ d B for every tile: α² planes of (t, c).
template <int M>
void transform_input(const Conv2DParams& p, const Tiling& tl, const float* x, float* v, EdgeRows& edge) {
  constexpr int kA = M + 2;
#pragma omp parallel for schedule(static) if (parallel(tl.t * kA * kA * p.c))
  for (std::int64_t t = 0; t < tl.t; ++t)
    input_tile<M>(input_window<M>(p, tl, t, x, edge.zero.data()).data(), p.c, tl.t * p.c, v + t * p.c);
}

// dm = A dy Aᵀ for every tile: α² planes of (t, k).
template <int M>
void transform_gradient(const Conv2DParams& p, const Tiling& tl, const float* dy, float* dm, EdgeRows& edge) {
  constexpr int kA = M + 2;
#pragma omp parallel for schedule(static) if (parallel(tl.t * kA * kA * p.k))
  for (std::int64_t t = 0; t < tl.t; ++t)
    gradient_tile<M>(gradient_window<M>(p, tl, t, dy, edge.zero.data()).data(), p.k, tl.t * p.k,
                     dm + t * p.k);
}

// The batched product of one pass: α² matmuls, one per position e of the transformed tile.
//   forward           m[e]  (t x k) = v[e] (t x c) · u[e] (c x k)
//   backward-data     dv[e] (t x c) = dm[e] (t x k) · u[e]ᵀ
//   backward-weights  du[e] (c x k) = v[e]ᵀ · dm[e] (t x k)
enum class Product : std::int64_t { forward, backward_data, backward_weights };
struct ProductEntry {
  dnnl::matmul prim;
  memory::desc a, b, c;
};
using ProductKey = std::array<std::int64_t, 6>;

const ProductEntry* product(Product which, std::int64_t planes, std::int64_t t, std::int64_t c,
                            std::int64_t k) {
  const ProductKey key{static_cast<std::int64_t>(which), planes, t, c, k, omp_get_max_threads()};
  return cached<ProductEntry>(key, [&]() -> std::optional<ProductEntry> {
    memory::desc a, b, d;
    switch (which) {
      case Product::forward:
        a = memory::desc({planes, t, c}, f32, tag::abc), b = memory::desc({planes, c, k}, f32, tag::abc);
        d = memory::desc({planes, t, k}, f32, tag::abc);
        break;
      case Product::backward_data:  // u stored (e, c, k), read as (e, k, c)
        a = memory::desc({planes, t, k}, f32, tag::abc), b = memory::desc({planes, k, c}, f32, tag::acb);
        d = memory::desc({planes, t, c}, f32, tag::abc);
        break;
      case Product::backward_weights:  // v stored (e, t, c), read as (e, c, t)
        a = memory::desc({planes, c, t}, f32, tag::acb), b = memory::desc({planes, t, k}, f32, tag::abc);
        d = memory::desc({planes, c, k}, f32, tag::abc);
        break;
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, d), engine());
    if (is_reference_impl(pd)) return std::nullopt;
    return ProductEntry{dnnl::matmul(pd), a, b, d};
  });
}

void run_product(const ProductEntry& e, const float* a, const float* b, float* c) {
  e.prim.execute(stream(), {{DNNL_ARG_SRC, memory(e.a, engine(), const_cast<float*>(a))},
                            {DNNL_ARG_WEIGHTS, memory(e.b, engine(), const_cast<float*>(b))},
                            {DNNL_ARG_DST, memory(e.c, engine(), c)}});
  stream().wait();
}

// Per-thread scratch: the transformed input (or its gradient), the transformed weights (or their
// gradient), the products, and the transformed dy, which backward-weights may read after
// backward-data (LastGradient).
enum Slot : std::size_t { kInput, kWeights, kProducts, kGradient, kTransposed };
float* scratch(Slot slot, std::int64_t floats) {
  thread_local std::array<Scratch, 5> s;
  return static_cast<float*>(s[slot].get(static_cast<std::size_t>(floats) * sizeof(float)));
}
// What the kGradient slot holds on this thread: A dy Aᵀ of dy at `version` (0: nothing reusable)
// for the shape (m, n, p, q, k).
struct LastGradient {
  const float* dy = nullptr;
  std::uint64_t version = 0;
  std::array<std::int64_t, 5> shape{};
};
LastGradient& last_gradient() {
  thread_local LastGradient g;
  return g;
}

// u = G w Gᵀ: kept across calls by (w, Conv2DParams::weights_version) where a version is given
// (inference; a training step's forward and backward-data), else transformed into scratch.
template <int M>
const float* transformed_weights(const Conv2DParams& p, const float* w) {
  const std::int64_t floats = (M + 2) * (M + 2) * p.c * p.k;
  if (p.weights_version == 0) {
    float* u = scratch(kWeights, floats);
    transform_weights<M>(p, w, u);
    return u;
  }
  static const int kTransformed = 0;  // the kept-weights key of these copies (one per tile size)
  auto [kept, valid] = kept_weights(&kTransformed, sizeof(float) * floats, w, p.weights_version);
  if (!valid) transform_weights<M>(p, w, kept);
  return kept;
}

template <int M>
bool forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  constexpr int kA = M + 2;
  const Tiling tl = tiling_of(p, M);
  const ProductEntry* e = product(Product::forward, kA * kA, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* v = scratch(kInput, kA * kA * tl.t * p.c);
  float* m = scratch(kProducts, kA * kA * tl.t * p.k);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights<M>(p, w);
  transform_input<M>(p, tl, x, v, edge);
  run_product(*e, v, u, m);
  const float* bias = b != nullptr ? b : edge.zero.data();
#pragma omp parallel for schedule(static) if (parallel(tl.t * kA * kA * p.k))
  for (std::int64_t t = 0; t < tl.t; ++t)
    write_outputs<M>(p.relu, m + t * p.k, p.k, tl.t * p.k, bias,
                     output_window<M>(p, tl, t, y, edge.discard_row()));
  return true;
}

template <int M>
bool backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  constexpr int kA = M + 2;
  const Tiling tl = tiling_of(p, M);
  const ProductEntry* e = product(Product::backward_data, kA * kA, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* dm = scratch(kGradient, kA * kA * tl.t * p.k);
  float* dv = scratch(kProducts, kA * kA * tl.t * p.c);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights<M>(p, w);
  transform_gradient<M>(p, tl, dy, dm, edge);
  last_gradient() = {dy, p.dy_version, {M, p.n, p.p, p.q, p.k}};
  run_product(*e, dm, u, dv);
  // Each image's tiles add into its own pixels (overlapping windows), one image per iteration.
  const std::int64_t per_image = tl.th * tl.tw;
#pragma omp parallel for schedule(static) if (parallel(tl.t * kA * kA * p.c))
  for (std::int64_t n = 0; n < p.n; ++n) {
    float* image = dx + n * p.h * p.w * p.c;
    std::memset(image, 0, static_cast<std::size_t>(p.h * p.w * p.c) * sizeof(float));
    for (std::int64_t t = n * per_image; t < (n + 1) * per_image; ++t)
      input_gradient_tile<M>(dv + t * p.c, p.c, tl.t * p.c,
                             input_gradient_window<M>(p, tl, t, image, edge.discard_row()).data());
  }
  return true;
}

template <int M>
bool backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db) {
  constexpr int kA = M + 2;
  const Tiling tl = tiling_of(p, M);
  const ProductEntry* e = product(Product::backward_weights, kA * kA, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* v = scratch(kInput, kA * kA * tl.t * p.c);
  float* dm = scratch(kGradient, kA * kA * tl.t * p.k);
  float* du = scratch(kWeights, kA * kA * p.c * p.k);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  transform_input<M>(p, tl, x, v, edge);
  // dy as backward-data left it transformed when it is the same tensor at the same version.
  const LastGradient& g = last_gradient();
  const std::array<std::int64_t, 5> shape{M, p.n, p.p, p.q, p.k};
  const bool reuse = p.dy_version != 0 && g.dy == dy && g.version == p.dy_version && g.shape == shape;
  if (!reuse) {
    transform_gradient<M>(p, tl, dy, dm, edge);
    last_gradient() = {dy, p.dy_version, shape};
  }
  run_product(*e, v, dm, du);
#pragma omp parallel for schedule(static) if (parallel(9 * p.c * p.k))
  for (std::int64_t ci = 0; ci < p.c; ++ci) weight_gradient_row<M>(du, p.c, p.k, ci, dw);
  if (db != nullptr) column_sums_f32(p.n * p.p * p.q, p.k, dy, db);
  return true;
}

// ---- fused: block by block of images, each block's transforms and products in cache ----
//
// The batched path above writes every transform of the whole batch to memory and reads it back
// for the products; over 16 or 32 channels a product does only 16-32 multiply-adds per value it
// reads, so that traffic bounds it. Here each thread takes a block of whole images (about
// kBlockTiles tiles), transforms it into per-thread scratch, runs the α² products on it with the
// AVX-512 kernel below and transforms the results back before the next block.

constexpr std::int64_t kBlockTiles = 64;

// out[i][0, n) (+)= Σ_j a[i·ai + j·aj] · b[j·n + 0, n) for R rows i: R x 16·NB accumulators in
// registers, the sum over j in order (one rounding per multiply-add).
template <int R, int NB>
[[gnu::target("avx512f"), gnu::always_inline]] inline void product_tile(const float* a, std::int64_t ai,
                                                                        std::int64_t aj, const float* b,
                                                                        std::int64_t depth, std::int64_t n,
                                                                        float* out, bool accumulate) {
  __m512 acc[R][NB];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q)
      acc[r][q] = accumulate ? _mm512_loadu_ps(out + r * n + 16 * q) : _mm512_setzero_ps();
  for (std::int64_t j = 0; j < depth; ++j) {
    __m512 w[NB];
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q) w[q] = _mm512_loadu_ps(b + j * n + 16 * q);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 s = _mm512_set1_ps(a[r * ai + j * aj]);
#pragma GCC unroll 4
      for (int q = 0; q < NB; ++q) acc[r][q] = _mm512_fmadd_ps(s, w[q], acc[r][q]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < NB; ++q) _mm512_storeu_ps(out + r * n + 16 * q, acc[r][q]);
}

template <int R>
[[gnu::target("avx512f"), gnu::always_inline]] inline void product_rows_of(const float* a, std::int64_t ai,
                                                                           std::int64_t aj, const float* b,
                                                                           std::int64_t depth, std::int64_t n,
                                                                           float* out, bool accumulate) {
  std::int64_t k0 = 0;
  for (; k0 + 32 <= n; k0 += 32) product_tile<R, 2>(a, ai, aj, b + k0, depth, n, out + k0, accumulate);
  if (k0 < n) product_tile<R, 1>(a, ai, aj, b + k0, depth, n, out + k0, accumulate);
}

// out (rows x n, n a multiple of 16) (+)= A · b, A(i, j) = a[i·ai + j·aj], b depth x n.
[[gnu::target("avx512f")]] void product(const float* a, std::int64_t ai, std::int64_t aj, const float* b,
                                        std::int64_t depth, std::int64_t n, float* out, std::int64_t rows,
                                        bool accumulate) {
  std::int64_t i = 0;
  if (n == 16)  // one column of accumulators: 16 rows a block
    for (; i + 16 <= rows; i += 16)
      product_tile<16, 1>(a + i * ai, ai, aj, b, depth, n, out + i * n, accumulate);
  for (; i + 8 <= rows; i += 8) product_rows_of<8>(a + i * ai, ai, aj, b, depth, n, out + i * n, accumulate);
  for (; i < rows; ++i) product_rows_of<1>(a + i * ai, ai, aj, b, depth, n, out + i * n, accumulate);
}

bool avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

// Blocks of whole images: `images` a block, `tiles` its tiles (the last block may hold fewer).
struct Blocks {
  std::int64_t images, tiles, count;
  std::int64_t first_tile(std::int64_t i) const { return i * tiles; }
};
Blocks blocks_of(const Conv2DParams& p, const Tiling& tl) {
  const std::int64_t per_image = tl.th * tl.tw;
  const std::int64_t images = std::max<std::int64_t>(1, std::min(p.n, kBlockTiles / per_image));
  return {images, images * per_image, (p.n + images - 1) / images};
}

template <int M>
bool fused_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  constexpr int kA = M + 2;
  const Tiling tl = tiling_of(p, M);
  const Blocks bl = blocks_of(p, tl);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights<M>(p, w);
  const float* bias = b != nullptr ? b : edge.zero.data();
#pragma omp parallel for schedule(static) if (bl.count > 1)
  for (std::int64_t i = 0; i < bl.count; ++i) {
    const std::int64_t t0 = bl.first_tile(i), tiles = std::min(bl.tiles, tl.t - t0);
    float* v = scratch(kInput, kA * kA * bl.tiles * p.c);
    float* m = scratch(kProducts, kA * kA * bl.tiles * p.k);
    for (std::int64_t t = 0; t < tiles; ++t)
      input_tile<M>(input_window<M>(p, tl, t0 + t, x, edge.zero.data()).data(), p.c, tiles * p.c,
                    v + t * p.c);
    for (int e = 0; e < kA * kA; ++e)
      product(v + e * tiles * p.c, p.c, 1, u + e * p.c * p.k, p.c, p.k, m + e * tiles * p.k, tiles, false);
    for (std::int64_t t = 0; t < tiles; ++t)
      write_outputs<M>(p.relu, m + t * p.k, p.k, tiles * p.k, bias,
                       output_window<M>(p, tl, t0 + t, y, edge.discard_row()));
  }
  return true;
}

template <int M>
bool fused_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  constexpr int kA = M + 2;
  last_gradient() = {};  // this thread's kGradient slot is rewritten below
  const Tiling tl = tiling_of(p, M);
  const Blocks bl = blocks_of(p, tl);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights<M>(p, w);
  // uᵀ per position: (e, k, c), the products' right operand.
  float* ut = scratch(kTransposed, kA * kA * p.c * p.k);
  for (int e = 0; e < kA * kA; ++e)
    for (std::int64_t c = 0; c < p.c; ++c)
      for (std::int64_t k = 0; k < p.k; ++k) ut[(e * p.k + k) * p.c + c] = u[(e * p.c + c) * p.k + k];
  const std::int64_t per_image = tl.th * tl.tw;
#pragma omp parallel for schedule(static) if (bl.count > 1)
  for (std::int64_t i = 0; i < bl.count; ++i) {
    const std::int64_t t0 = bl.first_tile(i), tiles = std::min(bl.tiles, tl.t - t0);
    float* dm = scratch(kGradient, kA * kA * bl.tiles * p.k);
    float* dv = scratch(kProducts, kA * kA * bl.tiles * p.c);
    for (std::int64_t t = 0; t < tiles; ++t)
      gradient_tile<M>(gradient_window<M>(p, tl, t0 + t, dy, edge.zero.data()).data(), p.k, tiles * p.k,
                       dm + t * p.k);
    for (int e = 0; e < kA * kA; ++e)
      product(dm + e * tiles * p.k, p.k, 1, ut + e * p.k * p.c, p.k, p.c, dv + e * tiles * p.c, tiles, false);
    // The block's images, each written only here (their tiles' windows overlap within an image).
    const std::int64_t n0 = t0 / per_image, images = tiles / per_image;
    std::memset(dx + n0 * p.h * p.w * p.c, 0,
                static_cast<std::size_t>(images * p.h * p.w * p.c) * sizeof(float));
    for (std::int64_t t = 0; t < tiles; ++t) {
      float* image = dx + (n0 + t / per_image) * p.h * p.w * p.c;
      input_gradient_tile<M>(dv + t * p.c, p.c, tiles * p.c,
                             input_gradient_window<M>(p, tl, t0 + t, image, edge.discard_row()).data());
    }
  }
  return true;
}

template <int M>
bool fused_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db) {
  constexpr int kA = M + 2;
  last_gradient() = {};  // this thread's kGradient slot is rewritten below
  const Tiling tl = tiling_of(p, M);
  const Blocks bl = blocks_of(p, tl);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  // du per thread, added in thread order after the loop (the same bits for the same thread count).
  const int threads = omp_get_max_threads();
  const std::int64_t size = kA * kA * p.c * p.k;
  float* partial = scratch(kWeights, threads * size);
  std::fill(partial, partial + threads * size, 0.0f);
#pragma omp parallel for schedule(static) if (bl.count > 1)
  for (std::int64_t i = 0; i < bl.count; ++i) {
    const std::int64_t t0 = bl.first_tile(i), tiles = std::min(bl.tiles, tl.t - t0);
    float* v = scratch(kInput, kA * kA * bl.tiles * p.c);
    float* dm = scratch(kGradient, kA * kA * bl.tiles * p.k);
    float* du = partial + omp_get_thread_num() * size;
    for (std::int64_t t = 0; t < tiles; ++t) {
      input_tile<M>(input_window<M>(p, tl, t0 + t, x, edge.zero.data()).data(), p.c, tiles * p.c,
                    v + t * p.c);
      gradient_tile<M>(gradient_window<M>(p, tl, t0 + t, dy, edge.zero.data()).data(), p.k, tiles * p.k,
                       dm + t * p.k);
    }
    for (int e = 0; e < kA * kA; ++e)
      product(v + e * tiles * p.c, 1, p.c, dm + e * tiles * p.k, tiles, p.k, du + e * p.c * p.k, p.c, true);
  }
  for (int th = 1; th < threads; ++th)
    for (std::int64_t j = 0; j < size; ++j) partial[j] += partial[th * size + j];
#pragma omp parallel for schedule(static) if (parallel(9 * p.c * p.k))
  for (std::int64_t ci = 0; ci < p.c; ++ci) weight_gradient_row<M>(partial, p.c, p.k, ci, dw);
  if (db != nullptr) column_sums_f32(p.n * p.p * p.q, p.k, dy, db);
  return true;
}

bool rule(int m, const Conv2DParams& p) { return m == 2 ? own_winograd_f2(p) : own_winograd_f4(p); }

}  // namespace

bool own_winograd_forward(int m, const Conv2DParams& p, const float* x, const float* w, const float* b,
                          float* y, bool by_rule) {
  if (by_rule ? !rule(m, p) : !applies(p) || p.residual != nullptr) return false;
  return m == 2 ? forward<2>(p, x, w, b, y) : forward<4>(p, x, w, b, y);
}

bool own_winograd_backward_data(int m, const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                bool by_rule) {
  if (by_rule ? !rule(m, p) : !applies(p)) return false;
  return m == 2 ? backward_data<2>(p, dy, w, dx) : backward_data<4>(p, dy, w, dx);
}

bool own_winograd_backward_weights(int m, const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                   float* db, bool by_rule) {
  if (by_rule ? !rule(m, p) : !applies(p)) return false;
  return m == 2 ? backward_weights<2>(p, x, dy, dw, db) : backward_weights<4>(p, x, dy, dw, db);
}

bool own_winograd_fused(const Conv2DParams& p) { return f4_shape(p) && p.c < 64 && p.k < 64 && avx512(); }

bool own_winograd_fused_weights(const Conv2DParams& p) {
  return own_winograd_fused(p) && p.c >= 32 && p.k >= 32;
}

namespace {
// Outside the rule: wherever the transforms apply and the kernel runs (channels in 16s).
bool fused_applies(const Conv2DParams& p) { return applies(p) && avx512() && p.c % 16 == 0 && p.k % 16 == 0; }
}  // namespace

bool own_winograd_fused_forward(const Conv2DParams& p, const float* x, const float* w, const float* b,
                                float* y, bool by_rule) {
  if (by_rule ? !own_winograd_fused(p) : !fused_applies(p) || p.residual != nullptr) return false;
  return fused_forward<4>(p, x, w, b, y);
}

bool own_winograd_fused_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                      bool by_rule) {
  if (by_rule ? !own_winograd_fused(p) : !fused_applies(p)) return false;
  return fused_backward_data<4>(p, dy, w, dx);
}

bool own_winograd_fused_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                         float* db, bool by_rule) {
  if (by_rule ? !own_winograd_fused_weights(p) : !fused_applies(p)) return false;
  return fused_backward_weights<4>(p, x, dy, dw, db);
}

}  // namespace reskit::kernels::onednn
