// reskit/training/checkpoint.h — backing up a fit() run and resuming it exactly: Keras's
// BackupAndRestore callback.
//
// The backup folder holds the model with its optimizer state (save_model) after every epoch,
// epoch-NNN.h5 (NNN epochs done), and with save_freq S also after every S-th step inside an epoch,
// epoch-NNN-step-SSSSSS.h5 (NNN epochs and SSSSSS steps of the next done); and checkpoint.json,
// which names the newest model file with the epochs and steps done, the optimizer's iterations,
// the state of fit's shuffling generator, the thread count, the caller's args and, inside an
// epoch, the epoch's sample order and running sums. Every file is written to a temporary file,
// flushed, renamed into place and its folder flushed; the model file before the JSON, so a crash
// leaves the JSON naming a complete checkpoint. The newest two model files are kept.
//
// A fit whose BackupAndRestore finds a backup restores the weights, the optimizer's iterations and
// slots, the epoch, the generator and, inside an epoch, its order and running means: the run goes
// on with the same bits as an uninterrupted one with the same data, model, options and thread
// count. The learning rate and its schedule come from the compiled optimizer, as in a fresh run;
// other callbacks' state (EarlyStopping's best value, ...) is not saved.
//
// Not here: checking that a resumed run uses the same settings (the caller stores what it needs in
// args and compares, as reskit train does).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "reskit/training/callbacks.h"

namespace reskit {

struct BackupAndRestoreOptions {
  // 0 backs up at the end of every epoch (Keras save_freq="epoch"); S > 0 also after every S-th
  // step inside an epoch.
  std::int64_t save_freq = 0;
  // Delete the backup when fit finishes (Keras's default); an interrupted fit never deletes it.
  bool delete_checkpoint = true;
  // Restore at the start of fit (false: start afresh and overwrite the backup).
  bool restore = true;
  // Restore from this folder instead of backup_dir (empty: backup_dir). A folder given here must
  // hold a backup; backup_dir need not.
  std::string restore_dir;
  // A JSON object (text) stored with every backup under "args" and given back by read_checkpoint:
  // the settings a resumed run must repeat, for the caller to compare. Empty: "{}".
  std::string args;
  // false: restore only, never write or delete (the ranks other than 0 of a data-parallel run,
  // where rank 0 writes the backups).
  bool save = true;
  // Where the one-line notice goes when other weights train than when the backup was taken (their
  // optimizer slots restored by name, see load_training_state); nullptr: std::cout.
  std::ostream* out = nullptr;
};

// What a backup folder's checkpoint.json says.
struct CheckpointInfo {
  int epochs_done = 0;
  std::int64_t steps_done = 0;  // steps of epoch epochs_done + 1 done; 0 at an epoch's end
  std::int64_t iterations = 0;  // the optimizer's
  int threads = 0;              // num_threads() of the run that wrote it (0: not recorded)
  std::string model_path;       // the folder joined with model_file
  std::string generator;        // the state of fit's std::mt19937_64, as operator<< writes it
  std::string args;             // BackupAndRestoreOptions::args (JSON text; "{}" when absent)
  EpochProgress progress;       // order and running sums when steps_done > 0
};

// The name of a backup folder's JSON file.
inline constexpr const char* kCheckpointJson = "checkpoint.json";

// Reads DIR/checkpoint.json. FileError naming the file when it is missing, does not parse or holds
// invalid values, and naming the model file when that is missing.
CheckpointInfo read_checkpoint(const std::string& dir);

class BackupAndRestore : public Callback {
 public:
  explicit BackupAndRestore(std::string backup_dir, BackupAndRestoreOptions options = {});
  // Creates backup_dir; restores from the backup, if any (see BackupAndRestoreOptions).
  void on_train_begin() override;
  void on_batch_end(std::int64_t batch, const Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end() override;

 private:
  void restore(const std::string& dir);
  void save(int epochs_done, std::int64_t steps_done);

  std::string dir_;
  BackupAndRestoreOptions options_;
};

}  // namespace reskit
