// reskit/layers/preprocessing.h — Rescaling and Normalization, the preprocessing layers saved
// Keras image models begin with.
//
// Rescaling: y = x·scale + offset (Keras 2.6+: one scale and offset; Keras 3 also per channel, the
// last axis). Normalization: y = (x − mean) / max(sqrt(variance), 1e-7) with one mean and variance
// per index of the kept axes (Keras's `axis`, default the last; none: one for the whole tensor),
// either given as options (Keras's mean/variance arguments: no weights) or held as the
// non-trainable weights mean, variance and count (what adapt() fills and Keras 2.x/3 files store);
// invert = true gives y = mean + x·max(sqrt(variance), 1e-7). Neither layer adapts or trains
// anything; both pass gradients on (dx = dy·scale, dy / max(sqrt(variance), 1e-7)).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"

namespace reskit {

struct RescalingOptions {
  std::vector<double> offset{0.0};  // one value, or one per channel
  std::string name;
};

class RescalingLayer : public Layer {
 public:
  // scale: one value, or one per channel (the last axis).
  RescalingLayer(std::vector<double> scale, RescalingOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const std::vector<double>& scale() const { return scale_; }
  const RescalingOptions& options() const { return options_; }

 private:
  std::vector<double> scale_;
  RescalingOptions options_;
  Tensor scale_table_;  // scale per table index, in the layer's dtype
};

struct Rescaling : LayerRef<RescalingLayer> {
  explicit Rescaling(double scale, RescalingOptions options = {});
  Rescaling(std::vector<double> scale, RescalingOptions options);
};

// Keras's backend.epsilon(): the floor of a Normalization's standard deviation.
inline constexpr double kNormalizationEpsilon = 1e-7;

struct NormalizationOptions {
  std::vector<int> axis{-1};  // the kept axes (not the batch axis); empty: Keras's axis=None
  // Given statistics (Keras's mean/variance arguments), one value or one per index of the kept
  // axes in row-major order; both or neither. Without them the layer has the weights mean,
  // variance (kept shape) and count (a scalar).
  std::optional<std::vector<double>> mean, variance;
  bool invert = false;
  std::string name;
};

class NormalizationLayer : public Layer {
 public:
  explicit NormalizationLayer(NormalizationOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const NormalizationOptions& options() const { return options_; }
  // The weights, once built, when the statistics were not given: mean and variance (the kept
  // axes' shape), count (a scalar; Keras keeps it for older files).
  Param& mean();
  const Param& mean() const;
  Param& variance();
  const Param& variance() const;
  Param& count();
  const Param& count() const;
  // The statistics in use, once built, of the kept axes' shape: the weights, or the given values
  // broadcast.
  const Tensor& statistics_mean() const;
  const Tensor& statistics_variance() const;
  // The kept axes of a rank-`rank` input, non-negative and sorted.
  std::vector<int> kept_axes(std::size_t rank) const;

 protected:
  void do_build(const std::vector<Shape>& inputs) override;

 private:
  // mean and max(sqrt(variance), eps) per table index (see kernels::BroadcastParams).
  void make_tables(const Shape& input);

  NormalizationOptions options_;
  Shape kept_shape_;
  Tensor given_mean_, given_variance_;  // the kept shape, when given
  Tensor mean_table_, denom_table_;
  std::int64_t period_ = 1;
};

struct Normalization : LayerRef<NormalizationLayer> {
  explicit Normalization(NormalizationOptions options = {});
};

}  // namespace reskit
