// Reading and writing Keras regularizer and constraint configs.
#include "layers/keras_regularizers.h"

#include <string>
#include <vector>

#include "reskit/error.h"

namespace reskit::keras {

namespace {
constexpr const char* kRegularizers = "null, L1, L2 or L1L2";
constexpr const char* kConstraints = "null, MaxNorm, NonNeg, UnitNorm or MinMaxNorm";

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

// The class name of a string or {"class_name", "config", "module", "registered_name"} entry, and
// its config (empty for a string); unsupported() for any other shape, a module outside Keras or
// a registered (custom) name.
std::string class_and_config(const Json& v, const char* key, const LayerCtx& l, const char* supported,
                             Json& config) {
  config = Json::object();
  if (v.is_string()) return v.get<std::string>();
  const Json* cls = find(v, "class_name");
  if (!cls || !cls->is_string()) unsupported(l, key, v, supported);
  if (const Json* m = find(v, "module");
      m && !m->is_null() && !(m->is_string() && m->get<std::string>().rfind("keras", 0) == 0)) {
    unsupported(l, key, v, std::string(supported) + " from Keras, not from module " + m->dump());
  }
  if (const Json* r = find(v, "registered_name"); r && !r->is_null() && *r != *cls)
    unsupported(l, key, v, std::string(supported) + ", not the custom object " + r->dump());
  if (const Json* c = find(v, "config"); c && !c->is_null()) {
    if (!c->is_object()) unsupported(l, key, v, supported);
    config = *c;
  }
  return cls->get<std::string>();
}

// The number under one of `names` (the first present), or fallback when absent or null; any key
// outside `allowed` is refused with the whole entry.
double number(const Json& config, std::initializer_list<const char*> names, double fallback,
              const LayerCtx& l, const std::string& key) {
  for (const char* n : names) {
    const Json* v = find(config, n);
    if (v && !v->is_null()) return as_double(*v, l, key + "." + n);
  }
  return fallback;
}

void only_keys(const Json& config, std::initializer_list<const char*> allowed, const Json& whole,
               const char* key, const LayerCtx& l, const std::string& supported) {
  for (const auto& [k, v] : config.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) unsupported(l, key, whole, supported + " without '" + k + "'");
  }
}

std::vector<int> axis_option(const Json& config, const LayerCtx& l, const std::string& key) {
  const Json* v = find(config, "axis");
  if (!v || v->is_null()) return {0};
  const auto lo = -static_cast<std::int64_t>(kMaxInputRank),
             hi = static_cast<std::int64_t>(kMaxInputRank) - 1;
  if (v->is_number()) return {static_cast<int>(as_int(*v, l, key + ".axis", lo, hi))};
  if (!v->is_array() || v->empty())
    bad(l, "expected " + key + ".axis as an integer or a list, got " + short_dump(*v));
  std::vector<int> axis;
  for (const Json& a : *v) axis.push_back(static_cast<int>(as_int(a, l, key + ".axis", lo, hi)));
  return axis;
}

Json axis_json(const std::vector<int>& axis) {
  if (axis.size() == 1) return axis[0];
  Json a = Json::array();
  for (int x : axis) a.push_back(x);
  return a;
}
}  // namespace

std::optional<Regularizer> regularizer_option(const Json& c, const char* key, const LayerCtx& l) {
  const Json* v = find(c, key);
  if (!v || v->is_null()) return std::nullopt;
  Json config;
  const std::string cls = class_and_config(*v, key, l, kRegularizers, config);
  const std::string k = key;
  Regularizer r;
  if (one_of(cls, {"L1", "l1"})) {
    only_keys(config, {"l1", "l"}, *v, key, l, "L1");
    r = {RegularizerKind::l1, number(config, {"l1", "l"}, 0.01, l, k), 0.0};
  } else if (one_of(cls, {"L2", "l2"})) {
    only_keys(config, {"l2", "l"}, *v, key, l, "L2");
    r = {RegularizerKind::l2, 0.0, number(config, {"l2", "l"}, 0.01, l, k)};
  } else if (one_of(cls, {"L1L2", "l1l2", "l1_l2"})) {
    only_keys(config, {"l1", "l2"}, *v, key, l, "L1L2");
    const double fallback = v->is_string() && cls == "l1_l2" ? 0.01 : 0.0;  // keras.regularizers.l1_l2()
    r = {RegularizerKind::l1_l2, number(config, {"l1"}, fallback, l, k),
         number(config, {"l2"}, fallback, l, k)};
  } else {
    unsupported(l, key, *v, kRegularizers);
  }
  if (!(r.l1 >= 0.0) || !(r.l2 >= 0.0))
    bad(l, "expected non-negative factors in " + k + ", got " + short_dump(*v));
  return r;
}

