// reskit/layers/preprocessing_image.h — Keras's image preprocessing and augmentation layers (NHWC,
// 4-D inputs): Resizing, CenterCrop, RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
// RandomContrast, with tf.keras 2.x semantics.
//
// Resizing and CenterCrop act in training and inference alike. The Random* layers are the identity
// in inference (Keras's training=False) and in training draw one set of parameters per image from
// their own generator, seeded by `seed` (or by the global generator, reskit/random.h): the same seed
// gives the same augmentations call after call, but not TensorFlow's random bits. RandomRotation,
// RandomZoom and RandomTranslation build Keras's projective transforms (get_rotation_matrix,
// get_zoom_matrix, get_translation_matrix) and sample as TF's ImageProjectiveTransformV3 does
// (fill modes reflect, wrap, constant, nearest; interpolation bilinear or nearest). Every layer
// here is linear in its input (RandomContrast up to its clip), and its backward is the exact
// adjoint of the forward it ran.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"

namespace reskit {

// A Keras factor: one number f, or a pair (lower, upper). What one number means is each layer's
// (RandomRotation (−f, f), RandomContrast (f, f)); `scalar` keeps the form for get_config.
struct FactorRange {
  double lower = 0.0, upper = 0.0;
  bool scalar = true;
};

// ---------------------------------------------------------------- Resizing
// x (N,H,W,C) -> y (N,height,width,C): tf.image.resize (bilinear, nearest, bicubic or area;
// antialias off); crop_to_aspect_ratio resizes the largest centred window with the target's ratio.
struct ResizingOptions {
  std::string interpolation = "bilinear";
  bool crop_to_aspect_ratio = false;
  std::string name;
};

class ResizingLayer : public Layer {
 public:
  ResizingLayer(int height, int width, ResizingOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  int height() const { return height_; }
  int width() const { return width_; }
  const ResizingOptions& options() const { return options_; }

 private:
  int height_, width_;
  ResizingOptions options_;
  Shape input_shape_;
};

struct Resizing : LayerRef<ResizingLayer> {
  Resizing(int height, int width, ResizingOptions options = {});
};

// ---------------------------------------------------------------- CenterCrop
// x (N,H,W,C) -> y (N,height,width,C): the centred window (start (H − height) / 2 truncated); an
// input smaller than the target on either side is resized as Resizing(crop_to_aspect_ratio) does.
struct CenterCropOptions {
  std::string name;
};

class CenterCropLayer : public Layer {
 public:
  CenterCropLayer(int height, int width, CenterCropOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  int height() const { return height_; }
  int width() const { return width_; }
  // Whether an input of these rows and columns is resized rather than cropped.
  bool resizes(std::int64_t rows, std::int64_t cols) const { return rows < height_ || cols < width_; }

 private:
  int height_, width_;
  Shape input_shape_;
};

struct CenterCrop : LayerRef<CenterCropLayer> {
  CenterCrop(int height, int width, CenterCropOptions options = {});
};

// ---------------------------------------------------------------- the Random* layers

// What the Random* layers share: the seed as the config gave it and the generator of each call.
class RandomImageLayer : public Layer {
 public:
  RandomImageLayer(std::string class_name, std::string name, std::optional<std::uint64_t> seed);
  // The seed as given (Keras's get_config writes it; none: drawn from the global generator).
  std::optional<std::uint64_t> seed() const { return seed_; }

 protected:
  // A fresh generator state per training call, reproducible from (seed, call count).
  std::uint64_t next_call_seed();
  // A uniform double in [lo, hi) from the state (SplitMix64: the same draws on every platform).
  static double uniform(std::uint64_t& state, double lo, double hi);
  void check_image(const Shape& in) const;

