// fit, evaluate and predict.
#include "reskit/training/fit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numeric>
#include <random>

#include "reskit/data/stream.h"
#include "reskit/distributed/data_parallel.h"
#include "reskit/error.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/training/memory.h"
#include "reskit/training/progbar.h"

namespace reskit {

namespace {

// The data must fit the model: same image shape, as many classes as outputs.
void check_fits(const char* what, Model& model, const BatchSource& data) {
  if (data.size() == 0) throw Error(std::string(what) + ": the data '" + data.source() + "' has no samples");
  const Shape& in = model.inputs()[0].shape();
  const Shape want(in.begin() + 1, in.end());
  if (data.sample_shape() != want) {
    throw ShapeError(std::string(what) + ": the data '" + data.source() + "' has samples of shape " +
                     shape_str(data.sample_shape()) + ", but model '" + model.name() + "' expects " +
                     shape_str(want));
  }
  const std::int64_t classes = model.outputs()[0].shape().back();
  if (data.num_classes() != classes) {
    throw ShapeError(std::string(what) + ": the data '" + data.source() + "' has " +
                     std::to_string(data.num_classes()) + " classes, but model '" + model.name() +
                     "' outputs " + std::to_string(classes));
  }
}

// Ends a source's epoch however the epoch's loop is left (a stream stops its workers).
struct EpochGuard {
  BatchSource& source;
  bool open = false;
  ~EpochGuard() {
    if (open) source.end_epoch();
  }
};

// Running, sample-weighted means of the loss and metrics, in Keras's display order.
struct Means {
  double loss = 0, accuracy = 0, top_k = 0;
  std::int64_t seen = 0;
  void add(const StepResult& r, std::int64_t n) {
    loss += r.loss * static_cast<double>(n);
    accuracy += r.accuracy * static_cast<double>(n);
    top_k += r.top_k_accuracy * static_cast<double>(n);
    seen += n;
  }
  std::vector<std::pair<std::string, double>> values(const Model& model,
                                                     const std::string& prefix = "") const {
    const double d = static_cast<double>(std::max<std::int64_t>(seen, 1));
    std::vector<std::pair<std::string, double>> v{{prefix + "loss", loss / d}};
    for (const auto& m : model.metrics())
      v.emplace_back(prefix + m, m == "top_k_categorical_accuracy" ? top_k / d : accuracy / d);
    return v;
  }
};

std::ostream& out_of(std::ostream* out) { return out ? *out : std::cout; }

std::vector<std::pair<std::string, double>> ordered(const std::map<std::string, double>& logs) {
  std::vector<std::pair<std::string, double>> v;
  auto rank = [](const std::string& k) {
    return (k.rfind("val_", 0) == 0 ? 2 : 0) + (k.find("loss") == std::string::npos ? 1 : 0);
  };
  for (const auto& kv : logs) v.push_back(kv);
  std::stable_sort(v.begin(), v.end(),
                   [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  return v;
}

}  // namespace

std::string format_logs(const std::map<std::string, double>& logs) {
  std::string s;
  for (const auto& [k, v] : ordered(logs)) s += (s.empty() ? "" : " - ") + k + ": " + format_metric(v);
  return s;
}

namespace {

void check_fit_options(Model& model, const FitOptions& o) {
  if (!model.compiled())
    throw Error("fit: model '" + model.name() + "' is not compiled; call compile() first");
  if (o.epochs < 0) throw ConfigError("fit: expected epochs >= 0, got " + std::to_string(o.epochs));
  if (o.batch_size < 1)
    throw ConfigError("fit: expected batch_size >= 1, got " + std::to_string(o.batch_size));
  if (!(o.validation_split >= 0.0 && o.validation_split < 1.0)) {
    throw ConfigError("fit: expected validation_split in [0, 1), got " + std::to_string(o.validation_split));
  }
}

// `memory`: the Dataset behind `train` when it is one (data-parallel training shards it).
History run_fit(Model& model, BatchSource& train, const Dataset* memory, BatchSource* val,
                const FitOptions& o);

}  // namespace

History fit(Model& model, const Dataset& train_all, const FitOptions& o) {
  check_fit_options(model, o);
  check_fits("fit", model, DatasetBatches(train_all));
  // Before the first batch allocates anything: the step's layer outputs, gradients and optimizer
  // state must fit in memory (a lower bound; a too large input fails here, named).
  check_model_fits(model, std::clamp<std::int64_t>(train_all.size(), 1, o.batch_size), true);
  Dataset train = train_all, val;
  if (o.validation_data) {
    val = *o.validation_data;
  } else if (o.validation_split > 0.0) {
    // Keras: the last samples, before shuffling.
    const auto split_at =
        static_cast<std::int64_t>(static_cast<double>(train_all.size()) * (1.0 - o.validation_split));
    train = train_all.subset(0, split_at);
    val = train_all.subset(split_at, train_all.size());
    if (train.empty()) throw ConfigError("fit: validation_split leaves no training samples");
  }
  DatasetBatches train_batches(train), val_batches(val);
  const bool has_val = o.validation_data || !val.empty();
  if (o.validation_source) throw ConfigError("fit: expected validation_data or validation_source, got both");
  return run_fit(model, train_batches, &train, has_val ? &val_batches : nullptr, o);
}

History fit(Model& model, BatchSource& train, const FitOptions& o) {
  check_fit_options(model, o);
  if (o.validation_split > 0.0) {
    throw ConfigError("fit: validation_split needs an in-memory Dataset; for '" + train.source() +
                      "' give validation_source (e.g. the stream of subset \"validation\")");
  }
  check_fits("fit", model, train);
  check_model_fits(model, std::clamp<std::int64_t>(train.size(), 1, o.batch_size), true);
  std::optional<DatasetBatches> val_data;
  if (o.validation_data) val_data.emplace(*o.validation_data);
  if (o.validation_data && o.validation_source)
    throw ConfigError("fit: expected validation_data or validation_source, got both");
  return run_fit(model, train, nullptr, val_data ? &*val_data : o.validation_source, o);
}

namespace {

History run_fit(Model& model, BatchSource& train, const Dataset* memory, BatchSource* val,
                const FitOptions& o) {
  if (val) check_fits("fit (validation data)", model, *val);
  const bool has_val = val != nullptr;
  std::ostream& out = out_of(o.out);
  distributed::DataParallel replicas(model, o.communicator, o.batch_size, "fit", o.exchange);
  const int verbose = replicas.rank() == 0 ? o.verbose : 0;
  History history;
  const std::int64_t n = train.size(), b = o.batch_size, steps = (n + b - 1) / b;
  std::mt19937_64 own_gen(o.seed);
  FitState state{.epoch = o.initial_epoch,
                 .epochs = o.epochs,
                 .samples = n,
                 .steps_per_epoch = steps,
                 .progress = {},
                 .generator = o.generator ? o.generator : &own_gen};
  // The callbacks see the state only while fit runs.
  struct Unset {
    const std::vector<std::shared_ptr<Callback>>& callbacks;
    ~Unset() {
      for (auto& cb : callbacks) cb->set_fit_state(nullptr);
    }
  } unset{o.callbacks};
  for (auto& cb : o.callbacks) {
    cb->set_model(&model);
    cb->set_fit_state(&state);
  }
  for (auto& cb : o.callbacks) cb->on_train_begin();
  replicas.broadcast_parameters();
  model.stop_training = false;
  std::mt19937_64& gen = *state.generator;
  EpochProgress& progress = state.progress;
  std::vector<std::int64_t>& order = progress.order;
  // Resuming inside the first epoch (a callback restored a backup taken between steps)?
  if (progress.steps_done > 0) {
    bool ok = static_cast<std::int64_t>(order.size()) == n && progress.steps_done < steps;
    std::vector<bool> seen(ok ? static_cast<std::size_t>(n) : 0, false);
    for (std::int64_t i : order) {
      ok = ok && i >= 0 && i < n && !seen[static_cast<std::size_t>(i)];
      if (ok) seen[static_cast<std::size_t>(i)] = true;
    }
    if (!ok) {
      throw ConfigError("fit: the progress to resume from has " + std::to_string(order.size()) +
                        " samples and " + std::to_string(progress.steps_done) + " steps done, expected " +
                        "an order of " + std::to_string(n) + " samples and fewer than " +
                        std::to_string(steps) + " steps");
    }
  }
  Tensor x = Tensor::uninitialized({1}, model.dtype()), y;
  std::vector<std::int64_t> local_order;  // data-parallel over a stream: this rank's part of order
  std::int64_t kept_global = 0;           // and the samples of the step's global batch read
  for (int epoch = state.epoch; epoch < o.epochs && !model.stop_training; ++epoch) {
    state.epoch = epoch;
    if (verbose) out << "Epoch " << epoch + 1 << "/" << o.epochs << "\n" << std::flush;
    for (auto& cb : o.callbacks) cb->on_epoch_begin(epoch);
    Means means;
    const std::int64_t first_step = progress.steps_done;
    if (first_step > 0) {
      means.loss = progress.loss_sum, means.accuracy = progress.accuracy_sum;
      means.top_k = progress.top_k_accuracy_sum, means.seen = progress.samples_seen;
    } else {
      order.resize(static_cast<std::size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      if (o.shuffle) std::shuffle(order.begin(), order.end(), gen);
    }
    Progbar bar(steps, out);
    const auto start = std::chrono::steady_clock::now();
    EpochGuard epoch_guard{train, true};
    // Data-parallel over a stream: this rank reads and decodes only its slice of each global batch.
    const bool sharded_stream = replicas.active() && memory == nullptr;
    if (sharded_stream) {
      local_order = shard_order(order, b, replicas.rank(), replicas.size());
      train.start_epoch(epoch, local_order, b / replicas.size(), first_step, o.augment, &gen);
    } else {
      train.start_epoch(epoch, order, b, first_step, o.augment, &gen);
    }
    for (std::int64_t step = first_step; step < steps; ++step) {
      const std::int64_t lo = step * b, hi = std::min(n, lo + b);
      StepResult r;
      bool trained = true;
      if (!replicas.active()) {
        train.next_batch(step, x, y);
        r = model.train_on_batch(x, y);
      } else if (sharded_stream) {
        const std::span<const std::int64_t> batch =
            replicas.begin_step({order.data() + lo, static_cast<std::size_t>(hi - lo)});
        trained = !batch.empty();
        if (trained) {
          train.next_batch(step, x, y);
          // A stream may leave unreadable files out (skip_bad): the step's share counts what was read.
          double kept[1] = {static_cast<double>(x.dim(0))};
          o.communicator->allreduce_sum(std::span<double>(kept));
          kept_global = static_cast<std::int64_t>(kept[0]);
          replicas.set_step_share(x.dim(0), kept_global);
          r = replicas.global_result(model.train_on_batch(x, y), x.dim(0), kept_global);
        }
      } else {
        const std::span<const std::int64_t> batch =
            replicas.begin_step({order.data() + lo, static_cast<std::size_t>(hi - lo)});
        // The draws of the samples before this rank's shard are skipped, those of the whole
        // batch consumed: every rank's generator stays where one process's would be.
        const auto draws = static_cast<unsigned long long>(o.augment.draws_per_sample());
        if (!batch.empty()) {
          std::mt19937_64 shard_gen = gen;
          shard_gen.discard(draws * static_cast<unsigned long long>(replicas.shard_offset()));
          memory->fill_batch(batch, x, y, o.augment, &shard_gen);
          r = replicas.global_result(model.train_on_batch(x, y), static_cast<std::int64_t>(batch.size()),
                                     hi - lo);
        }
        gen.discard(draws *
                    static_cast<unsigned long long>(hi - lo));  // a batch smaller than the ranks: skipped
        trained = !batch.empty();
      }
      if (!std::isfinite(r.loss)) {
        throw Error("fit: the loss became " + std::string(std::isnan(r.loss) ? "NaN" : "infinite") +
                    " at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(step + 1) +
                    "; try a lower learning rate");
      }
      if (trained)  // a stream may leave unreadable files out
        means.add(r, !replicas.active() ? x.dim(0) : sharded_stream ? kept_global : hi - lo);
      progress.steps_done = step + 1;
      progress.loss_sum = means.loss, progress.accuracy_sum = means.accuracy;
      progress.top_k_accuracy_sum = means.top_k, progress.samples_seen = means.seen;
      if (verbose == 1 && step + 1 < steps) bar.update(step + 1, means.values(model));
      Logs batch_logs;
      for (const auto& [k, v] : means.values(model)) batch_logs[k] = v;
      for (auto& cb : o.callbacks) cb->on_batch_end(step, batch_logs);
    }
    progress.steps_done = 0;
    epoch_guard.open = false;
    if (const std::string note = train.end_epoch(); !note.empty()) out << note << "\n" << std::flush;
    Logs logs;
    for (const auto& [k, v] : means.values(model)) logs[k] = v;
    if (has_val) {
      for (const auto& [k, v] :
           evaluate(model, *val, {.batch_size = o.batch_size, .verbose = 0, .communicator = o.communicator}))
        logs["val_" + k] = v;
    }
    if (verbose == 1) {
      bar.update(steps, ordered(logs));
    } else if (verbose == 2) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%lld/%lld - %.0fs - ", static_cast<long long>(steps),
                    static_cast<long long>(steps), secs);
      out << buf << format_logs(logs) << "\n" << std::flush;
    }
    for (auto& cb : o.callbacks) cb->on_epoch_end(epoch, logs);
    history.epoch.push_back(epoch);
    for (const auto& [k, v] : logs) history.history[k].push_back(v);
  }
  for (auto& cb : o.callbacks) cb->on_train_end();
  return history;
}

}  // namespace

History fit(Model& model, const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(model, Dataset::from_tensors(x, y, static_cast<int>(model.outputs()[0].shape().back())),
             options);
}

Scores evaluate(Model& model, const Dataset& data, const EvaluateOptions& o) {
  DatasetBatches batches(data);
  return evaluate(model, batches, o);
}

Scores evaluate(Model& model, BatchSource& data, const EvaluateOptions& o) {
  if (!model.compiled())
    throw Error("evaluate: model '" + model.name() + "' is not compiled; call compile() first");
  if (o.batch_size < 1)
    throw ConfigError("evaluate: expected batch_size >= 1, got " + std::to_string(o.batch_size));
  check_fits("evaluate", model, data);
  check_model_fits(model, std::clamp<std::int64_t>(data.size(), 1, o.batch_size), false);
  // Data-parallel: this rank's contiguous shard of the samples, the sums added over the ranks.
  distributed::Communicator& comm = o.communicator ? *o.communicator : distributed::single_process();
  const distributed::Range mine = distributed::shard_range(data.size(), comm.rank(), comm.size());
  const std::int64_t n = mine.end - mine.begin, b = o.batch_size, steps = (n + b - 1) / b;
  const bool verbose = o.verbose && comm.rank() == 0;
  std::ostream& out = out_of(o.out);
  Progbar bar(steps, out);
  Means means;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), mine.begin);
  Tensor x = Tensor::uninitialized({1}, model.dtype()), y;
  EpochGuard guard{data, true};
  data.start_epoch(0, order, b, 0, {}, nullptr);
  for (std::int64_t step = 0; step < steps; ++step) {
    data.next_batch(step, x, y);
    means.add(model.test_on_batch(x, y), x.dim(0));
    if (verbose && step + 1 < steps) bar.update(step + 1, means.values(model));
  }
  guard.open = false;
  const std::string note = data.end_epoch();
  if (comm.size() > 1) {
    double sums[4] = {means.loss, means.accuracy, means.top_k, static_cast<double>(means.seen)};
    comm.allreduce_sum(std::span<double>(sums));
    means.loss = sums[0], means.accuracy = sums[1], means.top_k = sums[2];
    means.seen = static_cast<std::int64_t>(sums[3]);
  }
  if (verbose && steps > 0) bar.update(steps, means.values(model));
  if (!note.empty()) out << note << "\n" << std::flush;
  Scores scores;
  for (const auto& [k, v] : means.values(model)) scores[k] = v;
  return scores;
}

