// Data parallelism over a Communicator: shards, the weight broadcast, the gradient allreduce.
#include "reskit/distributed/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "reskit/error.h"

namespace reskit::distributed {

Range shard_range(std::int64_t n, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    throw ConfigError("shard_range: expected 0 <= rank < size, got rank " + std::to_string(rank) + " of " +
                      std::to_string(size));
  }
  const std::int64_t base = n / size, extra = n % size;
  const std::int64_t begin = rank * base + std::min<std::int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

std::span<const std::int64_t> shard(std::span<const std::int64_t> global, int rank, int size) {
  const Range r = shard_range(static_cast<std::int64_t>(global.size()), rank, size);
  return global.subspan(static_cast<std::size_t>(r.begin), static_cast<std::size_t>(r.end - r.begin));
}

namespace {
std::span<std::byte> bytes_of(Tensor& t) {
  return {static_cast<std::byte*>(t.raw_data()), static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype())};
}

// The float32 and float64 tensors of a list, gathered into one buffer per type, summed over the
// ranks and scattered back; `scale` multiplies each sum (1 for gradients).
template <class T>
void sum_into(Communicator& comm, const std::vector<Tensor*>& tensors, std::vector<T>& buffer, double scale) {
  std::size_t total = 0;
  for (const Tensor* t : tensors) total += static_cast<std::size_t>(t->numel());
  if (total == 0) return;
  buffer.resize(total);
  std::size_t at = 0;
  for (Tensor* t : tensors) {
    const auto v = std::as_const(*t).values<T>();
    std::copy(v.begin(), v.end(), buffer.begin() + static_cast<std::ptrdiff_t>(at));
    at += v.size();
  }
  comm.allreduce_sum(std::span<T>(buffer));
  at = 0;
  for (Tensor* t : tensors) {
    auto v = t->values<T>();
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = scale == 1.0 ? buffer[at + i] : static_cast<T>(buffer[at + i] * scale);
    at += v.size();
  }
}
}  // namespace

void broadcast_parameters(Communicator& comm, const std::vector<Param*>& params, int root) {
  if (comm.size() == 1) return;
  for (Param* p : params) comm.broadcast(bytes_of(p->value), root);
}

DataParallel::DataParallel(Model& model, Communicator* comm, std::int64_t global_batch, const char* where)
    : model_(model), comm_(comm) {
  if (!comm_ || comm_->size() == 1) return;
  rank_ = comm_->rank();
  size_ = comm_->size();
  if (global_batch % size_ != 0) {
    throw ConfigError(std::string(where) + ": the global batch size " + std::to_string(global_batch) +
                      " does not split evenly over " + std::to_string(size_) +
                      " processes; expected a multiple of " + std::to_string(size_));
  }
  for (const auto& layer : model_.layers()) {
    if (layer->class_name() == "SyncBatchNormalization") continue;  // global statistics already
    for (Param& p : layer->params())
      if (!p.trainable) averaged_.push_back(&p);
  }
  model_.set_train_step_hooks(
      {.loss_gradient_scale = 1.0,
       .after_backward = [this](const std::vector<Param*>& p) { after_backward(p); }});
  set_replica_group(comm_);
}

DataParallel::~DataParallel() {
  if (!active()) return;
  model_.set_train_step_hooks({});
  set_replica_group(nullptr);
}

void DataParallel::broadcast_parameters() {
  if (active()) distributed::broadcast_parameters(*comm_, model_.parameters(), 0);
}

std::span<const std::int64_t> DataParallel::begin_step(std::span<const std::int64_t> global) {
  if (!active()) {
    offset_ = 0;
    return global;
  }
  const auto n = static_cast<std::int64_t>(global.size());
  if (n < size_) {
    offset_ = 0;
    return {};
  }
  const Range r = shard_range(n, rank_, size_);
  offset_ = r.begin;
  model_.set_train_step_hooks(
      {.loss_gradient_scale = static_cast<double>(r.end - r.begin) / static_cast<double>(n),
       .after_backward = [this](const std::vector<Param*>& p) { after_backward(p); }});
  return global.subspan(static_cast<std::size_t>(r.begin), static_cast<std::size_t>(r.end - r.begin));
}

void DataParallel::set_step_share(std::int64_t local_n, std::int64_t n) {
  if (!active()) return;
  model_.set_train_step_hooks(
      {.loss_gradient_scale = n > 0 ? static_cast<double>(local_n) / static_cast<double>(n) : 0.0,
       .after_backward = [this](const std::vector<Param*>& p) { after_backward(p); }});
}

void DataParallel::after_backward(const std::vector<Param*>& params) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<Tensor*> grads32, grads64, stats32, stats64;
  for (Param* p : params) (p->grad.dtype() == DType::float64 ? grads64 : grads32).push_back(&p->grad);
  for (Param* p : averaged_) (p->value.dtype() == DType::float64 ? stats64 : stats32).push_back(&p->value);
  sum_into(*comm_, grads32, buffer32_, 1.0);
  sum_into(*comm_, grads64, buffer64_, 1.0);
  const double mean = 1.0 / size_;
  sum_into(*comm_, stats32, buffer32_, mean);
  sum_into(*comm_, stats64, buffer64_, mean);
  communication_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

StepResult DataParallel::global_result(const StepResult& local, std::int64_t local_n, std::int64_t n) {
  if (!active()) return local;
  const auto w = static_cast<double>(local_n);
  double sums[3] = {local.loss * w, local.accuracy * w, local.top_k_accuracy * w};
  comm_->allreduce_sum(std::span<double>(sums));
  const auto d = static_cast<double>(n);
  return {.loss = sums[0] / d, .accuracy = sums[1] / d, .top_k_accuracy = sums[2] / d};
}

}  // namespace reskit::distributed