std::optional<Constraint> constraint_option(const Json& c, const char* key, const LayerCtx& l) {
  const Json* v = find(c, key);
  if (!v || v->is_null()) return std::nullopt;
  Json config;
  const std::string cls = class_and_config(*v, key, l, kConstraints, config);
  const std::string k = key;
  Constraint out;
  if (one_of(cls, {"MaxNorm", "max_norm", "maxnorm"})) {
    only_keys(config, {"max_value", "m", "axis"}, *v, key, l, "MaxNorm");
    out.kind = ConstraintKind::max_norm;
    out.max_value = number(config, {"max_value", "m"}, 2.0, l, k);
    out.axis = axis_option(config, l, k);
  } else if (one_of(cls, {"NonNeg", "non_neg", "nonneg"})) {
    only_keys(config, {}, *v, key, l, "NonNeg");
    out.kind = ConstraintKind::non_neg;
  } else if (one_of(cls, {"UnitNorm", "unit_norm", "unitnorm"})) {
    only_keys(config, {"axis"}, *v, key, l, "UnitNorm");
    out.kind = ConstraintKind::unit_norm;
    out.axis = axis_option(config, l, k);
  } else if (one_of(cls, {"MinMaxNorm", "min_max_norm"})) {
    only_keys(config, {"min_value", "max_value", "rate", "axis", "low", "high"}, *v, key, l, "MinMaxNorm");
    out.kind = ConstraintKind::min_max_norm;
    out.min_value = number(config, {"min_value", "low"}, 0.0, l, k);
    out.max_value = number(config, {"max_value", "high"}, 1.0, l, k);
    out.rate = number(config, {"rate"}, 1.0, l, k);
    out.axis = axis_option(config, l, k);
  } else {
    unsupported(l, key, *v, kConstraints);
  }
  return out;
}

Json regularizer_json(const std::optional<Regularizer>& r) {
  if (!r) return nullptr;
  switch (r->kind) {
    case RegularizerKind::l1:
      return {{"class_name", "L1"}, {"config", {{"l1", r->l1}}}};
    case RegularizerKind::l2:
      return {{"class_name", "L2"}, {"config", {{"l2", r->l2}}}};
    case RegularizerKind::l1_l2:
      break;
  }
  return {{"class_name", "L1L2"}, {"config", {{"l1", r->l1}, {"l2", r->l2}}}};
}

Json constraint_json(const std::optional<Constraint>& c) {
  if (!c) return nullptr;
  switch (c->kind) {
    case ConstraintKind::max_norm:
      return {{"class_name", "MaxNorm"},
              {"config", {{"max_value", c->max_value}, {"axis", axis_json(c->axis)}}}};
    case ConstraintKind::non_neg:
      return {{"class_name", "NonNeg"}, {"config", Json::object()}};
    case ConstraintKind::unit_norm:
      return {{"class_name", "UnitNorm"}, {"config", {{"axis", axis_json(c->axis)}}}};
    case ConstraintKind::min_max_norm:
      break;
  }
  return {{"class_name", "MinMaxNorm"},
          {"config",
           {{"min_value", c->min_value},
            {"max_value", c->max_value},
            {"rate", c->rate},
            {"axis", axis_json(c->axis)}}}};
}

void add_kernel_bias_rules(Json& c, const Param& kernel, const std::optional<Regularizer>& bias_regularizer,
                           const std::optional<Regularizer>& activity_regularizer,
                           const std::optional<Constraint>& bias_constraint) {
  c["kernel_regularizer"] = regularizer_json(kernel.regularizer);
  c["bias_regularizer"] = regularizer_json(bias_regularizer);
  c["activity_regularizer"] = regularizer_json(activity_regularizer);
  c["kernel_constraint"] = constraint_json(kernel.constraint);
  c["bias_constraint"] = constraint_json(bias_constraint);
}

}  // namespace reskit::keras
