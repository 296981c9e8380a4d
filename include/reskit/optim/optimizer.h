// reskit/optim/optimizer.h — optimizers over named parameters (Keras 2.x update rules).
//
// An optimizer updates every trainable Param from its grad. Its state (Adam's m and v, SGD's
// velocity) is keyed by the parameter's Keras name, so files can store and restore it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"

namespace reskit {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One update of every trainable parameter in params from its grad.
  virtual void apply(const std::vector<Param*>& params) = 0;
  // Updates applied so far (Keras optimizer.iterations).
  std::int64_t iterations() const { return iterations_; }
  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr);

 protected:
  explicit Optimizer(double learning_rate);
  std::int64_t iterations_ = 0;
  double learning_rate_;
};

struct AdamOptions {
  double learning_rate = 0.001;
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
};

// Adam in Keras's "epsilon hat" form (Kingma & Ba 2015, §2 end):
//   α_t = lr·sqrt(1 − β2^t)/(1 − β1^t); m ← m + (g − m)(1 − β1); v ← v + (g² − v)(1 − β2);
//   θ ← θ − α_t·m/(sqrt(v) + ε)
class Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return "Adam"; }
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
