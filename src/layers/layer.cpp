// The Layer base: naming, parameters, and calling on symbolic or concrete tensors.
#include "reskit/layers/layer.h"

#include <utility>

#include "layers/symbolic_call.h"
#include "reskit/error.h"
#include "reskit/runtime.h"
#include "util/tensor_add.h"
#include "util/unique_names.h"

namespace reskit {

namespace {
// Weights from this size up are checked against the memory available before they are allocated.
constexpr std::int64_t kCheckedParamBytes = std::int64_t{16} << 20;

}  // namespace

std::string to_snake_case(std::string_view class_name) {
  // keras.utils.generic_utils.to_snake_case: re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name), then
  // re.sub("([a-z])([A-Z])", r"\1_\2", ...), lower-cased. Written out as the two scans those
  // substitutions make (leftmost matches, none overlapping): no std::regex, whose GCC 12 build
  // warns -Wmaybe-uninitialized under ASan at -O1 (GCC bug 105616).
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto lower_or_digit = [&](char c) { return lower(c) || (c >= '0' && c <= '9'); };
  const std::string_view in = class_name;
  std::string s;
  for (std::size_t i = 0; i < in.size();) {
    if (in[i] != '\n' && i + 2 < in.size() && upper(in[i + 1]) && lower_or_digit(in[i + 2])) {
      std::size_t end = i + 3;
      while (end < in.size() && lower_or_digit(in[end])) ++end;
      s += in[i];
      s += '_';
      s += in.substr(i + 1, end - i - 1);
      i = end;
    } else {
      s += in[i++];
    }
  }
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (i + 1 < s.size() && lower(s[i]) && upper(s[i + 1])) {
      out += s[i];
      out += '_';
      out += s[i + 1];
      i += 2;
    } else {
      out += s[i++];
    }
  }
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

Layer::Layer(std::string class_name, std::string name)
    : class_name_(std::move(class_name)),
      name_(name.empty() ? detail::unique_object_name(to_snake_case(class_name_)) : std::move(name)),
      dtype_(floatx()),
      mixed_bfloat16_(global_policy() == "mixed_bfloat16") {}

std::string Layer::where() const { return class_name_ + " '" + name_ + "'"; }

void Layer::shape_error(const std::string& expected, const std::string& got) const {
  throw ShapeError(where() + ": expected " + expected + ", got " + got);
}

const Shape& Layer::single_input(const std::vector<Shape>& inputs) const {
  if (inputs.size() != 1) {
    shape_error("1 input", std::to_string(inputs.size()) + " inputs");
  }
  return inputs[0];
}

void Layer::build(const std::vector<Shape>& inputs) {
  if (built_) return;
  do_build(inputs);
  built_shapes_ = inputs;
  built_ = true;
}

Param& Layer::add_param(const std::string& short_name, const Shape& shape, bool trainable) {
  Param p;
  p.name = name_ + "/" + short_name + ":0";
  // A large weight is checked against the memory there is before it is allocated (a Dense of a
  // billion units, a config from a hostile file): ResourceError naming the layer, not a kill.
  std::int64_t bytes = static_cast<std::int64_t>(dtype_size(dtype_)) * (trainable ? 2 : 1);
  for (std::int64_t d : shape)
    bytes = d > 0 && bytes > (std::int64_t{1} << 62) / d ? std::int64_t{1} << 62 : bytes * d;
  if (bytes >= kCheckedParamBytes) {
    check_memory(where() + ": weight '" + p.name + "' of shape " + shape_str(shape) +
                     (trainable ? " (with its gradient)" : ""),
                 bytes);
  }
  p.value = Tensor(shape, dtype_);
  if (trainable) p.grad = Tensor(shape, dtype_);
  p.trainable = trainable;
  params_.push_back(std::move(p));
  return params_.back();
}

Param& Layer::built_param(std::size_t index, std::string_view short_name) {
  return const_cast<Param&>(std::as_const(*this).built_param(index, short_name));
}

const Param& Layer::built_param(std::size_t index, std::string_view short_name) const {
  if (index >= params_.size()) {
    throw Error(where() + ": expected a built layer with a weight '" + std::string(short_name) + "', got " +
                (built_ ? "none" : "an unbuilt layer"));
  }
  return params_[index];
}

const Param& Layer::built_bias(bool use_bias) const {
  if (!use_bias) throw Error(where() + ": expected use_bias = true for its bias, got use_bias = false");
  return built_param(1, "bias");
}

Param& Layer::param(std::string_view short_name) {
  std::string suffix = "/" + std::string(short_name) + ":0";
  for (auto& p : params_) {
    if (p.name.size() >= suffix.size() &&
        p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return p;
  }
  throw ConfigError(where() + ": no parameter named '" + std::string(short_name) + "'");
}

std::int64_t Layer::count_params() const {
  std::int64_t n = 0;
  for (const auto& p : params_) n += p.value.numel();
  return n;
}

std::int64_t Layer::count_trainable_params() const {
  std::int64_t n = 0;
  for (const auto& p : params_)
    if (trains(p)) n += p.value.numel();
  return n;
}

void Layer::keep_output(const Tensor& symbolic) {
  output_node_ = symbolic.node();
  output_shape_ = symbolic.shape();
}

Tensor Layer::output() const {
  if (node_count_ > 1) {
    throw Error(where() + ": expected one call for its output, got " + std::to_string(node_count_) +
                " calls (the output of a shared layer is ambiguous)");
  }
  std::shared_ptr<graph::Node> node = output_node_.lock();
  if (node == nullptr) {
    throw Error(where() + ": expected a call on symbolic tensors for its output, got " +
                (output_shape_.empty() ? std::string("none (the layer has no inbound node)")
                                       : std::string("a call whose graph is gone (its models and tensors "
                                                     "were destroyed)")));
  }
  return Tensor::symbolic(output_shape_, dtype_, std::move(node), 0);
}

Tensor Layer::logits() const { throw Error(where() + ": its output is not a softmax, so it has no logits"); }

std::vector<Tensor> Layer::backward_sum(const Tensor& a, const Tensor& b) {
  return backward(detail::add(a, b));
}

std::vector<Tensor> Layer::backward_from_logits(const Tensor&) {
  throw Error(where() + ": its output is not a softmax, so it has no logits");
}

Tensor Layer::call(const std::vector<Tensor>& inputs) {
  const int want = expected_inputs();
  if (want == kAnyInputs ? inputs.size() < 2 : static_cast<int>(inputs.size()) != want) {
    shape_error(want == kAnyInputs ? "a list of at least 2 inputs" : std::to_string(want) + " input",
                std::to_string(inputs.size()) + " inputs");
  }
  std::vector<Shape> shapes;
  bool symbolic = false, concrete = false;
  for (const auto& t : inputs) {
    if (!t.defined()) throw Error(where() + ": called on an undefined tensor");
    (t.is_symbolic() ? symbolic : concrete) = true;
    shapes.push_back(t.shape());
  }
  if (symbolic && concrete) {
    throw Error(where() + ": expected all inputs symbolic or all concrete, got a mix");
  }
  Shape out = output_shape(shapes);
  build(shapes);
  if (symbolic) {
    Tensor y = detail::record_call(shared_from_this(), node_count_++, inputs, out);
    keep_output(y);
    return y;
  }
  std::vector<Tensor> cast;
  cast.reserve(inputs.size());
  for (const auto& t : inputs) cast.push_back(t.to(dtype_));
  return forward(cast, false);
}

}  // namespace reskit
