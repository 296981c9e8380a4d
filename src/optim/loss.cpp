// Categorical cross-entropy (from probabilities or from softmax logits) and accuracy.
#include "reskit/optim/loss.h"

#include <algorithm>
#include <cmath>

#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

namespace {
void check_pair(const char* what, const Tensor& a, const Tensor& y) {
  if (a.rank() != 2 || a.shape() != y.shape()) {
    throw ShapeError(std::string(what) +
                     ": expected predictions and one-hot targets of one shape (N, K), got " +
                     shape_str(a.shape()) + " and " + shape_str(y.shape()));
  }
}
}  // namespace

double CategoricalCrossentropy::compute(const Tensor& y_pred, const Tensor& y_true, Tensor* grad) const {
  check_pair("categorical_crossentropy", y_pred, y_true);
  const std::int64_t n = y_pred.dim(0), k = y_pred.dim(1);
  constexpr double kEps = 1e-7;  // Keras backend.epsilon()
  double total = 0.0;
  for (std::int64_t i = 0; i < n * k; ++i) {
    double t = y_true.at(i);
    double p = std::clamp(y_pred.at(i), kEps, 1.0 - kEps);
    total -= t * std::log(p);
    if (grad) {
      double raw = y_pred.at(i);
      grad->set(i, (raw > kEps && raw < 1.0 - kEps) ? -t / (p * static_cast<double>(n)) : 0.0);
    }
  }
  return total / static_cast<double>(n);
}

double CategoricalCrossentropy::compute_from_logits(const Tensor& logits, const Tensor& y_true,
                                                    Tensor* grad) const {
  check_pair("categorical_crossentropy", logits, y_true);
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  double total = 0.0;
  // L = mean_n (logsumexp(z_n) − Σ_k t_nk z_nk)·... = −Σ t·log_softmax(z); dL/dz = (softmax(z)·Σt − t)/N
  for (std::int64_t r = 0; r < n; ++r) {
    double mx = -INFINITY;
    for (std::int64_t j = 0; j < k; ++j) mx = std::max(mx, logits.at(r * k + j));
    double sum = 0.0;
    for (std::int64_t j = 0; j < k; ++j) sum += std::exp(logits.at(r * k + j) - mx);
    const double lse = mx + std::log(sum);
    double tsum = 0.0;
    for (std::int64_t j = 0; j < k; ++j) {
      double t = y_true.at(r * k + j);
      tsum += t;
      total -= t * (logits.at(r * k + j) - lse);
    }
    if (grad) {
      for (std::int64_t j = 0; j < k; ++j) {
        double p = std::exp(logits.at(r * k + j) - lse);
        grad->set(r * k + j, (p * tsum - y_true.at(r * k + j)) / static_cast<double>(n));
      }
    }
  }
  return total / static_cast<double>(n);
}

double categorical_accuracy(const Tensor& y_pred, const Tensor& y_true) {
  check_pair("accuracy", y_pred, y_true);
  const std::int64_t n = y_pred.dim(0), k = y_pred.dim(1);
  std::int64_t hits = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    std::int64_t a = 0, b = 0;
    for (std::int64_t j = 1; j < k; ++j) {
      if (y_pred.at(r * k + j) > y_pred.at(r * k + a)) a = j;
      if (y_true.at(r * k + j) > y_true.at(r * k + b)) b = j;
    }
    hits += a == b;
  }
  return n ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
}

}  // namespace reskit
