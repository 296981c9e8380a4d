// CrashAt: a callback that throws Crash at the end of step `step` (0-based) of epoch `epoch`, or
// at that epoch's end when step < 0 — a process dying mid-run, for the resume tests (listed after
// BackupAndRestore, the backup of that step is written first).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "reskit/training/callbacks.h"

namespace reskit::test {

struct Crash : std::runtime_error {
  Crash() : std::runtime_error("crash") {}
};

class CrashAt : public Callback {
 public:
  CrashAt(int epoch, std::int64_t step) : epoch_(epoch), step_(step) {}
  void on_epoch_begin(int epoch) override { current_ = epoch; }
  void on_batch_end(std::int64_t step, const Logs& /*logs*/) override {
    if (current_ == epoch_ && step == step_) throw Crash();
  }
  void on_epoch_end(int epoch, Logs& /*logs*/) override {
    if (epoch == epoch_ && step_ < 0) throw Crash();
  }

 private:
  int epoch_, current_ = -1;
  std::int64_t step_;
};

}  // namespace reskit::test
