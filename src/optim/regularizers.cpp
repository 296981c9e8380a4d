// Keras's L1, L2 and L1L2 regularizers: each penalty next to its gradient, on weights and on
// layer outputs (activity). Plain loops: a penalty costs one pass over a weight per step.
#include "reskit/optim/regularizers.h"

#include <cmath>
#include <sstream>

#include "reskit/error.h"
#include "reskit/layers/layer.h"
#include "util/dtype_visit.h"

namespace reskit {

using detail::visit_dtype;

L1::L1(double l1) : Regularizer{RegularizerKind::l1, l1, 0.0} { check_regularizer(*this, "L1"); }
L2::L2(double l2) : Regularizer{RegularizerKind::l2, 0.0, l2} { check_regularizer(*this, "L2"); }
L1L2::L1L2(double l1, double l2) : Regularizer{RegularizerKind::l1_l2, l1, l2} {
  check_regularizer(*this, "L1L2");
}

std::string regularizer_str(const Regularizer& r) {
  std::ostringstream os;
  os.precision(17);
  switch (r.kind) {
    case RegularizerKind::l1:
      os << "L1(l1=" << r.l1 << ")";
      break;
    case RegularizerKind::l2:
      os << "L2(l2=" << r.l2 << ")";
      break;
    case RegularizerKind::l1_l2:
      os << "L1L2(l1=" << r.l1 << ", l2=" << r.l2 << ")";
      break;
  }
  return os.str();
}

void check_regularizer(const Regularizer& r, const std::string& where) {
  for (const auto& [name, v] : {std::pair{"l1", r.l1}, std::pair{"l2", r.l2}}) {
    if (!(v >= 0.0) || !std::isfinite(v)) {
      std::ostringstream os;
      os << where << ": expected a non-negative, finite regularization factor " << name << ", got " << v;
      throw ConfigError(os.str());
    }
  }
}

// ---------------------------------------------------------------- weights
// penalty = l1·Σ|w| + l2·Σw²;  d penalty / dw = l1·sign(w) + 2·l2·w

double penalty(const Regularizer& r, const Tensor& w) {
  return visit_dtype(w.dtype(), [&]<class T>(T) {
    const T* x = w.data<T>();
    double abs_sum = 0.0, square_sum = 0.0;
    for (std::int64_t i = 0, n = w.numel(); i < n; ++i) {
      const double v = x[i];
      abs_sum += std::fabs(v);
      square_sum += v * v;
    }
    return r.l1 * abs_sum + r.l2 * square_sum;
  });
}

void add_penalty_gradient(const Regularizer& r, const Tensor& w, Tensor& grad, double scale) {
  if (grad.shape() != w.shape() || grad.dtype() != w.dtype()) {
    throw ShapeError("add_penalty_gradient: expected a gradient of shape " + shape_str(w.shape()) + ", got " +
                     shape_str(grad.shape()));
  }
  visit_dtype(w.dtype(), [&]<class T>(T) {
    const T* x = w.data<T>();
    T* g = grad.data<T>();
    const T a = static_cast<T>(scale * r.l1), b = static_cast<T>(scale * 2.0 * r.l2);
    for (std::int64_t i = 0, n = w.numel(); i < n; ++i) {
      const T sign = x[i] > T(0) ? T(1) : x[i] < T(0) ? T(-1) : T(0);
      g[i] += a * sign + b * x[i];
    }
  });
}

// ---------------------------------------------------------------- activity
// y (N, ...): penalty(y) / N;  gradient (l1·sign(y) + 2·l2·y) / N

double activity_penalty(const Regularizer& r, const Tensor& y) {
  return penalty(r, y) / static_cast<double>(y.dim(0));
}

Tensor activity_gradient(const Regularizer& r, const Tensor& y, bool through_softmax, double scale) {
  Tensor g(y.shape(), y.dtype());
  add_penalty_gradient(r, y, g, scale / static_cast<double>(y.dim(0)));
  if (!through_softmax) return g;
  // dz = y ⊙ (g − Σ_k g_k·y_k), per row of the last axis
  const std::int64_t k = y.shape().back(), rows = y.numel() / k;
  visit_dtype(y.dtype(), [&]<class T>(T) {
    const T* p = y.data<T>();
    T* d = g.data<T>();
    for (std::int64_t row = 0; row < rows; ++row) {
      const T* pr = p + row * k;
      T* dr = d + row * k;
      double dot = 0.0;
      for (std::int64_t j = 0; j < k; ++j) dot += double(dr[j]) * double(pr[j]);
      for (std::int64_t j = 0; j < k; ++j) dr[j] = static_cast<T>(double(pr[j]) * (double(dr[j]) - dot));
    }
  });
  return g;
}

// ---------------------------------------------------------------- a model's parameters

double weight_penalty(const std::vector<Param*>& params) {
  double total = 0.0;
  for (const Param* p : params)
    if (p->regularizer) total += penalty(*p->regularizer, p->value);
  return total;
}

void add_weight_penalty_gradients(const std::vector<Param*>& params, double scale) {
  for (Param* p : params)
    if (p->regularizer && p->trainable) add_penalty_gradient(*p->regularizer, p->value, p->grad, scale);
}

}  // namespace reskit
