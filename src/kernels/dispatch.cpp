// The one place that chooses a kernel.
//
// Convolutions: one ordered list per precision (float32, mixed float32/bfloat16, float64) and pass
// (forward, backward-data, backward-weights), from the most specialised path to the reference, each
// entry with its rule and the reason it sits where it does (conv_paths.h says how a call walks
// them). The paths themselves live in kernels/cpu and decide nothing among each other:
//   onednn_pointwise.*  1×1 convolutions as oneDNN matmuls (float32, bfloat16)
//   tiny_image.*        tiny images as row products over the batch (oneDNN sgemm / bf16 matmul, BLAS)
//   onednn_conv.*       oneDNN convolution primitives (float32, bfloat16)
//   winograd.*          float32 3x3 by F(2x2, 3x3) and F(4x4, 3x3) (reskit's transforms, oneDNN matmul)
//   conv_bf16_weights.* mixed precision's backward-weights on AVX512-BF16 dot products (reskit's own)
//   im2col_gemm.*       im2col + gemm, and 1×1 stride-1 as one gemm (BLAS; float and double)
//   ref/conv2d.h        the reference
// Mixed precision runs oneDNN's bfloat16 kernels or, on CPUs whose bfloat16 dot products are no
// faster than float32 FMA (Intel without AMX), the float32 entries on bfloat16-rounded operands: a
// fixed function of the CPU's features (conv_paths::mixed_kernels_for).
// Batch normalization: batch_norm_f32 (float32) or batch_norm_f64; pooling and Dense: pool, dense.
// Elementwise layers (Rescaling, Normalization, ReLU, Softmax, Concatenate): ref/elementwise.h only.
// Backend::reference (or RESKIT_REFERENCE=1 in the environment) forces the plain loops of
// kernels/ref everywhere.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "kernels/conv_paths.h"
#include "kernels/cpu/batch_norm_f32.h"
#include "kernels/cpu/batch_norm_f64.h"
#include "kernels/cpu/conv_bf16_weights.h"
#include "kernels/cpu/dense.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col_gemm.h"
#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/onednn_engine.h"
#include "kernels/cpu/onednn_pointwise.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/resize_u8.h"
#include "kernels/cpu/tiny_image.h"
#include "kernels/cpu/winograd.h"
#include "kernels/kernels.h"
#include "kernels/ref/batch_norm.h"
#include "kernels/ref/batch_norm_sync.h"
#include "kernels/ref/bf16.h"
#include "kernels/ref/conv2d.h"
#include "kernels/ref/dense.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/pool2d.h"
#include "kernels/ref/resize.h"
#include "kernels/sync_batch_norm.h"
#include "reskit/error.h"

namespace reskit::kernels {

namespace {
Backend initial_backend() {
  const char* env = std::getenv("RESKIT_REFERENCE");
  return (env != nullptr && std::strcmp(env, "1") == 0) ? Backend::reference : Backend::fast;
}
std::atomic<Backend> g_backend{initial_backend()};
bool use_ref() { return g_backend.load(std::memory_order_relaxed) == Backend::reference; }
template <class T>
constexpr bool is_f32 = std::is_same_v<T, float>;

std::int64_t x_numel(const Conv2DParams& p) { return p.n * p.h * p.w * p.c; }
std::int64_t w_numel(const Conv2DParams& p) { return p.r * p.s * p.c * p.k; }
std::int64_t y_numel(const Conv2DParams& p) { return p.n * p.p * p.q * p.k; }
// The same convolution at full precision (what runs on bfloat16-rounded copies).
Conv2DParams full_precision(const Conv2DParams& p) {
  Conv2DParams q = p;
  q.bf16 = false;
  q.weights_version = q.dy_version = 0;  // its operands are other buffers
  return q;
}
}  // namespace

void set_backend(Backend b) { g_backend = b; }
Backend backend() { return g_backend; }
const char* cpu_isa() { return onednn::effective_isa_name(); }
const char* blas_core() { return cpu::blas_core_name(); }
const char* float64_gemm() { return cpu::float64_gemm_is_reskit() ? "reskit avx512" : "OpenBLAS"; }

// ---- Conv2D: the rules ----

namespace conv_paths {
namespace {

bool always(const Conv2DParams&) { return true; }
bool not_empty(const Conv2DParams& p) { return p.n * p.h * p.w * p.c * p.k * p.r * p.s * p.p * p.q != 0; }
bool unpadded(const Conv2DParams& p) {
  return p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
}
// oneDNN's matmul: a 1×1 kernel without padding (any stride) and at least 64 output pixels.
bool matmul_1x1(const Conv2DParams& p) {
  return not_empty(p) && p.r == 1 && p.s == 1 && unpadded(p) && p.n * p.p * p.q >= 64;
}
// BLAS's one gemm: a 1×1 kernel, stride 1, no padding.
bool gemm_1x1(const Conv2DParams& p) {
  return p.r == 1 && p.s == 1 && p.stride_h == 1 && p.stride_w == 1 && unpadded(p);
}
// Row products: a kernel larger than 1×1, at most 16 output pixels, a batch of 8 or more.
bool tiny_image(const Conv2DParams& p) { return p.r * p.s > 1 && p.p * p.q <= 16 && p.n >= 8; }
bool tiny_image_onednn(const Conv2DParams& p) { return not_empty(p) && tiny_image(p); }
bool tiny_image_up_to_4(const Conv2DParams& p) { return tiny_image_onednn(p) && p.p * p.q <= 4; }
// oneDNN's bfloat16 backward-data: K even, and not a tiny image that the row products take.
bool conv_bf16_data(const Conv2DParams& p) { return not_empty(p) && p.k % 2 == 0 && !tiny_image_up_to_4(p); }
bool conv_bf16_weights(const Conv2DParams& p) { return not_empty(p) && !tiny_image(p); }
// reskit's bfloat16 backward-weights: as oneDNN's, enough accumulators to hide the dot products'
// latency, C·min(4, ⌈K/16⌉) ≥ 8 (a stem over 1 or 3 channels into 16 filters has 1 or 3), and a
// reduction long enough to pay for loading and storing them, N·P·Q ≥ 1024 (2x2x512 at batch 1: 2.5
// against oneDNN's 0.6 ms; the fewest measured faster, 8x8 at batch 32, have 2048).
bool own_bf16_weights(const Conv2DParams& p) {
  return conv_bf16_weights(p) && p.c * std::min<std::int64_t>(4, (p.k + 15) / 16) >= 8 &&
         p.n * p.p * p.q >= 1024;
}
// ... and before the bfloat16 matmul on a 1x1 kernel where its product is narrow and long,
// min(C, K) <= 64 and N*P*Q >= 4096 (the matmul reads x transposed; 2 threads, docs/cpu-rules.md:
// ResNet-20's stride-2 shortcuts 16->32 and 32->64 at batch 128 0.27 against 1.11 and 0.22
// against 0.71 ms, ResNet-50's 15x15 64<->256 0.72-0.93 of the matmul's time; 128->512 on 8x8
// even from N*P*Q = 4096, the matmul's below).
bool own_bf16_weights_first(const Conv2DParams& p) {
  return own_bf16_weights(p) && (!matmul_1x1(p) || (std::min(p.c, p.k) <= 64 && p.n * p.p * p.q >= 4096));
}

// ---- Conv2D: the paths, as entries (each adapts one kernels/cpu function to Operands) ----

using F = float;
using O = Operands<float>;

template <class T>
bool ref_forward(const Conv2DParams& p, const Operands<T>& o) {
  ref::conv2d_forward(p, o.x, o.w, o.b, o.y);
  return true;
}
template <class T>
bool ref_backward_data(const Conv2DParams& p, const Operands<T>& o) {
  ref::conv2d_backward_data(p, o.dy, o.w, o.dx);
  return true;
}
template <class T>
bool ref_backward_weights(const Conv2DParams& p, const Operands<T>& o) {
  ref::conv2d_backward_weights(p, o.x, o.dy, o.dw, o.db);
  return true;
}
template <class T>
bool im2col_forward(const Conv2DParams& p, const Operands<T>& o) {
  cpu::im2col_forward(p, o.x, o.w, o.b, o.y);
  return true;
}
template <class T>
bool im2col_backward_data(const Conv2DParams& p, const Operands<T>& o) {
  cpu::im2col_backward_data(p, o.dy, o.w, o.dx);
  return true;
}
template <class T>
bool im2col_backward_weights(const Conv2DParams& p, const Operands<T>& o) {
  cpu::im2col_backward_weights(p, o.x, o.dy, o.dw, o.db);
  return true;
}
template <class T>
bool gemm_1x1_forward(const Conv2DParams& p, const Operands<T>& o) {
  cpu::pointwise_forward(p, o.x, o.w, o.b, o.y);
  return true;
}
template <class T>
bool gemm_1x1_backward_data(const Conv2DParams& p, const Operands<T>& o) {
  cpu::pointwise_backward_data(p, o.dy, o.w, o.dx);
  return true;
}
template <class T>
bool gemm_1x1_backward_weights(const Conv2DParams& p, const Operands<T>& o) {
  cpu::pointwise_backward_weights(p, o.x, o.dy, o.dw, o.db);
  return true;
}
template <class T>
bool rows_blas_forward(const Conv2DParams& p, const Operands<T>& o) {
  cpu::tiny_image_forward(p, o.x, o.w, o.b, o.y);
  return true;
}
template <class T>
bool rows_blas_backward_data(const Conv2DParams& p, const Operands<T>& o) {
  cpu::tiny_image_backward_data(p, o.dy, o.w, o.dx);
  return true;
}
template <class T>
bool rows_blas_backward_weights(const Conv2DParams& p, const Operands<T>& o) {
  cpu::tiny_image_backward_weights(p, o.x, o.dy, o.dw, o.db);
  return true;
}

bool matmul_forward(const Conv2DParams& p, const O& o) {
  return onednn::pointwise_forward(p, o.x, o.w, o.b, o.y);
}
bool matmul_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::pointwise_backward(p, nullptr, o.dy, o.w, o.dx, nullptr, nullptr);
}
bool matmul_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::pointwise_backward(p, o.x, o.dy, nullptr, nullptr, o.dw, o.db);
}
bool rows_forward(const Conv2DParams& p, const O& o) {
  return onednn::tiny_image_forward(p, o.x, o.w, o.b, o.y);
}
bool rows_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::tiny_image_backward_data(p, o.dy, o.w, o.dx);
}
bool rows_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::tiny_image_backward_weights(p, o.x, o.dy, o.dw, o.db);
}
bool winograd(const Conv2DParams& p) { return onednn::winograd(p); }
bool winograd_weights(const Conv2DParams& p) { return onednn::winograd_weights(p); }
bool winograd_forward(const Conv2DParams& p, const O& o) {
  return onednn::conv_forward_winograd(p, o.x, o.w, o.b, o.y);
}
bool winograd_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::conv_backward_data_winograd(p, o.dy, o.w, o.dx);
}
bool winograd_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::conv_backward_weights_winograd(p, o.x, o.dy, o.dw, o.db);
}
bool winograd_f2(const Conv2DParams& p) { return onednn::own_winograd_f2(p); }
bool winograd_f4(const Conv2DParams& p) { return onednn::own_winograd_f4(p); }
bool winograd_fused(const Conv2DParams& p) { return onednn::own_winograd_fused(p); }
bool winograd_fused_weights(const Conv2DParams& p) { return onednn::own_winograd_fused_weights(p); }
bool own_winograd_fused_forward(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_fused_forward(p, o.x, o.w, o.b, o.y);
}
bool own_winograd_fused_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_fused_backward_data(p, o.dy, o.w, o.dx);
}
bool own_winograd_fused_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_fused_backward_weights(p, o.x, o.dy, o.dw, o.db);
}
template <int M>
bool own_winograd_forward(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_forward(M, p, o.x, o.w, o.b, o.y);
}
template <int M>
bool own_winograd_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_backward_data(M, p, o.dy, o.w, o.dx);
}
template <int M>
bool own_winograd_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::own_winograd_backward_weights(M, p, o.x, o.dy, o.dw, o.db);
}
bool conv_forward(const Conv2DParams& p, const O& o) { return onednn::conv_forward(p, o.x, o.w, o.b, o.y); }
bool conv_backward_data(const Conv2DParams& p, const O& o) {
  return onednn::conv_backward_data(p, o.dy, o.w, o.dx);
}
bool conv_backward_weights(const Conv2DParams& p, const O& o) {
  return onednn::conv_backward_weights(p, o.x, o.dy, o.dw, o.db);
}

