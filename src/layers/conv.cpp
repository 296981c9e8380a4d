// Conv2D and ZeroPadding2D: forward and backward side by side, then each one's registry entry
// (Keras config, ONNX export, fusion).
#include "reskit/layers/conv.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "layers/keras_regularizers.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"
#include "reskit/layers/normalization.h"

namespace reskit {

using detail::visit_dtype;

// ---------------------------------------------------------------- Conv2D
// x (N,H,W,C) · kernel (R,S,C,K) + bias (K) -> z (N,P,Q,K); y = activation(z)

Conv2DLayer::Conv2DLayer(int filters, std::array<int, 2> kernel_size, Conv2DOptions options)
    : Layer("Conv2D", options.name),
      filters_(filters),
      kernel_size_(kernel_size),
      options_(std::move(options)) {
  if (filters_ <= 0) throw ConfigError(where() + ": expected filters > 0, got " + std::to_string(filters_));
  if (kernel_size_[0] <= 0 || kernel_size_[1] <= 0) {
    throw ConfigError(where() + ": expected a positive kernel_size, got (" + std::to_string(kernel_size_[0]) +
                      ", " + std::to_string(kernel_size_[1]) + ")");
  }
  if (options_.strides[0] <= 0 || options_.strides[1] <= 0) {
    throw ConfigError(where() + ": expected positive strides, got (" + std::to_string(options_.strides[0]) +
                      ", " + std::to_string(options_.strides[1]) + ")");
  }
  detail::check_padding_name(where(), options_.padding);
  detail::parse_activation(where(), options_.activation);
  detail::check_initializer_name(where(), options_.kernel_initializer);
  detail::check_initializer_name(where(), options_.bias_initializer);
  if (options_.activity_regularizer) check_regularizer(*options_.activity_regularizer, where());
}

Shape Conv2DLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (in.size() != 4) shape_error("a 4-D input (batch, rows, cols, channels)", "shape " + shape_str(in));
  if (built()) {
    std::int64_t c = kernel().value.dim(2);
    if (in[3] != c) shape_error(std::to_string(c) + " input channels", std::to_string(in[3]));
  }
  auto ph = detail::resolve_padding(options_.padding, in[1], kernel_size_[0], options_.strides[0]);
  auto pw = detail::resolve_padding(options_.padding, in[2], kernel_size_[1], options_.strides[1]);
  if (ph.out == 0 || pw.out == 0) {
    shape_error("an input of at least " + std::to_string(kernel_size_[0]) + "x" +
                    std::to_string(kernel_size_[1]) + " for padding 'valid'",
                "shape " + shape_str(in));
  }
  return {in[0], ph.out, pw.out, filters_};
}

void Conv2DLayer::do_build(const std::vector<Shape>& inputs) {
  const std::int64_t c = inputs[0][3];
  if (c <= 0) shape_error("a known, positive channel count", shape_str(inputs[0]));
  Param& k = add_param("kernel", {kernel_size_[0], kernel_size_[1], c, filters_}, true);
  const std::int64_t area = std::int64_t{kernel_size_[0]} * kernel_size_[1];
  detail::initialize(k.value, where(), options_.kernel_initializer, area * c, area * filters_, options_.seed);
  detail::set_weight_rules(k, options_.kernel_regularizer, options_.kernel_constraint, where());
  if (options_.use_bias) {
    Param& b = add_param("bias", {filters_}, true);
    detail::initialize(b.value, where(), options_.bias_initializer, c, filters_, options_.seed);
    detail::set_weight_rules(b, options_.bias_regularizer, options_.bias_constraint, where());
  }
}

// The weights by name, at the positions do_build gives them.
Param& Conv2DLayer::kernel() { return built_param(0, "kernel"); }
const Param& Conv2DLayer::kernel() const { return built_param(0, "kernel"); }
const Param& Conv2DLayer::bias() const { return built_bias(options_.use_bias); }
Param& Conv2DLayer::bias() { return const_cast<Param&>(std::as_const(*this).bias()); }

