// Keras's image preprocessing and augmentation layers: Resizing, CenterCrop, RandomFlip,
// RandomRotation, RandomZoom, RandomTranslation, RandomContrast. Forward and backward side by side
// (the image math is in kernels/image.h), then each layer's registry entry: its Keras config,
// read in one place per layer (tf.keras 2.x and Keras 3 keys), written as tf.keras 2.6's get_config,
// and its ONNX export (the Random* layers are the identity in inference; CenterCrop a Slice;
// Resizing an ONNX Resize).
#include "reskit/layers/preprocessing_image.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kernels/kernels.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"
#include "reskit/random.h"

namespace reskit {

using detail::visit_dtype;

namespace {

void check_image_shape(const Layer& l, const Shape& in) {
  if (in.size() != 4) {
    throw ShapeError(l.where() + ": expected a 4-D input (batch, rows, cols, channels), got shape " +
                     shape_str(in));
  }
  if (in[1] == 0 || in[2] == 0) {
    throw ShapeError(l.where() + ": expected an image of at least 1x1, got shape " + shape_str(in));
  }
}

kernels::ResizeMethod resize_method(const std::string& where, const std::string& name) {
  if (name == "bilinear") return kernels::ResizeMethod::bilinear;
  if (name == "nearest") return kernels::ResizeMethod::nearest;
  if (name == "bicubic") return kernels::ResizeMethod::bicubic;
  if (name == "area") return kernels::ResizeMethod::area;
  throw ConfigError(where +
                    ": expected interpolation \"bilinear\", \"nearest\", \"bicubic\" or \"area\", got \"" +
                    name + "\"");
}

void check_size(const std::string& where, int height, int width) {
  if (height <= 0 || width <= 0) {
    throw ConfigError(where + ": expected a positive height and width, got " + std::to_string(height) +
                      " and " + std::to_string(width));
  }
}

std::string range_str(const FactorRange& f) {
  return f.scalar ? std::to_string(f.upper)
                  : "(" + std::to_string(f.lower) + ", " + std::to_string(f.upper) + ")";
}

// One number f as (−f, f); the pair as given.
FactorRange symmetric(FactorRange f) {
  if (f.scalar) f.lower = -f.upper;
  return f;
}

kernels::FillMode fill_mode_of(const std::string& s) {
  if (s == "reflect") return kernels::FillMode::reflect;
  if (s == "wrap") return kernels::FillMode::wrap;
  if (s == "constant") return kernels::FillMode::constant;
  return kernels::FillMode::nearest;
}

// SplitMix64's next output.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// ---------------------------------------------------------------- Resizing
// x (N,H,W,C) -> y (N,height,width,C)

ResizingLayer::ResizingLayer(int height, int width, ResizingOptions options)
    : Layer("Resizing", options.name), height_(height), width_(width), options_(std::move(options)) {
  check_size(where(), height_, width_);
  resize_method(where(), options_.interpolation);
}

Shape ResizingLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_image_shape(*this, in);
  return {in[0], height_, width_, in[3]};
}

namespace {
kernels::ResizeParams resize_params(const Shape& x, int height, int width, kernels::ResizeMethod method,
                                    bool crop_to_aspect_ratio) {
  kernels::ResizeParams p;
  p.n = x[0], p.h = x[1], p.w = x[2], p.c = x[3], p.p = height, p.q = width;
  p.method = method;
  if (crop_to_aspect_ratio) {
    const kernels::CropBox box = kernels::resize_crop_box(p.h, p.w, height, width);
    p.top = box.top, p.left = box.left, p.rows = box.rows, p.cols = box.cols;
  }
  return p;
}
}  // namespace

Tensor ResizingLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  Tensor y = Tensor::uninitialized(output_shape({x.shape()}), dtype());
  const auto p = resize_params(x.shape(), height_, width_, resize_method(where(), options_.interpolation),
                               options_.crop_to_aspect_ratio);
  visit_dtype(dtype(), [&]<class T>(T) { kernels::resize_forward<T>(p, x.data<T>(), y.data<T>()); });
  input_shape_ = x.shape();
  return y;
}

std::vector<Tensor> ResizingLayer::backward(const Tensor& dy) {
  if (!input_gradients_needed()) return {Tensor()};
  Tensor dx = Tensor::uninitialized(input_shape_, dtype());
  const auto p = resize_params(input_shape_, height_, width_, resize_method(where(), options_.interpolation),
                               options_.crop_to_aspect_ratio);
  visit_dtype(dtype(), [&]<class T>(T) { kernels::resize_backward<T>(p, dy.data<T>(), dx.data<T>()); });
  return {dx};
}

