// reskit/layers/pooling.h — MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D,
// GlobalAveragePooling2D (NHWC). Strides default to the pool size, padding "valid"; with
// "same", padded cells never win a max and are left out of an average's count (Keras).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

struct Pooling2DOptions {
  std::optional<std::array<int, 2>> strides;  // default: pool_size
  std::string padding = "valid";
  std::string name;
};

class Pooling2DLayer : public Layer {
 public:
  enum class Kind { max, average };
  Pooling2DLayer(Kind kind, std::array<int, 2> pool_size, Pooling2DOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  std::array<int, 2> pool_size() const { return pool_; }
  std::array<int, 2> strides() const { return strides_; }
  const std::string& padding() const { return padding_; }

 private:
  Kind kind_;
  std::array<int, 2> pool_, strides_;
  std::string padding_;
  Tensor x_;
};

struct MaxPooling2D : LayerRef<Pooling2DLayer> {
  explicit MaxPooling2D(std::array<int, 2> pool_size = {2, 2}, Pooling2DOptions options = {});
};
struct AveragePooling2D : LayerRef<Pooling2DLayer> {
  explicit AveragePooling2D(std::array<int, 2> pool_size = {2, 2}, Pooling2DOptions options = {});
};

struct GlobalPooling2DOptions {
  std::string name;
};

// (N, H, W, C) -> (N, C)
class GlobalPooling2DLayer : public Layer {
 public:
  GlobalPooling2DLayer(Pooling2DLayer::Kind kind, GlobalPooling2DOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;

 private:
  Pooling2DLayer::Kind kind_;
  Tensor x_;
};

struct GlobalMaxPooling2D : LayerRef<GlobalPooling2DLayer> {
  explicit GlobalMaxPooling2D(GlobalPooling2DOptions options = {});
};
struct GlobalAveragePooling2D : LayerRef<GlobalPooling2DLayer> {
  explicit GlobalAveragePooling2D(GlobalPooling2DOptions options = {});
};

}  // namespace reskit
