// reskit/training/progbar.h — the Keras progress bar (keras.utils.Progbar, width 30):
//   34/34 [==============================] - 1s 23ms/step - loss: 0.0325 - accuracy: 0.9898
// On a terminal it redraws in place with "ETA: ..." while running; elsewhere (a log file, CI)
// it prints one line when finished.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace reskit {

class Progbar {
 public:
  // dynamic: redraw in place (default: whether stdout is a terminal).
  Progbar(std::int64_t target, std::ostream& out, int width = 30);
  Progbar(std::int64_t target, std::ostream& out, int width, bool dynamic);
  // values are shown as given (reskit passes running means), 4 decimals.
  void update(std::int64_t current, const std::vector<std::pair<std::string, double>>& values);
  // The line for `current` at `elapsed_s` seconds, as Keras draws it.
  std::string line(std::int64_t current, const std::vector<std::pair<std::string, double>>& values,
                   double elapsed_s) const;

 private:
  std::int64_t target_;
  std::ostream& out_;
  int width_;
  bool dynamic_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::size_t last_length_ = 0;
};

// Keras's number format for logs: %.4f, or %.4e when |v| < 1e-3 (and not 0).
std::string format_metric(double v);

}  // namespace reskit
