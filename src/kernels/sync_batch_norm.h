// Synchronised batch normalization's kernels (several processes' rows): the per-channel pieces
// the ranks add up, and dx from the added sums. Part of the kernels' surface beside kernels.h
// (BatchNormParams, the dims legend), routed in dispatch.cpp to ref/batch_norm_sync.h.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels {

// sums[c] = Σ_rows x (shift null) or Σ_rows (x − shift[c])², accumulated in double in row order.
template <class T>
void batch_norm_channel_sums(const BatchNormParams& p, const T* x, const T* shift, double* sums);
// Backward pieces with the global mean and biased variance: sum_dy[c] = Σ dy, sum_dy_xhat[c] =
// Σ dy·(x − mean)·rstd (rstd = 1/sqrt(var + eps)).
template <class T>
void batch_norm_backward_sums(const BatchNormParams& p, const T* x, const T* dy, const T* mean, const T* var,
                              double* sum_dy, double* sum_dy_xhat);
// dx = gamma·rstd·(dy − sum_dy/total − x̂·sum_dy_xhat/total), the sums over all `total` rows of
// every rank.
template <class T>
void batch_norm_backward_dx(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* mean,
                            const T* var, const double* sum_dy, const double* sum_dy_xhat, double total,
                            T* dx);

}  // namespace reskit::kernels