// Mixed precision. A backward entry computes dx when given and dw (with db) when given; the
// backward-data and backward-weights lists share these functions, so one call can run both.
bool matmul_bf16_forward(const Conv2DParams& p, const O& o) {
  return onednn::pointwise_forward_bf16(p, o.x, o.w, o.b, o.y);
}
bool matmul_bf16_backward(const Conv2DParams& p, const O& o) {
  return onednn::pointwise_backward_bf16(p, o.x, o.dy, o.w, o.dx, o.dw, o.db);
}
bool rows_bf16_forward(const Conv2DParams& p, const O& o) {
  return onednn::tiny_image_forward_bf16(p, o.x, o.w, o.b, o.y);
}
bool rows_bf16_backward(const Conv2DParams& p, const O& o) {
  return onednn::tiny_image_backward_bf16(p, o.x, o.dy, o.w, o.dx, o.dw, o.db);
}
bool conv_bf16_forward(const Conv2DParams& p, const O& o) {
  return onednn::conv_forward_bf16(p, o.x, o.w, o.b, o.y);
}
bool conv_bf16_backward(const Conv2DParams& p, const O& o) {
  return onednn::conv_backward_bf16(p, o.x, o.dy, o.w, o.dx, o.dw, o.db);
}
// reskit's own AVX512-BF16 backward-weights (dw and db only: declines a call that also wants dx);
// declines where the CPU lacks AVX512-BF16, and where oneDNN runs AMX (not measured there).
bool own_bf16_backward_weights(const Conv2DParams& p, const O& o) {
  if (o.dx != nullptr || !cpu::conv_weights_bf16_available() || onednn::has_amx()) return false;
  cpu::conv_backward_weights_bf16(p, onednn::x_in_bf16(p, o.x), onednn::dy_in_bf16(p, o.dy), o.dw, o.db);
  return true;
}
// Mixed precision on a float32 entry (MixedKernels::float32): the entry run on float32 operands
// rounded to bfloat16, widened from the bfloat16 roundings the caller keeps (Conv2DParams::x_bf16,
// dy_bf16, w_bf16) into reused buffers; weights kept by version as the bfloat16 kernels keep theirs.
using Run = bool (*)(const Conv2DParams&, const O&);
Conv2DParams on_rounded_params(const Conv2DParams& p) {
  Conv2DParams q = p;
  q.bf16 = false;
  q.x_bf16 = q.dy_bf16 = q.w_bf16 = nullptr;
  q.dy_version = 0;  // dy: rounded into scratch (w_rounded keeps w by its version)
  return q;
}
template <Run Forward>
bool rounded_operands_forward(const Conv2DParams& p, const O& o) {
  O r = o;
  r.x = onednn::x_rounded(p, o.x);
  r.w = onednn::w_rounded(p, o.w);
  return Forward(on_rounded_params(p), r);
}
template <Run Data, Run Weights>
bool rounded_operands_backward(const Conv2DParams& p, const O& o) {
  const Conv2DParams q = on_rounded_params(p);
  const float* dy = onednn::dy_rounded(p, o.dy);
  if (o.dx != nullptr) {
    O r;
    r.dy = dy, r.w = onednn::w_rounded(p, o.w), r.dx = o.dx;
    if (!Data(q, r)) return false;
  }
  if (o.dw != nullptr) {
    O r;
    r.dy = dy, r.x = onednn::x_rounded(p, o.x), r.dw = o.dw, r.db = o.db;
    if (!Weights(q, r)) return false;
  }
  return true;
}
constexpr Run kMatmulRounded = rounded_operands_backward<matmul_backward_data, matmul_backward_weights>;
constexpr Run kRowsRounded = rounded_operands_backward<rows_backward_data, rows_backward_weights>;
constexpr Run kConvRounded = rounded_operands_backward<conv_backward_data, conv_backward_weights>;
constexpr Run kWinogradRounded = rounded_operands_backward<winograd_backward_data, winograd_backward_weights>;
constexpr Run kWinogradF2Rounded =
    rounded_operands_backward<own_winograd_backward_data<2>, own_winograd_backward_weights<2>>;