Resizing::Resizing(int height, int width, ResizingOptions options)
    : LayerRef(std::make_shared<ResizingLayer>(height, width, std::move(options))) {}

// ---------------------------------------------------------------- CenterCrop
// x (N,H,W,C) -> y (N,height,width,C): a window, or a bilinear crop-to-aspect resize when smaller

CenterCropLayer::CenterCropLayer(int height, int width, CenterCropOptions options)
    : Layer("CenterCrop", options.name), height_(height), width_(width) {
  check_size(where(), height_, width_);
}

Shape CenterCropLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_image_shape(*this, in);
  return {in[0], height_, width_, in[3]};
}

namespace {
// Keras: h_start = int((H − height) / 2) (the difference is not negative here).
kernels::CropBox center_box(const Shape& x, int height, int width) {
  return {(x[1] - height) / 2, (x[2] - width) / 2, height, width};
}
}  // namespace

Tensor CenterCropLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  const Shape& s = x.shape();
  Tensor y = Tensor::uninitialized(output_shape({s}), dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    if (resizes(s[1], s[2])) {
      const auto p = resize_params(s, height_, width_, kernels::ResizeMethod::bilinear, true);
      kernels::resize_forward<T>(p, x.data<T>(), y.data<T>());
    } else {
      kernels::crop_forward<T>(s[0], s[1], s[2], s[3], center_box(s, height_, width_), x.data<T>(),
                               y.data<T>());
    }
  });
  input_shape_ = s;
  return y;
}

std::vector<Tensor> CenterCropLayer::backward(const Tensor& dy) {
  if (!input_gradients_needed()) return {Tensor()};
  const Shape& s = input_shape_;
  Tensor dx = Tensor::uninitialized(s, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    if (resizes(s[1], s[2])) {
      const auto p = resize_params(s, height_, width_, kernels::ResizeMethod::bilinear, true);
      kernels::resize_backward<T>(p, dy.data<T>(), dx.data<T>());
    } else {
      kernels::crop_backward<T>(s[0], s[1], s[2], s[3], center_box(s, height_, width_), dy.data<T>(),
                                dx.data<T>());
    }
  });
  return {dx};
}

CenterCrop::CenterCrop(int height, int width, CenterCropOptions options)
    : LayerRef(std::make_shared<CenterCropLayer>(height, width, std::move(options))) {}

// ---------------------------------------------------------------- the Random* layers

RandomImageLayer::RandomImageLayer(std::string class_name, std::string name,
                                   std::optional<std::uint64_t> seed)
    : Layer(std::move(class_name), std::move(name)),
      seed_(seed),
      stream_seed_(seed ? *seed : next_random_seed()) {}

std::uint64_t RandomImageLayer::next_call_seed() { return stream_seed_ + 0x9e3779b97f4a7c15ULL * ++calls_; }

double RandomImageLayer::uniform(std::uint64_t& state, double lo, double hi) {
  const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
  return lo + (hi - lo) * u;
}

void RandomImageLayer::check_image(const Shape& in) const { check_image_shape(*this, in); }

// ---------------------------------------------------------------- RandomFlip
// training: y[n] = x[n] with columns (p = 1/2) and rows (p = 1/2) reversed; its own adjoint

RandomFlipLayer::RandomFlipLayer(RandomFlipOptions options)
    : RandomImageLayer("RandomFlip", options.name, options.seed), options_(std::move(options)) {
  const std::string& m = options_.mode;
  if (m != "horizontal" && m != "vertical" && m != "horizontal_and_vertical") {
    throw ConfigError(where() +
                      ": expected mode \"horizontal\", \"vertical\" or \"horizontal_and_vertical\", got \"" +
                      m + "\"");
  }
}

Shape RandomFlipLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_image(in);
  return in;
}

Tensor RandomFlipLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
  flip_rows_.clear();
  flip_cols_.clear();
  if (!training) return x;
  const Shape& s = x.shape();
  const bool horizontal = options_.mode != "vertical", vertical = options_.mode != "horizontal";
  std::uint64_t state = next_call_seed();
  flip_rows_.assign(static_cast<std::size_t>(s[0]), 0);
  flip_cols_.assign(static_cast<std::size_t>(s[0]), 0);
  for (std::int64_t n = 0; n < s[0]; ++n) {
    if (horizontal) flip_cols_[n] = uniform(state, 0.0, 1.0) < 0.5 ? 1 : 0;
    if (vertical) flip_rows_[n] = uniform(state, 0.0, 1.0) < 0.5 ? 1 : 0;
  }
  Tensor y = Tensor::uninitialized(s, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::flip_images<T>(s[0], s[1], s[2], s[3], flip_rows_.data(), flip_cols_.data(), x.data<T>(),
                            y.data<T>());
  });
  return y;
}

