// kernels.h — the one surface through which layers reach compute.
//
// Dims legend (used by every kernel in src/kernels):
//   N batch, H W input rows/cols, C input channels, K output channels,
//   R S kernel rows/cols, P Q output rows/cols.
// Activations are NHWC, convolution weights RSCK (Keras HWIO), Dense weights (C, K).
//
// Each function here dispatches (kernels/dispatch.cpp, the only place that chooses) between the
// plain reference kernel in kernels/ref/ and a fast one in kernels/cpu/. Kernels see spans of
// numbers and a small params struct, never layers, graphs or files.
//
// Backward contract: kernels *assign* every output gradient they are given (dx, dw, db, dgamma,
// dbeta); accumulation across graph edges is the graph's job.
#pragma once

#include <cstdint>

namespace reskit::kernels {

// Loops over fewer elements than this run on one thread: waking the pool costs more than it
// saves, and far more when the cores are busy with other work.
constexpr std::int64_t kParallelGrain = std::int64_t{1} << 15;

struct Conv2DParams {
  std::int64_t n = 1, h = 1, w = 1, c = 1;  // input N H W C
  std::int64_t k = 1, r = 1, s = 1;         // filters K, kernel R x S
  std::int64_t p = 1, q = 1;                // output P x Q
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  // Nonzero: a stamp of the weights' contents (Tensor::version), unique across writes, so a
  // kernel may keep a reordered copy of w keyed by (w, weights_version); callers set it where
  // the weights stay unchanged across calls (inference, and the forward and backward of one
  // training step). 0: do not keep anything.
  std::uint64_t weights_version = 0;
  // The same for dy (Tensor::version of the backward's dy): a kernel may reuse its conversion of
  // dy from backward-data in the backward-weights that follows. Callers set it in training; 0:
  // nothing reused.
  std::uint64_t dy_version = 0;
  // Mixed precision (policy mixed_bfloat16): x, w and dy take part rounded to bfloat16 (round to
  // nearest even), products are accumulated in float32 at least, and outputs stay in T. The
  // reference rounds copies and runs its plain loops; the fast path runs oneDNN's bf16 kernels, or
  // on Intel CPUs without AMX the float32 kernels on bfloat16-rounded operands (dispatch.cpp).
  bool bf16 = false;
  // Mixed precision only, optional: x already rounded to bfloat16 (round_to_bf16, n·h·w·c values),
  // which the fast kernels read instead of converting x again, so a training step's forward and
  // backward share one conversion. It must hold x's rounding; null: converted where needed.
  const std::uint16_t* x_bf16 = nullptr;
  // The same for the backward's dy (n·p·q·k values) and for w (r·s·c·k values).
  const std::uint16_t* dy_bf16 = nullptr;
  const std::uint16_t* w_bf16 = nullptr;
  // Forward only: y = max(0, conv + b), a ReLU fused into the convolution (inference with a
  // BatchNormalization folded into the weights; oneDNN runs it as a post-op).
  bool relu = false;
  // Forward only, optional: r, a tensor of y's shape and element type (n·p·q·k values, NHWC), added
  // before the ReLU: y = max(0, conv + b + r) (the ReLU when relu is set). Inference fuses so the
  // Add that alone reads a folded normalization (a residual block's end); oneDNN's float32 paths
  // add it as a post-op, the others in a pass after the product (dispatch.cpp). Null: none.
  const void* residual = nullptr;
  // Mixed precision, float32 only, optional: the forward's y (n·p·q·k values), or the backward's
  // dx (n·h·w·c values), written as its bfloat16 rounding alone into these bits (to nearest
  // even, as round_to_bf16 rounds the float32 result); y or dx is then scratch a path may write
  // or leave unwritten. A path whose kernel writes bfloat16 results writes them directly; for
  // the others the dispatcher rounds the float32 result. Not with a residual or a fused ReLU.
  std::uint16_t* y_bf16 = nullptr;
  std::uint16_t* dx_bf16 = nullptr;
};

// y[N,P,Q,K] = conv(x[N,H,W,C], w[R,S,C,K]) + b[K] (b may be null)
template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y);
// dx[N,H,W,C] from dy[N,P,Q,K], w[R,S,C,K]
template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx);
// dw[R,S,C,K], db[K] (db may be null) from x[N,H,W,C], dy[N,P,Q,K]
template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db);
// Both backward passes in one call (dx and db may be null): what a layer calls, so a bf16 path
// converts dy once for both.
template <class T>
void conv2d_backward(const Conv2DParams& p, const T* x, const T* dy, const T* w, T* dx, T* dw, T* db);
// out[0..n) = x[0..n) rounded to bfloat16 (to nearest even, ref/bf16.h), as bits: the operand form
// of mixed precision (Conv2DParams::x_bf16).
void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out);

