// Winograd F(2x2, 3x3) for float32 (winograd_f2.h): the transforms, one tile (or one row of
// weights) at a time across the channels, and the batched products through oneDNN's matmul.
#include "kernels/cpu/winograd_f2.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::onednn {

namespace {

// 3x3, stride 1, padding 1 on every side, output the input's size: where the transforms below apply.
bool applies(const Conv2DParams& p) {
  return p.r == 3 && p.s == 3 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 1 && p.pad_left == 1 &&
         p.pad_bottom == 1 && p.pad_right == 1 && p.p == p.h && p.q == p.w && p.n > 0 && p.c > 0 && p.k > 0;
}

// The tiles of 2x2 outputs: th x tw per image (the last row or column partial where P or Q is odd),
// t over the batch, numbered (image, tile row, tile column).
struct Tiling {
  std::int64_t th, tw, t;
};
Tiling tiling_of(const Conv2DParams& p) {
  const std::int64_t th = (p.p + 1) / 2, tw = (p.q + 1) / 2;
  return {th, tw, p.n * th * tw};
}

}  // namespace

bool winograd_f2(const Conv2DParams& p) {
  return applies(p) && p.p == 4 && p.q == 4 && p.n >= 4 && p.residual == nullptr;
}

namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RESKIT_AVX512_CLONE __attribute__((target_clones("avx512f", "default")))
#else
#define RESKIT_AVX512_CLONE
#endif

// ---- the transforms: each over one run of channels, a vector loop; e = 4·i + j indexes the 4x4
// transformed tile, whose 16 planes lie `plane` floats apart ----

// u[e][ci][·] = (G g Gᵀ)[e] for the kernels g = w[·, ·, ci, ·] of one input channel (w HWIO).
RESKIT_AVX512_CLONE void weights_row(const float* __restrict w, std::int64_t c, std::int64_t k,
                                     std::int64_t ci, float* __restrict u) {
  const std::int64_t tap = c * k, plane = c * k;
  const float* __restrict g0 = w + ci * k;
  float* __restrict u0 = u + ci * k;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float g[3][3], t[4][3];
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s) g[r][s] = g0[(r * 3 + s) * tap + j];
    for (int s = 0; s < 3; ++s) {
      t[0][s] = g[0][s];
      t[1][s] = 0.5f * (g[0][s] + g[1][s] + g[2][s]);
      t[2][s] = 0.5f * (g[0][s] - g[1][s] + g[2][s]);
      t[3][s] = g[2][s];
    }
    for (int i = 0; i < 4; ++i) {
      u0[(i * 4 + 0) * plane + j] = t[i][0];
      u0[(i * 4 + 1) * plane + j] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
      u0[(i * 4 + 2) * plane + j] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
      u0[(i * 4 + 3) * plane + j] = t[i][2];
    }
  }
}

// dw[·, ·, ci, ·] = Gᵀ du G, the inverse for the weight gradient.
RESKIT_AVX512_CLONE void weight_gradient_row(const float* __restrict du, std::int64_t c, std::int64_t k,
                                             std::int64_t ci, float* __restrict dw) {
  const std::int64_t tap = c * k, plane = c * k;
  const float* __restrict u0 = du + ci * k;
  float* __restrict g0 = dw + ci * k;
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float m[4][4], a[3][4];
    for (int e = 0; e < 16; ++e) m[e / 4][e % 4] = u0[e * plane + j];
    for (int s = 0; s < 4; ++s) {
      a[0][s] = m[0][s] + 0.5f * (m[1][s] + m[2][s]);
      a[1][s] = 0.5f * (m[1][s] - m[2][s]);
      a[2][s] = 0.5f * (m[1][s] + m[2][s]) + m[3][s];
    }
    for (int r = 0; r < 3; ++r) {
      g0[(r * 3 + 0) * tap + j] = a[r][0] + 0.5f * (a[r][1] + a[r][2]);
      g0[(r * 3 + 1) * tap + j] = 0.5f * (a[r][1] - a[r][2]);
      g0[(r * 3 + 2) * tap + j] = 0.5f * (a[r][1] + a[r][2]) + a[r][3];
    }
  }
}