Scores evaluate(Model& model, const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  return evaluate(model, Dataset::from_tensors(x, y, static_cast<int>(model.outputs()[0].shape().back())),
                  options);
}

Tensor predict(Model& model, const Dataset& data, int batch_size) {
  if (batch_size < 1)
    throw ConfigError("predict: expected batch_size >= 1, got " + std::to_string(batch_size));
  const Shape& in = model.inputs()[0].shape();
  if (data.sample_shape() != Shape(in.begin() + 1, in.end())) {
    throw ShapeError("predict: the data '" + data.source() + "' has samples of shape " +
                     shape_str(data.sample_shape()) + ", but model '" + model.name() + "' expects " +
                     shape_str(Shape(in.begin() + 1, in.end())));
  }
  const std::int64_t n = data.size();
  // Any output shape (a feature model's may be (N, H, W, C)): k values per sample.
  Shape shape = model.outputs()[0].shape();
  const std::int64_t k = shape_numel(Shape(shape.begin() + 1, shape.end()));
  shape[0] = n;
  check_model_fits(model, std::clamp<std::int64_t>(n, 1, batch_size), false);
  Tensor result(shape, model.dtype());
  std::vector<std::int64_t> idx;
  Tensor x = Tensor::uninitialized({1}, model.dtype()), y;
  for (std::int64_t lo = 0; lo < n; lo += batch_size) {
    const std::int64_t hi = std::min<std::int64_t>(n, lo + batch_size);
    idx.resize(static_cast<std::size_t>(hi - lo));
    std::iota(idx.begin(), idx.end(), lo);
    data.fill_batch(idx, x, y);
    Tensor out = model.forward(x, false);
    const std::size_t bytes = dtype_size(result.dtype());
    std::memcpy(static_cast<char*>(result.raw_data()) + static_cast<std::size_t>(lo * k) * bytes,
                out.to(result.dtype()).raw_data(), static_cast<std::size_t>(out.numel()) * bytes);
  }
  return result;
}

Tensor predict(Model& model, const Tensor& x, int batch_size) {
  if (x.rank() < 1) throw ShapeError("predict: expected a batch of inputs, got a scalar");
  Tensor dummy({x.dim(0)}, DType::float32);
  return predict(
      model,
      Dataset::from_tensors(x, dummy, std::max<int>(1, static_cast<int>(model.outputs()[0].shape().back()))),
      batch_size);
}

}  // namespace reskit