std::vector<Tensor> RandomFlipLayer::backward(const Tensor& dy) {
  if (flip_rows_.empty()) return {dy};
  if (!input_gradients_needed()) return {Tensor()};
  const Shape& s = dy.shape();
  Tensor dx = Tensor::uninitialized(s, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::flip_images<T>(s[0], s[1], s[2], s[3], flip_rows_.data(), flip_cols_.data(), dy.data<T>(),
                            dx.data<T>());
  });
  return {dx};
}

RandomFlip::RandomFlip(RandomFlipOptions options)
    : LayerRef(std::make_shared<RandomFlipLayer>(std::move(options))) {}

// ---------------------------------------------------------------- RandomRotation, RandomZoom,
// RandomTranslation training: y[n] = x[n] sampled through the image's drawn transform (kernels/image.h)

RandomTransformLayer::RandomTransformLayer(std::string class_name, RandomTransformOptions options)
    : RandomImageLayer(std::move(class_name), options.name, options.seed), options_(std::move(options)) {
  const std::string& f = options_.fill_mode;
  if (f != "reflect" && f != "wrap" && f != "constant" && f != "nearest") {
    throw ConfigError(where() +
                      ": expected fill_mode \"reflect\", \"wrap\", \"constant\" or \"nearest\", got \"" + f +
                      "\"");
  }
  if (options_.interpolation != "bilinear" && options_.interpolation != "nearest") {
    throw ConfigError(where() + ": expected interpolation \"bilinear\" or \"nearest\", got \"" +
                      options_.interpolation + "\"");
  }
}

Shape RandomTransformLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_image(in);
  return in;
}

namespace {
kernels::TransformParams transform_params(const Shape& s, const RandomTransformOptions& o) {
  kernels::TransformParams p;
  p.n = s[0], p.h = s[1], p.w = s[2], p.c = s[3];
  p.fill_mode = fill_mode_of(o.fill_mode);
  p.interpolation =
      o.interpolation == "nearest" ? kernels::Interpolation::nearest : kernels::Interpolation::bilinear;
  p.fill_value = o.fill_value;
  return p;
}
}  // namespace

Tensor RandomTransformLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
  transforms_.clear();
  if (!training) return x;
  const Shape& s = x.shape();
  std::uint64_t state = next_call_seed();
  transforms_.resize(static_cast<std::size_t>(s[0] * 8));
  for (std::int64_t n = 0; n < s[0]; ++n)
    draw_transform(state, static_cast<double>(s[1]), static_cast<double>(s[2]), transforms_.data() + n * 8);
  Tensor y = Tensor::uninitialized(s, dtype());
  const auto p = transform_params(s, options_);
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::projective_transform_forward<T>(p, transforms_.data(), x.data<T>(), y.data<T>());
  });
  input_shape_ = s;
  return y;
}

std::vector<Tensor> RandomTransformLayer::backward(const Tensor& dy) {
  if (transforms_.empty()) return {dy};
  if (!input_gradients_needed()) return {Tensor()};
  Tensor dx = Tensor::uninitialized(input_shape_, dtype());
  const auto p = transform_params(input_shape_, options_);
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::projective_transform_backward<T>(p, transforms_.data(), dy.data<T>(), dx.data<T>());
  });
  return {dx};
}

// Keras's get_rotation_matrix: a rotation by the angle about the image centre, output to input.
RandomRotationLayer::RandomRotationLayer(FactorRange factor, RandomTransformOptions options)
    : RandomTransformLayer("RandomRotation", std::move(options)), factor_(factor) {
  const FactorRange f = symmetric(factor_);
  if (!(std::isfinite(f.lower) && std::isfinite(f.upper)) || f.upper < f.lower) {
    throw ConfigError(where() + ": expected factor lower <= upper, got " + range_str(factor_));
  }
}

