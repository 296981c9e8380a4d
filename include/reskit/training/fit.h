// reskit/training/fit.h — Keras fit / evaluate / predict over Datasets or tensors.
//
// fit shuffles each epoch (seeded, or from the caller's generator), draws batches from the
// Dataset without copying it, shows the Keras progress bar, validates at the end of each epoch and
// returns the History. The loss and metrics shown for an epoch are running means over its samples,
// as Keras shows them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "reskit/data/batch_source.h"
#include "reskit/data/dataset.h"
#include "reskit/distributed/communicator.h"
#include "reskit/distributed/data_parallel.h"
#include "reskit/graph/model.h"
#include "reskit/training/callbacks.h"

namespace reskit {

struct History {
  std::vector<int> epoch;                              // 0-based, as Keras's history.epoch
  std::map<std::string, std::vector<double>> history;  // "loss", "accuracy", "val_loss", ...
};

struct FitOptions {
  int epochs = 1;
  int batch_size = 32;
  const Dataset* validation_data = nullptr;
  // Or validation data from a source, e.g. a stream (data/stream.h); not with validation_data.
  BatchSource* validation_source = nullptr;
  double validation_split = 0.0;  // the last samples, taken before shuffling
  bool shuffle = true;
  std::uint64_t seed = 0;
  int verbose = 1;  // 0 silent, 1 progress bar, 2 one line per epoch
  int initial_epoch = 0;
  AugmentOptions augment;
  std::vector<std::shared_ptr<Callback>> callbacks;
  std::ostream* out = nullptr;  // default std::cout
  // The generator for shuffling and augmentation. When set, fit draws from it (and leaves it
  // advanced) instead of from its own std::mt19937_64(seed), so a caller can save its state at an
  // epoch's end (operator<<) and resume exactly with initial_epoch and the restored state.
  // (BackupAndRestore does all of this, also inside an epoch.)
  std::mt19937_64* generator = nullptr;
  // Data-parallel training over these processes (reskit/distributed/data_parallel.h): batch_size
  // is the global batch, split evenly over the ranks; every rank calls fit with the same data and
  // options and ends with the same weights. The progress bar and callbacks' logs show the global
  // batch's values; only rank 0 prints. Null: this process alone.
  distributed::Communicator* communicator = nullptr;
  // How the gradients are summed over the processes (buckets overlapping backward, bfloat16).
  distributed::GradientExchange exchange;
};

struct EvaluateOptions {
  int batch_size = 32;
  int verbose = 1;
  std::ostream* out = nullptr;
  // Shares the samples out over these processes (contiguous shards) and sums the losses and
  // metrics over them; every rank gets the scores of the whole data, rank 0 prints.
  distributed::Communicator* communicator = nullptr;
};

// The mean loss and metrics over a dataset (inference mode); keys "loss", "accuracy", ...
using Scores = std::map<std::string, double>;

History fit(Model& model, const Dataset& train, const FitOptions& options = {});
History fit(Model& model, const Tensor& x, const Tensor& y, const FitOptions& options = {});
// From any BatchSource (a stream reading ahead on worker threads): as above, without
// validation_split (give validation_data or validation_source). Data-parallel, each rank's source
// is started on this rank's slices of every global batch (shard_order, data/stream.h) with
// batch_size / N, so a stream reads and decodes only those.
History fit(Model& model, BatchSource& train, const FitOptions& options = {});
Scores evaluate(Model& model, const Dataset& data, const EvaluateOptions& options = {});
Scores evaluate(Model& model, const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
Scores evaluate(Model& model, BatchSource& data, const EvaluateOptions& options = {});
// The model's outputs (N, K) for every sample, in batches, inference mode.
Tensor predict(Model& model, const Dataset& data, int batch_size = 32);
Tensor predict(Model& model, const Tensor& x, int batch_size = 32);

// "loss: 0.3210 - accuracy: 0.9120" in Keras's order (loss first, then metrics, then val_*).
std::string format_logs(const std::map<std::string, double>& logs);

}  // namespace reskit
