// reskit/training/callbacks.h — hooks into fit(), with Keras's names and defaults:
// EarlyStopping, ReduceLROnPlateau, CSVLogger, LearningRateScheduler, ModelCheckpoint
// (BackupAndRestore is in checkpoint.h). FitState: what fit shows its callbacks of a run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "reskit/graph/model.h"

namespace reskit {

struct History;

// Epoch logs: "loss", "accuracy", "val_loss", "val_accuracy", "lr", ...
using Logs = std::map<std::string, double>;

// Where fit is inside an epoch: what a backup taken between two steps must hold to resume there
// exactly.
struct EpochProgress {
  std::vector<std::int64_t> order;  // the epoch's order of the training samples
  std::int64_t steps_done = 0;      // the epoch's finished steps; 0 between epochs
  // The running sums behind the epoch's mean loss and metrics: each step's value times its
  // samples, and the samples seen.
  double loss_sum = 0.0, accuracy_sum = 0.0, top_k_accuracy_sum = 0.0;
  std::int64_t samples_seen = 0;
};

// A fit() run as its callbacks see it. fit sets it before on_train_begin and keeps it current
// after every step. In on_train_begin a callback may change epoch, progress and the generator's
// state to make fit start elsewhere (BackupAndRestore): at `epoch`, and when progress.steps_done
// > 0 after that many steps of that epoch, with progress.order and its running sums.
struct FitState {
  int epoch = 0;             // the epoch in progress; initial_epoch before the first
  int epochs = 0;            // FitOptions::epochs
  std::int64_t samples = 0;  // training samples per epoch (after validation_split)
  std::int64_t steps_per_epoch = 0;
  EpochProgress progress;
  std::mt19937_64* generator = nullptr;  // shuffles and augments: FitOptions::generator or fit's own
  bool restored = false;                 // a callback restored a backup in on_train_begin
};

class Callback {
 public:
  virtual ~Callback() = default;
  void set_model(Model* model) { model_ = model; }
  void set_fit_state(FitState* state) { fit_state_ = state; }
  virtual void on_train_begin() {}
  virtual void on_train_end() {}
  virtual void on_epoch_begin(int /*epoch*/) {}
  virtual void on_epoch_end(int /*epoch*/, Logs& /*logs*/) {}
  virtual void on_batch_end(std::int64_t /*batch*/, const Logs& /*logs*/) {}

 protected:
  Model& model();
  // The run in progress; throws outside fit().
  FitState& fit_state();
  Model* model_ = nullptr;
  FitState* fit_state_ = nullptr;
};

// Tracks the best value of a monitored quantity ("min" for losses, "max" for accuracies; "auto"
// picks by name as Keras does).
class Monitor {
 public:
  Monitor(std::string monitor, std::string mode, double min_delta);
  // Whether value improves on the best so far (and records it if so).
  bool improved(double value);
  double best() const { return best_; }
  const std::string& name() const { return monitor_; }
  // The monitored value from logs; throws ConfigError listing the available keys if absent.
  double read(const Logs& logs, const std::string& who) const;

 private:
  std::string monitor_;
  bool maximize_;
  double min_delta_;
  double best_;
};

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  std::string mode = "auto";
  bool restore_best_weights = false;
};

class EarlyStopping : public Callback {
 public:
  explicit EarlyStopping(EarlyStoppingOptions options = {});
  void on_train_begin() override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end() override;
  int stopped_epoch() const { return stopped_epoch_; }

 private:
  EarlyStoppingOptions options_;
  Monitor monitor_;
  int wait_ = 0, stopped_epoch_ = -1;
  std::vector<Tensor> best_weights_;
};

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0.0;
  int verbose = 0;
};

class ReduceLROnPlateau : public Callback {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  void on_train_begin() override;
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  ReduceLROnPlateauOptions options_;
  Monitor monitor_;
  int wait_ = 0, cooldown_counter_ = 0;
};

// Keras CSVLogger: a header "epoch,<sorted keys>" then one row per epoch. The whole file is
// rewritten through a temporary file and renamed into place after every epoch. With append, new
// rows go after the file's; but when fit resumes from a backup (FitState::restored), the rows for
// the epoch it resumes at and later ones go first, so that each epoch is written once even when a
// crash left rows for epochs after the backup.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, char separator = ',', bool append = false);
  void on_train_begin() override;
  void on_epoch_begin(int epoch) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end() override;

 private:
  std::string filename_;
  char separator_;
  bool append_;
  bool first_epoch_ = true;
  std::vector<std::string> keys_;
  std::string text_;
};

// The History in a CSVLogger file (the whole run, where a resumed fit returns only its own
// epochs); empty cells are NaN. No file gives an empty History.
History read_csv_history(const std::string& filename, char separator = ',');

// Sets the optimizer's learning rate at the start of each epoch from schedule(epoch, lr).
class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::function<double(int epoch, double lr)> schedule);
  void on_epoch_begin(int epoch) override;

 private:
  std::function<double(int, double)> schedule_;
};

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
};

// Saves the model at the end of each epoch (or only when the monitored value improves) to
// filepath with "{epoch}" (or "{epoch:02d}", "{epoch:03d}") replaced by the 1-based epoch number:
// a Keras .h5 model file (save_model), or the weights only (save_weights), or through a given
// `save`, which must write through a temporary file as reskit's writers do.
class ModelCheckpoint : public Callback {
 public:
  using Saver = std::function<void(Model&, const std::string& path)>;
  explicit ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {});
  ModelCheckpoint(std::string filepath, Saver save, ModelCheckpointOptions options = {});
  void on_epoch_end(int epoch, Logs& logs) override;

 private:
  std::string filepath_;
  Saver save_;
  ModelCheckpointOptions options_;
  Monitor monitor_;
};

// Writes `text` to path through a temporary file in the same folder, flushed and renamed into
// place (mode 0666 & ~umask, as save_model's files), then flushes the folder; throws FileError naming
// the path on failure.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace reskit