 private:
  std::optional<std::uint64_t> seed_;
  std::uint64_t stream_seed_;
  std::uint64_t calls_ = 0;
};

// Training: each image flipped left-right with probability 1/2 (modes "horizontal",
// "horizontal_and_vertical"), then up-down with probability 1/2 ("vertical",
// "horizontal_and_vertical").
struct RandomFlipOptions {
  std::string mode = "horizontal_and_vertical";
  std::optional<std::uint64_t> seed;
  std::string name;
};

class RandomFlipLayer : public RandomImageLayer {
 public:
  explicit RandomFlipLayer(RandomFlipOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const std::string& mode() const { return options_.mode; }

 private:
  RandomFlipOptions options_;
  std::vector<std::uint8_t> flip_rows_, flip_cols_;  // of the last training call; empty: identity
};

struct RandomFlip : LayerRef<RandomFlipLayer> {
  explicit RandomFlip(RandomFlipOptions options = {});
};

// The geometric ones: fill_mode reflect, wrap, constant or nearest; interpolation bilinear or
// nearest; fill_value read outside the image with fill_mode "constant".
struct RandomTransformOptions {
  std::string fill_mode = "reflect";
  std::string interpolation = "bilinear";
  double fill_value = 0.0;
  std::optional<std::uint64_t> seed;
  std::string name;
};

class RandomTransformLayer : public RandomImageLayer {
 public:
  RandomTransformLayer(std::string class_name, RandomTransformOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const RandomTransformOptions& options() const { return options_; }

 protected:
  // Fills one image's transform t[8] (output pixel -> input point) from the state's draws.
  virtual void draw_transform(std::uint64_t& state, double rows, double cols, float* t) const = 0;

 private:
  RandomTransformOptions options_;
  std::vector<float> transforms_;  // of the last training call, 8 per image; empty: identity
  Shape input_shape_;
};

// Angles uniform in [lower·2π, upper·2π) (one number f: (−f, f)), counter-clockwise, about the
// image centre.
class RandomRotationLayer : public RandomTransformLayer {
 public:
  RandomRotationLayer(FactorRange factor, RandomTransformOptions options);
  const FactorRange& factor() const { return factor_; }

 protected:
  void draw_transform(std::uint64_t& state, double rows, double cols, float* t) const override;

 private:
  FactorRange factor_;
};

struct RandomRotation : LayerRef<RandomRotationLayer> {
  RandomRotation(FactorRange factor, RandomTransformOptions options = {});
};

// Zoom factors 1 + uniform[lower, upper) per axis (one number f: (−f, f)); without width_factor
// both axes take the height's. Positive values zoom out.
class RandomZoomLayer : public RandomTransformLayer {
 public:
  RandomZoomLayer(FactorRange height_factor, std::optional<FactorRange> width_factor,
                  RandomTransformOptions options);
  const FactorRange& height_factor() const { return height_; }
  const std::optional<FactorRange>& width_factor() const { return width_; }

 protected:
  void draw_transform(std::uint64_t& state, double rows, double cols, float* t) const override;

 private:
  FactorRange height_;
  std::optional<FactorRange> width_;
};

struct RandomZoom : LayerRef<RandomZoomLayer> {
  RandomZoom(FactorRange height_factor, std::optional<FactorRange> width_factor = std::nullopt,
             RandomTransformOptions options = {});
};

// Shifts uniform in [lower, upper) times the height and the width (one number f: (−f, f)).
class RandomTranslationLayer : public RandomTransformLayer {
 public:
  RandomTranslationLayer(FactorRange height_factor, FactorRange width_factor, RandomTransformOptions options);
  const FactorRange& height_factor() const { return height_; }
  const FactorRange& width_factor() const { return width_; }

 protected:
  void draw_transform(std::uint64_t& state, double rows, double cols, float* t) const override;

 private:
  FactorRange height_, width_;
};

struct RandomTranslation : LayerRef<RandomTranslationLayer> {
  RandomTranslation(FactorRange height_factor, FactorRange width_factor, RandomTransformOptions options = {});
};

// Training: per image a contrast factor uniform in [1 − lower, 1 + upper) (one number f: (f, f));
// y = clip((x − mean)·factor + mean, value_range), mean per channel over the image.
struct RandomContrastOptions {
  std::array<double, 2> value_range = {0.0, 255.0};
  std::optional<std::uint64_t> seed;
  std::string name;
};

class RandomContrastLayer : public RandomImageLayer {
 public:
  RandomContrastLayer(FactorRange factor, RandomContrastOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const FactorRange& factor() const { return factor_; }
  const RandomContrastOptions& options() const { return options_; }

 private:
  FactorRange factor_;
  RandomContrastOptions options_;
  std::vector<double> factors_;  // of the last training call; empty: identity
  Tensor x_;
};

struct RandomContrast : LayerRef<RandomContrastLayer> {
  RandomContrast(FactorRange factor, RandomContrastOptions options = {});
};

}  // namespace reskit
