// reskit/optim/schedules.h — learning-rate schedules (keras.optimizers.schedules): the rate as a
// function of the optimizer's step count (iterations before the update, counting from 0).
#pragma once

#include <cstdint>
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

}  // namespace reskit
