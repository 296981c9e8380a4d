// Central-difference gradient checking in float64 (flashlight jacobianTestImpl, dlib test_layer).
//
// f(inputs, params) = Σ forward(inputs) ⊙ G for a fixed random G; the analytic gradients are
// what backward(G) returns for the inputs and assigns to the parameters. Parameter gradients are
// filled with garbage before backward to prove that backward assigns them.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "reskit/reskit.h"

namespace reskit::testing {

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, double scale = 1.0) {
  Tensor t(shape, DType::float64);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d(0.0, scale);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, d(gen));
  return t;
}

inline double weighted_sum(const Tensor& y, const Tensor& g) {
  double s = 0.0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += y.at(i) * g.at(i);
  return s;
}

struct GradCheckOptions {
  double step = 1e-6;
  double rtol = 1e-6;
  double atol = 1e-8;
  int max_elements = 48;  // per tensor, sampled evenly
};

// forward(training=true) on the current values; backward(G) -> input gradients.
inline void check_gradients(const std::string& what, const std::function<Tensor()>& forward,
                            const std::function<std::vector<Tensor>(const Tensor&)>& backward,
                            std::vector<Tensor> inputs, std::vector<Param*> params, GradCheckOptions o = {}) {
  Tensor y = forward();
  Tensor g = random_tensor(y.shape(), 12345);
  for (Param* p : params)
    if (p->trainable) p->grad.fill(std::numeric_limits<double>::quiet_NaN());
  std::vector<Tensor> analytic = backward(g);
  ASSERT_EQ(analytic.size(), inputs.size()) << what;
  std::vector<Tensor> param_grads;
  for (Param* p : params) param_grads.push_back(p->trainable ? p->grad.clone() : Tensor());

  auto check_tensor = [&](const std::string& name, Tensor& value, const Tensor& grad) {
    ASSERT_EQ(grad.shape(), value.shape()) << what << " " << name;
    const std::int64_t n = value.numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / o.max_elements);
    for (std::int64_t i = 0; i < n; i += stride) {
      const double v = value.at(i);
      value.set(i, v + o.step);
      const double fp = weighted_sum(forward(), g);
      value.set(i, v - o.step);
      const double fm = weighted_sum(forward(), g);
      value.set(i, v);
      const double numeric = (fp - fm) / (2 * o.step);
      const double a = grad.at(i);
      EXPECT_NEAR(a, numeric, o.atol + o.rtol * std::max(std::abs(a), std::abs(numeric)))
          << what << ": d/d " << name << "[" << i << "]";
    }
  };
  for (std::size_t k = 0; k < inputs.size(); ++k)
    check_tensor("input " + std::to_string(k), inputs[k], analytic[k]);
  for (std::size_t k = 0; k < params.size(); ++k)
    if (params[k]->trainable) check_tensor(params[k]->name, params[k]->value, param_grads[k]);
}

// A layer called on concrete float64 inputs, in training mode.
inline void check_layer(const std::string& what, Layer& layer, std::vector<Tensor> inputs,
                        GradCheckOptions o = {}) {
  layer.call(inputs);  // builds the layer
  std::vector<Param*> params;
  for (auto& p : layer.params()) params.push_back(&p);
  check_gradients(
      what, [&] { return layer.forward(inputs, true); }, [&](const Tensor& g) { return layer.backward(g); },
      inputs, params, o);
}

// A whole model in training mode.
inline void check_model(const std::string& what, Model& model, Tensor x, GradCheckOptions o = {}) {
  check_gradients(
      what, [&] { return model.forward(x, true); }, [&](const Tensor& g) { return model.backward(g); }, {x},
      model.parameters(), o);
}

}  // namespace reskit::testing
