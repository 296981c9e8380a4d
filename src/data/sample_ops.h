// What a stream's worker does to one picture, each step a plain function: the per-sample random
// generator, the boxes of random resized crop and crop_to_aspect_ratio, crop, resize, and the
// final flip / pad-and-crop into a sample. Private to src/data.
#pragma once

#include <cstdint>

#include "reskit/data/dataset.h"
#include "reskit/data/loaders.h"
#include "reskit/data/stream.h"

namespace reskit::data_detail {

// SplitMix64 (Steele, Lea, Flood 2014) seeded by (seed, epoch, index): the random stream of one
// sample in one epoch, the same whichever thread draws it.
class SampleRng {
 public:
  SampleRng(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index);
  std::uint64_t next();
  // uniform in [0, 1) with 53 bits
  double uniform();
  // uniform integer in [0, n) (n >= 1)
  std::int64_t below(std::int64_t n);

 private:
  std::uint64_t state_;
};

// A region of a picture: rows [top, top + rows), columns [left, left + cols).
struct Box {
  std::int64_t top = 0, left = 0, rows = 0, cols = 0;
};

// torchvision's RandomResizedCrop.get_params: up to 10 tries of an area in [min_area, max_area]
// of the picture and a width/height ratio log-uniform in [min_ratio, max_ratio] (sides rounded);
// the first that fits is placed uniformly; else the centred crop of the ratio clamped to the range.
Box random_resized_crop_box(std::int64_t rows, std::int64_t cols, const AugmentOptions& augment,
                            SampleRng& rng);
// Keras smart_resize's box (crop_to_aspect_ratio): the largest centred box of the target's ratio.
Box aspect_ratio_box(std::int64_t rows, std::int64_t cols, std::int64_t target_rows,
                     std::int64_t target_cols);

Image crop(const Image& image, const Box& box);
// The picture resized to rows x cols with `interpolation`: TensorFlow's tf.image.resize on the
// pixels as float (kernels/image.h), rounded to the nearest 8-bit value.
Image resize_image(const Image& image, std::int64_t rows, std::int64_t cols, Interpolation interpolation);
// The `box` of the picture resized: the same bits as resize_image(crop(image, box), ...), without
// the copy (kernels::resize_u8 reads the window in place).
Image resize_image(const Image& image, const Box& box, std::int64_t rows, std::int64_t cols,
                   Interpolation interpolation);
// The same into `out`, whose pixel storage is reused when large enough.
void resize_image_into(const Image& image, const Box& box, std::int64_t rows, std::int64_t cols,
                       Interpolation interpolation, Image& out);

// The largest JPEG reduction (8: none; 4, 2, 1 eighths) at which a `box` of a picture stored as
// rows x cols still covers at least target_rows x target_cols pixels.
std::int64_t jpeg_scale_for(const Box& box, std::int64_t target_rows, std::int64_t target_cols);

}  // namespace reskit::data_detail
