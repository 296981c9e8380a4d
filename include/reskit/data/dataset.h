// reskit/data/dataset.h — labelled image data held in memory, and batches drawn from it.
//
// A Dataset holds N images (NHWC) either as uint8 pixels (scaled by 1/255 when batched, as the
// notebook does) or as float32 values (taken as they are), with an int label per image and the
// class names when the source has them. Subsets share the pixels; batches are filled from a list
// of sample indices, so an epoch never copies the whole dataset.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "reskit/tensor.h"

namespace reskit {

struct AugmentOptions {
  int pad_crop = 0;              // random crop after zero-padding by this many pixels per side
  bool horizontal_flip = false;  // flip left-right with probability 1/2
  // Streams only (data/stream.h): Inception's random resized crop of the decoded picture, a box
  // of area [min_area, max_area] of the picture and aspect ratio (width / height) log-uniform in
  // [min_ratio, max_ratio], resized to the sample size (torchvision's RandomResizedCrop).
  bool random_resized_crop = false;
  double min_area = 0.08, max_area = 1.0;
  double min_ratio = 3.0 / 4.0, max_ratio = 4.0 / 3.0;
  bool any() const { return pad_crop > 0 || horizontal_flip || random_resized_crop; }
  // The generator values fill_batch draws per sample, in sample order (a data-parallel rank skips
  // the draws of the samples before its shard).
  int draws_per_sample() const { return (pad_crop > 0 ? 2 : 0) + (horizontal_flip ? 1 : 0); }
};

class Dataset {
 public:
  Dataset() = default;
  // shape is (N, H, W, C); labels in [0, num_classes). Throws DataError-style reskit::Error
  // naming `source` when sizes disagree or a label is out of range.
  static Dataset from_uint8(std::string source, Shape shape, std::vector<std::uint8_t> pixels,
                            std::vector<std::int32_t> labels, int num_classes,
                            std::vector<std::string> class_names = {});
  static Dataset from_float(std::string source, Shape shape, std::vector<float> values,
                            std::vector<std::int32_t> labels, int num_classes,
                            std::vector<std::string> class_names = {});
  // x (N, H, W, C) as it is; y one-hot (N, K) or class indices (N) / (N, 1).
  static Dataset from_tensors(const Tensor& x, const Tensor& y, int num_classes = 0);

  std::int64_t size() const { return static_cast<std::int64_t>(index_.size()); }
  bool empty() const { return index_.empty(); }
  // (H, W, C)
  const Shape& sample_shape() const { return sample_shape_; }
  int num_classes() const { return num_classes_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Where the data came from, for messages.
  const std::string& source() const { return source_; }
  std::int32_t label(std::int64_t i) const;

  // Samples [begin, end) of this dataset, sharing the pixels.
  Dataset subset(std::int64_t begin, std::int64_t end) const;

  // x (b, H, W, C) in dtype and y one-hot (b, K) for samples indices[0..b), augmented if asked.
  void fill_batch(std::span<const std::int64_t> indices, Tensor& x, Tensor& y,
                  const AugmentOptions& augment = {}, std::mt19937_64* gen = nullptr) const;
  // Every sample as one tensor (N, H, W, C), and one-hot targets (N, K).
  Tensor images(DType dtype) const;
  Tensor one_hot(DType dtype) const;

 private:
  struct Storage {
    std::vector<std::uint8_t> pixels;
    std::vector<float> values;
    std::vector<std::int32_t> labels;
  };
  static Dataset make(std::string source, const Shape& shape, std::shared_ptr<Storage> storage,
                      int num_classes, std::vector<std::string> class_names);

  std::string source_;
  std::shared_ptr<const Storage> storage_;
  std::vector<std::int64_t> index_;  // sample i of this dataset is storage sample index_[i]
  Shape sample_shape_;
  int num_classes_ = 0;
  std::vector<std::string> class_names_;
};

}  // namespace reskit