constexpr Run kWinogradF4Rounded =
    rounded_operands_backward<own_winograd_backward_data<4>, own_winograd_backward_weights<4>>;
constexpr Run kWinogradFusedRounded =
    rounded_operands_backward<own_winograd_fused_backward_data, own_winograd_fused_backward_weights>;

// The definition of mixed precision: the full-precision list (or, forced, the reference) on
// copies of the operands rounded to bfloat16 (kernels/ref/bf16.h), widened from the roundings the
// caller keeps where it gives them (Conv2DParams::x_bf16, dy_bf16, w_bf16: the same values); dy
// is rounded once for both backward passes.
template <class T>
bool rounded_forward(const Conv2DParams& p, const Operands<T>& o) {
  const auto xr = ref::rounded_bf16(o.x, p.x_bf16, x_numel(p));
  const auto wr = ref::rounded_bf16(o.w, p.w_bf16, w_numel(p));
  conv2d_forward(full_precision(p), xr.data(), wr.data(), o.b, o.y);
  return true;
}
template <class T>
bool rounded_backward(const Conv2DParams& p, const Operands<T>& o) {
  const Conv2DParams q = full_precision(p);
  const auto dyr = ref::rounded_bf16(o.dy, p.dy_bf16, y_numel(p));
  if (o.dx != nullptr)
    conv2d_backward_data(q, dyr.data(), ref::rounded_bf16(o.w, p.w_bf16, w_numel(p)).data(), o.dx);
  if (o.dw != nullptr) {
    conv2d_backward_weights(q, ref::rounded_bf16(o.x, p.x_bf16, x_numel(p)).data(), dyr.data(), o.dw, o.db);
  }
  return true;
}

// ---- Conv2D: the lists ----

// Reasons shared by several entries.
constexpr std::string_view kMatmulReason =
    "oneDNN 2.6's matmul (brg:avx512_core) runs a 1x1 convolution's products faster than its 1x1 "
    "convolutions, with no weight reorder in any pass (ResNet-50's 1x1 shapes at batch 32, one thread: 42 "
    "against 51 ms forward, 87 against 109 ms backward per step). Below 64 output pixels the product is "
    "too short to pay for packing w on every call, while a convolution keeps its reordered weights in "
    "inference (ResNet-50 at batch 1, one thread: 6.4 ms per image with the rule, 8.7 with every 1x1 a "
    "matmul, 6.7 with none)";
constexpr std::string_view kMatmulRule = "1x1 kernel, no padding (any stride), N*P*Q >= 64, not empty";
constexpr std::string_view kRowsRule = "kernel larger than 1x1, P*Q <= 16, N >= 8, not empty";
constexpr std::string_view kRowsReason =
    "on so few output pixels a primitive spends its time on taps over padding and on reordering large "
    "weights; one thread, batch 32, against oneDNN's convolution with its reorder: 2x2x512 forward 1.1 "
    "against 4.4 ms, backward-weights 1.3 against 4.7; 4x4x256 forward 1.7 against 2.5, "
    "backward-weights 2.1 against 2.6. From 8x8 on oneDNN is faster; below batch 8 the products are too "
    "short (at batch 1 a convolution with kept weights is faster). One band of channels per thread "
    "(2 threads, 2x2x512 backward 2.85 -> 1.73 ms)";
constexpr std::string_view kRowsDataRule = "kernel larger than 1x1, P*Q <= 4, N >= 8, not empty";
constexpr std::string_view kRowsDataReason =
    "backward-data by rows: 2x2x512 1.9 against 4.1 ms, but 4x4x256 2.3 against oneDNN's 2.0, so only "
    "up to 4 output pixels (by taps, bfloat16, 2 threads: 4x4x256 still 1.19 against oneDNN's 1.0)";
constexpr std::string_view kConvRule =
    "not empty; declines where oneDNN has only its reference implementation";
constexpr std::string_view kConvReason =
    "oneDNN's convolution kernels (brgconv, or the direct jit:avx512_core where it is faster: 3x3 over "
    "<= 16 input channels or <= 4 output pixels) on weights reordered to their layout, kept across calls "
    "by version in inference: the fastest float32 convolution here for every other shape";
constexpr std::string_view kWinogradRule =
    "3x3, stride 1, 'same' (pad 1), C and K multiples of 16, P and Q >= 4, N*ceil(P/4)*ceil(Q/4) >= 32 "
    "output tiles of 4x4, no residual; C and K >= 32 or P*Q <= 28*28 (16 channels lost at 30x30 and "
    "32x32); declines where oneDNN has no Winograd kernel (AVX-512 only)";
constexpr std::string_view kWinogradWeightsRule =
    "as forward's for any P*Q (the 16-channel backward-weights gained at every size measured)";
constexpr std::string_view kWinogradReason =
    "F(4x4, 3x3) multiplies 4x less than a direct convolution: with its transforms and the reorders "
    "between NHWC and its blocked layout it is still the fastest float32 kernel for these shapes (docs/"
    "cpu-rules.md); it rounds differently from the direct kernels (within the tests' 1e-4)";
constexpr std::string_view kWinogradF2Rule =
    "3x3, stride 1, 'same' (pad 1), P = Q = 4, N >= 4 (16 output tiles of 2x2), no residual; after the "
    "F(4x4) entry, so where its rule fails (batch 4 to 31, or fewer than 64 channels); declines where "
    "oneDNN has only its reference matmul";
constexpr std::string_view kWinogradF2Reason =
    "at 4x4 outputs an F(4x4) tile per image is mostly padding; F(2x2, 3x3) has four, so its 16 products "
    "run 4N rows deep: faster than the row products and oneDNN's convolution from batch 4 (4x4x256, 2 "
    "threads, docs/cpu-rules.md); its transforms add and halve only";
constexpr std::string_view kWinogradF4Rule =
    "3x3, stride 1, 'same' (pad 1), P and Q >= 4, C and K multiples of 16 and >= 64, "
    "N*ceil(P/4)*ceil(Q/4) >= 32 output tiles of 4x4, no residual; declines where oneDNN has only its "
    "reference matmul";
