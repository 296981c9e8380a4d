// BatchNormalization: forward (training and inference) and backward side by side, then its
// registry entry (Keras config, ONNX export, fusion).
#include "reskit/layers/normalization.h"

#include <cmath>
#include <utility>

#include "kernels/kernels.h"
#include "kernels/sync_batch_norm.h"
#include "layers/keras_regularizers.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/distributed/communicator.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

// x (M rows, C) viewed flat over N·H·W; gamma, beta, moving_mean, moving_variance (C)

BatchNormalizationLayer::BatchNormalizationLayer(BatchNormalizationOptions options)
    : BatchNormalizationLayer("BatchNormalization", std::move(options)) {}

BatchNormalizationLayer::BatchNormalizationLayer(std::string class_name, BatchNormalizationOptions options)
    : Layer(std::move(class_name), options.name), options_(std::move(options)) {
  if (!(options_.momentum >= 0.0 && options_.momentum <= 1.0)) {
    throw ConfigError(where() + ": expected momentum in [0, 1], got " + std::to_string(options_.momentum));
  }
  if (!(options_.epsilon > 0.0)) {
    throw ConfigError(where() + ": expected epsilon > 0, got " + std::to_string(options_.epsilon));
  }
}

Shape BatchNormalizationLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  const int rank = static_cast<int>(in.size());
  if (rank < 2) shape_error("an input of rank >= 2", "shape " + shape_str(in));
  if (options_.axis != -1 && options_.axis != rank - 1) {
    shape_error("axis -1 or " + std::to_string(rank - 1) + " (the channel axis) for input " + shape_str(in),
                "axis " + std::to_string(options_.axis));
  }
  if (built()) {
    std::int64_t c = gamma().value.dim(0);
    if (in.back() != c) shape_error(std::to_string(c) + " channels", std::to_string(in.back()));
  }
  return in;
}

void BatchNormalizationLayer::do_build(const std::vector<Shape>& inputs) {
  const std::int64_t c = inputs[0].back();
  if (c <= 0) shape_error("a known, positive channel count", shape_str(inputs[0]));
  Param& gamma = add_param("gamma", {c}, true);
  gamma.value.fill(1.0);
  detail::set_weight_rules(gamma, options_.gamma_regularizer, options_.gamma_constraint, where());
  detail::set_weight_rules(add_param("beta", {c}, true), options_.beta_regularizer, options_.beta_constraint,
                           where());
  add_param("moving_mean", {c}, false);
  add_param("moving_variance", {c}, false).value.fill(1.0);
}

// The weights by name, at the positions do_build gives them.
Param& BatchNormalizationLayer::gamma() { return built_param(0, "gamma"); }
const Param& BatchNormalizationLayer::gamma() const { return built_param(0, "gamma"); }
Param& BatchNormalizationLayer::beta() { return built_param(1, "beta"); }
const Param& BatchNormalizationLayer::beta() const { return built_param(1, "beta"); }
Param& BatchNormalizationLayer::moving_mean() { return built_param(2, "moving_mean"); }
const Param& BatchNormalizationLayer::moving_mean() const { return built_param(2, "moving_mean"); }
Param& BatchNormalizationLayer::moving_variance() { return built_param(3, "moving_variance"); }
const Param& BatchNormalizationLayer::moving_variance() const { return built_param(3, "moving_variance"); }

namespace {
// After a training kernel wrote out (y or dx) with BatchNormParams::out_bf16: its rounding is
// current, alone where p.bf16_only.
void rounding_written(const kernels::BatchNormParams& p, Tensor& out) {
  if (p.bf16_only) {
    out.bf16_shadow_only_written();
  } else if (p.out_bf16 != nullptr) {
    out.bf16_shadow_written();
  }
}
}  // namespace