void RandomRotationLayer::draw_transform(std::uint64_t& state, double rows, double cols, float* t) const {
  const FactorRange f = symmetric(factor_);
  const auto angle =
      static_cast<float>(uniform(state, f.lower * 2.0 * std::numbers::pi, f.upper * 2.0 * std::numbers::pi));
  const float c = std::cos(angle), s = std::sin(angle);
  const auto w1 = static_cast<float>(cols - 1), h1 = static_cast<float>(rows - 1);
  const float x_offset = (w1 - (c * w1 - s * h1)) / 2.0f;
  const float y_offset = (h1 - (s * w1 + c * h1)) / 2.0f;
  const float m[8] = {c, -s, x_offset, s, c, y_offset, 0.0f, 0.0f};
  std::copy(m, m + 8, t);
}

RandomRotation::RandomRotation(FactorRange factor, RandomTransformOptions options)
    : LayerRef(std::make_shared<RandomRotationLayer>(factor, std::move(options))) {}

// Keras's get_zoom_matrix: x_in = zx·x + (W − 1)/2·(1 − zx), the same for rows.
RandomZoomLayer::RandomZoomLayer(FactorRange height_factor, std::optional<FactorRange> width_factor,
                                 RandomTransformOptions options)
    : RandomTransformLayer("RandomZoom", std::move(options)), height_(height_factor), width_(width_factor) {
  const FactorRange h = symmetric(height_);
  if (!(std::abs(h.lower) <= 1.0 && std::abs(h.upper) <= 1.0) || h.upper < h.lower) {
    throw ConfigError(where() + ": expected height_factor values in [-1, 1], lower <= upper, got " +
                      range_str(height_));
  }
  if (width_) {
    const FactorRange w = symmetric(*width_);
    if (!(w.lower >= -1.0 && w.upper >= -1.0 && std::isfinite(w.upper)) || w.upper < w.lower) {
      throw ConfigError(where() + ": expected width_factor values of at least -1, lower <= upper, got " +
                        range_str(*width_));
    }
  }
}

void RandomZoomLayer::draw_transform(std::uint64_t& state, double rows, double cols, float* t) const {
  const FactorRange h = symmetric(height_);
  const auto zy = static_cast<float>(uniform(state, 1.0 + h.lower, 1.0 + h.upper));
  float zx = zy;
  if (width_) {
    const FactorRange w = symmetric(*width_);
    zx = static_cast<float>(uniform(state, 1.0 + w.lower, 1.0 + w.upper));
  }
  const float x_offset = (static_cast<float>(cols - 1) / 2.0f) * (1.0f - zx);
  const float y_offset = (static_cast<float>(rows - 1) / 2.0f) * (1.0f - zy);
  const float m[8] = {zx, 0.0f, x_offset, 0.0f, zy, y_offset, 0.0f, 0.0f};
  std::copy(m, m + 8, t);
}

RandomZoom::RandomZoom(FactorRange height_factor, std::optional<FactorRange> width_factor,
                       RandomTransformOptions options)
    : LayerRef(std::make_shared<RandomZoomLayer>(height_factor, width_factor, std::move(options))) {}

// Keras's get_translation_matrix: x_in = x − dx, y_in = y − dy.
RandomTranslationLayer::RandomTranslationLayer(FactorRange height_factor, FactorRange width_factor,
                                               RandomTransformOptions options)
    : RandomTransformLayer("RandomTranslation", std::move(options)),
      height_(height_factor),
      width_(width_factor) {
  for (const auto& [key, factor] : {std::pair{"height_factor", height_}, std::pair{"width_factor", width_}}) {
    const FactorRange f = symmetric(factor);
    if (!(std::abs(f.lower) <= 1.0 && std::abs(f.upper) <= 1.0) || f.upper < f.lower) {
      throw ConfigError(where() + ": expected " + key + " values in [-1, 1], lower <= upper, got " +
                        range_str(factor));
    }
  }
}

void RandomTranslationLayer::draw_transform(std::uint64_t& state, double rows, double cols, float* t) const {
  const FactorRange h = symmetric(height_), w = symmetric(width_);
  const auto dy = static_cast<float>(uniform(state, h.lower, h.upper) * rows);
  const auto dx = static_cast<float>(uniform(state, w.lower, w.upper) * cols);
  const float m[8] = {1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy, 0.0f, 0.0f};
  std::copy(m, m + 8, t);
}

RandomTranslation::RandomTranslation(FactorRange height_factor, FactorRange width_factor,
                                     RandomTransformOptions options)
    : LayerRef(std::make_shared<RandomTranslationLayer>(height_factor, width_factor, std::move(options))) {}

// ---------------------------------------------------------------- RandomContrast
// training: y = clip((x − mean)·f + mean, value_range), f per image

