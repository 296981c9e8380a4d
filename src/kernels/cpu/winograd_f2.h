// float32 3x3 convolutions over small images by Winograd's F(2x2, 3x3), written here: the
// transforms in plain loops, the 16 products of the transformed operands as one batched oneDNN
// matmul. One path of each float32 list in kernels/dispatch.cpp, which decides when it runs.
//
// Where the output is 3 or 4 pixels a side (ResNet-50's fourth stage at 64x64 input: 4x4 at
// 256 channels), oneDNN's F(4x4, 3x3) kernels have one tile per image, mostly padding, and
// products only N rows deep over a weight transform 4x the size of the weights. F(2x2, 3x3)
// has four tiles per image: 16 products N·⌈P/2⌉·⌈Q/2⌉ rows deep over a transform of
// 16/9 the weights (docs/cpu-rules.md has the measurements).
//
// Per tile of 2x2 outputs, d its 4x4 input window (padding read as zero), g one 3x3 kernel:
//   forward           y  = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
//   backward-data     dd = B [(G g Gᵀ) ⊙ (A dy Aᵀ)] Bᵀ, added over the overlapping windows
//   backward-weights  dg = Gᵀ [Σ_tiles (Bᵀ d B) ⊙ (A dy Aᵀ)] G
// with the matrices of Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural
// Networks": Bᵀ and Aᵀ hold 0 and ±1 only, G also ±1/2, so every transform is exact up to the
// rounding of its sums. The sum over input channels (and over tiles for backward-weights) is
// the batched product, per position of the 4x4 transformed tile.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

// The rule (a fixed function of the shape): 3x3, stride 1, "same" (padding 1 on every side,
// P = H, Q = W), a 4x4 output, a batch of 4 or more (16 tiles of 2x2), and no residual (forward;
// the other entries add it in their own epilogue). Over 3x3 outputs (partial tiles, 7 of 16
// outputs discarded) and 2x2 ones the row products are faster, past 4x4 oneDNN's F(4x4, 3x3);
// the transforms handle any size (the benchmarks force them there).
bool winograd_f2(const Conv2DParams& p);

// The transformed weights are kept across calls by (w, Conv2DParams::weights_version) where a
// version is given, so a training step's backward-data reads its forward's.
// y[N,P,Q,K] = conv(x, w) + b[K] (b may be null), then max(0, ·) when p.relu. by_rule false:
// also outside the rule (benchmarks), wherever the algorithm applies (3x3, stride 1, "same").
// False (nothing written) where it does not, and where oneDNN has only its reference matmul.
bool winograd_f2_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                         bool by_rule = true);
// dx[N,H,W,C] from dy[N,P,Q,K] and w[3,3,C,K].
bool winograd_f2_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                               bool by_rule = true);
// dw[3,3,C,K] and db[K] (db may be null) from x and dy. It reads the transformed dy that the
// backward-data before it left on this thread when dy is the same tensor at the same version
// (Conv2DParams::dy_version), instead of transforming it again.
bool winograd_f2_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                  float* db, bool by_rule = true);

}  // namespace reskit::kernels::onednn
