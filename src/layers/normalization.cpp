// BatchNormalization: forward (training and inference) and backward side by side.
#include "reskit/layers/normalization.h"

#include <cmath>
#include <utility>

#include "kernels/kernels.h"
#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

// x (M rows, C) viewed flat over N·H·W; gamma, beta, moving_mean, moving_variance (C)

BatchNormalizationLayer::BatchNormalizationLayer(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name), options_(std::move(options)) {
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
    std::int64_t c = params()[0].value.dim(0);
    if (in.back() != c) shape_error(std::to_string(c) + " channels", std::to_string(in.back()));
  }
  return in;
}

void BatchNormalizationLayer::do_build(const std::vector<Shape>& inputs) {
  const std::int64_t c = inputs[0].back();
  if (c <= 0) shape_error("a known, positive channel count", shape_str(inputs[0]));
  add_param("gamma", {c}, true).value.fill(1.0);
  add_param("beta", {c}, true);
  add_param("moving_mean", {c}, false);
  add_param("moving_variance", {c}, false).value.fill(1.0);
}

Tensor BatchNormalizationLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
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
    last_training_ = false;
    relu_backward_ = false;
    return x;
  }
  const std::int64_t c = x.dim(-1);
  kernels::BatchNormParams p{x.numel() / c, c, options_.epsilon, fused_relu()};
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  auto& gamma = params()[0].value;
  auto& beta = params()[1].value;
  auto& moving_mean = params()[2].value;
  auto& moving_var = params()[3].value;
  x_ = x;
  last_training_ = training;
  relu_backward_ = training && fused_relu_backward();
  visit_dtype(dtype(), [&]<class T>(T) {
    if (!training) {
      kernels::batch_norm_forward_inference<T>(p, x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                               moving_mean.data<T>(), moving_var.data<T>(), y.data<T>(),
                                               residual ? residual->data<T>() : nullptr);
      return;
    }
    batch_mean_ = Tensor::uninitialized({c}, dtype());
    batch_var_ = Tensor::uninitialized({c}, dtype());
    // Mixed precision: y rounded to bfloat16 as well, for the Conv2D that reads it.
    if (mixed_bfloat16() && dtype() == DType::float32) p.out_bf16 = y.bf16_shadow_buffer();
    kernels::batch_norm_forward_training<T>(p, x.data<T>(), gamma.data<T>(), beta.data<T>(), y.data<T>(),
                                            batch_mean_.data<T>(), batch_var_.data<T>(),
                                            residual ? residual->data<T>() : nullptr);
    if (p.out_bf16 != nullptr) y.bf16_shadow_written();
    // moving = moving·momentum + batch·(1 − momentum), with the unbiased batch variance
    const double mom = options_.momentum;
    const double unbias = p.rows > 1 ? static_cast<double>(p.rows) / static_cast<double>(p.rows - 1) : 1.0;
    T* mm = moving_mean.data<T>();
    T* mv = moving_var.data<T>();
    const T* bm = batch_mean_.data<T>();
    const T* bv = batch_var_.data<T>();
    for (std::int64_t i = 0; i < c; ++i) {
      mm[i] = static_cast<T>(double(mm[i]) * mom + double(bm[i]) * (1.0 - mom));
      mv[i] = static_cast<T>(double(mv[i]) * mom + double(bv[i]) * unbias * (1.0 - mom));
    }
  });
  return y;
}

std::vector<Tensor> BatchNormalizationLayer::backward(const Tensor& dy) {
  const std::int64_t c = x_.dim(-1);
  kernels::BatchNormParams p{x_.numel() / c, c, options_.epsilon, relu_backward_};
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  auto& gamma = params()[0];
  auto& beta = params()[1];
  visit_dtype(dtype(), [&]<class T>(T) {
    if (last_training_) {
      // Mixed precision: dx rounded to bfloat16 as well, for the Conv2D whose output this reads.
      if (mixed_bfloat16() && dtype() == DType::float32) p.out_bf16 = dx.bf16_shadow_buffer();
      kernels::batch_norm_backward<T>(p, x_.data<T>(), dy.data<T>(), std::as_const(gamma.value).data<T>(),
                                      std::as_const(beta.value).data<T>(), batch_mean_.data<T>(),
                                      batch_var_.data<T>(), dx.data<T>(), gamma.grad.data<T>(),
                                      beta.grad.data<T>());
      if (p.out_bf16 != nullptr) dx.bf16_shadow_written();
      return;
    }
    // Inference-mode forward: the statistics are constants, y = gamma·rstd·(x − mean) + beta.
    const T* x = x_.data<T>();
    const T* g = dy.data<T>();
    const T* mean = params()[2].value.data<T>();
    const T* var = params()[3].value.data<T>();
    T* out = dx.data<T>();
    std::vector<double> dgamma(c, 0.0), dbeta(c, 0.0), rstd(c);
    for (std::int64_t j = 0; j < c; ++j) rstd[j] = 1.0 / std::sqrt(double(var[j]) + p.epsilon);
    for (std::int64_t i = 0; i < p.rows; ++i)
      for (std::int64_t j = 0; j < c; ++j) {
        const double gi = g[i * c + j];
        dbeta[j] += gi;
        dgamma[j] += gi * (double(x[i * c + j]) - double(mean[j])) * rstd[j];
        out[i * c + j] = static_cast<T>(gi * double(gamma.value.data<T>()[j]) * rstd[j]);
      }
    for (std::int64_t j = 0; j < c; ++j) {
      gamma.grad.data<T>()[j] = static_cast<T>(dgamma[j]);
      beta.grad.data<T>()[j] = static_cast<T>(dbeta[j]);
    }
  });
  return {dx};
}

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : LayerRef(std::make_shared<BatchNormalizationLayer>(std::move(options))) {}

}  // namespace reskit
