// reskit/optim/loss.h — losses and the accuracy metric.
//
// Categorical cross-entropy follows Keras: when the model's output is a softmax the loss is
// computed from the logits (log-softmax, no clipping); otherwise probabilities are divided by
// their row sum and clipped to [1e-7, 1 − 1e-7]. The value is the mean over the batch.
#pragma once

#include <memory>
#include <string>

#include "reskit/tensor.h"

namespace reskit {

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  // Loss of probabilities y_pred (N, K) against y_true; grad (if given) receives dL/dy_pred.
  virtual double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* grad) const = 0;
  // The same from the logits of a softmax output; grad receives dL/dlogits.
  virtual double compute_from_logits(const Tensor& logits, const Tensor& y_true, Tensor* grad) const = 0;
};

// y_true one-hot (N, K).
class CategoricalCrossentropy : public Loss {
 public:
  std::string name() const override { return "categorical_crossentropy"; }
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* grad) const override;
  double compute_from_logits(const Tensor& logits, const Tensor& y_true, Tensor* grad) const override;
};

// y_true class indices (N) or (N, 1), or one-hot (N, K) as batches from a Dataset come.
class SparseCategoricalCrossentropy : public CategoricalCrossentropy {
 public:
  std::string name() const override { return "sparse_categorical_crossentropy"; }
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* grad) const override;
  double compute_from_logits(const Tensor& logits, const Tensor& y_true, Tensor* grad) const override;
};

// Throws ConfigError unless name is categorical_crossentropy or sparse_categorical_crossentropy.
std::shared_ptr<Loss> make_loss(const std::string& name);

// Fraction of rows whose argmax of y_pred equals the argmax of one-hot y_true.
double categorical_accuracy(const Tensor& y_pred, const Tensor& y_true);
// Fraction of rows whose true class is among the k largest predictions (ties count against).
double top_k_categorical_accuracy(const Tensor& y_pred, const Tensor& y_true, int k = 5);

}  // namespace reskit
