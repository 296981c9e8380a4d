// float32 3x3 convolutions by Winograd's minimal filtering, F(2x2, 3x3) and F(4x4, 3x3), written
// here: the transforms in plain loops over NHWC, the products of the transformed operands as one
// batched oneDNN matmul, or (F(4x4) over few channels) block by block of images by a kernel of
// ours. Paths of each float32 list in kernels/dispatch.cpp, which decides when each runs.
//
// oneDNN 2.6 has F(4x4, 3x3) kernels of its own (onednn_conv.cpp), but they take activations only
// in its blocked layout, so every call reorders its operands from and to NHWC, and at 4x4 outputs
// (ResNet-50's fourth stage at 64x64 input: 256 channels) they have one tile per image, mostly
// padding: products only N rows deep over a weight transform 4x the size of the weights.
// docs/cpu-rules.md has the measurements.
//
// With m the output tile (2 or 4) and α = m + 2 its input window, per tile of m x m outputs, d its
// α x α input window (padding read as zero), g one 3x3 kernel:
//   forward           y  = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A
//   backward-data     dd = B [(G g Gᵀ) ⊙ (A dy Aᵀ)] Bᵀ, added over the overlapping windows
//   backward-weights  dg = Gᵀ [Σ_tiles (Bᵀ d B) ⊙ (A dy Aᵀ)] G
// with the matrices of Lavin and Gray (2016), "Fast Algorithms for Convolutional Neural Networks"
// (interpolation points 0, ±1 for F(2x2); 0, ±1, ±2 for F(4x4)). F(2x2)'s matrices hold 0, ±1 and
// ±1/2 only, so its transforms are exact up to the rounding of their sums; F(4x4)'s hold up to 8
// and 1/24, and round more (within the tests' tolerance, as oneDNN's F(4x4)). The sum over input
// channels (and over tiles for backward-weights) is the batched product, one per position of the
// α x α transformed tile.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

// The rules (fixed functions of the shape), both for 3x3, stride 1, "same" (padding 1 on every
// side, P = H, Q = W), no residual (forward; the other entries add it in their own epilogue):
//   F(4x4, 3x3): P and Q >= 4, C and K multiples of 16 and >= 64, at least 32 tiles of 4x4
//     (N·⌈P/4⌉·⌈Q/4⌉). Over 32 channels and 16 oneDNN's own F(4x4) is faster.
//   F(2x2, 3x3), after it in the lists: a 4x4 output and a batch of 4 or more (16 tiles of 2x2),
//     so where F(4x4)'s rule does not hold, at batch 4 to 31 or fewer channels. Over 3x3 outputs
//     (partial tiles) and 2x2 ones the row products are faster.
// The transforms handle any size (the benchmarks force them outside the rules).
bool own_winograd_f2(const Conv2DParams& p);
bool own_winograd_f4(const Conv2DParams& p);

// m: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3). The transformed weights are kept across calls by
// (w, Conv2DParams::weights_version) where a version is given, so a training step's backward-data
// reads its forward's, and inference keeps them.
// y[N,P,Q,K] = conv(x, w) + b[K] (b may be null), then max(0, ·) when p.relu. by_rule false: also
// outside the rule (benchmarks, tests), wherever the algorithm applies (3x3, stride 1, "same", no
// residual). False (nothing written) where it does not, and where oneDNN has only its reference
// matmul.
bool own_winograd_forward(int m, const Conv2DParams& p, const float* x, const float* w, const float* b,
                          float* y, bool by_rule = true);
// dx[N,H,W,C] from dy[N,P,Q,K] and w[3,3,C,K].
bool own_winograd_backward_data(int m, const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                bool by_rule = true);
// dw[3,3,C,K] and db[K] (db may be null) from x and dy. It reads the transformed dy that the
// backward-data before it left on this thread when dy is the same tensor at the same version
// (Conv2DParams::dy_version) with the same tile, instead of transforming it again.
bool own_winograd_backward_weights(int m, const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                   float* db, bool by_rule = true);

// F(4x4, 3x3) fused: the same transforms, but block by block of whole images (about 64 tiles),
// each block transformed into per-thread scratch, its α² products run there by an AVX-512 kernel
// of reskit's (accumulators in registers) and transformed back while still in cache. Where the
// channels are few (16, 32) the batched products above read as many values as they multiply; here
// that traffic stays in cache. Rules (the CPU has AVX-512: the kernel's only build):
//   forward, backward-data: as F(4x4)'s, but C and K 16 or 32 (multiples of 16 below 64);
//   backward-weights: the same with C and K = 32 (at 16 channels oneDNN's F(4x4) is faster).
// Backward-weights transforms dy again per block (nothing is kept); its per-thread sums are added
// in thread order.
bool own_winograd_fused(const Conv2DParams& p);
bool own_winograd_fused_weights(const Conv2DParams& p);
bool own_winograd_fused_forward(const Conv2DParams& p, const float* x, const float* w, const float* b,
                                float* y, bool by_rule = true);
bool own_winograd_fused_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                      bool by_rule = true);
bool own_winograd_fused_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                         float* db, bool by_rule = true);

}  // namespace reskit::kernels::onednn
