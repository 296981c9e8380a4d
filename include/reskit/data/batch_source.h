// reskit/data/batch_source.h — where fit and evaluate draw their batches from.
//
// A BatchSource hands out an epoch's batches in step order: fit gives it the epoch's order of
// sample indices (its shuffle) and asks for batch `step` = samples order[step*b, step*b + b).
// DatasetBatches serves an in-memory Dataset exactly as fit always has (augmentation drawn from
// fit's generator in step order); StreamDataset (data/stream.h) reads and decodes samples on worker
// threads ahead of the training step.
//
// Not here: the shuffle (fit draws it, and a checkpoint keeps it) and the validation split.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>

#include "reskit/data/dataset.h"
#include "reskit/tensor.h"

namespace reskit {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual std::int64_t size() const = 0;
  // (H, W, C) of every sample
  virtual const Shape& sample_shape() const = 0;
  virtual int num_classes() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  // Where the data came from, for messages.
  virtual const std::string& source() const = 0;

  // The batches of epoch `epoch` (0-based) are order[step*batch_size, ...), from step first_step
  // on. `order` must outlive the epoch. `gen` is fit's generator: DatasetBatches draws the
  // augmentation from it; a stream draws from (its seed, epoch, sample index) instead.
  virtual void start_epoch(int epoch, std::span<const std::int64_t> order, std::int64_t batch_size,
                           std::int64_t first_step, const AugmentOptions& augment, std::mt19937_64* gen) = 0;
  // Batch `step` (steps are asked for in order): x (b, H, W, C) in x's dtype, y one-hot (b, K).
  virtual void next_batch(std::int64_t step, Tensor& x, Tensor& y) = 0;
  // The epoch is over or abandoned: nothing more is read for it. Returns a line to show at the
  // epoch's end (e.g. files skipped), or "".
  virtual std::string end_epoch() { return {}; }
};

// An in-memory Dataset as a BatchSource (the Dataset must outlive it).
class DatasetBatches final : public BatchSource {
 public:
  explicit DatasetBatches(const Dataset& data) : data_(data) {}
  std::int64_t size() const override { return data_.size(); }
  const Shape& sample_shape() const override { return data_.sample_shape(); }
  int num_classes() const override { return data_.num_classes(); }
  const std::vector<std::string>& class_names() const override { return data_.class_names(); }
  const std::string& source() const override { return data_.source(); }
  void start_epoch(int epoch, std::span<const std::int64_t> order, std::int64_t batch_size,
                   std::int64_t first_step, const AugmentOptions& augment, std::mt19937_64* gen) override;
  void next_batch(std::int64_t step, Tensor& x, Tensor& y) override;

 private:
  const Dataset& data_;
  std::span<const std::int64_t> order_;
  std::int64_t batch_size_ = 1;
  AugmentOptions augment_;
  std::mt19937_64* gen_ = nullptr;
};

}  // namespace reskit