// v[e][·] = (Bᵀ d B)[e] for one tile, d's 16 pixels given as rows of c channels.
RESKIT_AVX512_CLONE void input_tile(const float* const* rows, std::int64_t c, std::int64_t plane,
                                    float* __restrict v) {
#pragma omp simd
  for (std::int64_t ci = 0; ci < c; ++ci) {
    float d[4][4], b[4][4];
    for (int e = 0; e < 16; ++e) d[e / 4][e % 4] = rows[e][ci];
    for (int j = 0; j < 4; ++j) {
      b[0][j] = d[0][j] - d[2][j];
      b[1][j] = d[1][j] + d[2][j];
      b[2][j] = d[2][j] - d[1][j];
      b[3][j] = d[1][j] - d[3][j];
    }
    for (int i = 0; i < 4; ++i) {
      v[(i * 4 + 0) * plane + ci] = b[i][0] - b[i][2];
      v[(i * 4 + 1) * plane + ci] = b[i][1] + b[i][2];
      v[(i * 4 + 2) * plane + ci] = b[i][2] - b[i][1];
      v[(i * 4 + 3) * plane + ci] = b[i][1] - b[i][3];
    }
  }
}

// The four outputs of one tile, Aᵀ m A + bias, then max(0, ·) when Relu.
template <bool Relu>
RESKIT_AVX512_CLONE void output_tile(const float* __restrict m, std::int64_t k, std::int64_t plane,
                                     const float* __restrict bias, float* const* out) {
  float* __restrict y00 = out[0];
  float* __restrict y01 = out[1];
  float* __restrict y10 = out[2];
  float* __restrict y11 = out[3];
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    float t[4][4], a[2][4];
    for (int e = 0; e < 16; ++e) t[e / 4][e % 4] = m[e * plane + j];
    for (int s = 0; s < 4; ++s) {
      a[0][s] = t[0][s] + t[1][s] + t[2][s];
      a[1][s] = t[1][s] - t[2][s] - t[3][s];
    }
    float o[4] = {a[0][0] + a[0][1] + a[0][2] + bias[j], a[0][1] - a[0][2] - a[0][3] + bias[j],
                  a[1][0] + a[1][1] + a[1][2] + bias[j], a[1][1] - a[1][2] - a[1][3] + bias[j]};
    if constexpr (Relu)
      for (float& v : o) v = v < 0.0f ? 0.0f : v;  // max(0, v) that keeps a NaN
    y00[j] = o[0], y01[j] = o[1], y10[j] = o[2], y11[j] = o[3];
  }
}

// dm[e][·] = (A dy Aᵀ)[e] for one tile, dy's four pixels given as rows of k channels.
RESKIT_AVX512_CLONE void gradient_tile(const float* const* rows, std::int64_t k, std::int64_t plane,
                                       float* __restrict dm) {
  const float* __restrict r00 = rows[0];
  const float* __restrict r01 = rows[1];
  const float* __restrict r10 = rows[2];
  const float* __restrict r11 = rows[3];
#pragma omp simd
  for (std::int64_t j = 0; j < k; ++j) {
    const float y[2][2] = {{r00[j], r01[j]}, {r10[j], r11[j]}};
    float a[4][2];
    for (int s = 0; s < 2; ++s) {
      a[0][s] = y[0][s];
      a[1][s] = y[0][s] + y[1][s];
      a[2][s] = y[0][s] - y[1][s];
      a[3][s] = -y[1][s];
    }
    for (int i = 0; i < 4; ++i) {
      dm[(i * 4 + 0) * plane + j] = a[i][0];
      dm[(i * 4 + 1) * plane + j] = a[i][0] + a[i][1];
      dm[(i * 4 + 2) * plane + j] = a[i][0] - a[i][1];
      dm[(i * 4 + 3) * plane + j] = -a[i][1];
    }
  }
}