namespace {
kernels::Conv2DParams conv_params(const Shape& x, const Shape& y, std::array<int, 2> kernel,
                                  const Conv2DOptions& o) {
  kernels::Conv2DParams p;
  p.n = x[0], p.h = x[1], p.w = x[2], p.c = x[3];
  p.k = y[3], p.r = kernel[0], p.s = kernel[1], p.p = y[1], p.q = y[2];
  p.stride_h = o.strides[0], p.stride_w = o.strides[1];
  auto ph = detail::resolve_padding(o.padding, p.h, p.r, p.stride_h);
  auto pw = detail::resolve_padding(o.padding, p.w, p.s, p.stride_w);
  p.pad_top = ph.before, p.pad_bottom = ph.after, p.pad_left = pw.before, p.pad_right = pw.after;
  return p;
}
}  // namespace

void Conv2DLayer::set_folded_batch_norm(const BatchNormalizationLayer* bn, bool relu) {
  if (bn != nullptr && options_.activation != "linear") {
    throw Error(where() +
                ": a BatchNormalization can be folded only into a linear convolution, got activation '" +
                options_.activation + "'");
  }
  folded_bn_ = bn;
  folded_relu_ = relu;
}

void Conv2DLayer::set_folded_residual(bool on, bool relu) {
  folded_residual_ = on;
  folded_residual_relu_ = on && relu;
}

void Conv2DLayer::refresh_folded() {
  const Tensor& w_value = kernel().value;
  const BatchNormalizationLayer& bn = *folded_bn_;
  const std::array<std::uint64_t, 6> from{w_value.version(),
                                          options_.use_bias ? bias().value.version() : 0,
                                          bn.gamma().value.version(),
                                          bn.beta().value.version(),
                                          bn.moving_mean().value.version(),
                                          bn.moving_variance().value.version()};
  if (folded_kernel_.defined() && from == folded_from_) return;
  const std::int64_t k = filters_;
  folded_kernel_ = Tensor::uninitialized(w_value.shape(), dtype());
  folded_bias_ = Tensor::uninitialized({k}, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* w = w_value.data<T>();
    const T* b = options_.use_bias ? std::as_const(bias().value).data<T>() : nullptr;
    const T* gamma = bn.gamma().value.data<T>();
    const T* beta = bn.beta().value.data<T>();
    const T* mean = bn.moving_mean().value.data<T>();
    const T* var = bn.moving_variance().value.data<T>();
    const double epsilon = folded_bn_->options().epsilon;
    std::vector<double> scale(static_cast<std::size_t>(k));
    T* fb = folded_bias_.data<T>();
    for (std::int64_t j = 0; j < k; ++j) {
      scale[j] = double(gamma[j]) / std::sqrt(double(var[j]) + epsilon);
      fb[j] = static_cast<T>(((b ? double(b[j]) : 0.0) - double(mean[j])) * scale[j] + double(beta[j]));
    }
    T* fw = folded_kernel_.data<T>();
    const std::int64_t rows = w_value.numel() / k;  // R·S·C rows of K (HWIO)
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < k; ++j) fw[i * k + j] = static_cast<T>(double(w[i * k + j]) * scale[j]);
  });
  folded_from_ = from;
}