RandomContrastLayer::RandomContrastLayer(FactorRange factor, RandomContrastOptions options)
    : RandomImageLayer("RandomContrast", options.name, options.seed),
      factor_(factor),
      options_(std::move(options)) {
  if (factor_.scalar) factor_.lower = factor_.upper;
  if (!(factor_.lower >= 0.0 && factor_.upper >= 0.0 && factor_.lower <= 1.0 &&
        std::isfinite(factor_.upper))) {
    throw ConfigError(where() +
                      ": expected factor values of at least 0 and a lower bound of at most 1, got " +
                      range_str(factor_));
  }
  if (!(options_.value_range[0] <= options_.value_range[1])) {
    throw ConfigError(where() + ": expected value_range (low, high) with low <= high, got (" +
                      std::to_string(options_.value_range[0]) + ", " +
                      std::to_string(options_.value_range[1]) + ")");
  }
}

Shape RandomContrastLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_image(in);
  return in;
}

namespace {
kernels::ContrastParams contrast_params(const Shape& s, const RandomContrastOptions& o) {
  kernels::ContrastParams p;
  p.n = s[0], p.h = s[1], p.w = s[2], p.c = s[3];
  p.lo = o.value_range[0], p.hi = o.value_range[1];
  return p;
}
}  // namespace

Tensor RandomContrastLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
  factors_.clear();
  x_ = Tensor();
  if (!training) return x;
  const Shape& s = x.shape();
  std::uint64_t state = next_call_seed();
  factors_.resize(static_cast<std::size_t>(s[0]));
  for (auto& f : factors_) f = uniform(state, 1.0 - factor_.lower, 1.0 + factor_.upper);
  Tensor y = Tensor::uninitialized(s, dtype());
  const auto p = contrast_params(s, options_);
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::contrast_forward<T>(p, factors_.data(), x.data<T>(), y.data<T>());
  });
  x_ = x;
  return y;
}

std::vector<Tensor> RandomContrastLayer::backward(const Tensor& dy) {
  if (factors_.empty()) return {dy};
  if (!input_gradients_needed()) return {Tensor()};
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  const auto p = contrast_params(x_.shape(), options_);
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::contrast_backward<T>(p, factors_.data(), x_.data<T>(), dy.data<T>(), dx.data<T>());
  });
  return {dx};
}

RandomContrast::RandomContrast(FactorRange factor, RandomContrastOptions options)
    : LayerRef(std::make_shared<RandomContrastLayer>(factor, std::move(options))) {}

// ---------------------------------------------------------------- registry entries