// out[e] += (B dv Bᵀ)[e] for one tile: its 16 input pixels' share of dx (distinct rows).
RESKIT_AVX512_CLONE void input_gradient_tile(const float* __restrict dv, std::int64_t c, std::int64_t plane,
                                             float* const* out) {
#pragma omp simd
  for (std::int64_t ci = 0; ci < c; ++ci) {
    float m[4][4], b[4][4];
    for (int e = 0; e < 16; ++e) m[e / 4][e % 4] = dv[e * plane + ci];
    for (int j = 0; j < 4; ++j) {
      b[0][j] = m[0][j];
      b[1][j] = m[1][j] - m[2][j] + m[3][j];
      b[2][j] = m[1][j] + m[2][j] - m[0][j];
      b[3][j] = -m[3][j];
    }
    for (int i = 0; i < 4; ++i) {
      out[i * 4 + 0][ci] += b[i][0];
      out[i * 4 + 1][ci] += b[i][1] - b[i][2] + b[i][3];
      out[i * 4 + 2][ci] += b[i][1] + b[i][2] - b[i][0];
      out[i * 4 + 3][ci] -= b[i][3];
    }
  }
}

// ---- the loops over tiles and channels ----

// Whether a loop of `work` values is worth a parallel region.
bool parallel(std::int64_t work) { return work > kParallelGrain; }

// Per-thread rows: a row of zeros (padding, outputs past an odd P or Q read as zero) and a row
// that absorbs writes to pixels past an odd P or Q; one row each of `width` floats per thread.
struct EdgeRows {
  std::vector<float> zero, discard;
  std::int64_t width;
  EdgeRows(std::int64_t width, int threads)
      : zero(static_cast<std::size_t>(width)),
        discard(static_cast<std::size_t>(width * threads)),
        width(width) {}
  float* discard_row() { return discard.data() + omp_get_thread_num() * width; }
};

// u = G w Gᵀ for every (c, k): 16 planes of (c, k).
void transform_weights(const Conv2DParams& p, const float* w, float* u) {
#pragma omp parallel for schedule(static) if (parallel(9 * p.c * p.k))
  for (std::int64_t ci = 0; ci < p.c; ++ci) weights_row(w, p.c, p.k, ci, u);
}

// v = Bᵀ d B for every tile: 16 planes of (t, c).
void transform_input(const Conv2DParams& p, const Tiling& tl, const float* x, float* v, EdgeRows& edge) {
#pragma omp parallel for schedule(static) if (parallel(tl.t * 16 * p.c))
  for (std::int64_t t = 0; t < tl.t; ++t) {
    const std::int64_t n = t / (tl.th * tl.tw), i0 = (t / tl.tw) % tl.th * 2 - 1, j0 = t % tl.tw * 2 - 1;
    std::array<const float*, 16> rows;
    for (int e = 0; e < 16; ++e) {
      const std::int64_t a = i0 + e / 4, b = j0 + e % 4;
      rows[e] =
          a >= 0 && a < p.h && b >= 0 && b < p.w ? x + ((n * p.h + a) * p.w + b) * p.c : edge.zero.data();
    }
    input_tile(rows.data(), p.c, tl.t * p.c, v + t * p.c);
  }
}

// dm = A dy Aᵀ for every tile: 16 planes of (t, k).
void transform_gradient(const Conv2DParams& p, const Tiling& tl, const float* dy, float* dm, EdgeRows& edge) {
#pragma omp parallel for schedule(static) if (parallel(tl.t * 16 * p.k))
  for (std::int64_t t = 0; t < tl.t; ++t) {
    const std::int64_t n = t / (tl.th * tl.tw), i0 = (t / tl.tw) % tl.th * 2, j0 = t % tl.tw * 2;
    std::array<const float*, 4> rows;
    for (int e = 0; e < 4; ++e) {
      const std::int64_t a = i0 + e / 2, b = j0 + e % 2;
      rows[e] = a < p.p && b < p.q ? dy + ((n * p.p + a) * p.q + b) * p.k : edge.zero.data();
    }
    gradient_tile(rows.data(), p.k, tl.t * p.k, dm + t * p.k);
  }
}

