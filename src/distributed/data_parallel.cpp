// Data parallelism over a Communicator: shards, the weight broadcast, the gradient allreduce.
#include "reskit/distributed/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <type_traits>
#include <unordered_map>
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

DataParallel::DataParallel(Model& model, Communicator* comm, std::int64_t global_batch, const char* where,
                           GradientExchange exchange)
    : model_(model), comm_(comm), exchange_(exchange) {
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
  if (exchange_.wire == WireType::bfloat16)
    for (Param* p : model_.parameters())
      if (p->value.dtype() != DType::float32)
        throw ConfigError(std::string(where) +
                          ": a bfloat16 gradient exchange expects float32 weights, got " +
                          std::string(dtype_name(p->value.dtype())) + " ('" + p->name + "')");
  model_.set_train_step_hooks(hooks(1.0));
  set_replica_group(comm_);
}

TrainStepHooks DataParallel::hooks(double loss_gradient_scale) {
  TrainStepHooks h{.loss_gradient_scale = loss_gradient_scale,
                   .after_backward = [this](const std::vector<Param*>& p) { after_backward(p); }};
  if (exchange_.bucket_bytes > 0) {
    h.before_backward = [this](const std::vector<Param*>& p) { start_step(p); };
    h.after_layer_backward = [this](const Layer& l) { after_layer_backward(l); };
  }
  return h;
}

DataParallel::~DataParallel() {
  if (!active()) return;
  model_.set_train_step_hooks({});
  set_replica_group(nullptr);
  own_grads();
  // Left by an error: MPI may still write into the buckets' buffers, and freeing a shared-memory
  // buffer is collective; they are left to MPI (the process is about to end: the CLI aborts the
  // job).
  if (started_ > finished_ || std::uncaught_exceptions() > 0) {
    new std::vector<Bucket>(std::move(buckets_));
    new Bucket(std::move(whole_));
  }
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
  model_.set_train_step_hooks(hooks(static_cast<double>(r.end - r.begin) / static_cast<double>(n)));
  return global.subspan(static_cast<std::size_t>(r.begin), static_cast<std::size_t>(r.end - r.begin));
}

// Buckets of about bucket_bytes in reverse layer order, one dtype each.
void DataParallel::plan(const std::vector<Param*>& params) {
  own_grads();
  planned_ = params;
  buckets_.clear();
  layer_buckets_.clear();
  std::unordered_map<const Param*, std::size_t> bucket_of;
  std::size_t bytes = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Param* p = *it;
    const DType dtype = p->value.dtype() == DType::float64 ? DType::float64 : DType::float32;
    if (buckets_.empty() || bytes >= exchange_.bucket_bytes || buckets_.back().dtype != dtype) {
      buckets_.emplace_back();
      buckets_.back().dtype = dtype;
      bytes = 0;
    }
    buckets_.back().params.push_back(p);
    bytes += static_cast<std::size_t>(p->value.numel()) * dtype_size(dtype);
    bucket_of[p] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) make_buffer(b);
  for (const auto& layer : model_.layers())
    for (Param& p : layer->params())
      if (auto b = bucket_of.find(&p); b != bucket_of.end()) layer_buckets_[layer.get()].push_back(b->second);
}

// Before backward: the sums the optimizer read are released, and the gradients point into the
// buffers' inputs again.
void DataParallel::start_step(const std::vector<Param*>& params) {
  if (params != planned_) plan(params);
  for (Bucket& b : buckets_) {
    b.waiting = static_cast<int>(b.params.size());
    if (!b.sums_held) continue;
    if (b.dtype == DType::float64) {
      b.values64->release();
    } else {
      b.values32->release();
    }
    b.sums_held = false;
  }
  for (Bucket& b : buckets_)
    if (b.in_place) point_grads(b, false);
  started_ = finished_ = 0;
  first_start_ = {};
  in_step_ = true;
}

// A layer's gradients are assigned: start the buckets they complete (in order: every rank starts
// the same buckets in the same order), and move the sums in flight on.
void DataParallel::after_layer_backward(const Layer& layer) {
  if (!in_step_)
    throw DistributedError("DataParallel: a layer's backward ran before the step's before_backward hook");
  if (auto it = layer_buckets_.find(&layer); it != layer_buckets_.end())
    for (std::size_t b : it->second) --buckets_[b].waiting;
  while (started_ < buckets_.size() && buckets_[started_].waiting == 0) start_bucket(buckets_[started_++]);
  while (finished_ < started_ && buckets_[finished_].sum->progress()) finish_bucket(buckets_[finished_++]);
}

// The bucket's layout and sum buffer (collective: every rank makes the same buffers in the same
// order). In place (the weights' type on the wire), each gradient starts on a 64-byte boundary,
// as a tensor's storage does; the values between them stay zero.
void DataParallel::make_buffer(Bucket& b) {
  b.in_place = exchange_.wire == WireType::native;
  const std::size_t align = b.in_place ? 64 / dtype_size(b.dtype) : 1;
  b.offsets.clear();
  b.count = 0;
  for (const Param* p : b.params) {
    b.count = (b.count + align - 1) / align * align;
    b.offsets.push_back(b.count);
    b.count += static_cast<std::size_t>(p->grad.numel());
  }
  if (b.dtype == DType::float64) {
    b.values64 = comm_->make_sum_buffer(b.count, exchange_.shared_memory);
    if (b.in_place) std::ranges::fill(b.values64->input(), 0.0);
  } else {
    b.values32 = comm_->make_sum_buffer(b.count, exchange_.wire, exchange_.shared_memory);
    if (b.in_place) std::ranges::fill(b.values32->input(), 0.0f);
  }
}