constexpr std::string_view kWinogradF4Reason =
    "oneDNN's own F(4x4, 3x3) takes activations only in its blocked layout (a reorder from and to NHWC "
    "around every call) and transforms the weights again in every pass; here the transforms read and "
    "write NHWC, the transformed weights are kept by version, and the 36 products are one batched oneDNN "
    "matmul: faster from 64 channels (ResNet-50's 15x15, 8x8 and 4x4 3x3 layers, ResNet-20's 7x7x64; "
    "slower at 32 and 16 channels, docs/cpu-rules.md); its transforms round more than F(2x2)'s (within "
    "the tests' 1e-4, as oneDNN's)";
constexpr std::string_view kWinogradFusedRule =
    "3x3, stride 1, 'same' (pad 1), P and Q >= 4, C and K 16, 32 or 48 (multiples of 16 below 64), "
    "N*ceil(P/4)*ceil(Q/4) >= 32 output tiles of 4x4, no residual, a CPU with AVX-512";
constexpr std::string_view kWinogradFusedWeightsRule =
    "3x3, stride 1, 'same' (pad 1), P and Q >= 4, C and K 32 or 48, N*ceil(P/4)*ceil(Q/4) >= 32 output "
    "tiles of 4x4, no residual, a CPU with AVX-512 (at 16 channels oneDNN's F(4x4, 3x3) is faster)";
constexpr std::string_view kWinogradFusedReason =
    "over 16 and 32 channels the batched products read as many values as they multiply; here each block "
    "of images is transformed, multiplied (accumulators in registers) and transformed back while in "
    "cache: faster than oneDNN's F(4x4, 3x3) on ResNet-20's 28x28x16 and 14x14x32 (docs/cpu-rules.md)";
constexpr std::string_view kGemm1x1Rule = "1x1 kernel, stride 1, no padding";
constexpr std::string_view kRowsBlasRule = "kernel larger than 1x1, P*Q <= 16, N >= 8";
constexpr std::string_view kIm2colRule = "any shape";
constexpr std::string_view kRefRule = "any shape; the only entry run under Backend::reference";
constexpr std::string_view kRefReason =
    "plain loops (kernels/ref/conv2d.h): the definition every other entry is tested against";
constexpr std::string_view kGemm1x1Reason =
    "x is already the column matrix: one gemm, no copy (float32 comes here only where oneDNN declined or "
    "the shape is empty)";
constexpr std::string_view kRowsBlasReason =
    "as the oneDNN row products: no taps over padding, no copy (float32 comes here only where oneDNN "
    "declined or the shape is empty)";
constexpr std::string_view kIm2colReason =
    "any shape: the input patches gathered in chunks of images (column matrix under ~16M elements), one "
    "gemm each; float64's convolutions (oneDNN 2.6 has no float64), float32's last resort";
constexpr std::string_view kMixedMatmulReason =
    "as in float32; with the row products, faster than oneDNN's bfloat16 convolutions with their "
    "weight conversions (ResNet-50 mixed_bfloat16 step, one thread: ~118 -> ~145 images/s)";
constexpr std::string_view kMixedRowsReason =
    "as in float32, through oneDNN bfloat16 matmuls (about 1.6x the float32 rate); 2 threads, batch 32: "
    "4x4 forward 1.29 -> 0.69 ms, 2x2 backward 2.66 -> 1.36 against one product split over both threads; "
    "backward by taps, its products over dense rows (brgemm for backward-weights): 2x2x512 both passes "
    "3.9 -> 1.8 ms, ResNet-50 mixed step +4%";
constexpr std::string_view kRoundedRule = "any shape; also the only entry run under Backend::reference";
constexpr std::string_view kRoundedReason =
    "the definition of mixed precision: the float32 list (or, forced, the reference) on operands rounded "
    "to bfloat16; the path for any shape without a fast bfloat16 kernel";

template <class T>
constexpr std::array<Path<T>, 4> kBlasForward{{
    {"1x1 as one gemm (BLAS)", gemm_1x1, gemm_1x1_forward<T>, kGemm1x1Rule, kGemm1x1Reason},
    {"tiny image row products (BLAS)", tiny_image, rows_blas_forward<T>, kRowsBlasRule, kRowsBlasReason},
    {"im2col + gemm", always, im2col_forward<T>, kIm2colRule, kIm2colReason},
    {"reference", always, ref_forward<T>, kRefRule, kRefReason},
}};
template <class T>
constexpr std::array<Path<T>, 4> kBlasBackwardData{{
    {"1x1 as one gemm (BLAS)", gemm_1x1, gemm_1x1_backward_data<T>, kGemm1x1Rule, kGemm1x1Reason},
    {"tiny image row products (BLAS)", tiny_image, rows_blas_backward_data<T>, kRowsBlasRule,
     kRowsBlasReason},
    {"im2col + gemm", always, im2col_backward_data<T>, kIm2colRule, kIm2colReason},
    {"reference", always, ref_backward_data<T>, kRefRule, kRefReason},
}};
template <class T>
constexpr std::array<Path<T>, 4> kBlasBackwardWeights{{
    {"1x1 as one gemm (BLAS)", gemm_1x1, gemm_1x1_backward_weights<T>, kGemm1x1Rule, kGemm1x1Reason},
    {"tiny image row products (BLAS)", tiny_image, rows_blas_backward_weights<T>, kRowsBlasRule,
     kRowsBlasReason},
    {"im2col + gemm", always, im2col_backward_weights<T>, kIm2colRule, kIm2colReason},
    {"reference", always, ref_backward_weights<T>, kRefRule, kRefReason},
}};

// float32: oneDNN first; the BLAS entries (as float64's) only where oneDNN declines.
template <std::size_t M, std::size_t N>
constexpr std::array<Path<F>, M + N> with_onednn(const Path<F> (&first)[M],
                                                 const std::array<Path<F>, N>& blas) {
  std::array<Path<F>, M + N> list{};
  for (std::size_t i = 0; i < M; ++i) list[i] = first[i];
  for (std::size_t i = 0; i < N; ++i) list[M + i] = blas[i];
  return list;
}
constexpr Path<F> kOnednnForward[7] = {
    {"1x1 as matmul", matmul_1x1, matmul_forward, kMatmulRule, kMatmulReason, true},
    {"reskit Winograd F(4x4, 3x3) fused", winograd_fused, own_winograd_fused_forward, kWinogradFusedRule,
     kWinogradFusedReason},
    {"reskit Winograd F(4x4, 3x3)", winograd_f4, own_winograd_forward<4>, kWinogradF4Rule, kWinogradF4Reason},
    {"reskit Winograd F(2x2, 3x3)", winograd_f2, own_winograd_forward<2>, kWinogradF2Rule, kWinogradF2Reason},
    {"oneDNN Winograd", winograd, winograd_forward, kWinogradRule, kWinogradReason},
    {"tiny image row products", tiny_image_onednn, rows_forward, kRowsRule, kRowsReason},
    {"oneDNN convolution", not_empty, conv_forward, kConvRule, kConvReason, true},
};
constexpr Path<F> kOnednnBackwardData[7] = {
    {"1x1 as matmul", matmul_1x1, matmul_backward_data, kMatmulRule, kMatmulReason},
    {"reskit Winograd F(4x4, 3x3) fused", winograd_fused, own_winograd_fused_backward_data,
     kWinogradFusedRule, kWinogradFusedReason},
    {"reskit Winograd F(4x4, 3x3)", winograd_f4, own_winograd_backward_data<4>, kWinogradF4Rule,
     kWinogradF4Reason},
    {"reskit Winograd F(2x2, 3x3)", winograd_f2, own_winograd_backward_data<2>, kWinogradF2Rule,
     kWinogradF2Reason},
    {"oneDNN Winograd", winograd, winograd_backward_data, kWinogradRule, kWinogradReason},
    {"tiny image row products", tiny_image_up_to_4, rows_backward_data, kRowsDataRule, kRowsDataReason},
    {"oneDNN convolution", not_empty, conv_backward_data, kConvRule, kConvReason},
};
constexpr Path<F> kOnednnBackwardWeights[7] = {
    {"1x1 as matmul", matmul_1x1, matmul_backward_weights, kMatmulRule, kMatmulReason},
    {"reskit Winograd F(4x4, 3x3) fused", winograd_fused_weights, own_winograd_fused_backward_weights,
     kWinogradFusedWeightsRule, kWinogradFusedReason},
    {"reskit Winograd F(4x4, 3x3)", winograd_f4, own_winograd_backward_weights<4>, kWinogradF4Rule,
     kWinogradF4Reason},
    {"reskit Winograd F(2x2, 3x3)", winograd_f2, own_winograd_backward_weights<2>, kWinogradF2Rule,
     kWinogradF2Reason},
    {"oneDNN Winograd", winograd_weights, winograd_backward_weights, kWinogradWeightsRule, kWinogradReason},
    {"tiny image row products", tiny_image_onednn, rows_backward_weights, kRowsRule, kRowsReason},
    {"oneDNN convolution", not_empty, conv_backward_weights, kConvRule, kConvReason},
};
constexpr auto kFloat32Forward = with_onednn(kOnednnForward, kBlasForward<F>);
constexpr auto kFloat32BackwardData = with_onednn(kOnednnBackwardData, kBlasBackwardData<F>);
constexpr auto kFloat32BackwardWeights = with_onednn(kOnednnBackwardWeights, kBlasBackwardWeights<F>);

