// Learning-rate schedules.
#include "reskit/optim/schedules.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "reskit/error.h"

namespace reskit {

CosineDecay::CosineDecay(double initial, std::int64_t decay_steps, double alpha, std::int64_t warmup_steps)
    : initial_(initial), alpha_(alpha), decay_steps_(decay_steps), warmup_steps_(warmup_steps) {
  if (!(initial > 0.0))
    throw ConfigError("CosineDecay: expected initial_learning_rate > 0, got " + std::to_string(initial));
  if (decay_steps <= 0)
    throw ConfigError("CosineDecay: expected decay_steps > 0, got " + std::to_string(decay_steps));
  if (warmup_steps < 0)
    throw ConfigError("CosineDecay: expected warmup_steps >= 0, got " + std::to_string(warmup_steps));
}

double CosineDecay::operator()(std::int64_t step) const {
  if (step < warmup_steps_)
    return initial_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  const double t =
      static_cast<double>(std::min(step - warmup_steps_, decay_steps_)) / static_cast<double>(decay_steps_);
  return initial_ * (alpha_ + (1.0 - alpha_) * 0.5 * (1.0 + std::cos(std::numbers::pi * t)));
}

PiecewiseConstantDecay::PiecewiseConstantDecay(std::vector<std::int64_t> boundaries,
                                               std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  if (values_.size() != boundaries_.size() + 1) {
    throw ConfigError("PiecewiseConstantDecay: expected one more value than boundaries, got " +
                      std::to_string(values_.size()) + " values and " + std::to_string(boundaries_.size()) +
                      " boundaries");
  }
  if (!std::is_sorted(boundaries_.begin(), boundaries_.end())) {
    throw ConfigError("PiecewiseConstantDecay: expected increasing boundaries");
  }
}

double PiecewiseConstantDecay::operator()(std::int64_t step) const {
  for (std::size_t i = 0; i < boundaries_.size(); ++i)
    if (step <= boundaries_[i]) return values_[i];
  return values_.back();
}

ExponentialDecay::ExponentialDecay(double initial, std::int64_t decay_steps, double rate, bool staircase)
    : initial_(initial), rate_(rate), decay_steps_(decay_steps), staircase_(staircase) {
  if (decay_steps <= 0)
    throw ConfigError("ExponentialDecay: expected decay_steps > 0, got " + std::to_string(decay_steps));
}

double ExponentialDecay::operator()(std::int64_t step) const {
  double p = static_cast<double>(step) / static_cast<double>(decay_steps_);
  if (staircase_) p = std::floor(p);
  return initial_ * std::pow(rate_, p);
}

double linearly_scaled_learning_rate(double lr, std::int64_t global_batch, std::int64_t reference_batch) {
  if (global_batch < 1 || reference_batch < 0) {
    throw ConfigError(
        "linearly_scaled_learning_rate: expected global_batch >= 1 and reference_batch >= 0, got " +
        std::to_string(global_batch) + " and " + std::to_string(reference_batch));
  }
  if (reference_batch == 0) return lr;
  return lr * static_cast<double>(global_batch) / static_cast<double>(reference_batch);
}

LinearWarmup::LinearWarmup(std::shared_ptr<LearningRateSchedule> after, double lr, std::int64_t warmup_steps)
    : after_(std::move(after)), lr_(lr), warmup_steps_(warmup_steps) {
  if (warmup_steps < 0)
    throw ConfigError("LinearWarmup: expected warmup_steps >= 0, got " + std::to_string(warmup_steps));
}

double LinearWarmup::operator()(std::int64_t step) const {
  if (step < warmup_steps_) return lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  return after_ ? (*after_)(step) : lr_;
}

}  // namespace reskit
