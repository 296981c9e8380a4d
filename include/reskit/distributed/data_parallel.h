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
// Batch normalization: a BatchNormalization normalises with its rank's shard (Keras
// MirroredStrategy's per-replica statistics) and its moving statistics are averaged over the
// ranks after each step, so they too are identical everywhere; a SyncBatchNormalization
// normalises with the global batch's statistics (reskit/layers/normalization.h).
//
// Not here: the communication itself (communicator.h), the training loop (fit).
#pragma once

#include <cstdint>
#include <span>
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

// One model trained data-parallel for the life of this object (fit makes one): installs the
// model's train-step hooks (gradient scale, gradient allreduce) and removes them when destroyed.
// With no communicator or one process, does nothing.
class DataParallel {
 public:
  // ConfigError naming `where` when global_batch does not split evenly over the ranks.
  DataParallel(Model& model, Communicator* comm, std::int64_t global_batch, const char* where);
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
  // Seconds spent summing gradients (and averaging moving statistics) since construction: all of
  // it exposed, as the sums start after backward (reskit bench reports it per step).
  double communication_seconds() const { return communication_seconds_; }

 private:
  void after_backward(const std::vector<Param*>& params);

  Model& model_;
  Communicator* comm_ = nullptr;
  int rank_ = 0, size_ = 1;
  std::int64_t offset_ = 0;
  double communication_seconds_ = 0.0;
  std::vector<Param*> averaged_;  // moving statistics of per-replica BatchNormalization layers
  std::vector<float> buffer32_;
  std::vector<double> buffer64_;
};

}  // namespace reskit::distributed