Tensor Conv2DLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
  Shape ys = output_shape({x.shape()});
  Tensor z = Tensor::uninitialized(ys, dtype());
  auto p = conv_params(x.shape(), ys, kernel_size_, options_);
  // Inference with a BatchNormalization folded in runs on the folded kernel and bias (a linear
  // convolution: the activation below is then the identity). The kernel may reuse its reordered
  // copy of the weights while their version is unchanged (read-only access keeps it): every call
  // in inference; in training, one step's forward and backward (the optimizer's update changes
  // the version).
  const bool folded = folded_bn_ != nullptr && !training;
  if (folded) refresh_folded();
  const Tensor& w = folded ? folded_kernel_ : kernel().value;
  const Tensor* b_values = folded ? &folded_bias_ : options_.use_bias ? &bias().value : nullptr;
  p.bf16 = mixed_bfloat16();
  p.weights_version = w.version();
  // A second input: the fused Add's other input (set_folded_residual), added before its ReLU.
  if (inputs.size() > 1) {
    if (!folded || !folded_residual_) {
      throw Error(where() +
                  ": expected one input (a second only with a BatchNormalization and an Add "
                  "fused in inference), got " +
                  std::to_string(inputs.size()));
    }
    const Tensor& r = inputs[1];
    if (r.shape() != ys || r.dtype() != dtype()) {
      shape_error("a residual of shape " + shape_str(ys) + " and dtype " + std::string(dtype_name(dtype())),
                  shape_str(r.shape()) + " " + std::string(dtype_name(r.dtype())));
    }
    p.residual = r.raw_data();
  }
  p.relu = folded && (p.residual != nullptr ? folded_residual_relu_ : folded_relu_);
  // Mixed-precision training rounds x to bfloat16 once, kept with x (Tensor::bf16_shadow) for the
  // backward and for other readers of x, unless its producer wrote the rounding already.
  // The kernel's rounding is kept with it the same way (Adam keeps it current as it updates the
  // kernel).
  if (training && p.bf16 && dtype() == DType::float32) {
    for (const Tensor* t : {&x, &w}) {
      if (t->bf16_shadow() != nullptr) continue;
      kernels::round_to_bf16(t->data<float>(), t->numel(), t->bf16_shadow_buffer());
      t->bf16_shadow_written();
    }
    p.x_bf16 = x.bf16_shadow();
  }
  if (p.bf16) p.w_bf16 = w.bf16_shadow();
  // Keras's bfloat16 activations (set_bf16_only): the output as its rounding alone, where the
  // normalization after reads only that, and the input gradient likewise in the backward.
  const bool bf16_activations = training && p.x_bf16 != nullptr && options_.activation == "linear";
  last_output_bf16_only_ = bf16_activations && bf16_only_output_;
  bf16_only_dx_ = bf16_activations && bf16_only_input_gradient_;
  if (last_output_bf16_only_) p.y_bf16 = z.bf16_shadow_buffer();
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* b = b_values != nullptr ? b_values->data<T>() : nullptr;
    kernels::conv2d_forward<T>(p, detail::operand<T>(x, p.x_bf16), w.data<T>(), b, z.data<T>());
  });
  if (last_output_bf16_only_) z.bf16_shadow_only_written();
  x_ = x;
  z_ = z;
  y_ = detail::activated(detail::parse_activation(where(), options_.activation), z_);
  return y_;
}

std::vector<Tensor> Conv2DLayer::backward_from_logits(const Tensor& dz) {
  auto p = conv_params(x_.shape(), dz.shape(), kernel_size_, options_);
  p.bf16 = mixed_bfloat16();
  p.weights_version = kernel().value.version();  // the forward's reordered or bfloat16 copy
  p.dy_version = dz.version();                   // one conversion of dz for both passes
  if (p.bf16) {  // the roundings of x, dz and the kernel kept with them, where there are
    p.x_bf16 = x_.bf16_shadow();
    p.dy_bf16 = dz.bf16_shadow();
    p.w_bf16 = kernel().value.bf16_shadow();
  }
  // The input gradient only when someone needs it (not for a first layer in a training step).
  Tensor dx = input_gradients_needed() ? Tensor::uninitialized(x_.shape(), dtype()) : Tensor();
  const bool dx_bf16_only = p.bf16 && bf16_only_dx_ && dx.defined();
  if (dx_bf16_only) p.dx_bf16 = dx.bf16_shadow_buffer();
  visit_dtype(dtype(), [&]<class T>(T) {
    T* db = options_.use_bias ? bias().grad.data<T>() : nullptr;
    kernels::conv2d_backward<T>(p, detail::operand<T>(x_, p.x_bf16), detail::operand<T>(dz, p.dy_bf16),
                                std::as_const(kernel().value).data<T>(),
                                dx.defined() ? dx.data<T>() : nullptr, kernel().grad.data<T>(), db);
  });
  if (dx_bf16_only) dx.bf16_shadow_only_written();
  return {dx};
}

std::vector<Tensor> Conv2DLayer::backward(const Tensor& dy) {
  auto act = detail::parse_activation(where(), options_.activation);
  return backward_from_logits(detail::activation_backward(act, z_, y_, dy));
}

