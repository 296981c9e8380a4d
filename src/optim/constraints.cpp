// Keras's weight constraints: the norms over the constraint's axes, then each projection.
// Plain loops in float64 accumulation: a constraint runs once per step on one weight.
#include "reskit/optim/constraints.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "reskit/error.h"
#include "reskit/layers/layer.h"
#include "util/dtype_visit.h"

namespace reskit {

using detail::visit_dtype;

namespace {
constexpr double kEpsilon = 1e-7;  // Keras's backend.epsilon()

Constraint make(ConstraintKind kind, double min_value, double max_value, double rate, std::vector<int> axis,
                const char* where) {
  Constraint c;
  c.kind = kind, c.min_value = min_value, c.max_value = max_value, c.rate = rate, c.axis = std::move(axis);
  check_constraint(c, where);
  return c;
}

std::string axis_str(const std::vector<int>& axis) {
  if (axis.size() == 1) return std::to_string(axis[0]);
  std::string s = "[";
  for (std::size_t i = 0; i < axis.size(); ++i) s += (i ? ", " : "") + std::to_string(axis[i]);
  return s + "]";
}
}  // namespace

MaxNorm::MaxNorm(double max_value, std::vector<int> axis)
    : Constraint(make(ConstraintKind::max_norm, 0.0, max_value, 1.0, std::move(axis), "MaxNorm")) {}
NonNeg::NonNeg() : Constraint(make(ConstraintKind::non_neg, 0.0, 2.0, 1.0, {0}, "NonNeg")) {}
UnitNorm::UnitNorm(std::vector<int> axis)
    : Constraint(make(ConstraintKind::unit_norm, 0.0, 2.0, 1.0, std::move(axis), "UnitNorm")) {}
MinMaxNorm::MinMaxNorm(double min_value, double max_value, double rate, std::vector<int> axis)
    : Constraint(
          make(ConstraintKind::min_max_norm, min_value, max_value, rate, std::move(axis), "MinMaxNorm")) {}

std::string constraint_str(const Constraint& c) {
  std::ostringstream os;
  os.precision(17);
  switch (c.kind) {
    case ConstraintKind::max_norm:
      os << "MaxNorm(max_value=" << c.max_value << ", axis=" << axis_str(c.axis) << ")";
      break;
    case ConstraintKind::non_neg:
      os << "NonNeg()";
      break;
    case ConstraintKind::unit_norm:
      os << "UnitNorm(axis=" << axis_str(c.axis) << ")";
      break;
    case ConstraintKind::min_max_norm:
      os << "MinMaxNorm(min_value=" << c.min_value << ", max_value=" << c.max_value << ", rate=" << c.rate
         << ", axis=" << axis_str(c.axis) << ")";
      break;
  }
  return os.str();
}

void check_constraint(const Constraint& c, const std::string& where, int rank) {
  auto fail = [&](const std::string& what) {
    throw ConfigError(where + ": " + constraint_str(c) + ": " + what);
  };
  for (double v : {c.min_value, c.max_value, c.rate})
    if (!std::isfinite(v)) fail("expected finite values");
  if (c.kind == ConstraintKind::non_neg) return;
  if (c.axis.empty()) fail("expected at least one axis");
  if (rank < 0) return;
  std::vector<int> seen;
  for (int a : c.axis) {
    if (a < -rank || a >= rank) {
      fail("expected axes in [" + std::to_string(-rank) + ", " + std::to_string(rank) +
           ") for a weight of rank " + std::to_string(rank) + ", got " + std::to_string(a));
    }
    const int axis = a < 0 ? a + rank : a;
    if (std::find(seen.begin(), seen.end(), axis) != seen.end())
      fail("axis " + std::to_string(a) + " repeated");
    seen.push_back(axis);
  }
}

// w (any rank); norms[g] = sqrt(Σ w² over the elements of group g), a group being the elements
// that share their indices on every axis outside c.axis (Keras's keepdims=True reduction).
void apply_constraint(const Constraint& c, Tensor& w) {
  const int rank = w.rank();
  check_constraint(c, "apply_constraint", rank);
  const std::int64_t n = w.numel();
  visit_dtype(w.dtype(), [&]<class T>(T) {
    T* x = w.data<T>();
    if (c.kind == ConstraintKind::non_neg) {
      for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] >= T(0) ? x[i] : T(0);
      return;
    }
    // group of each element: its row-major index over the kept axes
    std::vector<bool> reduced(static_cast<std::size_t>(rank), false);
    for (int a : c.axis) reduced[static_cast<std::size_t>(a < 0 ? a + rank : a)] = true;
    std::vector<std::int64_t> group_stride(static_cast<std::size_t>(rank), 0);
    std::int64_t groups = 1;
    for (int d = rank - 1; d >= 0; --d) {
      if (reduced[d]) continue;
      group_stride[d] = groups;
      groups *= w.dim(d);
    }
    std::vector<std::int64_t> group(static_cast<std::size_t>(n));
    std::vector<std::int64_t> index(static_cast<std::size_t>(rank), 0);
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t g = 0;
      for (int d = 0; d < rank; ++d) g += index[d] * group_stride[d];
      group[i] = g;
      for (int d = rank - 1; d >= 0 && ++index[d] == w.dim(d); --d) index[d] = 0;
    }
    std::vector<double> norms(static_cast<std::size_t>(groups), 0.0);
    for (std::int64_t i = 0; i < n; ++i) norms[group[i]] += double(x[i]) * double(x[i]);
    std::vector<double> scale(static_cast<std::size_t>(groups));
    for (std::int64_t g = 0; g < groups; ++g) {
      const double norm = std::sqrt(norms[g]);
      auto clip = [&](double lo, double hi) { return std::min(std::max(norm, lo), hi); };
      double desired = 1.0;  // UnitNorm
      if (c.kind == ConstraintKind::max_norm) desired = clip(0.0, c.max_value);
      if (c.kind == ConstraintKind::min_max_norm)
        desired = c.rate * clip(c.min_value, c.max_value) + (1.0 - c.rate) * norm;
      scale[g] = desired / (kEpsilon + norm);
    }
    for (std::int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(double(x[i]) * scale[group[i]]);
  });
}

void apply_constraints(const std::vector<Param*>& params) {
  for (Param* p : params)
    if (p->constraint && p->trainable) apply_constraint(*p->constraint, p->value);
}

}  // namespace reskit