namespace layers {
namespace {

using keras::Json;
using onnx_export::Value;

// Runs a layer constructor; its ConfigError becomes the reader's FileError naming the layer.
template <class F>
Tensor made(const keras::LayerCtx& l, F&& f) {
  try {
    return f();
  } catch (const ConfigError& e) {
    std::string what = e.what();
    const std::string prefix = l.where() + ": ";
    if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
    keras::bad(l, what);
  }
}

int size_option(const Json& c, const char* key, const keras::LayerCtx& l) {
  return static_cast<int>(keras::as_int(keras::require(c, key, l), l, key, 1, keras::kMaxDim));
}

std::string lower_string_option(const Json& c, const char* key, const std::string& fallback,
                                const keras::LayerCtx& l) {
  const Json* v = keras::find(c, key);
  if (!v || v->is_null()) return fallback;
  std::string s = keras::as_string(*v, l, key);
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// A factor: a number, or a list of two numbers.
FactorRange factor_option(const Json& v, const char* key, const keras::LayerCtx& l) {
  FactorRange f;
  if (v.is_array()) {
    if (v.size() != 2)
      keras::bad(l, std::string("expected ") + key + " as a number or a pair, got " + keras::short_dump(v));
    f.lower = keras::as_double(v[0], l, key);
    f.upper = keras::as_double(v[1], l, key);
    f.scalar = false;
  } else {
    f.upper = keras::as_double(v, l, key);
  }
  if (!std::isfinite(f.lower) || !std::isfinite(f.upper)) keras::bad(l, std::string(key) + " must be finite");
  return f;
}

Json factor_json(const FactorRange& f) { return f.scalar ? Json(f.upper) : Json::array({f.lower, f.upper}); }

std::optional<std::uint64_t> seed_option(const Json& c, const keras::LayerCtx& l) {
  const Json* v = keras::find(c, "seed");
  if (!v || v->is_null()) return std::nullopt;
  return static_cast<std::uint64_t>(keras::as_int(*v, l, "seed", 0, INT64_MAX));
}

Json seed_json(std::optional<std::uint64_t> seed) { return seed ? Json(*seed) : Json(nullptr); }

// Resizing

Tensor resizing_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                            keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  keras::expect_channels_last(c, l);
  ResizingOptions o;
  o.interpolation = lower_string_option(c, "interpolation", "bilinear", l);
  if (o.interpolation != "bilinear" && o.interpolation != "nearest" && o.interpolation != "bicubic" &&
      o.interpolation != "area") {
    keras::unsupported(l, "interpolation", c["interpolation"],
                       "\"bilinear\", \"nearest\", \"bicubic\" and \"area\"");
  }
  o.crop_to_aspect_ratio = keras::bool_option(c, "crop_to_aspect_ratio", false, l);
  if (keras::bool_option(c, "pad_to_aspect_ratio", false, l)) {
    keras::unsupported(l, "pad_to_aspect_ratio", c["pad_to_aspect_ratio"], "false");
  }
  if (keras::bool_option(c, "antialias", false, l))
    keras::unsupported(l, "antialias", c["antialias"], "false");
  o.name = l.name;
  const int h = size_option(c, "height", l), w = size_option(c, "width", l);
  return made(l, [&] { return Resizing(h, w, o)(x); });
}

Json resizing_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const ResizingLayer&>(layer);
  Json c = keras::base_config(layer);
  c["height"] = r.height();
  c["width"] = r.width();
  c["interpolation"] = r.options().interpolation;
  c["crop_to_aspect_ratio"] = r.options().crop_to_aspect_ratio;
  return c;
}

// The Resize node of x (NCHW, rows x cols) to rows_out x cols_out: scales chosen so that ONNX's
// floor(size · scale) gives the target size, each no further from out/in than one float step.
Value resize_node(onnx_export::NodeExport& e, const Value& x, std::int64_t rows, std::int64_t cols,
                  std::int64_t rows_out, std::int64_t cols_out, const std::string& method) {
  auto& g = e.graph();
  auto scale = [](std::int64_t in, std::int64_t out) {
    float s = static_cast<float>(out) / static_cast<float>(in);
    while (std::floor(static_cast<float>(in) * s) < static_cast<float>(out))
      s = std::nextafter(s, 2.0f * s + 1.0f);
    return s;
  };
  const std::vector<float> scales = {1.0f, 1.0f, scale(rows, rows_out), scale(cols, cols_out)};
  const std::string roi = g.initializer(g.unique(e.base() + "/roi"), {0}, std::span<const float>());
  const std::string scales_name = g.initializer(g.unique(e.base() + "/scales"), {4}, scales);
  Value out{g.unique(e.base()), 4};
  auto& n = g.node("Resize", {x.name, roi, scales_name}, out.name, e.base());
  if (method == "nearest") {
    // TF's own mode. (half_pixel with round_prefer_ceil is the same number by the spec, but OpenCV 4.6
    // runs that as another rounding and gives other pixels; it refuses this one.)
    n.set_string("coordinate_transformation_mode", "tf_half_pixel_for_nn");
    n.set_string("mode", "nearest");
    n.set_string("nearest_mode", "floor");
  } else if (method == "bicubic") {
    n.set_string("coordinate_transformation_mode", "half_pixel");
    n.set_float("cubic_coeff_a", -0.5);
    n.set_int("exclude_outside", 1);
    n.set_string("mode", "cubic");
  } else {
    n.set_string("coordinate_transformation_mode", "half_pixel");
    n.set_string("mode", "linear");
  }
  return out;
}

// A Slice of rows [top, top + rows) and columns [left, left + cols) of x (NCHW).
Value slice_node(onnx_export::NodeExport& e, const Value& x, const kernels::CropBox& box,
                 const std::string& output) {
  auto& g = e.graph();
  const std::string starts = g.int64_initializer(e.base() + "/starts", {box.top, box.left});
  const std::string ends = g.int64_initializer(e.base() + "/ends", {box.top + box.rows, box.left + box.cols});
  const std::string axes = g.int64_initializer(e.base() + "/axes", {2, 3});
  Value out{output, 4};
  g.node("Slice", {x.name, starts, ends, axes}, out.name, e.base() + "/Slice");
  return out;
}

// Resizing: a Resize (after a Slice for crop_to_aspect_ratio). ONNX has no area resampling; its
// cubic weights are exact where TensorFlow reads them from a 1024-entry table (about 1e-3 apart).
Value resizing_to_onnx(onnx_export::NodeExport& e) {
  const auto& r = dynamic_cast<ResizingLayer&>(e.layer());
  const Value& x = e.input4d();
  const std::string& method = r.options().interpolation;
  if (method == "area")
    e.fail("interpolation \"area\" has no ONNX Resize mode; export needs bilinear, nearest or bicubic");
  const Shape& s = e.input_shapes().at(0);
  Value in = x;
  std::int64_t rows = s[1], cols = s[2];
  if (r.options().crop_to_aspect_ratio) {
    const kernels::CropBox box = kernels::resize_crop_box(rows, cols, r.height(), r.width());
    in = slice_node(e, x, box, e.graph().unique(e.base() + "/crop"));
    rows = box.rows, cols = box.cols;
  }
  return resize_node(e, in, rows, cols, r.height(), r.width(), method);
}

// CenterCrop

Tensor center_crop_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                               keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  keras::expect_channels_last(c, l);
  const int h = size_option(c, "height", l), w = size_option(c, "width", l);
  return made(l, [&] { return CenterCrop(h, w, {.name = l.name})(x); });
}