bool Conv2DLayer::outputs_softmax() const { return options_.activation == "softmax"; }
Tensor Conv2DLayer::logits() const { return z_; }
const Regularizer* Conv2DLayer::activity_regularizer() const {
  return options_.activity_regularizer ? &*options_.activity_regularizer : nullptr;
}

Conv2D::Conv2D(int filters, std::array<int, 2> kernel_size, Conv2DOptions options)
    : LayerRef(std::make_shared<Conv2DLayer>(filters, kernel_size, std::move(options))) {}

// Conv2D in Keras configs, ONNX and fusion (layers/registry.h).
namespace layers {
namespace {
using keras::Json;

Tensor conv2d_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                          keras::WeightBudget& budget) {
  const Tensor& x = keras::one_input(in, l);
  keras::check_rank(x, 4, l);
  const int filters =
      static_cast<int>(keras::as_int(keras::require(c, "filters", l), l, "filters", 1, keras::kMaxDim));
  const auto kernel =
      keras::as_pair(keras::require(c, "kernel_size", l), l, "kernel_size", 1, keras::kMaxDim);
  Conv2DOptions o;
  if (const Json* v = keras::find(c, "strides"); v && !v->is_null())
    o.strides = keras::as_pair(*v, l, "strides", 1, keras::kMaxDim);
  o.padding = keras::padding_option(c, l);
  keras::expect_channels_last(c, l);
  if (const Json* v = keras::find(c, "dilation_rate");
      v && !v->is_null() &&
      keras::as_pair(*v, l, "dilation_rate", 1, keras::kMaxDim) != std::array<int, 2>{1, 1}) {
    keras::unsupported(l, "dilation_rate", *v, "[1, 1]");
  }
  if (const Json* v = keras::find(c, "groups");
      v && !v->is_null() && keras::as_int(*v, l, "groups", 1, keras::kMaxDim) != 1) {
    keras::unsupported(l, "groups", *v, "1");
  }
  keras::expect_null(c, l, {"lora_rank"});
  keras::read_kernel_bias_rules(c, l, o);
  o.activation = keras::activation_option(c, "activation", l);
  o.use_bias = keras::bool_option(c, "use_bias", true, l);
  o.kernel_initializer = keras::initializer_option(c, "kernel_initializer", "glorot_uniform", &o.seed, l);
  o.bias_initializer = keras::initializer_option(c, "bias_initializer", "zeros", nullptr, l);
  o.name = l.name;
  const long double cin = static_cast<long double>(x.shape()[3]);
  budget.add(l, (static_cast<long double>(kernel[0]) * kernel[1] * cin + (o.use_bias ? 1 : 0)) * filters);
  return Conv2D(filters, kernel, o)(x);
}

Json conv2d_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& l = dynamic_cast<const Conv2DLayer&>(layer);
  const auto& o = l.options();
  Json c = keras::base_config(layer);
  c["filters"] = l.filters();
  c["kernel_size"] = keras::pair_json(l.kernel_size());
  c["strides"] = keras::pair_json(o.strides);
  c["padding"] = o.padding;
  c["data_format"] = "channels_last";
  c["dilation_rate"] = Json::array({1, 1});
  c["groups"] = 1;
  c["activation"] = o.activation;
  c["use_bias"] = o.use_bias;
  c["kernel_initializer"] = keras::initializer_json(o.kernel_initializer, o.seed);
  c["bias_initializer"] = keras::initializer_json(o.bias_initializer, o.seed);
  keras::add_kernel_bias_rules(c, l.kernel(), o.use_bias ? l.bias().regularizer : o.bias_regularizer,
                               o.activity_regularizer, o.use_bias ? l.bias().constraint : o.bias_constraint);
  return c;
}

