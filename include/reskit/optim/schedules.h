// reskit/optim/schedules.h — learning-rate schedules (keras.optimizers.schedules): the rate as a
// function of the optimizer's step count (iterations before the update, counting from 0).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace reskit {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double operator()(std::int64_t step) const = 0;
};

// lr at step: initial·(alpha + (1 − alpha)·½(1 + cos(π·min(step, decay_steps)/decay_steps))),
// after a linear warm-up from 0 over warmup_steps (Keras CosineDecay with warmup).
class CosineDecay : public LearningRateSchedule {
 public:
  CosineDecay(double initial_learning_rate, std::int64_t decay_steps, double alpha = 0.0,
              std::int64_t warmup_steps = 0);
  double operator()(std::int64_t step) const override;

 private:
  double initial_, alpha_;
  std::int64_t decay_steps_, warmup_steps_;
};

// values[i] while step <= boundaries[i] (Keras PiecewiseConstantDecay); values has one more
// entry than boundaries.
class PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  PiecewiseConstantDecay(std::vector<std::int64_t> boundaries, std::vector<double> values);
  double operator()(std::int64_t step) const override;

 private:
  std::vector<std::int64_t> boundaries_;
  std::vector<double> values_;
};

// initial·rate^(step/decay_steps), the exponent floored when staircase (Keras ExponentialDecay).
class ExponentialDecay : public LearningRateSchedule {
 public:
  ExponentialDecay(double initial_learning_rate, std::int64_t decay_steps, double decay_rate,
                   bool staircase = false);
  double operator()(std::int64_t step) const override;

 private:
  double initial_, rate_;
  std::int64_t decay_steps_;
  bool staircase_;
};

// The large-batch recipe of Goyal et al. 2017 ("Accurate, Large Minibatch SGD"), behind reskit
// train's --lr-reference-batch and --lr-warmup-epochs.
//
// Linear scaling: a rate `lr` tuned for a batch of reference_batch becomes lr · global_batch /
// reference_batch (their lr = 0.1 · B / 256); reference_batch 0 leaves it unchanged.
// ConfigError when a batch is negative or global_batch < 1.
double linearly_scaled_learning_rate(double lr, std::int64_t global_batch, std::int64_t reference_batch);

// Gradual warm-up: lr · (step + 1) / warmup_steps for step < warmup_steps (the line from 0 that
// reaches lr at step warmup_steps − 1), then `after` (or lr when it is null). CosineDecay's own
// warmup_steps is the same line in front of the cosine.
class LinearWarmup : public LearningRateSchedule {
 public:
  LinearWarmup(std::shared_ptr<LearningRateSchedule> after, double lr, std::int64_t warmup_steps);
  double operator()(std::int64_t step) const override;

 private:
  std::shared_ptr<LearningRateSchedule> after_;
  double lr_;
  std::int64_t warmup_steps_;
};

}  // namespace reskit
