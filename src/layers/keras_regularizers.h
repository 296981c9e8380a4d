// Keras regularizer and constraint configs (internal): the one reader of every form Keras writes
// (tf.keras 2.x {"class_name", "config"}, Keras 2.13+ and 3 with "module" and "registered_name",
// the string names Keras accepts, older key names), and the writer of tf.keras 2.6's form. Each
// layer's config reader and writer calls these; anything reskit does not implement is a
// FileError naming the layer, the option and its value, never dropped.
#pragma once

#include <optional>

#include "layers/keras_json.h"
#include "reskit/optim/constraints.h"
#include "reskit/optim/regularizers.h"

namespace reskit::keras {

// c[key]: null or absent gives nullopt. Names: L1/l1, L2/l2 (default 0.01), L1L2/l1l2 (0, 0),
// l1_l2 (Keras's function: 0.01, 0.01); config keys l1, l2 (and "l", Keras 2's old name).
std::optional<Regularizer> regularizer_option(const Json& c, const char* key, const LayerCtx& l);
// c[key]: MaxNorm/max_norm/maxnorm (max_value 2, axis 0; old key "m"), NonNeg/non_neg/nonneg,
// UnitNorm/unit_norm/unitnorm (axis 0), MinMaxNorm/min_max_norm (min_value 0, max_value 1,
// rate 1, axis 0; old keys "low", "high"). axis: an integer or a list of them.
std::optional<Constraint> constraint_option(const Json& c, const char* key, const LayerCtx& l);

// tf.keras 2.6's get_config forms: {"class_name": "L2", "config": {"l2": 0.0001}}; null for none.
Json regularizer_json(const std::optional<Regularizer>& r);
Json constraint_json(const std::optional<Constraint>& c);

// Conv2D's and Dense's five options (kernel_regularizer, bias_regularizer,
// activity_regularizer, kernel_constraint, bias_constraint) into their options struct.
template <class Options>
void read_kernel_bias_rules(const Json& c, const LayerCtx& l, Options& o) {
  o.kernel_regularizer = regularizer_option(c, "kernel_regularizer", l);
  o.bias_regularizer = regularizer_option(c, "bias_regularizer", l);
  o.activity_regularizer = regularizer_option(c, "activity_regularizer", l);
  o.kernel_constraint = constraint_option(c, "kernel_constraint", l);
  o.bias_constraint = constraint_option(c, "bias_constraint", l);
}

// The same five, in Keras's order: the kernel's from its Param, the bias's as given (its Param's,
// or the options' without use_bias).
void add_kernel_bias_rules(Json& c, const Param& kernel, const std::optional<Regularizer>& bias_regularizer,
                           const std::optional<Regularizer>& activity_regularizer,
                           const std::optional<Constraint>& bias_constraint);

}  // namespace reskit::keras