Tensor BatchNormalizationLayer::forward(const std::vector<Tensor>& inputs, bool training_pass) {
  const Tensor& x = inputs[0];
  // A frozen layer normalises with its moving statistics and leaves them alone even in a training
  // pass (Keras 2.x under TF2: "trainable = False" overrides training, as in fine-tuning).
  const bool training = training_pass && trainable();
  bf16_only_dx_ = training && bf16_only_input_gradient_ && mixed_bfloat16() && dtype() == DType::float32;
  last_output_bf16_only_ = false;
  output_shape({x.shape()});
  // A second input: the other input of the Add that alone reads this layer, fused by the model
  // (AddLayer::set_sum_input); it is added before the ReLU.
  const Tensor* residual = inputs.size() > 1 ? &inputs[1] : nullptr;
  if (residual != nullptr && (residual->shape() != x.shape() || residual->dtype() != dtype())) {
    shape_error("a residual of shape " + shape_str(x.shape()), shape_str(residual->shape()));
  }
  if (folded_into_conv_ && !training) {  // the Conv2D before applied this normalization
    if (residual != nullptr)
      throw Error(where() + ": a normalization folded into Conv2D cannot add a residual");
    x_ = x;
    y_ = Tensor();
    last_training_ = false;
    relu_backward_ = false;
    return x;
  }
  const std::int64_t c = x.dim(-1);
  kernels::BatchNormParams p{x.numel() / c, c, options_.epsilon, fused_relu()};
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  Tensor& scale = gamma().value;
  Tensor& offset = beta().value;
  Tensor& mean = moving_mean().value;
  Tensor& variance = moving_variance().value;
  x_ = x;
  last_training_ = training;
  // A frozen layer in a training pass takes the fused ReLU's backward too, from its output kept
  // (the Activation keeps that tensor anyway).
  relu_backward_ = training_pass && fused_relu_backward();
  y_ = relu_backward_ && !training ? y : Tensor();
  // x as the bfloat16 rounding alone (the Conv2D before wrote Keras's bfloat16 activations): read so.
  p.x_bf16 = detail::only_rounding(x);
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* xv = detail::operand<T>(x, p.x_bf16);
    if (!training) {
      kernels::batch_norm_forward_inference<T>(p, xv, scale.data<T>(), offset.data<T>(), mean.data<T>(),
                                               variance.data<T>(), y.data<T>(),
                                               residual ? residual->data<T>() : nullptr);
      return;
    }
    batch_mean_ = Tensor::uninitialized({c}, dtype());
    batch_var_ = Tensor::uninitialized({c}, dtype());
    // Mixed precision: y rounded to bfloat16 as well, for the Conv2D that reads it (or only so,
    // where the Conv2Ds are its only readers: set_bf16_only; on a residual block's path,
    // set_bf16_only_sum). A residual that is its rounding alone is read so.
    if (mixed_bfloat16() && dtype() == DType::float32) {
      p.out_bf16 = y.bf16_shadow_buffer();
      p.bf16_only = bf16_only_sum_ || (bf16_only_output_ && residual == nullptr);
      if (residual != nullptr) p.residual_bf16 = detail::only_rounding(*residual);
    }
    kernels::batch_norm_forward_training<T>(
        p, xv, scale.data<T>(), offset.data<T>(), y.data<T>(), batch_mean_.data<T>(), batch_var_.data<T>(),
        residual ? detail::operand<T>(*residual, p.residual_bf16) : nullptr);
    last_output_bf16_only_ = p.bf16_only;
    rounding_written(p, y);
  });
  if (training) update_moving_statistics(p.rows);
  return y;
}

void BatchNormalizationLayer::update_moving_statistics(std::int64_t rows) {
  // moving = moving·momentum + batch·(1 − momentum), with the unbiased batch variance
  const std::int64_t c = batch_mean_.numel();
  const double mom = options_.momentum;
  const double unbias = rows > 1 ? static_cast<double>(rows) / static_cast<double>(rows - 1) : 1.0;
  visit_dtype(dtype(), [&]<class T>(T) {
    T* mm = moving_mean().value.data<T>();
    T* mv = moving_variance().value.data<T>();
    const T* bm = batch_mean_.data<T>();
    const T* bv = batch_var_.data<T>();
    for (std::int64_t i = 0; i < c; ++i) {
      mm[i] = static_cast<T>(double(mm[i]) * mom + double(bm[i]) * (1.0 - mom));
      mv[i] = static_cast<T>(double(mv[i]) * mom + double(bv[i]) * unbias * (1.0 - mom));
    }
  });
}

