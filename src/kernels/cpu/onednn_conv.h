// float32 Conv2D as oneDNN convolution primitives, and its mixed-precision (bfloat16 operands,
// float32 results) variant: one path of each list in kernels/dispatch.cpp, which decides when it
// runs. Activations stay NHWC in the caller's buffers; weights are Keras HWIO on the caller's side
// and reordered per call into the layout oneDNN chooses (forward weights with a version stamp,
// Conv2DParams::weights_version, are reordered once and kept).
//
// Each function returns false, having written nothing, when oneDNN has no primitive for the shape
// other than its (slow) reference implementation; the dispatcher then tries the next path.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

// y[N,P,Q,K] = conv(x[N,H,W,C], w[R,S,C,K]) + b[K] (b may be null), then max(0, ·) when p.relu.
bool conv_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
// Which of oneDNN's implementations a float32 forward convolution runs: by_rule is what
// conv_forward runs (prefer_direct_jit in onednn_conv.cpp); the others force one for benchmarks
// (bench/bench_kernels.cpp --rules): the first oneDNN offers (brgconv for NHWC on AVX-512), or
// its direct jit:avx512_core (the first where it has none).
enum class ForwardImpl { by_rule, first_offered, direct_jit };
bool conv_forward_impl(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                       ForwardImpl impl);
// The rule by_rule follows: true where the direct kernel runs (a fixed function of the shape and the
// CPU's vendor; bench/bench_kernels.cpp --rules reads it to say which path is the rule's).
bool prefer_direct_jit(const Conv2DParams& p);
// The same for mixed precision's bfloat16 forward: oneDNN's direct jit_bf16:avx512_core_bf16
// instead of brgconv, for a kernel larger than 1x1 over at most 16 input channels, unless oneDNN
// runs AMX (whose brgconv kernels are the AMX ones).
bool prefer_direct_jit_bf16(const Conv2DParams& p);
// dx[N,H,W,C] from dy[N,P,Q,K], w[R,S,C,K]: by the rule flipped_backward_data (onednn_conv.cpp),
// a forward convolution of dy over the flipped kernel or oneDNN's backward-data primitive.
bool conv_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx);
// Which one runs: by_rule is what conv_backward_data runs; the others force one (tests, benchmarks).
enum class BackwardDataImpl { by_rule, primitive, flipped_forward };
bool conv_backward_data_impl(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                             BackwardDataImpl impl);
// The rule by_rule follows: true where the flipped forward runs.
bool flipped_backward_data(const Conv2DParams& p);
// The same dx as a forward convolution of dy over w flipped in space, C and K exchanged
// (onednn_conv_flipped.cpp). Only for stride 1, odd R and S, pad_top = (R-1)/2, pad_left = (S-1)/2,
// P = H and Q = W ("same"); false (nothing written) where oneDNN has no fast forward primitive.
bool conv_backward_data_flipped(const Conv2DParams& p, const float* dy, const float* w, float* dx);
// dw[R,S,C,K], db[K] (db may be null) from x[N,H,W,C], dy[N,P,Q,K]
bool conv_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db);

// float32 through oneDNN's Winograd kernels (F(4x4, 3x3), jit_wino_4x3:avx512_core): the same
// y, dx and dw (with db) up to the Winograd transforms' rounding. Each runs only where its rule
// holds, fixed functions of the shape (onednn_conv.cpp has the measurements): winograd_weights
// for backward-weights (3x3, stride 1, "same", C and K multiples of 16, P and Q at least 4, at
// least 32 output tiles of 4x4), winograd for forward and backward-data (the same with C and K
// at least 32 or at most 28x28 output pixels, and no residual). False (nothing written)
// elsewhere, and where oneDNN has no Winograd kernel for this CPU.
bool winograd_weights(const Conv2DParams& p);
bool winograd(const Conv2DParams& p);
// by_rule false: also outside the rules (benchmarks measuring them), wherever oneDNN has a
// Winograd kernel for the shape (never with a residual).
bool conv_forward_winograd(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                           bool by_rule = true);
bool conv_backward_data_winograd(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                 bool by_rule = true);
bool conv_backward_weights_winograd(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                    float* db, bool by_rule = true);

// Mixed precision: the operands in bfloat16 (the caller's roundings, Conv2DParams::x_bf16, dy_bf16,
// w_bf16, where given; else converted per call), results in float32, or y and dx in bfloat16 where
// Conv2DParams::y_bf16 or dx_bf16 asks (oneDNN's primitives with a bfloat16 destination: the
// float32 sums rounded to nearest even). conv_backward_bf16 computes dx
// when dx is given and dw (with db when given) when dw is given, both primitives found before
// either runs. oneDNN 2.6's bfloat16 backward-data writes wrong dx when K is odd: the dispatcher's
// rule never asks it for one.
bool conv_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
// The same with the implementation forced as conv_forward_impl does (by_rule: prefer_direct_jit_bf16;
// direct_jit: oneDNN's jit_bf16:avx512_core_bf16).
bool conv_forward_bf16_impl(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                            ForwardImpl impl);
bool conv_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                        float* dw, float* db);

}  // namespace reskit::kernels::onednn