// The ReLU's backward in float32 over operands that may be bfloat16 roundings (mixed precision):
// dz = (z > 0)·(a + b), or (z > 0)·a where b and b_bits are null; n values each. An operand is
// read from its *_bits (bfloat16 bits, widened) where given, else from its float32 values; dz is
// written as float32, or where dz_bits is given as its rounding's bits alone (round_to_bf16).
struct ReluBackwardParams {
  std::int64_t n = 0;
  const float* z = nullptr;
  const std::uint16_t* z_bits = nullptr;
  const float* a = nullptr;
  const std::uint16_t* a_bits = nullptr;
  const float* b = nullptr;
  const std::uint16_t* b_bits = nullptr;
  float* dz = nullptr;
  std::uint16_t* dz_bits = nullptr;
};
void relu_backward_f32(const ReluBackwardParams& p);

struct BatchNormParams {
  std::int64_t rows = 1;      // N*H*W: values per channel
  std::int64_t channels = 1;  // C, the innermost axis
  double epsilon = 1e-3;
  // The ReLU that follows, fused: forward passes give y = max(0, ·); backward takes dy as the
  // gradient of that ReLU's output and keeps it only where y > 0 (y recomputed from x).
  bool relu = false;
  // Float32 only, optional: training's y (forward) or dx (backward) written a second time,
  // rounded to bfloat16 (round_to_bf16), rows·channels values: the operand a mixed-precision
  // Conv2D reading it would otherwise convert.
  std::uint16_t* out_bf16 = nullptr;
  // With out_bf16: that rounding alone may be written, y or dx left unwritten, where every reader
  // takes the rounding (Tensor::bf16_shadow_only_written). A kernel may still write both.
  bool bf16_only = false;
  // Float32 training and the float32 inference forward, optional: x (rows·channels values), and
  // the backward's dy, given as their bfloat16 roundings alone; the kernels read these in place of
  // x and dy, which may be unwritten (Tensor::bf16_shadow_only_written). The values are the
  // roundings widened: the results are those of the float32 kernels on the widened values.
  const std::uint16_t* x_bf16 = nullptr;
  const std::uint16_t* dy_bf16 = nullptr;
  // Float32 forward passes, optional: the residual of a fused Add given as its bfloat16 rounding
  // alone, read in place of residual (which may be unwritten) as x_bf16 is in place of x.
  const std::uint16_t* residual_bf16 = nullptr;
};

// Training: batch mean and biased variance per channel; y = gamma·(x−mean)/sqrt(var+eps) + beta.
// mean[C] and var[C] receive the batch statistics (biased variance). residual (rows, C), when
// given, is added to y before the fused ReLU: an Add that alone reads this normalization, fused.
template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual = nullptr);
// Inference: the given statistics.
template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual = nullptr);
// Backward of the training forward, with the batch statistics it returned (beta: for the fused
// ReLU's mask; a forward with a residual does not fuse the ReLU's backward).
template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta);

struct Pool2DParams {
  std::int64_t n = 1, h = 1, w = 1, c = 1;
  std::int64_t r = 1, s = 1;  // pool window
  std::int64_t p = 1, q = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// Padded cells never win a max and are left out of an average's count (Keras).
template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx);
template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx);