// The bucket's gradients as tensors over this rank's input (before backward) or over the sums.
// The optimizer only reads the sums, which every rank may share.
void DataParallel::point_grads(Bucket& b, bool at_sums) {
  auto point = [&](auto& buffer) {
    using T = typename std::remove_cvref_t<decltype(buffer.input())>::value_type;
    T* base = at_sums ? const_cast<T*>(buffer.result().data()) : buffer.input().data();
    for (std::size_t i = 0; i < b.params.size(); ++i) {
      Param* p = b.params[i];
      p->grad = Tensor::over(base + b.offsets[i], p->grad.shape(), p->grad.dtype());
    }
  };
  if (b.dtype == DType::float64) {
    point(*b.values64);
  } else {
    point(*b.values32);
  }
}

// The gradients of in-place buckets get storage of their own, holding their current values (before
// the buckets go).
void DataParallel::own_grads() {
  for (Bucket& b : buckets_)
    if (b.in_place)
      for (Param* p : b.params) p->grad = p->grad.clone();
}

void DataParallel::start_bucket(Bucket& b) {
  if (first_start_ == std::chrono::steady_clock::time_point{})
    first_start_ = std::chrono::steady_clock::now();
  auto pack = [&b](auto& buffer) {
    if (!b.in_place) {
      const auto in = buffer.input();
      using T = typename std::remove_cvref_t<decltype(in)>::value_type;
      for (std::size_t i = 0; i < b.params.size(); ++i) {
        const auto v = std::as_const(b.params[i]->grad).values<T>();
        std::copy(v.begin(), v.end(), in.begin() + static_cast<std::ptrdiff_t>(b.offsets[i]));
      }
    }
    b.sum = buffer.start();
  };
  if (b.dtype == DType::float64) {
    pack(*b.values64);
  } else {
    pack(*b.values32);
  }
}

void DataParallel::finish_bucket(Bucket& b) {
  b.sum->wait();
  b.sum.reset();
  if (b.in_place) {
    point_grads(b, true);
    b.sums_held = true;
    return;
  }
  auto unpack = [&b](auto& buffer) {
    const auto out = buffer.result();
    using T = typename std::remove_cvref_t<decltype(out)>::element_type;
    for (std::size_t i = 0; i < b.params.size(); ++i) {
      auto v = b.params[i]->grad.values<std::remove_const_t<T>>();
      const auto from = out.begin() + static_cast<std::ptrdiff_t>(b.offsets[i]);
      std::copy(from, from + static_cast<std::ptrdiff_t>(v.size()), v.begin());
    }
    buffer.release();
  };
  if (b.dtype == DType::float64) {
    unpack(*b.values64);
  } else {
    unpack(*b.values32);
  }
}

void DataParallel::set_step_share(std::int64_t local_n, std::int64_t n) {
  if (!active()) return;
  model_.set_train_step_hooks(hooks(n > 0 ? static_cast<double>(local_n) / static_cast<double>(n) : 0.0));
}

void DataParallel::after_backward(const std::vector<Param*>& params) {
  const auto start = std::chrono::steady_clock::now();
  if (exchange_.bucket_bytes > 0) {
    if (!in_step_)
      throw DistributedError("DataParallel: backward ended without the step's before_backward hook");
    if (params != planned_)
      throw DistributedError("DataParallel: the trainable weights changed during backward (" +
                             std::to_string(params.size()) + " after, " + std::to_string(planned_.size()) +
                             " before)");
    while (started_ < buckets_.size()) start_bucket(buckets_[started_++]);
    while (finished_ < started_) finish_bucket(buckets_[finished_++]);
    in_step_ = false;
    if (!buckets_.empty())
      allreduce_seconds_ +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - first_start_).count();
  } else {
    std::vector<Tensor*> grads32, grads64;
    for (Param* p : params) (p->grad.dtype() == DType::float64 ? grads64 : grads32).push_back(&p->grad);
    if (exchange_.wire == WireType::bfloat16 && !grads32.empty()) {
      // One bucket of everything, after backward.
      if (whole_.params != params || !whole_.values32) {
        whole_ = Bucket{.params = params, .dtype = DType::float32};
        make_buffer(whole_);
      }
      start_bucket(whole_);
      finish_bucket(whole_);
    } else {
      sum_into(*comm_, grads32, buffer32_, 1.0);
    }
    sum_into(*comm_, grads64, buffer64_, 1.0);
    allreduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  std::vector<Tensor*> stats32, stats64;
  for (Param* p : averaged_) (p->value.dtype() == DType::float64 ? stats64 : stats32).push_back(&p->value);
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
