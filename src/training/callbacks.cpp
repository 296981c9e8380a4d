// fit() callbacks and write_file_atomically (through the one atomic writer, util/atomic_file).
#include "reskit/training/callbacks.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/optim/optimizer.h"
#include "reskit/training/fit.h"
#include "reskit/training/progbar.h"
#include "util/atomic_file.h"

namespace reskit {

Model& Callback::model() {
  if (!model_) throw Error("callback: used outside fit() (no model set)");
  return *model_;
}

FitState& Callback::fit_state() {
  if (!fit_state_) throw Error("callback: used outside fit() (no run in progress)");
  return *fit_state_;
}

// ---------------------------------------------------------------- Monitor

Monitor::Monitor(std::string monitor, std::string mode, double min_delta)
    : monitor_(std::move(monitor)), min_delta_(std::abs(min_delta)) {
  if (mode == "auto") {
    maximize_ = monitor_.find("acc") != std::string::npos;
  } else if (mode == "min" || mode == "max") {
    maximize_ = mode == "max";
  } else {
    throw ConfigError("callback: mode for '" + monitor_ + "': expected auto, min or max, got '" + mode + "'");
  }
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

bool Monitor::improved(double value) {
  const bool better = maximize_ ? value > best_ + min_delta_ : value < best_ - min_delta_;
  if (better) best_ = value;
  return better;
}

double Monitor::read(const Logs& logs, const std::string& who) const {
  auto it = logs.find(monitor_);
  if (it != logs.end()) return it->second;
  std::string keys;
  for (const auto& [k, v] : logs) keys += (keys.empty() ? "" : ", ") + k;
  throw ConfigError(who + ": monitored quantity '" + monitor_ + "' is not in the logs; available: " + keys);
}

// ---------------------------------------------------------------- EarlyStopping

EarlyStopping::EarlyStopping(EarlyStoppingOptions o)
    : options_(std::move(o)), monitor_(options_.monitor, options_.mode, options_.min_delta) {
  if (options_.patience < 0) {
    throw ConfigError("EarlyStopping: expected patience >= 0, got " + std::to_string(options_.patience));
  }
}

void EarlyStopping::on_train_begin() {
  monitor_ = Monitor(options_.monitor, options_.mode, options_.min_delta);
  wait_ = 0;
  stopped_epoch_ = -1;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, Logs& logs) {
  const double current = monitor_.read(logs, "EarlyStopping");
  ++wait_;
  if (monitor_.improved(current)) {
    wait_ = 0;
    if (options_.restore_best_weights) {
      best_weights_.clear();
      for (Param* p : model().parameters()) best_weights_.push_back(p->value.clone());
    }
  }
  if (wait_ >= options_.patience && epoch > 0) {
    stopped_epoch_ = epoch;
    model().stop_training = true;
    if (options_.restore_best_weights && !best_weights_.empty()) {
      auto params = model().parameters();
      for (std::size_t i = 0; i < params.size(); ++i) params[i]->value = best_weights_[i];
    }
  }
}

void EarlyStopping::on_train_end() {}

// ---------------------------------------------------------------- ReduceLROnPlateau

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions o)
    : options_(std::move(o)), monitor_(options_.monitor, options_.mode, options_.min_delta) {
  if (!(options_.factor > 0.0 && options_.factor < 1.0)) {
    throw ConfigError("ReduceLROnPlateau: expected factor in (0, 1), got " + std::to_string(options_.factor));
  }
}

void ReduceLROnPlateau::on_train_begin() {
  monitor_ = Monitor(options_.monitor, options_.mode, options_.min_delta);
  wait_ = cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, Logs& logs) {
  Optimizer& opt = model().optimizer();
  logs["lr"] = opt.learning_rate();
  const double current = monitor_.read(logs, "ReduceLROnPlateau");
  const bool cooling = cooldown_counter_ > 0;
  if (cooling) {
    --cooldown_counter_;
    wait_ = 0;
  }
  if (monitor_.improved(current)) {
    wait_ = 0;
  } else if (!cooling && ++wait_ >= options_.patience) {
    const double old_lr = opt.learning_rate();
    if (old_lr > options_.min_lr) {
      const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
      opt.set_learning_rate(new_lr);
      if (options_.verbose) {
        std::cout << "\nEpoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to " << new_lr
                  << ".\n";
      }
      cooldown_counter_ = options_.cooldown;
      wait_ = 0;
    }
  }
}

// ---------------------------------------------------------------- CSVLogger

void write_file_atomically(const std::string& path, const std::string& text) {
  // Through the one atomic writer: the file gets mode 0666 & ~umask, as open(2) would give it.
  util::write_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) throw FileError("'" + path + "': cannot write '" + temp + "': " + std::strerror(errno));
  });
}