Json center_crop_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const CenterCropLayer&>(layer);
  Json c = keras::base_config(layer);
  c["height"] = r.height();
  c["width"] = r.width();
  return c;
}

// CenterCrop: a Slice, or a Slice and a bilinear Resize for an input smaller than the target.
Value center_crop_to_onnx(onnx_export::NodeExport& e) {
  const auto& r = dynamic_cast<CenterCropLayer&>(e.layer());
  const Value& x = e.input4d();
  const Shape& s = e.input_shapes().at(0);
  if (!r.resizes(s[1], s[2])) {
    return slice_node(e, x, {(s[1] - r.height()) / 2, (s[2] - r.width()) / 2, r.height(), r.width()},
                      e.graph().unique(e.base()));
  }
  const kernels::CropBox box = kernels::resize_crop_box(s[1], s[2], r.height(), r.width());
  const Value crop = slice_node(e, x, box, e.graph().unique(e.base() + "/crop"));
  return resize_node(e, crop, box.rows, box.cols, r.height(), r.width(), "bilinear");
}

// RandomFlip

Tensor random_flip_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                               keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  keras::expect_channels_last(c, l);
  RandomFlipOptions o;
  o.mode = lower_string_option(c, "mode", "horizontal_and_vertical", l);
  if (o.mode != "horizontal" && o.mode != "vertical" && o.mode != "horizontal_and_vertical") {
    keras::unsupported(l, "mode", c["mode"], "\"horizontal\", \"vertical\" and \"horizontal_and_vertical\"");
  }
  o.seed = seed_option(c, l);
  o.name = l.name;
  return made(l, [&] { return RandomFlip(o)(x); });
}

Json random_flip_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RandomFlipLayer&>(layer);
  Json c = keras::base_config(layer);
  c["mode"] = r.mode();
  c["seed"] = seed_json(r.seed());
  return c;
}

// RandomRotation, RandomZoom, RandomTranslation: the options they share.

RandomTransformOptions transform_options(const Json& c, const keras::LayerCtx& l) {
  keras::expect_channels_last(c, l);
  RandomTransformOptions o;
  o.fill_mode = lower_string_option(c, "fill_mode", "reflect", l);
  if (o.fill_mode != "reflect" && o.fill_mode != "wrap" && o.fill_mode != "constant" &&
      o.fill_mode != "nearest") {
    keras::unsupported(l, "fill_mode", c["fill_mode"], "\"reflect\", \"wrap\", \"constant\" and \"nearest\"");
  }
  o.interpolation = lower_string_option(c, "interpolation", "bilinear", l);
  if (o.interpolation != "bilinear" && o.interpolation != "nearest") {
    keras::unsupported(l, "interpolation", c["interpolation"], "\"bilinear\" and \"nearest\"");
  }
  if (const Json* v = keras::find(c, "fill_value"); v && !v->is_null()) {
    o.fill_value = keras::as_double(*v, l, "fill_value");
    if (!std::isfinite(o.fill_value)) keras::bad(l, "fill_value must be finite");
  }
  o.seed = seed_option(c, l);
  o.name = l.name;
  return o;
}

// Keys in tf.keras 2.6's order: the layer's factors, then these.
void add_transform_options(Json& c, const RandomTransformLayer& r) {
  c["fill_mode"] = r.options().fill_mode;
  c["fill_value"] = r.options().fill_value;
  c["interpolation"] = r.options().interpolation;
  c["seed"] = seed_json(r.seed());
}