constexpr std::array<Path<F>, 4> kMixedForward{{
    {"1x1 as bf16 matmul", matmul_1x1, matmul_bf16_forward, kMatmulRule, kMixedMatmulReason, false, true},
    {"tiny image bf16 row products", tiny_image_onednn, rows_bf16_forward, kRowsRule, kMixedRowsReason},
    {"oneDNN bf16 convolution", not_empty, conv_bf16_forward, kConvRule,
     "oneDNN's bfloat16 convolution kernels (brgconv, or its direct jit_bf16 over <= 16 input channels "
     "without AMX: prefer_direct_jit_bf16), float32 or bfloat16 results written directly",
     false, true},
    {"float32 on bf16-rounded copies", always, rounded_forward<F>, kRoundedRule, kRoundedReason},
}};
constexpr std::array<Path<F>, 4> kMixedBackwardData{{
    {"1x1 as bf16 matmul", matmul_1x1, matmul_bf16_backward, kMatmulRule, kMixedMatmulReason, false, true},
    {"tiny image bf16 row products", tiny_image_up_to_4, rows_bf16_backward, kRowsDataRule, kRowsDataReason},
    {"oneDNN bf16 convolution", conv_bf16_data, conv_bf16_backward,
     "not empty, K even, not a tiny image with P*Q <= 4",
     "oneDNN 2.6's jit_bf16_1x1 backward-data writes wrong dx when K is odd (1, 3, 5, ... 33; found by "
     "tests/kernels): odd K, rare in real networks, takes the rounded copies whatever the kernel size",
     false, true},
    {"float32 on bf16-rounded copies", always, rounded_backward<F>, kRoundedRule, kRoundedReason},
}};
constexpr std::array<Path<F>, 5> kMixedBackwardWeights{{
    {"reskit AVX512-BF16 backward-weights", own_bf16_weights_first, own_bf16_backward_weights,
     "not empty, not a tiny image, C*min(4, ceil(K/16)) >= 8, N*P*Q >= 1024, and where the 1x1 matmul "
     "applies only with min(C, K) <= 64 and N*P*Q >= 4096; declines without AVX512-BF16 and where oneDNN "
     "runs AMX",
     "oneDNN 2.6's jit_bf16 backward-weights runs ResNet-20's layers at 37-77% of the bfloat16 peak "
     "(AMD EPYC family 25, 2 threads: 3x3 64 on 7x7 1.56 ms, stride-2 16->32 1.27 ms at batch 128); "
     "vdpbf16ps over image pairs, the accumulators in registers: 0.91 and 0.58 ms (docs/cpu-rules.md). "
     "Before the 1x1 matmul where its product is narrow and long: ResNet-20's stride-2 1x1 shortcuts "
     "0.27 against 1.11 and 0.22 against 0.71 ms, ResNet-50's 15x15 64<->256 0.72-0.93 of the matmul's "
     "time; 128->512 on 8x8 even from N*P*Q = 4096"},
    {"1x1 as bf16 matmul", matmul_1x1, matmul_bf16_backward, kMatmulRule, kMixedMatmulReason},
    {"tiny image bf16 row products", tiny_image_onednn, rows_bf16_backward, kRowsRule, kMixedRowsReason},
    {"oneDNN bf16 convolution", conv_bf16_weights, conv_bf16_backward, "not empty, not a tiny image",
     "a tiny image whose row products declined takes the rounded copies, as its backward-data does"},
    {"float32 on bf16-rounded copies", always, rounded_backward<F>, kRoundedRule, kRoundedReason},
}};

// MixedKernels::float32: the float32 list's oneDNN entries, with their rules, on rounded operands.
constexpr std::string_view kRoundedOperandsReason =
    "mixed precision on a CPU whose bfloat16 dot products buy no FLOP/s over float32 FMA (Intel without "
    "AMX): the float32 kernel on bfloat16-rounded operands, 1.2-2.2x faster than oneDNN's avx512_core_bf16 "
    "kernels on every ResNet shape and pass (docs/cpu-rules.md); the same products, float32 sums";
constexpr std::string_view kWinogradRoundedReason =
    "the float32 list's Winograd entry, with its rules, on bfloat16-rounded operands (its transforms "
    "round in float32, far below bfloat16's rounding); not measured on an Intel CPU (none here), which is "
    "where this list runs";
constexpr std::string_view kWinogradF2RoundedReason =
    "the float32 list's F(2x2, 3x3) entry, with its rule, on bfloat16-rounded operands (its transforms "
    "add and halve in float32); not measured on an Intel CPU (none here), which is where this list runs";
constexpr std::string_view kWinogradFusedRoundedReason =
    "the float32 list's fused F(4x4, 3x3) entry, with its rules, on bfloat16-rounded operands; not measured "
    "on an Intel CPU (none here), which is where this list runs";
constexpr std::string_view kWinogradF4RoundedReason =
    "the float32 list's F(4x4, 3x3) entry, with its rule, on bfloat16-rounded operands; not measured on an "
    "Intel CPU (none here), which is where this list runs";
