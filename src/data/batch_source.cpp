// An in-memory Dataset served as a BatchSource: the batches fit has always drawn.
#include "reskit/data/batch_source.h"

#include <algorithm>

namespace reskit {

void DatasetBatches::start_epoch(int, std::span<const std::int64_t> order, std::int64_t batch_size,
                                 std::int64_t, const AugmentOptions& augment, std::mt19937_64* gen) {
  order_ = order;
  batch_size_ = batch_size;
  augment_ = augment;
  gen_ = gen;
}

void DatasetBatches::next_batch(std::int64_t step, Tensor& x, Tensor& y) {
  const auto n = static_cast<std::int64_t>(order_.size());
  const std::int64_t lo = step * batch_size_, hi = std::min(n, lo + batch_size_);
  data_.fill_batch(order_.subspan(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi - lo)), x, y,
                   augment_, gen_);
}

}  // namespace reskit
