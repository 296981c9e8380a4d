// float32 backward-data of a stride-1 "same" convolution as a forward convolution of dy over the
// kernel flipped in space with its input and output channels swapped (onednn_conv.h,
// conv_backward_data_flipped). oneDNN 2.6's direct forward kernel runs such shapes faster than its
// backward-data kernel (ResNet-20's 28×28×16 and 14×14×32 3×3 layers on an Intel Xeon, family 6
// model 207, one thread: see flipped_backward_data in onednn_conv.cpp, which decides).
//
// The identity, for stride 1, odd R and S, pad_top = (R−1)/2, pad_left = (S−1)/2 and P = H, Q = W:
//   dx[n,h,w,c] = Σ_{r,s,k} dy[n, h+pad_top−r, w+pad_left−s, k] · w[r,s,c,k]
//              = Σ_{r',s',k} dy[n, h−pad_top+r', w−pad_left+s', k] · wf[r',s',k,c]
// with r' = R−1−r, s' = S−1−s and wf[r',s',k,c] = w[R−1−r', S−1−s', c, k]: a forward convolution
// with C and K exchanged and the same padding. The sum runs in another order than oneDNN's
// backward-data kernel's: the results agree with the reference to rounding, not bit for bit with
// that kernel.
#include <cstdint>

#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::onednn {

bool conv_backward_data_flipped(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  const std::int64_t R = p.r, S = p.s, C = p.c, K = p.k;
  thread_local Scratch flipped;
  auto* wf = static_cast<float*>(flipped.get(static_cast<std::size_t>(R * S * C * K) * sizeof(float)));
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t s = 0; s < S; ++s) {
      const float* from = w + ((R - 1 - r) * S + (S - 1 - s)) * C * K;  // [c][k]
      float* to = wf + (r * S + s) * K * C;                             // [k][c]
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t k = 0; k < K; ++k) to[k * C + c] = from[c * K + k];
    }
  Conv2DParams q;
  q.n = p.n, q.h = p.p, q.w = p.q, q.c = K;
  q.k = C, q.r = R, q.s = S, q.p = p.h, q.q = p.w;
  q.pad_top = p.pad_top, q.pad_left = p.pad_left, q.pad_bottom = p.pad_bottom, q.pad_right = p.pad_right;
  return conv_forward_impl(q, dy, wf, nullptr, dx, ForwardImpl::direct_jit);
}

}  // namespace reskit::kernels::onednn
