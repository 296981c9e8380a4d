// BackupAndRestore: backups of a fit() run (model files and checkpoint.json) and resuming from them.
#include "reskit/training/checkpoint.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/optim/optimizer.h"
#include "reskit/runtime.h"

namespace reskit {

namespace fs = std::filesystem;

namespace {

constexpr int kFormat = 1;

std::string model_file_name(int epochs_done, std::int64_t steps_done) {
  char buf[48];
  if (steps_done == 0) {
    std::snprintf(buf, sizeof buf, "epoch-%03d.h5", epochs_done);
  } else {
    std::snprintf(buf, sizeof buf, "epoch-%03d-step-%06lld.h5", epochs_done,
                  static_cast<long long>(steps_done));
  }
  return buf;
}

// The position a checkpoint file name records: epoch-NNN.h5 -> {NNN, 0},
// epoch-NNN-step-SSSSSS.h5 -> {NNN, SSSSSS}; nothing for any other name. (A hand-written scan:
// <regex> draws GCC 12's -Wmaybe-uninitialized false positives in the sanitizer build, bug 105616.)
std::optional<std::pair<long long, long long>> checkpoint_position(const std::string& name) {
  std::size_t at = 0;
  auto number = [&](long long& value) {  // 1 to 18 digits
    const std::size_t start = at;
    value = 0;
    while (at < name.size() && at - start < 18 && name[at] >= '0' && name[at] <= '9')
      value = value * 10 + (name[at++] - '0');
    return at > start && (at == name.size() || name[at] < '0' || name[at] > '9');
  };
  auto literal = [&](std::string_view text) {
    if (name.compare(at, text.size(), text) != 0) return false;
    at += text.size();
    return true;
  };
  long long epochs = 0, steps = 0;
  if (!literal("epoch-") || !number(epochs)) return std::nullopt;
  if (literal("-step-") && !number(steps)) return std::nullopt;
  if (!literal(".h5") || at != name.size()) return std::nullopt;
  return std::pair{epochs, steps};
}

// The model files in dir with (epochs done, steps done), oldest first.
std::vector<std::pair<std::pair<long long, long long>, fs::path>> model_files(const fs::path& dir) {
  std::vector<std::pair<std::pair<long long, long long>, fs::path>> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (const auto at = checkpoint_position(entry.path().filename().string()))
      files.push_back({*at, entry.path()});
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

CheckpointInfo read_checkpoint(const std::string& dir) {
  const std::string path = (fs::path(dir) / kCheckpointJson).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": no such file (no backup has been written in " + dir + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  CheckpointInfo c;
  try {
    const nlohmann::json j = nlohmann::json::parse(ss.str());
    if (j.at("format").get<int>() != kFormat) {
      throw FileError(path + ": unsupported format " + j.at("format").dump() + " (expected " +
                      std::to_string(kFormat) + ")");
    }
    c.epochs_done = j.at("epochs_done").get<int>();
    c.steps_done = j.value("steps_done", std::int64_t{0});
    if (c.steps_done > 0) {
      c.progress.order = j.at("order").get<std::vector<std::int64_t>>();
      const auto sums = j.at("sums").get<std::array<double, 4>>();
      c.progress.steps_done = c.steps_done;
      c.progress.loss_sum = sums[0], c.progress.accuracy_sum = sums[1];
      c.progress.top_k_accuracy_sum = sums[2], c.progress.samples_seen = static_cast<std::int64_t>(sums[3]);
    }
    c.iterations = j.at("iterations").get<std::int64_t>();
    c.generator = j.at("generator").get<std::string>();
    c.threads = j.value("threads", 0);
    c.args = j.contains("args") ? j.at("args").dump() : "{}";
    const auto file = j.at("model_file").get<std::string>();
    if (c.epochs_done < 0 || c.steps_done < 0 || (c.epochs_done == 0 && c.steps_done == 0) ||
        c.iterations < 0 || file.empty() || file.find('/') != std::string::npos || file == "." ||
        file == "..")
      throw FileError(path + ": invalid epochs_done, steps_done, iterations or model_file");
    c.model_path = (fs::path(dir) / file).string();
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path + ": not a valid checkpoint (" + e.what() + ")");
  }
  if (!fs::is_regular_file(c.model_path))
    throw FileError(c.model_path + ": no such file (named by " + path + ")");
  return c;
}

BackupAndRestore::BackupAndRestore(std::string backup_dir, BackupAndRestoreOptions options)
    : dir_(std::move(backup_dir)), options_(std::move(options)) {
  if (dir_.empty()) throw ConfigError("BackupAndRestore: expected a backup folder, got an empty path");
  if (options_.save_freq < 0) {
    throw ConfigError("BackupAndRestore: expected save_freq >= 0 (0: every epoch), got " +
                      std::to_string(options_.save_freq));
  }
  if (options_.args.empty()) options_.args = "{}";
  try {
    if (!nlohmann::json::parse(options_.args).is_object()) throw ConfigError("");
  } catch (const std::exception&) {
    throw ConfigError("BackupAndRestore: args: expected a JSON object, got '" + options_.args + "'");
  }
}

void BackupAndRestore::on_train_begin() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (!fs::is_directory(dir_)) {
    throw FileError("BackupAndRestore: cannot create the backup folder " + dir_ +
                    (ec ? ": " + ec.message() : std::string()));
  }
  if (!options_.restore) return;
  if (!options_.restore_dir.empty()) {
    restore(options_.restore_dir);
  } else if (fs::exists(fs::path(dir_) / kCheckpointJson)) {
    restore(dir_);
  }
}

void BackupAndRestore::restore(const std::string& dir) {
  const CheckpointInfo c = read_checkpoint(dir);
  const std::string json = (fs::path(dir) / kCheckpointJson).string();
  FitState& state = fit_state();
  if (c.steps_done > 0 && (static_cast<std::int64_t>(c.progress.order.size()) != state.samples ||
                           c.steps_done >= state.steps_per_epoch)) {
    throw FileError(json + ": the sample order or step (" + std::to_string(c.steps_done) + ") does not fit " +
                    std::to_string(state.samples) + " samples in " + std::to_string(state.steps_per_epoch) +
                    " steps");
  }
  std::mt19937_64 generator;
  std::istringstream in(c.generator);
  in >> generator;
  if (!in) throw FileError(json + ": the generator state is invalid");
  const OptimizerRestore restored = load_training_state(model(), c.model_path);
  if (!restored.fresh.empty() || restored.unused_slots > 0) {
    *(options_.out ? options_.out : &std::cout)
        << "BackupAndRestore: other weights train than in " << c.model_path
        << ": optimizer slots restored by name, " << restored.fresh.size()
        << " weights start with fresh slots, " << restored.unused_slots << " of its slots left out\n";
  }
  if (model().optimizer().iterations() != c.iterations) {
    throw FileError(c.model_path + ": the optimizer made " +
                    std::to_string(model().optimizer().iterations()) + " steps, but " + json + " says " +
                    std::to_string(c.iterations));
  }
  *state.generator = generator;
  state.epoch = c.epochs_done;
  state.progress = c.steps_done > 0 ? c.progress : EpochProgress{};
  state.restored = true;
}

void BackupAndRestore::on_batch_end(std::int64_t batch, const Logs& /*logs*/) {
  const std::int64_t done = batch + 1;
  if (options_.save_freq > 0 && done % options_.save_freq == 0 && done < fit_state().steps_per_epoch)
    save(fit_state().epoch, done);
}

void BackupAndRestore::on_epoch_end(int epoch, Logs& /*logs*/) { save(epoch + 1, 0); }

void BackupAndRestore::save(int epochs_done, std::int64_t steps_done) {
  if (!options_.save) return;
  const FitState& state = fit_state();
  const std::string file = model_file_name(epochs_done, steps_done);
  save_model(model(), (fs::path(dir_) / file).string());
  std::ostringstream generator;
  generator << *state.generator;
  nlohmann::json j = {{"format", kFormat},
                      {"epochs_done", epochs_done},
                      {"steps_done", steps_done},
                      {"iterations", model().optimizer().iterations()},
                      {"generator", generator.str()},
                      {"model_file", file},
                      {"threads", num_threads()},
                      {"args", nlohmann::json::parse(options_.args)}};
  if (steps_done > 0) {
    const EpochProgress& p = state.progress;
    j["order"] = p.order;
    j["sums"] = std::array<double, 4>{p.loss_sum, p.accuracy_sum, p.top_k_accuracy_sum,
                                      static_cast<double>(p.samples_seen)};
  }
  write_file_atomically((fs::path(dir_) / kCheckpointJson).string(), j.dump(2) + "\n");
  // Only now may older model files go: keep this one and the newest before it. (Later ones, left
  // by a crash between a model file and its JSON, are overwritten when the run gets there.)
  const std::pair<long long, long long> now{epochs_done, steps_done};
  std::vector<fs::path> older;
  for (const auto& [at, path] : model_files(dir_))
    if (at < now) older.push_back(path);
  std::error_code ec;
  for (std::size_t i = 0; i + 1 < older.size(); ++i) fs::remove(older[i], ec);
}

// The JSON goes first: a crash while deleting never leaves it naming a missing model file.
void BackupAndRestore::on_train_end() {
  if (!options_.delete_checkpoint || !options_.save) return;
  std::error_code ec;
  fs::remove(fs::path(dir_) / kCheckpointJson, ec);
  for (const auto& [at, path] : model_files(dir_)) fs::remove(path, ec);
  fs::remove(dir_, ec);  // only when empty
}

}  // namespace reskit