constexpr std::array<Path<F>, 8> kMixedF32Forward{{
    {"1x1 as matmul on bf16-rounded operands", matmul_1x1, rounded_operands_forward<matmul_forward>,
     kMatmulRule, kRoundedOperandsReason},
    {"reskit Winograd F(4x4, 3x3) fused on bf16-rounded operands", winograd_fused,
     rounded_operands_forward<own_winograd_fused_forward>, kWinogradFusedRule, kWinogradFusedRoundedReason},
    {"reskit Winograd F(4x4, 3x3) on bf16-rounded operands", winograd_f4,
     rounded_operands_forward<own_winograd_forward<4>>, kWinogradF4Rule, kWinogradF4RoundedReason},
    {"reskit Winograd F(2x2, 3x3) on bf16-rounded operands", winograd_f2,
     rounded_operands_forward<own_winograd_forward<2>>, kWinogradF2Rule, kWinogradF2RoundedReason},
    {"oneDNN Winograd on bf16-rounded operands", winograd, rounded_operands_forward<winograd_forward>,
     kWinogradRule, kWinogradRoundedReason},
    {"tiny image row products on bf16-rounded operands", tiny_image_onednn,
     rounded_operands_forward<rows_forward>, kRowsRule, kRoundedOperandsReason},
    {"oneDNN convolution on bf16-rounded operands", not_empty, rounded_operands_forward<conv_forward>,
     kConvRule, kRoundedOperandsReason},
    {"float32 on bf16-rounded copies", always, rounded_forward<F>, kRoundedRule, kRoundedReason},
}};
constexpr std::array<Path<F>, 8> kMixedF32BackwardData{{
    {"1x1 as matmul on bf16-rounded operands", matmul_1x1, kMatmulRounded, kMatmulRule,
     kRoundedOperandsReason},
    {"reskit Winograd F(4x4, 3x3) fused on bf16-rounded operands", winograd_fused, kWinogradFusedRounded,
     kWinogradFusedRule, kWinogradFusedRoundedReason},
    {"reskit Winograd F(4x4, 3x3) on bf16-rounded operands", winograd_f4, kWinogradF4Rounded, kWinogradF4Rule,
     kWinogradF4RoundedReason},
    {"reskit Winograd F(2x2, 3x3) on bf16-rounded operands", winograd_f2, kWinogradF2Rounded, kWinogradF2Rule,
     kWinogradF2RoundedReason},
    {"oneDNN Winograd on bf16-rounded operands", winograd, kWinogradRounded, kWinogradRule,
     kWinogradRoundedReason},
    {"tiny image row products on bf16-rounded operands", tiny_image_up_to_4, kRowsRounded, kRowsDataRule,
     kRoundedOperandsReason},
    {"oneDNN convolution on bf16-rounded operands", not_empty, kConvRounded, kConvRule,
     kRoundedOperandsReason},
    {"float32 on bf16-rounded copies", always, rounded_backward<F>, kRoundedRule, kRoundedReason},
}};
constexpr std::array<Path<F>, 8> kMixedF32BackwardWeights{{
    {"1x1 as matmul on bf16-rounded operands", matmul_1x1, kMatmulRounded, kMatmulRule,
     kRoundedOperandsReason},
    {"reskit Winograd F(4x4, 3x3) fused on bf16-rounded operands", winograd_fused_weights,
     kWinogradFusedRounded, kWinogradFusedWeightsRule, kWinogradFusedRoundedReason},
    {"reskit Winograd F(4x4, 3x3) on bf16-rounded operands", winograd_f4, kWinogradF4Rounded, kWinogradF4Rule,
     kWinogradF4RoundedReason},
    {"reskit Winograd F(2x2, 3x3) on bf16-rounded operands", winograd_f2, kWinogradF2Rounded, kWinogradF2Rule,
     kWinogradF2RoundedReason},
    {"oneDNN Winograd on bf16-rounded operands", winograd_weights, kWinogradRounded, kWinogradWeightsRule,
     kWinogradRoundedReason},
    {"tiny image row products on bf16-rounded operands", tiny_image_onednn, kRowsRounded, kRowsRule,
     kRoundedOperandsReason},
    {"oneDNN convolution on bf16-rounded operands", not_empty, kConvRounded, kConvRule,
     kRoundedOperandsReason},
    {"float32 on bf16-rounded copies", always, rounded_backward<F>, kRoundedRule, kRoundedReason},
}};

// float64 has no bfloat16 kernels: a mixed-precision call runs the float64 list on rounded copies.
constexpr std::array<Path<double>, 1> kFloat64MixedForward{{
    {"float64 on bf16-rounded copies", always, rounded_forward<double>, kRoundedRule, kRoundedReason},
}};
constexpr std::array<Path<double>, 1> kFloat64MixedBackward{{
    {"float64 on bf16-rounded copies", always, rounded_backward<double>, kRoundedRule, kRoundedReason},
}};

// The first entry at or after `from` whose rule holds (every list ends with one that always does).
template <class T>
std::size_t next_applicable(std::span<const Path<T>> list, const Conv2DParams& p, std::size_t from) {
  while (from + 1 < list.size() && !list[from].applies(p)) ++from;
  return from;
}

// y[i] = y[i] + r[i], then max(0, ·) when relu (a NaN kept, as the other ReLUs keep it), over n
// values.
template <class T>
void add_residual(std::int64_t n, const T* __restrict r, bool relu, T* __restrict y) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) {
    const T s = y[i] + r[i];
    y[i] = relu && s < T(0) ? T(0) : s;
  }
}

// Runs one entry with bfloat16 results (Conv2DParams::y_bf16, dx_bf16): an entry that writes them
// (Path::bf16_results) is given them, any other runs without them and its float32 results are
// rounded into them after.
template <class T>
bool run_rounding(const Path<T>& entry, const Conv2DParams& p, const Operands<T>& o) {
  if ((p.y_bf16 == nullptr && p.dx_bf16 == nullptr) || entry.bf16_results) return entry.run(p, o);
  if constexpr (!is_f32<T>) {
    throw Error("Conv2DParams::y_bf16, dx_bf16: expected float32 operands, got float64");
  } else {
    Conv2DParams q = p;
    q.y_bf16 = q.dx_bf16 = nullptr;
    if (!entry.run(q, o)) return false;
    if (p.y_bf16 != nullptr && o.y != nullptr) round_to_bf16(o.y, y_numel(p), p.y_bf16);
    if (p.dx_bf16 != nullptr && o.dx != nullptr) round_to_bf16(o.dx, x_numel(p), p.dx_bf16);
    return true;
  }
}

// Runs one entry: with a forward's residual where the entry takes it (and does not decline it),
// else without it (nor the ReLU that follows it), then y = max(0, y + r) (or y + r) in a pass of
// its own: the same sums in the same order as an entry's post-ops.
template <class T>
bool run_entry(const Path<T>& entry, const Conv2DParams& p, const Operands<T>& o) {
  if (p.residual == nullptr) return run_rounding(entry, p, o);
  if (entry.takes_residual && entry.run(p, o)) return true;
  Conv2DParams q = p;
  q.residual = nullptr;
  q.relu = false;
  if (!entry.run(q, o)) return false;
  add_residual(y_numel(p), static_cast<const T*>(p.residual), p.relu, o.y);
  return true;
}

// The first entry whose rule holds and that accepts; under Backend::reference, the last.
template <class T>
void run(std::span<const Path<T>> list, const Conv2DParams& p, const Operands<T>& o) {
  if (use_ref()) {
    run_entry(list.back(), p, o);
    return;
  }
  for (std::size_t i = next_applicable(list, p, 0);; i = next_applicable(list, p, i + 1)) {
    if (run_entry(list[i], p, o)) return;
  }
}

// Mixed-precision backward, dx and dw (with db) in one call, as a layer asks for them. Each pass
// takes the first entry of its list whose rule holds; where both take the same entry it runs them
// together (one conversion of dy, both products found before either runs). When an entry
// declines, both passes move on to their next entries whose rules hold; when either pass reaches
// the last entry (the rounded copies), both run there, dy rounded once.
template <class T>
void run_mixed_backward(const Conv2DParams& p, const Operands<T>& o) {
  const auto data = paths<T>(Pass::backward_data, true), weights = paths<T>(Pass::backward_weights, true);
  if (use_ref()) {
    run_rounding(data.back(), p, o);
    return;
  }
  const bool want_dx = o.dx != nullptr, want_dw = o.dw != nullptr;
  std::size_t d = next_applicable(data, p, 0), w = next_applicable(weights, p, 0);
  for (;;) {
    if ((want_dx && d + 1 == data.size()) || (want_dw && w + 1 == weights.size())) {
      run_rounding(data.back(), p, o);
      return;
    }
    bool ok = true;
    if (want_dx && want_dw && data[d].run == weights[w].run) {
      ok = run_rounding(data[d], p, o);
    } else {
      Operands<T> only_dx = o, only_dw = o;
      only_dx.dw = only_dx.db = nullptr;
      only_dw.dx = nullptr;
      ok = (!want_dx || run_rounding(data[d], p, only_dx)) && (!want_dw || weights[w].run(p, only_dw));
    }
    if (ok) return;
    d = next_applicable(data, p, d + 1);
    w = next_applicable(weights, p, w + 1);
  }
}

}  // namespace