Tensor random_rotation_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                   keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  const FactorRange factor = factor_option(keras::require(c, "factor", l), "factor", l);
  const RandomTransformOptions o = transform_options(c, l);
  return made(l, [&] { return RandomRotation(factor, o)(x); });
}

Json random_rotation_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RandomRotationLayer&>(layer);
  Json c = keras::base_config(layer);
  c["factor"] = factor_json(r.factor());
  add_transform_options(c, r);
  return c;
}

Tensor random_zoom_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                               keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  const FactorRange height = factor_option(keras::require(c, "height_factor", l), "height_factor", l);
  std::optional<FactorRange> width;
  if (const Json* v = keras::find(c, "width_factor"); v && !v->is_null())
    width = factor_option(*v, "width_factor", l);
  const RandomTransformOptions o = transform_options(c, l);
  return made(l, [&] { return RandomZoom(height, width, o)(x); });
}

Json random_zoom_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RandomZoomLayer&>(layer);
  Json c = keras::base_config(layer);
  c["height_factor"] = factor_json(r.height_factor());
  c["width_factor"] = r.width_factor() ? factor_json(*r.width_factor()) : Json(nullptr);
  add_transform_options(c, r);
  return c;
}

Tensor random_translation_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                      keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  const FactorRange height = factor_option(keras::require(c, "height_factor", l), "height_factor", l);
  const FactorRange width = factor_option(keras::require(c, "width_factor", l), "width_factor", l);
  const RandomTransformOptions o = transform_options(c, l);
  return made(l, [&] { return RandomTranslation(height, width, o)(x); });
}

Json random_translation_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RandomTranslationLayer&>(layer);
  Json c = keras::base_config(layer);
  c["height_factor"] = factor_json(r.height_factor());
  c["width_factor"] = factor_json(r.width_factor());
  add_transform_options(c, r);
  return c;
}

// RandomContrast: tf.keras 2.x clips to [0, 255]; Keras 3 to its value_range (default the same).

Tensor random_contrast_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                   keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  keras::expect_channels_last(c, l);
  const FactorRange factor = factor_option(keras::require(c, "factor", l), "factor", l);
  RandomContrastOptions o;
  if (const Json* v = keras::find(c, "value_range"); v && !v->is_null()) {
    if (!v->is_array() || v->size() != 2)
      keras::bad(l, "expected value_range as a pair, got " + keras::short_dump(*v));
    o.value_range = {keras::as_double((*v)[0], l, "value_range"),
                     keras::as_double((*v)[1], l, "value_range")};
  }
  o.seed = seed_option(c, l);
  o.name = l.name;
  return made(l, [&] { return RandomContrast(factor, o)(x); });
}

Json random_contrast_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RandomContrastLayer&>(layer);
  Json c = keras::base_config(layer);
  FactorRange f = r.factor();
  c["factor"] = factor_json(f);
  if (r.options().value_range != std::array<double, 2>{0.0, 255.0}) {
    c["value_range"] = Json::array({r.options().value_range[0], r.options().value_range[1]});
  }
  c["seed"] = seed_json(r.seed());
  return c;
}

// The Random* layers export as what they are in inference: the identity.
Value identity_to_onnx(onnx_export::NodeExport& e) { return e.inputs().at(0); }

LayerEntry entry(const char* name, FromConfig from, ToConfig to, ToOnnx onnx) {
  LayerEntry e;
  e.class_name = name;
  e.from_config = std::move(from);
  e.to_config = std::move(to);
  e.to_onnx = std::move(onnx);
  return e;
}

}  // namespace

void register_preprocessing_image(std::vector<LayerEntry>& out) {
  out.push_back(entry("Resizing", resizing_from_config, resizing_to_config, resizing_to_onnx));
  out.push_back(entry("CenterCrop", center_crop_from_config, center_crop_to_config, center_crop_to_onnx));
  out.push_back(entry("RandomFlip", random_flip_from_config, random_flip_to_config, identity_to_onnx));
  out.push_back(
      entry("RandomRotation", random_rotation_from_config, random_rotation_to_config, identity_to_onnx));
  out.push_back(entry("RandomZoom", random_zoom_from_config, random_zoom_to_config, identity_to_onnx));
  out.push_back(entry("RandomTranslation", random_translation_from_config, random_translation_to_config,
                      identity_to_onnx));
  out.push_back(
      entry("RandomContrast", random_contrast_from_config, random_contrast_to_config, identity_to_onnx));
}

}  // namespace layers

}  // namespace reskit