std::vector<Tensor> BatchNormalizationLayer::backward(const Tensor& dy) {
  const std::int64_t c = x_.dim(-1);
  kernels::BatchNormParams p{x_.numel() / c, c, options_.epsilon, relu_backward_};
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  Param& scale = gamma();
  Param& offset = beta();
  visit_dtype(dtype(), [&]<class T>(T) {
    if (last_training_) {
      // Mixed precision: dx rounded to bfloat16 as well, for the Conv2D whose output this reads
      // (or only so, where that Conv2D is its only reader: set_bf16_only).
      if (mixed_bfloat16() && dtype() == DType::float32) {
        p.out_bf16 = dx.bf16_shadow_buffer();
        p.bf16_only = bf16_only_dx_;
      }
      // x and dy as the bfloat16 roundings alone where the Conv2Ds wrote them so.
      p.x_bf16 = detail::only_rounding(x_);
      p.dy_bf16 = detail::only_rounding(dy);
      kernels::batch_norm_backward<T>(
          p, detail::operand<T>(x_, p.x_bf16), detail::operand<T>(dy, p.dy_bf16),
          std::as_const(scale.value).data<T>(), std::as_const(offset.value).data<T>(), batch_mean_.data<T>(),
          batch_var_.data<T>(), dx.data<T>(), scale.grad.data<T>(), offset.grad.data<T>());
      rounding_written(p, dx);
      return;
    }
    // Inference-mode forward: the statistics are constants, y = gamma·rstd·(x − mean) + beta.
    const T* x = x_.data<T>();
    const T* g = dy.data<T>();
    const T* mean = moving_mean().value.data<T>();
    const T* var = moving_variance().value.data<T>();
    const T* y = relu_backward_ ? y_.data<T>() : nullptr;  // the fused ReLU's output
    T* out = dx.data<T>();
    std::vector<double> dgamma(c, 0.0), dbeta(c, 0.0), rstd(c);
    for (std::int64_t j = 0; j < c; ++j) rstd[j] = 1.0 / std::sqrt(double(var[j]) + p.epsilon);
    for (std::int64_t i = 0; i < p.rows; ++i)
      for (std::int64_t j = 0; j < c; ++j) {
        const double gi = y != nullptr && !(y[i * c + j] > T(0)) ? 0.0 : double(g[i * c + j]);
        dbeta[j] += gi;
        dgamma[j] += gi * (double(x[i * c + j]) - double(mean[j])) * rstd[j];
        out[i * c + j] = static_cast<T>(gi * double(scale.value.data<T>()[j]) * rstd[j]);
      }
    for (std::int64_t j = 0; j < c; ++j) {
      scale.grad.data<T>()[j] = static_cast<T>(dgamma[j]);
      offset.grad.data<T>()[j] = static_cast<T>(dbeta[j]);
    }
  });
  return {dx};
}

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : LayerRef(std::make_shared<BatchNormalizationLayer>(std::move(options))) {}

// ---------------------------------------------------------------- SyncBatchNormalization

SyncBatchNormalizationLayer::SyncBatchNormalizationLayer(BatchNormalizationOptions options)
    : BatchNormalizationLayer("SyncBatchNormalization", std::move(options)) {}

// x (M rows, C) on this rank; the statistics over every rank's rows (total_rows_).
Tensor SyncBatchNormalizationLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  distributed::Communicator& group = distributed::replica_group();
  synced_ = training && group.size() > 1;
  if (!synced_) return BatchNormalizationLayer::forward(inputs, training);
  if (inputs.size() != 1 || fused_relu())
    throw Error(where() + ": a synchronised normalization takes no fused residual or ReLU");
  const Tensor& x = inputs[0];
  output_shape({x.shape()});
  const std::int64_t c = x.dim(-1);
  kernels::BatchNormParams p{x.numel() / c, c, options_.epsilon, false};
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  x_ = x;
  last_training_ = true;
  relu_backward_ = false;
  batch_mean_ = Tensor::uninitialized({c}, dtype());
  batch_var_ = Tensor::uninitialized({c}, dtype());
  std::vector<double> sums(static_cast<std::size_t>(c) + 1);
  visit_dtype(dtype(), [&]<class T>(T) {
    // Two passes: the global mean, then the squared deviations from it.
    kernels::batch_norm_channel_sums<T>(p, x.data<T>(), nullptr, sums.data());
    sums[static_cast<std::size_t>(c)] = static_cast<double>(p.rows);
    group.allreduce_sum(std::span<double>(sums));
    total_rows_ = static_cast<std::int64_t>(sums[static_cast<std::size_t>(c)]);
    const auto total = static_cast<double>(total_rows_);
    T* mean = batch_mean_.data<T>();
    for (std::int64_t j = 0; j < c; ++j) mean[j] = static_cast<T>(sums[static_cast<std::size_t>(j)] / total);
    sums.resize(static_cast<std::size_t>(c));
    kernels::batch_norm_channel_sums<T>(p, x.data<T>(), mean, sums.data());
    group.allreduce_sum(std::span<double>(sums));
    T* var = batch_var_.data<T>();
    for (std::int64_t j = 0; j < c; ++j) var[j] = static_cast<T>(sums[static_cast<std::size_t>(j)] / total);
    kernels::batch_norm_forward_inference<T>(p, x.data<T>(), std::as_const(gamma().value).data<T>(),
                                             std::as_const(beta().value).data<T>(), mean, var, y.data<T>());
  });
  update_moving_statistics(total_rows_);
  return y;
}

