// A stream worker's steps on one picture (see sample_ops.h).
#include "data/sample_ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "reskit/error.h"

namespace reskit::data_detail {

namespace {
std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

SampleRng::SampleRng(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index)
    : state_(mix(mix(mix(seed) ^ epoch) ^ index)) {}

std::uint64_t SampleRng::next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return mix(state_);
}

double SampleRng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::int64_t SampleRng::below(std::int64_t n) {
  return static_cast<std::int64_t>(uniform() * static_cast<double>(n));
}

Box random_resized_crop_box(std::int64_t rows, std::int64_t cols, const AugmentOptions& a, SampleRng& rng) {
  const double area = static_cast<double>(rows) * static_cast<double>(cols);
  const double log_lo = std::log(a.min_ratio), log_hi = std::log(a.max_ratio);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (a.min_area + (a.max_area - a.min_area) * rng.uniform());
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    const auto w = static_cast<std::int64_t>(std::round(std::sqrt(target * ratio)));
    const auto h = static_cast<std::int64_t>(std::round(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= cols && h <= rows) {
      const std::int64_t top = rng.below(rows - h + 1), left = rng.below(cols - w + 1);
      return {top, left, h, w};
    }
  }
  // the centred crop, its ratio clamped to the range
  const double in_ratio = static_cast<double>(cols) / static_cast<double>(rows);
  std::int64_t w = cols, h = rows;
  if (in_ratio < a.min_ratio) {
    h = std::max<std::int64_t>(1, std::llround(static_cast<double>(w) / a.min_ratio));
  } else if (in_ratio > a.max_ratio) {
    w = std::max<std::int64_t>(1, std::llround(static_cast<double>(h) * a.max_ratio));
  }
  return {(rows - h) / 2, (cols - w) / 2, h, w};
}

Box aspect_ratio_box(std::int64_t rows, std::int64_t cols, std::int64_t target_rows,
                     std::int64_t target_cols) {
  const kernels::CropBox b = kernels::resize_crop_box(rows, cols, target_rows, target_cols);
  return {b.top, b.left, b.rows, b.cols};
}

Image crop(const Image& image, const Box& box) {
  if (box.top == 0 && box.left == 0 && box.rows == image.rows && box.cols == image.cols) return image;
  if (box.top < 0 || box.left < 0 || box.rows < 1 || box.cols < 1 || box.top + box.rows > image.rows ||
      box.left + box.cols > image.cols) {
    throw Error("crop: box " + std::to_string(box.rows) + "x" + std::to_string(box.cols) + " at (" +
                std::to_string(box.top) + ", " + std::to_string(box.left) + ") outside a picture of " +
                std::to_string(image.rows) + "x" + std::to_string(image.cols));
  }
  const int c = image.channels;
  Image out{box.rows, box.cols, c,
            std::vector<std::uint8_t>(static_cast<std::size_t>(box.rows * box.cols * c))};
  for (std::int64_t r = 0; r < box.rows; ++r) {
    const std::uint8_t* src = image.pixels.data() + ((box.top + r) * image.cols + box.left) * c;
    std::copy(src, src + box.cols * c, out.pixels.data() + r * box.cols * c);
  }
  return out;
}

Image resize_image(const Image& image, std::int64_t rows, std::int64_t cols, Interpolation interpolation) {
  if (image.rows == rows && image.cols == cols) return image;
  return resize_image(image, Box{0, 0, image.rows, image.cols}, rows, cols, interpolation);
}

Image resize_image(const Image& image, const Box& box, std::int64_t rows, std::int64_t cols,
                   Interpolation interpolation) {
  Image out;
  resize_image_into(image, box, rows, cols, interpolation, out);
  return out;
}

void resize_image_into(const Image& image, const Box& box, std::int64_t rows, std::int64_t cols,
                       Interpolation interpolation, Image& out) {
  if (box.rows == rows && box.cols == cols) {
    if (box.top == 0 && box.left == 0 && box.rows == image.rows && box.cols == image.cols) {
      out.rows = image.rows, out.cols = image.cols, out.channels = image.channels;
      out.pixels.assign(image.pixels.begin(), image.pixels.end());
    } else {
      out = crop(image, box);
    }
    return;
  }
  kernels::ResizeParams p{.h = image.rows,
                          .w = image.cols,
                          .c = image.channels,
                          .p = rows,
                          .q = cols,
                          .top = box.top,
                          .left = box.left,
                          .rows = box.rows,
                          .cols = box.cols};
  switch (interpolation) {
    case Interpolation::bilinear:
      p.method = kernels::ResizeMethod::bilinear;
      break;
    case Interpolation::nearest:
      p.method = kernels::ResizeMethod::nearest;
      break;
    case Interpolation::bicubic:
      p.method = kernels::ResizeMethod::bicubic;
      break;
    case Interpolation::area:
      p.method = kernels::ResizeMethod::area;
      break;
  }
  // tf.image.resize on the float pixels, rounded back to 8 bits (bicubic may overshoot: clamped).
  out.rows = rows, out.cols = cols, out.channels = image.channels;
  out.pixels.resize(static_cast<std::size_t>(rows * cols * image.channels));
  kernels::resize_u8(p, image.pixels.data(), out.pixels.data());
}

std::int64_t jpeg_scale_for(const Box& box, std::int64_t target_rows, std::int64_t target_cols) {
  std::int64_t eighths = 8;
  while (eighths > 1 && box.rows * (eighths / 2) >= target_rows * 8 &&
         box.cols * (eighths / 2) >= target_cols * 8)
    eighths /= 2;
  return eighths;
}

}  // namespace reskit::data_detail
