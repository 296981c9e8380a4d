// Categorical cross-entropy (from probabilities or from softmax logits) and accuracy.
#include "reskit/optim/loss.h"

#include <algorithm>
#include <cmath>

#include "reskit/error.h"
#include "util/dtype_visit.h"

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
  // Keras: p = y / Σy per row, clipped to [eps, 1 − eps]; L = −Σ t·log p, mean over rows.
  // dL/dy_j = (−t_j·m_j/y_j + Σ_i t_i·m_i/S)/N, m_i = 1 where p_i is not clipped.
  for (std::int64_t r = 0; r < n; ++r) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < k; ++j) sum += y_pred.at(r * k + j);
    double kept = 0.0;
    for (std::int64_t j = 0; j < k; ++j) {
      const double t = y_true.at(r * k + j), raw = y_pred.at(r * k + j) / sum;
      total -= t * std::log(std::clamp(raw, kEps, 1.0 - kEps));
      if (raw > kEps && raw < 1.0 - kEps) kept += t;
    }
    if (!grad) continue;
    for (std::int64_t j = 0; j < k; ++j) {
      const double y = y_pred.at(r * k + j), t = y_true.at(r * k + j), raw = y / sum;
      const double own = (raw > kEps && raw < 1.0 - kEps) ? -t / y : 0.0;
      grad->set(r * k + j, (own + kept / sum) / static_cast<double>(n));
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

namespace {
// Class indices (N) / (N, 1) to one-hot (N, K); one-hot targets pass through.
Tensor to_one_hot(const Tensor& pred, const Tensor& y_true) {
  if (y_true.shape() == pred.shape()) return y_true;
  const std::int64_t n = pred.dim(0), k = pred.dim(1);
  if (y_true.numel() != n) {
    throw ShapeError("sparse_categorical_crossentropy: expected " + std::to_string(n) +
                     " class indices, got targets of shape " + shape_str(y_true.shape()));
  }
  Tensor out({n, k}, pred.dtype());
  for (std::int64_t i = 0; i < n; ++i) {
    const double c = y_true.at(i);
    if (c < 0 || c >= static_cast<double>(k) || c != std::floor(c)) {
      throw ShapeError("sparse_categorical_crossentropy: target " + std::to_string(i) + " is " +
                       std::to_string(c) + "; expected a class index in [0, " + std::to_string(k) + ")");
    }
    out.set(i * k + static_cast<std::int64_t>(c), 1.0);
  }
  return out;
}
}  // namespace

double SparseCategoricalCrossentropy::compute(const Tensor& y_pred, const Tensor& y_true,
                                              Tensor* grad) const {
  return CategoricalCrossentropy::compute(y_pred, to_one_hot(y_pred, y_true), grad);
}

double SparseCategoricalCrossentropy::compute_from_logits(const Tensor& logits, const Tensor& y_true,
                                                          Tensor* grad) const {
  return CategoricalCrossentropy::compute_from_logits(logits, to_one_hot(logits, y_true), grad);
}

std::shared_ptr<Loss> make_loss(const std::string& name) {
  if (name == "categorical_crossentropy") return std::make_shared<CategoricalCrossentropy>();
  if (name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalCrossentropy>();
  throw ConfigError("loss: unknown loss '" + name +
                    "'; expected categorical_crossentropy or sparse_categorical_crossentropy");
}

double top_k_categorical_accuracy(const Tensor& y_pred, const Tensor& y_true, int k) {
  check_pair("top_k_categorical_accuracy", y_pred, y_true);
  const std::int64_t n = y_pred.dim(0), classes = y_pred.dim(1);
  std::int64_t hits = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    std::int64_t truth = 0;
    for (std::int64_t j = 1; j < classes; ++j)
      if (y_true.at(r * classes + j) > y_true.at(r * classes + truth)) truth = j;
    const double v = y_pred.at(r * classes + truth);
    std::int64_t above = 0;
    for (std::int64_t j = 0; j < classes; ++j) above += y_pred.at(r * classes + j) > v;
    hits += above < k;
  }
  return n ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
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
