// 1×1 convolutions as oneDNN matmuls (onednn_pointwise.h).
//
// A 1×1 convolution without padding is a product over pixels: with the M = N·P·Q output pixels as
// rows, y[M,K] = x[M,C]·w[C,K] + b, dx[M,C] = dy·wᵀ and dw[C,K] = xᵀ·dy, and Keras's HWIO
// weights are that [C,K] matrix as they lie. oneDNN 2.6's matmul (brg:avx512_core) runs these
// products with no weight reorder in any pass. A strided one first gathers the pixels it reads
// (backward-data scatters them back into a zeroed dx). Which shapes come here, and why:
// kernels/dispatch.cpp.
#include "kernels/cpu/onednn_pointwise.h"

#include <cstring>
#include <optional>
#include <type_traits>
#include <unordered_map>

#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::onednn {

namespace {

bool is_strided(const Conv2DParams& p) { return p.stride_h != 1 || p.stride_w != 1; }

struct Matmul {
  dnnl::matmul prim;
  memory::desc a, b, c, bias;
};
// c[m,n] = a[m,k]·b[k,n] (+ bias[n]) (+ r[m,n], residual) (then max(0, ·)), each operand
// row-major or, transposed, column-major over the caller's buffer. in_bf16: a and b in bfloat16;
// c, bias and r stay float32, or c in bfloat16 (out_bf16: Conv2DParams::y_bf16 or dx_bf16).
std::optional<Matmul> make_matmul(std::int64_t m, std::int64_t k, std::int64_t n, bool a_transposed,
                                  bool b_transposed, bool with_bias, bool relu, bool in_bf16,
                                  bool residual = false, bool out_bf16 = false) {
  Matmul mm;
  const auto operands = in_bf16 ? bf16 : f32;
  mm.a = memory::desc({m, k}, operands, a_transposed ? tag::ba : tag::ab);
  mm.b = memory::desc({k, n}, operands, b_transposed ? tag::ba : tag::ab);
  mm.c = memory::desc({m, n}, out_bf16 ? bf16 : f32, tag::ab);
  mm.bias = memory::desc({1, n}, f32, tag::ab);
  const dnnl::primitive_attr attr = forward_epilogue(mm.c, residual, relu);
  const auto desc =
      with_bias ? dnnl::matmul::desc(mm.a, mm.b, mm.bias, mm.c) : dnnl::matmul::desc(mm.a, mm.b, mm.c);
  const dnnl::matmul::primitive_desc pd(desc, attr, engine());
  if (is_reference_impl(pd) || (residual && !adds_residual_correctly(pd))) return std::nullopt;
  mm.prim = dnnl::matmul(pd);
  return mm;
}

// One cache per pass and operand precision (and, OutBf16, bfloat16 results).
template <bool InBf16, bool OutBf16 = false>
struct PointwiseForward : Matmul {};
template <bool InBf16, bool OutBf16 = false>
struct PointwiseBackwardData : Matmul {};
template <bool InBf16>
struct PointwiseBackwardWeights : Matmul {};

Scratch& pointwise_scratch() {
  thread_local Scratch s;
  return s;
}

// dy as the products' operand: dy itself, or (InBf16) dy_in_bf16.
template <bool InBf16>
const Operand<InBf16>* dy_operand(const Conv2DParams& p, const float* dy) {
  if constexpr (InBf16) {
    return dy_in_bf16(p, dy);
  } else {
    return dy;
  }
}
// The weights as the products' operand (bf16_weights for mixed precision).
template <bool InBf16>
const Operand<InBf16>* weights_operand(const Conv2DParams& p, const float* w) {
  if constexpr (InBf16) {
    return bf16_weights(p, w);
  } else {
    return w;
  }
}

// The pixels a strided 1×1 convolution reads, x[n, i·stride_h, j·stride_w, :], as rows [N·P·Q, C]
// (E: float32 or bfloat16 bits).
template <class E>
const E* gathered(const Conv2DParams& p, const E* x) {
  if (!is_strided(p)) return x;
  auto* out = static_cast<E*>(pointwise_scratch().get(sizeof(E) * p.n * p.p * p.q * p.c));
#pragma omp parallel for collapse(2) schedule(static) if (p.n * p.p * p.q * p.c > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n) {
    for (std::int64_t i = 0; i < p.p; ++i) {
      for (std::int64_t j = 0; j < p.q; ++j) {
        const E* from = x + ((n * p.h + i * p.stride_h) * p.w + j * p.stride_w) * p.c;
        std::memcpy(out + ((n * p.p + i) * p.q + j) * p.c, from, sizeof(E) * p.c);
      }
    }
  }
  return out;
}

// The rows [N·P·Q, C] of a 1×1 convolution's x as the products' operand: in mixed precision
// gathered from the caller's rounded copy when there is one, else gathered and converted.
template <bool InBf16>
const Operand<InBf16>* x_operand(const Conv2DParams& p, const float* x) {
  if constexpr (InBf16) {
    if (p.x_bf16 != nullptr) return gathered(p, p.x_bf16);
    return bf16_copy(gathered(p, x), p.n * p.p * p.q * p.c, 0);
  } else {
    return gathered(p, x);
  }
}