// Dense: y[N,K] = x[N,C]·w[C,K] + b[K] (b may be null).
struct DenseParams {
  std::int64_t n = 1, c = 1, k = 1;
};
template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y);
// dx[N,C] = dy·wᵀ (dx may be null); dw[C,K] = xᵀ·dy; db[K] = Σ_n dy (db may be null)
template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

// Image resampling (Resizing, the streaming pipeline): kernels/image.h.
// Elementwise layers (Rescaling, Normalization, ReLU with options, Softmax, Concatenate): the
// reference loops only (kernels/ref/elementwise.h). `n` values; a table of `period` values is
// read at index i % period (period 1: a scalar; C: per channel of an NHWC tensor).
struct BroadcastParams {
  std::int64_t n = 0, period = 1;
};
// y = x·scale[·] + offset[·]  (Rescaling; Normalization with invert = true)
template <class T>
void scale_offset_forward(const BroadcastParams& p, const T* x, const T* scale, const T* offset, T* y);
// dx = dy·scale[·]
template <class T>
void scale_backward(const BroadcastParams& p, const T* dy, const T* scale, T* dx);
// y = (x − mean[·]) / denom[·]  (Normalization; denom = max(sqrt(variance), epsilon))
template <class T>
void normalize_forward(const BroadcastParams& p, const T* x, const T* mean, const T* denom, T* y);
// dx = dy / denom[·]
template <class T>
void normalize_backward(const BroadcastParams& p, const T* dy, const T* denom, T* dx);

// Keras backend.relu(x, alpha = negative_slope, max_value, threshold) over n values:
// y = clip(x·[x > threshold], 0, max_value) − negative_slope·max(threshold − x, 0) (no clip without
// max_value); the gradient passes where threshold < x (and the unclipped value < max_value), and is
// negative_slope where x < threshold.
struct ReluParams {
  std::int64_t n = 0;
  double negative_slope = 0.0, threshold = 0.0;
  bool has_max = false;
  double max_value = 0.0;
};
template <class T>
void relu_forward(const ReluParams& p, const T* x, T* y);
template <class T>
void relu_backward(const ReluParams& p, const T* x, const T* dy, T* dx);

// Softmax over one axis: x viewed as [outer, dim, inner].
struct SoftmaxParams {
  std::int64_t outer = 1, dim = 1, inner = 1;
};
template <class T>
void softmax_forward(const SoftmaxParams& p, const T* x, T* y);
// dx = y ⊙ (dy − Σ_axis dy·y)
template <class T>
void softmax_backward(const SoftmaxParams& p, const T* y, const T* dy, T* dx);

// Concatenation: y viewed as [outer, width] rows; one input x [outer, part] goes to the columns
// [offset, offset + part).
struct ConcatParams {
  std::int64_t outer = 1, width = 1, offset = 0, part = 1;
};
template <class T>
void concat_forward(const ConcatParams& p, const T* x, T* y);
// dx [outer, part] = those columns of dy
template <class T>
void concat_backward(const ConcatParams& p, const T* dy, T* dx);

// Which implementation dispatch picks.
enum class Backend { fast, reference };
void set_backend(Backend backend);
Backend backend();

// The instruction set oneDNN's kernels use on this CPU (dnnl::get_effective_cpu_isa):
// "avx512_core_bf16", "avx512_core_amx", "avx2", ... The rules that differ per CPU read this (a
// fixed fact of the machine, so a run on one machine still gives the same bits every time).
const char* cpu_isa();
// The kernels OpenBLAS chose at load for this CPU (openblas_get_corename: "SkylakeX", "Haswell",
// "Prescott" where 0.3.21 does not know the model); OPENBLAS_CORETYPE overrides its choice.
const char* blas_core();
// What runs float64's gemms (the BLAS convolution paths, Dense): "reskit avx512" (kernels/cpu/dgemm.h)
// where the CPU has AVX-512, else "OpenBLAS" (with the kernels blas_core() names).
const char* float64_gemm();

}  // namespace reskit::kernels

#include "kernels/image.h"