onnx_export::Value conv2d_to_onnx(onnx_export::NodeExport& e) {
  auto& conv = dynamic_cast<Conv2DLayer&>(e.layer());
  auto& g = e.graph();
  const onnx_export::Value& x = e.input4d();
  const auto& o = conv.options();
  const auto ks = conv.kernel_size();
  // HWIO (R, S, C, K) -> OIHW (K, C, R, S)
  const Param& kp = conv.kernel();
  const Shape& ksh = kp.value.shape();
  const std::int64_t R = ksh[0], S = ksh[1], C = ksh[2], K = ksh[3];
  std::vector<float> hwio = onnx_export::float_values(kp), oihw(hwio.size());
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t k = 0; k < K; ++k)
          oihw[((k * C + c) * R + r) * S + s] = hwio[((r * S + s) * C + c) * K + k];
  std::vector<std::string> inputs{x.name, g.initializer(kp.name, {K, C, R, S}, oihw)};
  if (o.use_bias) {
    const Param& bp = conv.bias();
    inputs.push_back(g.initializer(bp.name, {K}, onnx_export::float_values(bp)));
  }
  onnx_export::Value z{e.pre_activation_name(o.activation, "Conv"), 4};
  auto& n = g.node("Conv", inputs, z.name, e.base());
  n.set_ints("kernel_shape", {ks[0], ks[1]});
  n.set_ints("strides", {o.strides[0], o.strides[1]});
  n.set_ints("pads", e.pads(o.padding, ks, o.strides));
  n.set_ints("dilations", {1, 1});
  n.set_int("group", 1);
  return e.activation(o.activation, z, false);
}
}  // namespace

void register_conv2d(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Conv2D";
  e.from_config = conv2d_from_config;
  e.aliases = {"Convolution2D"};
  e.to_config = conv2d_to_config;
  e.to_onnx = conv2d_to_onnx;
  // Not with an activity regularizer: its penalty reads the convolution's own output.
  e.fusion.can_fold_batch_norm = [](const Layer& l) {
    return dynamic_cast<const Conv2DLayer&>(l).options().activation == "linear" && !l.activity_regularizer();
  };
  e.fusion.fold_batch_norm = [](Layer& conv, Layer* bn, bool relu) {
    dynamic_cast<Conv2DLayer&>(conv).set_folded_batch_norm(dynamic_cast<BatchNormalizationLayer*>(bn), relu);
  };
  e.fusion.set_folded_residual = [](Layer& conv, bool on, bool relu) {
    dynamic_cast<Conv2DLayer&>(conv).set_folded_residual(on, relu);
  };
  // Its activation's backward reads the float32 gradient; a linear one passes it on.
  e.fusion.reads_bf16_only = [](const Layer& l) {
    return dynamic_cast<const Conv2DLayer&>(l).options().activation == "linear" &&
           l.dtype() == DType::float32;
  };
  e.fusion.set_bf16_activations = [](Layer& conv, bool output, bool input_gradient) {
    dynamic_cast<Conv2DLayer&>(conv).set_bf16_only(output, input_gradient);
  };
  e.fusion.reads_bf16_gradient = e.fusion.reads_bf16_only;
  out.push_back(std::move(e));
}
}  // namespace layers

// ---------------------------------------------------------------- ZeroPadding2D
// x (N,H,W,C) -> y (N, top+H+bottom, left+W+right, C), zeros around

ZeroPadding2DLayer::ZeroPadding2DLayer(std::array<std::array<int, 2>, 2> padding,
                                       ZeroPadding2DOptions options)
    : Layer("ZeroPadding2D", options.name), padding_(padding) {
  for (auto& axis : padding_)
    for (int v : axis)
      if (v < 0) throw ConfigError(where() + ": expected non-negative padding, got " + std::to_string(v));
}

Shape ZeroPadding2DLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (in.size() != 4) shape_error("a 4-D input (batch, rows, cols, channels)", "shape " + shape_str(in));
  auto grow = [](std::int64_t d, const std::array<int, 2>& p) { return d < 0 ? d : d + p[0] + p[1]; };
  return {in[0], grow(in[1], padding_[0]), grow(in[2], padding_[1]), in[3]};
}

Tensor ZeroPadding2DLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  input_shape_ = x.shape();
  Tensor y(output_shape({x.shape()}), dtype());
  const std::int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const std::int64_t oh = y.dim(1), ow = y.dim(2), top = padding_[0][0], left = padding_[1][0];
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* src = x.data<T>();
    T* dst = y.data<T>();
#pragma omp parallel for collapse(2) schedule(static) if (n * h * w * c > kernels::kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t r = 0; r < h; ++r)
        std::memcpy(dst + ((i * oh + r + top) * ow + left) * c, src + (i * h + r) * w * c, sizeof(T) * w * c);
  });
  return y;
}