CSVLogger::CSVLogger(std::string filename, char separator, bool append)
    : filename_(std::move(filename)), separator_(separator), append_(append) {}

void CSVLogger::on_train_begin() {
  text_.clear();
  keys_.clear();
  first_epoch_ = true;
  if (append_) {
    std::ifstream in(filename_, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      text_ = ss.str();
    }
  }
}

// The first epoch fit runs is known here, after every callback's on_train_begin (a
// BackupAndRestore may have moved it): in a resumed run, the rows from it on go.
void CSVLogger::on_epoch_begin(int epoch) {
  if (!first_epoch_) return;
  first_epoch_ = false;
  if (text_.empty() || !fit_state().restored) return;
  std::istringstream in(text_);
  std::string line, kept;
  for (bool header = true; std::getline(in, line); header = false) {
    if (!header) {
      const std::string first = line.substr(0, line.find(separator_));
      char* end = nullptr;
      const long e = std::strtol(first.c_str(), &end, 10);
      if (first.empty() || *end != '\0' || e < 0 || e >= epoch) continue;
    }
    kept += line + "\n";
  }
  text_ = std::move(kept);
}

// A resumed run with no epoch left still drops the rows a crash left after its backup.
void CSVLogger::on_train_end() {
  if (!first_epoch_ || text_.empty()) return;
  const std::string before = text_;
  on_epoch_begin(fit_state().epoch);
  if (text_ != before) write_file_atomically(filename_, text_);
}

void CSVLogger::on_epoch_end(int epoch, Logs& logs) {
  if (keys_.empty()) {
    for (const auto& [k, v] : logs) keys_.push_back(k);  // std::map: sorted, as Keras sorts
    if (text_.empty()) {
      text_ += "epoch";
      for (const auto& k : keys_) text_ += separator_ + k;
      text_ += "\n";
    }
  }
  text_ += std::to_string(epoch);
  for (const auto& k : keys_) {
    auto it = logs.find(k);
    char buf[64] = "";
    if (it != logs.end()) std::snprintf(buf, sizeof buf, "%.17g", it->second);
    text_ += separator_;
    text_ += buf;
  }
  text_ += "\n";
  write_file_atomically(filename_, text_);
}

History read_csv_history(const std::string& filename, char separator) {
  History h;
  std::ifstream in(filename, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) return h;
  std::vector<std::string> keys;
  for (std::stringstream ss(line); std::getline(ss, line, separator);) keys.push_back(line);
  std::string row;
  while (std::getline(in, row)) {
    std::stringstream ss(row);
    std::string cell;
    for (std::size_t i = 0; std::getline(ss, cell, separator) && i < keys.size(); ++i) {
      if (i == 0)
        h.epoch.push_back(std::stoi(cell));
      else
        h.history[keys[i]].push_back(cell.empty() ? std::nan("") : std::stod(cell));
    }
  }
  return h;
}

// ---------------------------------------------------------------- LearningRateScheduler

LearningRateScheduler::LearningRateScheduler(std::function<double(int, double)> schedule)
    : schedule_(std::move(schedule)) {}

void LearningRateScheduler::on_epoch_begin(int epoch) {
  Optimizer& opt = model().optimizer();
  opt.set_learning_rate(schedule_(epoch, opt.learning_rate()));
}

// ---------------------------------------------------------------- ModelCheckpoint

ModelCheckpoint::ModelCheckpoint(std::string filepath, ModelCheckpointOptions o)
    : ModelCheckpoint(std::move(filepath),
                      o.save_weights_only
                          ? Saver([](Model& m, const std::string& path) { save_weights(m, path); })
                          : Saver([](Model& m, const std::string& path) { save_model(m, path); }),
                      o) {}

ModelCheckpoint::ModelCheckpoint(std::string filepath, Saver save, ModelCheckpointOptions o)
    : filepath_(std::move(filepath)),
      save_(std::move(save)),
      options_(std::move(o)),
      monitor_(options_.monitor, options_.mode, 0.0) {
  if (!save_) throw ConfigError("ModelCheckpoint: expected a save function");
}

void ModelCheckpoint::on_epoch_end(int epoch, Logs& logs) {
  if (options_.save_best_only && !monitor_.improved(monitor_.read(logs, "ModelCheckpoint"))) return;
  std::string path = filepath_;
  for (const char* key : {"{epoch}", "{epoch:02d}", "{epoch:03d}"}) {
    auto pos = path.find(key);
    if (pos == std::string::npos) continue;
    const std::size_t width = key[6] == '}' ? 1 : static_cast<std::size_t>(key[8] - '0');
    std::string number = std::to_string(epoch + 1);
    if (number.size() < width) number.insert(0, width - number.size(), '0');
    path.replace(pos, std::strlen(key), number);
  }
  save_(model(), path);
}

}  // namespace reskit