// The batched product of one pass: 16 matmuls, one per position e of the transformed tile.
//   forward           m[e]  (t x k) = v[e] (t x c) · u[e] (c x k)
//   backward-data     dv[e] (t x c) = dm[e] (t x k) · u[e]ᵀ
//   backward-weights  du[e] (c x k) = v[e]ᵀ · dm[e] (t x k)
enum class Product : std::int64_t { forward, backward_data, backward_weights };
struct ProductEntry {
  dnnl::matmul prim;
  memory::desc a, b, c;
};
using ProductKey = std::array<std::int64_t, 5>;

const ProductEntry* product(Product which, std::int64_t t, std::int64_t c, std::int64_t k) {
  const ProductKey key{static_cast<std::int64_t>(which), t, c, k, omp_get_max_threads()};
  return cached<ProductEntry>(key, [&]() -> std::optional<ProductEntry> {
    memory::desc a, b, d;
    switch (which) {
      case Product::forward:
        a = memory::desc({16, t, c}, f32, tag::abc), b = memory::desc({16, c, k}, f32, tag::abc);
        d = memory::desc({16, t, k}, f32, tag::abc);
        break;
      case Product::backward_data:  // u stored (e, c, k), read as (e, k, c)
        a = memory::desc({16, t, k}, f32, tag::abc), b = memory::desc({16, k, c}, f32, tag::acb);
        d = memory::desc({16, t, c}, f32, tag::abc);
        break;
      case Product::backward_weights:  // v stored (e, t, c), read as (e, c, t)
        a = memory::desc({16, c, t}, f32, tag::acb), b = memory::desc({16, t, k}, f32, tag::abc);
        d = memory::desc({16, c, k}, f32, tag::abc);
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
enum Slot : std::size_t { kInput, kWeights, kProducts, kGradient };
float* scratch(Slot slot, std::int64_t floats) {
  thread_local std::array<Scratch, 4> s;
  return static_cast<float*>(s[slot].get(static_cast<std::size_t>(floats) * sizeof(float)));
}
// What the kGradient slot holds on this thread: A dy Aᵀ of dy at `version` (0: nothing
// reusable) for the shape (n, p, q, k).
struct LastGradient {
  const float* dy = nullptr;
  std::uint64_t version = 0;
  std::array<std::int64_t, 4> shape{};
};
LastGradient& last_gradient() {
  thread_local LastGradient g;
  return g;
}

// u = G w Gᵀ: kept across calls by (w, Conv2DParams::weights_version) where a version is given
// (inference; a training step's forward and backward-data), else transformed into scratch.
const float* transformed_weights(const Conv2DParams& p, const float* w) {
  const std::int64_t floats = 16 * p.c * p.k;
  if (p.weights_version == 0) {
    float* u = scratch(kWeights, floats);
    transform_weights(p, w, u);
    return u;
  }
  static const int kTransformed = 0;  // the kept-weights key of these copies
  auto [kept, valid] = kept_weights(&kTransformed, sizeof(float) * floats, w, p.weights_version);
  if (!valid) transform_weights(p, w, kept);
  return kept;
}

}  // namespace

bool winograd_f2_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                         bool by_rule) {
  if (by_rule ? !winograd_f2(p) : !applies(p) || p.residual != nullptr) return false;
  const Tiling tl = tiling_of(p);
  const ProductEntry* e = product(Product::forward, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* v = scratch(kInput, 16 * tl.t * p.c);
  float* m = scratch(kProducts, 16 * tl.t * p.k);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights(p, w);
  transform_input(p, tl, x, v, edge);
  run_product(*e, v, u, m);
  const float* bias = b != nullptr ? b : edge.zero.data();
#pragma omp parallel for schedule(static) if (parallel(tl.t * 16 * p.k))
  for (std::int64_t t = 0; t < tl.t; ++t) {
    const std::int64_t n = t / (tl.th * tl.tw), i0 = (t / tl.tw) % tl.th * 2, j0 = t % tl.tw * 2;
    std::array<float*, 4> out;
    for (int o = 0; o < 4; ++o) {
      const std::int64_t a = i0 + o / 2, c = j0 + o % 2;
      out[o] = a < p.p && c < p.q ? y + ((n * p.p + a) * p.q + c) * p.k : edge.discard_row();
    }
    if (p.relu)
      output_tile<true>(m + t * p.k, p.k, tl.t * p.k, bias, out.data());
    else
      output_tile<false>(m + t * p.k, p.k, tl.t * p.k, bias, out.data());
  }
  return true;
}

bool winograd_f2_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                               bool by_rule) {
  if (by_rule ? !winograd_f2(p) : !applies(p)) return false;
  const Tiling tl = tiling_of(p);
  const ProductEntry* e = product(Product::backward_data, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* dm = scratch(kGradient, 16 * tl.t * p.k);
  float* dv = scratch(kProducts, 16 * tl.t * p.c);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  const float* u = transformed_weights(p, w);
  transform_gradient(p, tl, dy, dm, edge);
  last_gradient() = {dy, p.dy_version, {p.n, p.p, p.q, p.k}};
  run_product(*e, dm, u, dv);
  // Each image's tiles add into its own pixels (overlapping windows), one image per iteration.
  const std::int64_t per_image = tl.th * tl.tw;
#pragma omp parallel for schedule(static) if (parallel(tl.t * 16 * p.c))
  for (std::int64_t n = 0; n < p.n; ++n) {
    float* image = dx + n * p.h * p.w * p.c;
    std::memset(image, 0, static_cast<std::size_t>(p.h * p.w * p.c) * sizeof(float));
    for (std::int64_t t = n * per_image; t < (n + 1) * per_image; ++t) {
      const std::int64_t i0 = (t / tl.tw) % tl.th * 2 - 1, j0 = t % tl.tw * 2 - 1;
      std::array<float*, 16> out;
      for (int o = 0; o < 16; ++o) {
        const std::int64_t a = i0 + o / 4, b = j0 + o % 4;
        out[o] = a >= 0 && a < p.h && b >= 0 && b < p.w ? image + (a * p.w + b) * p.c : edge.discard_row();
      }
      input_gradient_tile(dv + t * p.c, p.c, tl.t * p.c, out.data());
    }
  }
  return true;
}

bool winograd_f2_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                  float* db, bool by_rule) {
  if (by_rule ? !winograd_f2(p) : !applies(p)) return false;
  const Tiling tl = tiling_of(p);
  const ProductEntry* e = product(Product::backward_weights, tl.t, p.c, p.k);
  if (e == nullptr) return false;
  float* v = scratch(kInput, 16 * tl.t * p.c);
  float* dm = scratch(kGradient, 16 * tl.t * p.k);
  float* du = scratch(kWeights, 16 * p.c * p.k);
  EdgeRows edge(std::max(p.c, p.k), omp_get_max_threads());
  transform_input(p, tl, x, v, edge);
  // dy as backward-data left it transformed when it is the same tensor at the same version.
  const LastGradient& g = last_gradient();
  const bool reuse = p.dy_version != 0 && g.dy == dy && g.version == p.dy_version &&
                     g.shape == std::array<std::int64_t, 4>{p.n, p.p, p.q, p.k};
  if (!reuse) {
    transform_gradient(p, tl, dy, dm, edge);
    last_gradient() = {dy, p.dy_version, {p.n, p.p, p.q, p.k}};
  }
  run_product(*e, v, dm, du);
#pragma omp parallel for schedule(static) if (parallel(9 * p.c * p.k))
  for (std::int64_t ci = 0; ci < p.c; ++ci) weight_gradient_row(du, p.c, p.k, ci, dw);
  if (db != nullptr) column_sums_f32(p.n * p.p * p.q, p.k, dy, db);
  return true;
}

}  // namespace reskit::kernels::onednn