std::vector<Tensor> ZeroPadding2DLayer::backward(const Tensor& dy) {
  Tensor dx = Tensor::uninitialized(input_shape_, dtype());
  const std::int64_t n = dx.dim(0), h = dx.dim(1), w = dx.dim(2), c = dx.dim(3);
  const std::int64_t oh = dy.dim(1), ow = dy.dim(2), top = padding_[0][0], left = padding_[1][0];
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* src = dy.data<T>();
    T* dst = dx.data<T>();
#pragma omp parallel for collapse(2) schedule(static) if (n * h * w * c > kernels::kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t r = 0; r < h; ++r)
        std::memcpy(dst + (i * h + r) * w * c, src + ((i * oh + r + top) * ow + left) * c, sizeof(T) * w * c);
  });
  return {dx};
}

ZeroPadding2D::ZeroPadding2D(int padding, ZeroPadding2DOptions options)
    : ZeroPadding2D(std::array<int, 2>{padding, padding}, std::move(options)) {}
ZeroPadding2D::ZeroPadding2D(std::array<int, 2> padding, ZeroPadding2DOptions options)
    : ZeroPadding2D(std::array<std::array<int, 2>, 2>{{{padding[0], padding[0]}, {padding[1], padding[1]}}},
                    std::move(options)) {}
ZeroPadding2D::ZeroPadding2D(std::array<std::array<int, 2>, 2> padding, ZeroPadding2DOptions options)
    : LayerRef(std::make_shared<ZeroPadding2DLayer>(padding, std::move(options))) {}

// ZeroPadding2D in Keras configs and ONNX (layers/registry.h).
namespace layers {
namespace {
using keras::Json;

Tensor zero_padding2d_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                  keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  keras::check_rank(x, 4, l);
  keras::expect_channels_last(c, l);
  std::array<std::array<int, 2>, 2> pad{{{1, 1}, {1, 1}}};
  if (const Json* v = keras::find(c, "padding"); v && !v->is_null()) {
    if (v->is_number()) {
      int p = static_cast<int>(keras::as_int(*v, l, "padding", 0, keras::kMaxDim));
      pad = {{{p, p}, {p, p}}};
    } else if (v->is_array() && v->size() == 2 && (*v)[0].is_number()) {
      auto hw = keras::as_pair(*v, l, "padding", 0, keras::kMaxDim);
      pad = {{{hw[0], hw[0]}, {hw[1], hw[1]}}};
    } else if (v->is_array() && v->size() == 2) {
      pad = {keras::as_pair((*v)[0], l, "padding", 0, keras::kMaxDim),
             keras::as_pair((*v)[1], l, "padding", 0, keras::kMaxDim)};
    } else {
      keras::bad(l,
                 "expected padding as an integer, a pair or a pair of pairs, got " + keras::short_dump(*v));
    }
  }
  return ZeroPadding2D(pad, {.name = l.name})(x);
}

Json zero_padding2d_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& p = dynamic_cast<const ZeroPadding2DLayer&>(layer).padding();
  Json c = keras::base_config(layer);
  c["padding"] = Json::array({keras::pair_json(p[0]), keras::pair_json(p[1])});
  c["data_format"] = "channels_last";
  return c;
}

onnx_export::Value zero_padding2d_to_onnx(onnx_export::NodeExport& e) {
  auto& zp = dynamic_cast<ZeroPadding2DLayer&>(e.layer());
  auto& g = e.graph();
  const onnx_export::Value& x = e.input4d();
  const auto& p = zp.padding();  // ((top, bottom), (left, right))
  // ONNX pads: all the begins (N, C, H, W), then all the ends.
  const std::string pads =
      g.int64_initializer(e.base() + "/pads", {0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]});
  onnx_export::Value out{g.unique(e.base()), 4};
  g.node("Pad", {x.name, pads}, out.name, e.base()).set_string("mode", "constant");
  return out;
}
}  // namespace

void register_zero_padding2d(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "ZeroPadding2D";
  e.from_config = zero_padding2d_from_config;
  e.to_config = zero_padding2d_to_config;
  e.to_onnx = zero_padding2d_to_onnx;
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