// dx zeroed, then rows [N·P·Q, C] written where a strided 1×1 convolution read them (E: float32
// or bfloat16 bits; zero is all bits clear in both).
template <class E>
void scatter(const Conv2DParams& p, const E* rows, E* dx) {
  const std::int64_t image = p.h * p.w * p.c;
#pragma omp parallel for schedule(static) if (p.n * image > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n) std::memset(dx + n * image, 0, sizeof(E) * image);
#pragma omp parallel for collapse(2) schedule(static) if (p.n * p.p * p.q * p.c > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n) {
    for (std::int64_t i = 0; i < p.p; ++i) {
      for (std::int64_t j = 0; j < p.q; ++j) {
        E* to = dx + ((n * p.h + i * p.stride_h) * p.w + j * p.stride_w) * p.c;
        std::memcpy(to, rows + ((n * p.p + i) * p.q + j) * p.c, sizeof(E) * p.c);
      }
    }
  }
}

void run_matmul(const Matmul& mm, const void* a, const void* b, const float* bias, void* c,
                const void* residual = nullptr) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(mm.a, engine(), const_cast<void*>(a))},
                                       {DNNL_ARG_WEIGHTS, memory(mm.b, engine(), const_cast<void*>(b))},
                                       {DNNL_ARG_DST, memory(mm.c, engine(), c)}};
  if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, memory(mm.bias, engine(), const_cast<float*>(bias)));
  add_residual_arg(args, mm.c, residual);
  mm.prim.execute(stream(), args);
  stream().wait();
}

// OutBf16: y as bfloat16 into Conv2DParams::y_bf16.
template <bool InBf16, bool OutBf16 = false>
bool forward_products(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  const std::int64_t m = p.n * p.p * p.q;
  const auto* e = cached<PointwiseForward<InBf16, OutBf16>>(conv_key(p, b != nullptr), [&] {
    return as_entry<PointwiseForward<InBf16, OutBf16>>(
        make_matmul(m, p.c, p.k, false, false, b != nullptr, p.relu, InBf16, p.residual != nullptr, OutBf16));
  });
  if (!e) return false;
  void* out = y;
  if constexpr (OutBf16) out = p.y_bf16;
  run_matmul(*e, x_operand<InBf16>(p, x), weights_operand<InBf16>(p, w), b, out, p.residual);
  return true;
}

// dx (null: not wanted) and dw with db (null: not wanted); both share dy's conversion. Returns
// false, having written nothing, when a product has no fast primitive. OutBf16: dx as bfloat16
// into Conv2DParams::dx_bf16.
template <bool InBf16, bool OutBf16 = false>
bool backward_products(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                       float* dw, float* db) {
  const std::int64_t m = p.n * p.p * p.q;
  const Matmul* ed = nullptr;
  const Matmul* ew = nullptr;
  if (dx != nullptr) {
    ed = cached<PointwiseBackwardData<InBf16, OutBf16>>(conv_key(p, false), [&] {
      return as_entry<PointwiseBackwardData<InBf16, OutBf16>>(
          make_matmul(m, p.k, p.c, false, true, false, false, InBf16, false, OutBf16));
    });
    if (!ed) return false;
  }
  if (dw != nullptr) {
    ew = cached<PointwiseBackwardWeights<InBf16>>(conv_key(p, false), [&] {
      return as_entry<PointwiseBackwardWeights<InBf16>>(
          make_matmul(p.c, m, p.k, true, false, false, false, InBf16));
    });
    if (!ew) return false;
  }
  const void* dy_op = dy_operand<InBf16>(p, dy);
  if (ed) {
    const void* w_op = weights_operand<InBf16>(p, w);
    using E = std::conditional_t<OutBf16, std::uint16_t, float>;
    E* out = nullptr;
    if constexpr (OutBf16) {
      out = p.dx_bf16;
    } else {
      out = dx;
    }
    if (!is_strided(p)) {
      run_matmul(*ed, dy_op, w_op, nullptr, out);
    } else {
      auto* rows = static_cast<E*>(pointwise_scratch().get(sizeof(E) * m * p.c));
      run_matmul(*ed, dy_op, w_op, nullptr, rows);
      scatter(p, rows, out);
    }
  }
  if (ew) {
    run_matmul(*ew, x_operand<InBf16>(p, x), dy_op, nullptr, dw);
    if (db != nullptr) {
      if constexpr (InBf16) {
        column_sums_f32(m, p.k, static_cast<const std::uint16_t*>(dy_op), db);  // db of the rounded dy
      } else {
        column_sums_f32(m, p.k, dy, db);
      }
    }
  }
  return true;
}

}  // namespace

bool pointwise_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  return forward_products<false>(p, x, w, b, y);
}
bool pointwise_backward(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                        float* dw, float* db) {
  return backward_products<false>(p, x, dy, w, dx, dw, db);
}
bool pointwise_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  if (p.y_bf16 != nullptr) return forward_products<true, true>(p, x, w, b, y);
  return forward_products<true>(p, x, w, b, y);
}
bool pointwise_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w,
                             float* dx, float* dw, float* db) {
  if (dx != nullptr && p.dx_bf16 != nullptr) return backward_products<true, true>(p, x, dy, w, dx, dw, db);
  return backward_products<true>(p, x, dy, w, dx, dw, db);
}

}  // namespace reskit::kernels::onednn
