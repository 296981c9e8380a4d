// reskit/distributed/data_parallel.h — data parallelism as Horovod and PyTorch DDP do it, over a
// Communicator: rank 0's weights broadcast, each rank computing its shard of every global batch,
// gradients summed in rank order (communicator.h), the same optimizer step everywhere, so the
// weights stay bit-identical on all ranks. fit and evaluate use it (FitOptions::communicator).
//
// A shard is a contiguous slice of the global batch (or of an epoch's permutation): the same
// permutation on every rank, slice r of N for rank r. Each rank's loss gradient is scaled by its
// share of the global batch (n_r / n), so the summed gradients are the gradients of the global
// batch's mean loss, also when the last batch of an epoch does not split evenly. A last batch
// with fewer samples than ranks is skipped (every rank agrees).
//
// Overlap (as DDP's gradient buckets): the trainable parameters, in reverse layer order, are cut
// into buckets of about GradientExchange::bucket_bytes; a bucket's sum starts (non-blocking, a
// Communicator::make_sum_buffer each: shared memory when every rank is on one machine, else
// MPI's messages) as soon as backward has assigned all of its gradients
// (TrainStepHooks::after_layer_backward, weight penalties included), and sums in
// flight move on after each layer's backward, so communication runs while backward goes on. The
// sums are those of one allreduce after backward bit for bit: each element's ranks are added in
// rank order whatever the bucket. With the weights' own type on the wire, the gradients are not
// copied: before backward, each trainable parameter's grad becomes a tensor over its place in its
// bucket's buffer (TrainStepHooks::before_backward; in the shared-memory window, this rank's
// input), so backward writes it there, and once the bucket is summed, a tensor over the sums,
// which the optimizer reads; the next step's before_backward releases the sums. While a
// DataParallel lives, a parameter's grad is valid until the next step's backward; when it ends,
// each grad gets storage of its own again, holding the last sums.
//
// Batch normalization: a BatchNormalization normalises with its rank's shard (Keras
// MirroredStrategy's per-replica statistics) and its moving statistics are averaged over the
// ranks after each step, so they too are identical everywhere; a SyncBatchNormalization
// normalises with the global batch's statistics (reskit/layers/normalization.h).
//
// Not here: the communication itself (communicator.h), the training loop (fit).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "reskit/distributed/communicator.h"
#include "reskit/graph/model.h"

namespace reskit::distributed {

// Items [begin, end) of n that rank `rank` of `size` takes: n split into `size` contiguous slices,
// the first n mod size one longer.
struct Range {
  std::int64_t begin = 0, end = 0;
};
Range shard_range(std::int64_t n, int rank, int size);
// This rank's indices of a global batch or permutation: slice `rank` of `size` (shard_range).
std::span<const std::int64_t> shard(std::span<const std::int64_t> global, int rank, int size);

// Every parameter's value (trainable or not) from root to every rank.
void broadcast_parameters(Communicator& comm, const std::vector<Param*>& params, int root = 0);

// How the gradients are summed.
struct GradientExchange {
  // About this many bytes per bucket (DDP's default, 25 MB); 0: one sum after backward, no overlap.
  std::size_t bucket_bytes = std::size_t{25} << 20;
  // bfloat16: float32 gradients sent as bfloat16, half the bytes (communicator.h's WireType; the
  // sums differ from float32's). A float64 model refuses it.
  WireType wire = WireType::native;
  // With buckets, all ranks on one node: sums through shared memory (Communicator::make_sum_buffer);
  // false: MPI's messages, as across nodes. The same bits either way.
  bool shared_memory = true;
};

// One model trained data-parallel for the life of this object (fit makes one): installs the
// model's train-step hooks (gradient scale, gradient allreduce) and removes them when destroyed.
// With no communicator or one process, does nothing.
class DataParallel {
 public:
  // ConfigError naming `where` when global_batch does not split evenly over the ranks.
  DataParallel(Model& model, Communicator* comm, std::int64_t global_batch, const char* where,
               GradientExchange exchange = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  bool active() const { return size_ > 1; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank 0's weights (every parameter) to every rank.
  void broadcast_parameters();
  // This rank's shard of a global batch; sets the loss gradient's scale. Empty on every rank when
  // the batch has fewer samples than ranks (skip the step).
  std::span<const std::int64_t> begin_step(std::span<const std::int64_t> global);
  // After begin_step, when this rank's batch holds local_n samples of the global batch's n after
  // all (a stream left unreadable files out): the loss gradient's scale becomes local_n / n.
  void set_step_share(std::int64_t local_n, std::int64_t n);
  // Where this rank's shard starts in the last global batch given to begin_step.
  std::int64_t shard_offset() const { return offset_; }
  // The step's loss and metrics over the global batch of n samples, from this rank's over its
  // local_n: sums of value × count, divided by n.
  StepResult global_result(const StepResult& local, std::int64_t local_n, std::int64_t n);
  // Seconds since construction that steps waited for communication after backward had ended (the
  // gradient sums still in flight, the moving statistics' average): the exposed communication.
  double communication_seconds() const { return communication_seconds_; }
  // Seconds since construction that gradient sums were in flight: per step, from the first
  // bucket's start to the end of the last one's.
  double allreduce_seconds() const { return allreduce_seconds_; }

 private:
  struct Bucket {
    std::vector<Param*> params;
    std::vector<std::size_t> offsets;  // each gradient's first value in the buffer (64-byte aligned)
    std::size_t count = 0;             // values in the buffer
    bool in_place = false;             // the grads are tensors over the buffer (no bfloat16 on the wire)
    bool sums_held = false;            // the grads read this rank's sums: released before the next backward
    DType dtype = DType::float32;
    std::unique_ptr<SumBuffer<float>> values32;
    std::unique_ptr<SumBuffer<double>> values64;
    int waiting = 0;  // gradients backward has not assigned yet in this step
    std::unique_ptr<PendingSum> sum;
  };
  TrainStepHooks hooks(double loss_gradient_scale);
  void plan(const std::vector<Param*>& params);
  void start_step(const std::vector<Param*>& params);
  void point_grads(Bucket& b, bool at_sums);
  void own_grads();
  void after_layer_backward(const Layer& layer);
  void make_buffer(Bucket& b);
  void start_bucket(Bucket& b);
  void finish_bucket(Bucket& b);
  void after_backward(const std::vector<Param*>& params);

  Model& model_;
  Communicator* comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  std::int64_t offset_ = 0;
  GradientExchange exchange_;
  double communication_seconds_ = 0.0, allreduce_seconds_ = 0.0;
  std::vector<Param*> planned_;  // the trainable parameters the buckets were cut for
  std::vector<Bucket> buckets_;
  Bucket whole_;  // no buckets, bfloat16 on the wire: every gradient in one sum after backward
  std::unordered_map<const Layer*, std::vector<std::size_t>> layer_buckets_;  // a bucket per weight
  bool in_step_ = false;
  std::size_t started_ = 0, finished_ = 0;  // buckets started and finished in this step, in order
  std::chrono::steady_clock::time_point first_start_;
  std::vector<Param*> averaged_;  // moving statistics of per-replica BatchNormalization layers
  std::vector<float> buffer32_;
  std::vector<double> buffer64_;
};

}  // namespace reskit::distributed
