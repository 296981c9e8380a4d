// reskit/optim/optimizer.h — optimizers over named parameters (Keras 2.x update rules).
//
// An optimizer updates every trainable Param from its grad. Its state (Adam's m and v, SGD's
// velocity) is keyed by the parameter's Keras name, so files can store and restore it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"
#include "reskit/optim/schedules.h"

namespace reskit {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One update of every trainable parameter in params from its grad.
  virtual void apply(const std::vector<Param*>& params) = 0;
  // Updates applied so far (Keras optimizer.iterations).
  std::int64_t iterations() const { return iterations_; }
  void set_iterations(std::int64_t iterations) { iterations_ = iterations; }
  // The rate the next update uses: the schedule's value at iterations(), or the fixed rate.
  double learning_rate() const;
  // Sets the fixed rate (ReduceLROnPlateau, files); throws ConfigError when a schedule is set.
  void set_learning_rate(double lr);
  void set_schedule(std::shared_ptr<LearningRateSchedule> schedule) { schedule_ = std::move(schedule); }
  const std::shared_ptr<LearningRateSchedule>& schedule() const { return schedule_; }

 protected:
  explicit Optimizer(double learning_rate);
  std::int64_t iterations_ = 0;
  double learning_rate_;
  std::shared_ptr<LearningRateSchedule> schedule_;
};

struct AdamOptions {
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  // Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): θ ← θ − lr·weight_decay·θ before
  // the Adam update. 0 is plain Adam.
  double weight_decay = 0.0;
};

// Adam in Keras's "epsilon hat" form (Kingma & Ba 2015, §2 end):
//   α_t = lr·sqrt(1 − β2^t)/(1 − β1^t); m ← m + (g − m)(1 − β1); v ← v + (g² − v)(1 − β2);
//   θ ← θ − α_t·m/(sqrt(v) + ε)
class Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return options_.weight_decay > 0.0 ? "AdamW" : "Adam"; }
  void apply(const std::vector<Param*>& params) override;
  const AdamOptions& options() const { return options_; }
  struct Slots {
    Tensor m, v;
  };
  // State per parameter name (empty until the first step).
  std::map<std::string, Slots>& slots() { return slots_; }

 private:
  AdamOptions options_;
  std::map<std::string, Slots> slots_;
};

// AdamW: Adam with decoupled weight decay (Keras default weight_decay 0.004).
inline AdamOptions adamw_options(double learning_rate = 0.001, double weight_decay = 0.004) {
  AdamOptions o;
  o.learning_rate = learning_rate;
  o.weight_decay = weight_decay;
  return o;
}

struct SGDOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
};

// Keras SGD: v ← momentum·v − lr·g; θ ← θ + v, or with Nesterov θ ← θ + momentum·v − lr·g.
class SGD : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});
  std::string name() const override { return "SGD"; }
  void apply(const std::vector<Param*>& params) override;
  const SGDOptions& options() const { return options_; }
  std::map<std::string, Tensor>& velocities() { return velocity_; }

 private:
  SGDOptions options_;
  std::map<std::string, Tensor> velocity_;
};

}  // namespace reskit
