// Dense through BLAS (dense.h); db summed in double (channel_sums.h).
#include "kernels/cpu/dense.h"

#include "kernels/cpu/channel_sums.h"
#include "kernels/cpu/gemm.h"

namespace reskit::kernels::cpu {

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y) {
  gemm(false, false, p.n, p.k, p.c, T(1), x, p.c, w, p.k, T(0), y, p.k);
  if (b) add_bias(p.n, p.k, b, y);
}

template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (dx) gemm(false, true, p.n, p.c, p.k, T(1), dy, p.k, w, p.k, T(0), dx, p.c);
  gemm(true, false, p.c, p.k, p.n, T(1), x, p.c, dy, p.k, T(0), dw, p.k);
  if (db) column_sums_f64(p.n, p.k, dy, db);
}

#define RESKIT_INSTANTIATE(T)                                                           \
  template void dense_forward<T>(const DenseParams&, const T*, const T*, const T*, T*); \
  template void dense_backward<T>(const DenseParams&, const T*, const T*, const T*, T*, T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels::cpu
