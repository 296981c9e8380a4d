// reskit/optim/constraints.h — Keras's weight constraints: MaxNorm, NonNeg, UnitNorm, MinMaxNorm.
//
// A constraint projects a weight after each optimizer update (Keras's optimizer assigns
// var.constraint(var) after the update op); it lives on the weight's Param (kernel_constraint,
// bias_constraint, gamma_constraint, beta_constraint) and Model::train_on_batch applies it.
// With norms = sqrt(Σ w² over `axis`, kept per remaining index) and ε = 1e-7 (Keras's epsilon):
//   MaxNorm     w · clip(norms, 0, max_value) / (ε + norms)
//   NonNeg      w · (w >= 0)
//   UnitNorm    w / (ε + norms)
//   MinMaxNorm  w · (rate·clip(norms, min_value, max_value) + (1 − rate)·norms) / (ε + norms)
// clip(x, lo, hi) = min(max(x, lo), hi). Keras's default axis is 0 (a Dense kernel (in, out): the
// norm of each unit's incoming weights); for a Conv2D kernel (R, S, C, K) Keras's documentation
// suggests axis [0, 1, 2] (each filter). Negative axes count from the end.
//
// Not here: tf.keras's RadialConstraint and custom constraints (files naming them are refused).
#pragma once

#include <string>
#include <vector>

#include "reskit/tensor.h"

namespace reskit {

struct Param;

enum class ConstraintKind { max_norm, non_neg, unit_norm, min_max_norm };

struct Constraint {
  ConstraintKind kind = ConstraintKind::non_neg;
  double min_value = 0.0;  // MinMaxNorm
  double max_value = 2.0;  // MaxNorm, MinMaxNorm
  double rate = 1.0;       // MinMaxNorm
  std::vector<int> axis{0};
  bool operator==(const Constraint&) const = default;
};

// Keras's constructors and their defaults; ConfigError for a non-finite value or no axis.
struct MaxNorm : Constraint {
  explicit MaxNorm(double max_value = 2.0, std::vector<int> axis = {0});
};
struct NonNeg : Constraint {
  NonNeg();
};
struct UnitNorm : Constraint {
  explicit UnitNorm(std::vector<int> axis = {0});
};
struct MinMaxNorm : Constraint {
  explicit MinMaxNorm(double min_value = 0.0, double max_value = 1.0, double rate = 1.0,
                      std::vector<int> axis = {0});
};

// "MaxNorm(max_value=2, axis=[0, 1, 2])".
std::string constraint_str(const Constraint& c);
// Throws ConfigError naming `where` for a value Keras could not use or, given a weight's rank
// (>= 0), an axis outside [-rank, rank) or repeated.
void check_constraint(const Constraint& c, const std::string& where, int rank = -1);

// w ← c(w), in place.
void apply_constraint(const Constraint& c, Tensor& w);
// Applies each trainable parameter's constraint.
void apply_constraints(const std::vector<Param*>& params);

}  // namespace reskit