std::vector<Tensor> SyncBatchNormalizationLayer::backward(const Tensor& dy) {
  if (!synced_) return BatchNormalizationLayer::backward(dy);
  distributed::Communicator& group = distributed::replica_group();
  const std::int64_t c = x_.dim(-1);
  kernels::BatchNormParams p{x_.numel() / c, c, options_.epsilon, false};
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  std::vector<double> sums(2 * static_cast<std::size_t>(c));
  double* sum_dy = sums.data();
  double* sum_dy_xhat = sums.data() + c;
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* mean = std::as_const(batch_mean_).data<T>();
    const T* var = std::as_const(batch_var_).data<T>();
    kernels::batch_norm_backward_sums<T>(p, x_.data<T>(), dy.data<T>(), mean, var, sum_dy, sum_dy_xhat);
    // gamma's and beta's gradients: this rank's part (the gradient allreduce adds the ranks').
    T* dgamma = gamma().grad.data<T>();
    T* dbeta = beta().grad.data<T>();
    for (std::int64_t j = 0; j < c; ++j)
      dgamma[j] = static_cast<T>(sum_dy_xhat[j]), dbeta[j] = static_cast<T>(sum_dy[j]);
    group.allreduce_sum(std::span<double>(sums));
    kernels::batch_norm_backward_dx<T>(p, x_.data<T>(), dy.data<T>(), std::as_const(gamma().value).data<T>(),
                                       mean, var, sum_dy, sum_dy_xhat, static_cast<double>(total_rows_),
                                       dx.data<T>());
  });
  return {dx};
}

SyncBatchNormalization::SyncBatchNormalization(BatchNormalizationOptions options)
    : LayerRef(std::make_shared<SyncBatchNormalizationLayer>(std::move(options))) {}

// ---------------------------------------------------------------- registry entry
// BatchNormalization in Keras configs, ONNX and fusion (layers/registry.h).