// ---- mixed precision: which kernels, by CPU features ----

MixedKernels mixed_kernels_for(const CpuFeatures& cpu) {
  return cpu.intel && !cpu.amx ? MixedKernels::float32 : MixedKernels::bfloat16;
}

CpuFeatures cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    f.intel = onednn::cpu_is_intel();
    f.amx = onednn::has_amx();
    return f;
  }();
  return features;
}

namespace {
constexpr int kNoOverride = -1;
std::atomic<int> g_mixed_override{kNoOverride};
}  // namespace

MixedKernels mixed_kernels() {
  const int forced = g_mixed_override.load(std::memory_order_relaxed);
  if (forced != kNoOverride) return static_cast<MixedKernels>(forced);
  static const MixedKernels by_cpu = mixed_kernels_for(cpu_features());
  return by_cpu;
}

ScopedMixedKernels::ScopedMixedKernels(MixedKernels which)
    : previous_(g_mixed_override.exchange(static_cast<int>(which))) {}
ScopedMixedKernels::~ScopedMixedKernels() { g_mixed_override = previous_; }

std::span<const Path<float>> mixed_paths(Pass pass, MixedKernels which) {
  const bool f32 = which == MixedKernels::float32;
  switch (pass) {
    case Pass::forward:
      return f32 ? std::span<const Path<F>>(kMixedF32Forward) : kMixedForward;
    case Pass::backward_data:
      return f32 ? std::span<const Path<F>>(kMixedF32BackwardData) : kMixedBackwardData;
    case Pass::backward_weights:
      break;
  }
  return f32 ? std::span<const Path<F>>(kMixedF32BackwardWeights) : kMixedBackwardWeights;
}

template <>
std::span<const Path<float>> paths<float>(Pass pass, bool mixed) {
  if (mixed) return mixed_paths(pass, mixed_kernels());
  switch (pass) {
    case Pass::forward:
      return kFloat32Forward;
    case Pass::backward_data:
      return kFloat32BackwardData;
    case Pass::backward_weights:
      break;
  }
  return kFloat32BackwardWeights;
}

template <>
std::span<const Path<double>> paths<double>(Pass pass, bool mixed) {
  switch (pass) {
    case Pass::forward:
      return mixed ? std::span<const Path<double>>(kFloat64MixedForward) : kBlasForward<double>;
    case Pass::backward_data:
      return mixed ? std::span<const Path<double>>(kFloat64MixedBackward) : kBlasBackwardData<double>;
    case Pass::backward_weights:
      break;
  }
  return mixed ? std::span<const Path<double>>(kFloat64MixedBackward) : kBlasBackwardWeights<double>;
}

template <class T>
const Path<T>& first_applicable(Pass pass, const Conv2DParams& p) {
  const auto list = paths<T>(pass, p.bf16);
  return list[next_applicable(list, p, 0)];
}
template const Path<float>& first_applicable<float>(Pass, const Conv2DParams&);
template const Path<double>& first_applicable<double>(Pass, const Conv2DParams&);

}  // namespace conv_paths

// ---- Conv2D: the entry points ----

template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  conv_paths::Operands<T> o;
  o.x = x, o.w = w, o.b = b, o.y = y;
  conv_paths::run(conv_paths::paths<T>(conv_paths::Pass::forward, p.bf16), p, o);
}

template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  if (p.bf16) return conv2d_backward<T>(p, nullptr, dy, w, dx, nullptr, nullptr);
  conv_paths::Operands<T> o;
  o.dy = dy, o.w = w, o.dx = dx;
  conv_paths::run(conv_paths::paths<T>(conv_paths::Pass::backward_data, false), p, o);
}

template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  if (p.bf16) return conv2d_backward<T>(p, x, dy, nullptr, nullptr, dw, db);
  conv_paths::Operands<T> o;
  o.x = x, o.dy = dy, o.dw = dw, o.db = db;
  conv_paths::run(conv_paths::paths<T>(conv_paths::Pass::backward_weights, false), p, o);
}

template <class T>
void conv2d_backward(const Conv2DParams& p, const T* x, const T* dy, const T* w, T* dx, T* dw, T* db) {
  if (p.bf16) {
    conv_paths::Operands<T> o;
    o.x = x, o.dy = dy, o.w = w, o.dx = dx, o.dw = dw, o.db = db;
    return conv_paths::run_mixed_backward(p, o);
  }
  if (dx != nullptr) conv2d_backward_data(p, dy, w, dx);
  if (dw != nullptr) conv2d_backward_weights(p, x, dy, dw, db);
}

void relu_backward_f32(const ReluBackwardParams& p) {
  if (use_ref()) return ref::relu_backward_f32(p);
  cpu::relu_backward_f32(p);
}

void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out) {
  if (use_ref()) return ref::round_to_bf16_bits(x, n, out);
  onednn::round_to_bf16(x, n, out);
}

namespace {
// BatchNormParams::out_bf16 where the kernel that ran does not write it: rounded afterwards.
template <class T>
void round_out_bf16(const BatchNormParams& p, const T* out) {
  if (p.out_bf16 == nullptr) return;
  if constexpr (!is_f32<T>) {
    throw Error("BatchNormParams::out_bf16: expected float32 operands, got float64");
  } else {
    round_to_bf16(out, p.rows * p.channels, p.out_bf16);
  }
}

// BatchNormParams::x_bf16 and dy_bf16 for the kernels that read float32 values alone (the
// reference, float64): p without them, and the operands widened from them into kept copies.
template <class T>
struct PlainOperands {
  std::vector<float> x_kept, dy_kept, residual_kept;  // first: the operands below point into them
  BatchNormParams p;
  const T* x;
  const T* dy;
  const T* residual;

  PlainOperands(const BatchNormParams& given, const T* x_values, const T* dy_values,
                const T* residual_values = nullptr)
      : p(given),
        x(widen(given.x_bf16, x_values, x_kept)),
        dy(widen(given.dy_bf16, dy_values, dy_kept)),
        residual(widen(given.residual_bf16, residual_values, residual_kept)) {
    p.x_bf16 = p.dy_bf16 = p.residual_bf16 = nullptr;
  }
  const T* widen(const std::uint16_t* bits, const T* values, std::vector<float>& kept) const {
    if (bits == nullptr) return values;
    if constexpr (!is_f32<T>) {
      throw Error("BatchNormParams::x_bf16, dy_bf16, residual_bf16: expected float32 operands, got float64");
    } else {
      kept = ref::rounded_bf16(values, bits, p.rows * p.channels);  // bits given: widened
      return kept.data();
    }
  }
};
}  // namespace

// The fast float32 training passes write out_bf16 themselves, in the pass that writes y or dx,
// and read x_bf16 and dy_bf16 themselves.
template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual) {
  if constexpr (is_f32<T>) {
    if (!use_ref()) return cpu::batch_norm_forward_training_f32(p, x, gamma, beta, y, mean, var, residual);
  }
  const PlainOperands<T> o(p, x, nullptr, residual);
  if (use_ref()) {
    ref::batch_norm_forward_training(o.p, o.x, gamma, beta, y, mean, var, o.residual);
  } else if constexpr (!is_f32<T>) {  // float64's fast kernels (float32's took the bits above)
    cpu::batch_norm_forward_training(o.p, o.x, gamma, beta, y, mean, var, o.residual);
  }
  round_out_bf16(p, y);
}