namespace layers {
namespace {
using keras::Json;

Tensor batch_normalization_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                       keras::WeightBudget& budget, bool sync) {
  const Tensor& x = keras::one_input(in, l);
  const auto rank = static_cast<std::int64_t>(x.shape().size());
  if (rank < 2) keras::bad(l, "expected an input of rank >= 2, got shape " + shape_str(x.shape()));
  BatchNormalizationOptions o;
  if (const Json* v = keras::find(c, "axis"); v && !v->is_null()) {
    const Json& a = v->is_array() && v->size() == 1 ? (*v)[0] : *v;
    std::int64_t axis = a.is_number() ? keras::as_int(a, l, "axis", -rank, rank - 1) : rank;
    if (axis != -1 && axis != rank - 1)
      keras::unsupported(l, "axis", *v, "the last axis: [" + std::to_string(rank - 1) + "] or -1");
  }
  o.axis = -1;
  if (const Json* v = keras::find(c, "momentum"); v && !v->is_null())
    o.momentum = keras::as_double(*v, l, "momentum");
  if (const Json* v = keras::find(c, "epsilon"); v && !v->is_null())
    o.epsilon = keras::as_double(*v, l, "epsilon");
  for (const char* key : {"center", "scale"}) {
    const Json* v = keras::find(c, key);
    if (v && !v->is_null() && !keras::as_bool(*v, l, key)) keras::unsupported(l, key, *v, "true");
  }
  if (const Json* v = keras::find(c, "renorm"); v && !v->is_null() && keras::as_bool(*v, l, "renorm"))
    keras::unsupported(l, "renorm", *v, "false");
  keras::expect_null(c, l, {"virtual_batch_size", "adjustment"});
  o.beta_regularizer = keras::regularizer_option(c, "beta_regularizer", l);
  o.gamma_regularizer = keras::regularizer_option(c, "gamma_regularizer", l);
  o.beta_constraint = keras::constraint_option(c, "beta_constraint", l);
  o.gamma_constraint = keras::constraint_option(c, "gamma_constraint", l);
  o.name = l.name;
  budget.add(l, 4.0L * static_cast<long double>(x.shape().back()));
  return sync ? SyncBatchNormalization(o)(x) : BatchNormalization(o)(x);
}

Json batch_normalization_to_config(const Layer& layer, const Shape& output_shape) {
  const auto& bn = dynamic_cast<const BatchNormalizationLayer&>(layer);
  const auto& o = bn.options();
  Json c = keras::base_config(layer);
  c["axis"] = Json::array({static_cast<std::int64_t>(output_shape.size()) - 1});
  c["momentum"] = o.momentum;
  c["epsilon"] = o.epsilon;
  c["center"] = true;
  c["scale"] = true;
  c["beta_initializer"] = keras::initializer_json("zeros", std::nullopt);
  c["gamma_initializer"] = keras::initializer_json("ones", std::nullopt);
  c["moving_mean_initializer"] = keras::initializer_json("zeros", std::nullopt);
  c["moving_variance_initializer"] = keras::initializer_json("ones", std::nullopt);
  c["beta_regularizer"] = keras::regularizer_json(bn.beta().regularizer);
  c["gamma_regularizer"] = keras::regularizer_json(bn.gamma().regularizer);
  c["beta_constraint"] = keras::constraint_json(bn.beta().constraint);
  c["gamma_constraint"] = keras::constraint_json(bn.gamma().constraint);
  return c;
}

onnx_export::Value batch_normalization_to_onnx(onnx_export::NodeExport& e) {
  auto& bn = dynamic_cast<BatchNormalizationLayer&>(e.layer());
  auto& g = e.graph();
  const onnx_export::Value& x = e.inputs().at(0);
  if (x.rank != 4 && x.rank != 2) e.fail("expected a 2-D or 4-D input, got rank " + std::to_string(x.rank));
  std::vector<std::string> inputs{x.name};
  for (const char* w : {"gamma", "beta", "moving_mean", "moving_variance"}) {
    const Param& p = bn.param(w);
    inputs.push_back(g.initializer(p.name, {p.value.numel()}, onnx_export::float_values(p)));
  }
  onnx_export::Value out{g.unique(e.base()), x.rank};
  auto& n = g.node("BatchNormalization", inputs, out.name, e.base());
  n.set_float("epsilon", bn.options().epsilon);
  n.set_float("momentum", bn.options().momentum);
  return out;
}
}  // namespace

void register_batch_normalization(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "BatchNormalization";
  e.from_config = [](const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                     keras::WeightBudget& budget) {
    // Keras 3 writes a SyncBatchNormalization as BatchNormalization(synchronized=True).
    const Json* synchronized = keras::find(c, "synchronized");
    return batch_normalization_from_config(
        c, l, in, budget, synchronized && synchronized->is_boolean() && synchronized->get<bool>());
  };
  e.to_config = batch_normalization_to_config;
  e.to_onnx = batch_normalization_to_onnx;
  e.fusion.takes_relu = true;
  e.fusion.takes_relu_backward = true;
  e.fusion.folded_into_conv = [](Layer& bn, bool on) {
    dynamic_cast<BatchNormalizationLayer&>(bn).set_folded_into_conv(on);
  };
  e.fusion.absorbs_add_input = true;
  e.fusion.reads_bf16_gradient = [](const Layer& l) { return l.dtype() == DType::float32; };
  e.fusion.set_bf16_only_sum = [](Layer& bn, bool on) {
    dynamic_cast<BatchNormalizationLayer&>(bn).set_bf16_only_sum(on);
  };
  e.fusion.set_bf16_only = [](Layer& bn, bool output, bool input_gradient) {
    dynamic_cast<BatchNormalizationLayer&>(bn).set_bf16_only(output, input_gradient);
  };
  out.push_back(std::move(e));
}

// Keras's SyncBatchNormalization: BatchNormalization's config and ONNX node (inference is the
// same); it folds into a convolution in inference, and fuses nothing in training.
void register_sync_batch_normalization(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "SyncBatchNormalization";
  e.from_config = [](const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                     keras::WeightBudget& budget) {
    return batch_normalization_from_config(c, l, in, budget, true);
  };
  e.to_config = batch_normalization_to_config;
  e.to_onnx = batch_normalization_to_onnx;
  e.fusion.folded_into_conv = [](Layer& bn, bool on) {
    dynamic_cast<BatchNormalizationLayer&>(bn).set_folded_into_conv(on);
  };
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