template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual) {
  if constexpr (is_f32<T>) {
    if (!use_ref()) {
      cpu::batch_norm_forward_inference_f32(p, x, gamma, beta, mean, var, y, residual);
      return round_out_bf16(p, y);
    }
  }
  const PlainOperands<T> o(p, x, nullptr, residual);
  if (use_ref()) {
    ref::batch_norm_forward_inference(o.p, o.x, gamma, beta, mean, var, y, o.residual);
  } else if constexpr (!is_f32<T>) {  // float64's fast kernels (float32's took the bits above)
    cpu::batch_norm_forward_inference(o.p, o.x, gamma, beta, mean, var, y, o.residual);
  }
  round_out_bf16(p, y);
}

template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta) {
  if constexpr (is_f32<T>) {
    if (!use_ref()) return cpu::batch_norm_backward_f32(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  }
  const PlainOperands<T> o(p, x, dy);
  if (use_ref()) {
    ref::batch_norm_backward(o.p, o.x, o.dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  } else if constexpr (!is_f32<T>) {  // float64's fast kernels (float32's took the bits above)
    cpu::batch_norm_backward(o.p, o.x, o.dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  }
  round_out_bf16(p, dx);
}

// Synchronised batch normalization's pieces: the reference alone (ref/batch_norm_sync.h).
template <class T>
void batch_norm_channel_sums(const BatchNormParams& p, const T* x, const T* shift, double* sums) {
  ref::batch_norm_channel_sums(p, x, shift, sums);
}

template <class T>
void batch_norm_backward_sums(const BatchNormParams& p, const T* x, const T* dy, const T* mean, const T* var,
                              double* sum_dy, double* sum_dy_xhat) {
  ref::batch_norm_backward_sums(p, x, dy, mean, var, sum_dy, sum_dy_xhat);
}

template <class T>
void batch_norm_backward_dx(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* mean,
                            const T* var, const double* sum_dy, const double* sum_dy_xhat, double total,
                            T* dx) {
  ref::batch_norm_backward_dx(p, x, dy, gamma, mean, var, sum_dy, sum_dy_xhat, total, dx);
}

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  if (use_ref()) return ref::max_pool2d_forward(p, x, y);
  cpu::max_pool2d_forward(p, x, y);
}

template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx) {
  if (use_ref()) return ref::max_pool2d_backward(p, x, dy, dx);
  cpu::max_pool2d_backward(p, x, dy, dx);
}

template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  if (use_ref()) return ref::avg_pool2d_forward(p, x, y);
  cpu::avg_pool2d_forward(p, x, y);
}

template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx) {
  if (use_ref()) return ref::avg_pool2d_backward(p, dy, dx);
  cpu::avg_pool2d_backward(p, dy, dx);
}

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y) {
  if (use_ref()) return ref::dense_forward(p, x, w, b, y);
  cpu::dense_forward(p, x, w, b, y);
}

template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (use_ref()) return ref::dense_backward(p, x, w, dy, dx, dw, db);
  cpu::dense_backward(p, x, w, dy, dx, dw, db);
}

// Elementwise layers: the reference is the only implementation.
template <class T>
void scale_offset_forward(const BroadcastParams& p, const T* x, const T* scale, const T* offset, T* y) {
  ref::scale_offset_forward(p, x, scale, offset, y);
}
template <class T>
void scale_backward(const BroadcastParams& p, const T* dy, const T* scale, T* dx) {
  ref::scale_backward(p, dy, scale, dx);
}
template <class T>
void normalize_forward(const BroadcastParams& p, const T* x, const T* mean, const T* denom, T* y) {
  ref::normalize_forward(p, x, mean, denom, y);
}
template <class T>
void normalize_backward(const BroadcastParams& p, const T* dy, const T* denom, T* dx) {
  ref::normalize_backward(p, dy, denom, dx);
}
template <class T>
void relu_forward(const ReluParams& p, const T* x, T* y) {
  ref::relu_forward(p, x, y);
}
template <class T>
void relu_backward(const ReluParams& p, const T* x, const T* dy, T* dx) {
  ref::relu_backward(p, x, dy, dx);
}
template <class T>
void softmax_forward(const SoftmaxParams& p, const T* x, T* y) {
  ref::softmax_forward(p, x, y);
}
template <class T>
void softmax_backward(const SoftmaxParams& p, const T* y, const T* dy, T* dx) {
  ref::softmax_backward(p, y, dy, dx);
}
template <class T>
void concat_forward(const ConcatParams& p, const T* x, T* y) {
  ref::concat_forward(p, x, y);
}
template <class T>
void concat_backward(const ConcatParams& p, const T* dy, T* dx) {
  ref::concat_backward(p, dy, dx);
}

// The streaming pipeline's 8-bit resize: the bilinear fast path has the reference's bits.
void resize_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y) {
  if (!use_ref() && p.method == ResizeMethod::bilinear) {
    cpu::resize_bilinear_u8(p, x, y);
  } else {
    ref::resize_u8(p, x, y);
  }
}

#define RESKIT_INSTANTIATE_ELEMENTWISE(T)                                                          \
  template void scale_offset_forward<T>(const BroadcastParams&, const T*, const T*, const T*, T*); \
  template void scale_backward<T>(const BroadcastParams&, const T*, const T*, T*);                 \
  template void normalize_forward<T>(const BroadcastParams&, const T*, const T*, const T*, T*);    \
  template void normalize_backward<T>(const BroadcastParams&, const T*, const T*, T*);             \
  template void relu_forward<T>(const ReluParams&, const T*, T*);                                  \
  template void relu_backward<T>(const ReluParams&, const T*, const T*, T*);                       \
  template void softmax_forward<T>(const SoftmaxParams&, const T*, T*);                            \
  template void softmax_backward<T>(const SoftmaxParams&, const T*, const T*, T*);                 \
  template void concat_forward<T>(const ConcatParams&, const T*, T*);                              \
  template void concat_backward<T>(const ConcatParams&, const T*, T*);
RESKIT_INSTANTIATE_ELEMENTWISE(float)
RESKIT_INSTANTIATE_ELEMENTWISE(double)
#undef RESKIT_INSTANTIATE_ELEMENTWISE

#define RESKIT_INSTANTIATE(T)                                                                                \
  template void conv2d_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*);                    \
  template void conv2d_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);                        \
  template void conv2d_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*);                 \
  template void conv2d_backward<T>(const Conv2DParams&, const T*, const T*, const T*, T*, T*, T*);           \
  template void batch_norm_forward_training<T>(const BatchNormParams&, const T*, const T*, const T*, T*, T*, \
                                               T*, const T*);                                                \
  template void batch_norm_forward_inference<T>(const BatchNormParams&, const T*, const T*, const T*,        \
                                                const T*, const T*, T*, const T*);                           \
  template void batch_norm_backward<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,       \
                                       const T*, const T*, T*, T*, T*);                                      \
  template void batch_norm_channel_sums<T>(const BatchNormParams&, const T*, const T*, double*);             \
  template void batch_norm_backward_sums<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,  \
                                            double*, double*);                                               \
  template void batch_norm_backward_dx<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,    \
                                          const T*, const double*, const double*, double, T*);               \
  template void max_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void max_pool2d_backward<T>(const Pool2DParams&, const T*, const T*, T*);                         \
  template void avg_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void avg_pool2d_backward<T>(const Pool2DParams&, const T*, T*);                                   \
  template void dense_forward<T>(const DenseParams&, const T*, const T*, const T*, T*);                      \
  template void dense_backward<T>(const DenseParams&, const T*, const T*, const T*, T*, T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels
