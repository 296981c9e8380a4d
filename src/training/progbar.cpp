// The Keras progress bar.
#include "reskit/training/progbar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ostream>

namespace reskit {

std::string format_metric(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, (std::abs(v) > 1e-3 || v == 0.0) ? "%.4f" : "%.4e", v);
  return buf;
}

Progbar::Progbar(std::int64_t target, std::ostream& out, int width)
    : Progbar(target, out, width, isatty(STDOUT_FILENO) != 0) {}

Progbar::Progbar(std::int64_t target, std::ostream& out, int width, bool dynamic)
    : target_(target),
      out_(out),
      width_(width),
      dynamic_(dynamic),
      start_(std::chrono::steady_clock::now()) {}

std::string Progbar::line(std::int64_t current, const std::vector<std::pair<std::string, double>>& values,
                          double elapsed) const {
  const bool finalize = current >= target_;
  const int digits = target_ > 0 ? static_cast<int>(std::log10(static_cast<double>(target_))) + 1 : 1;
  char buf[128];
  std::snprintf(buf, sizeof buf, "%*lld/%lld [", digits, static_cast<long long>(current),
                static_cast<long long>(target_));
  std::string s = buf;
  const double prog = target_ > 0 ? static_cast<double>(current) / static_cast<double>(target_) : 1.0;
  const int prog_width = static_cast<int>(width_ * prog);
  if (prog_width > 0) {
    s.append(static_cast<std::size_t>(prog_width - 1), '=');
    s += current < target_ ? '>' : '=';
  }
  s.append(static_cast<std::size_t>(std::max(0, width_ - prog_width)), '.');
  s += ']';
  const double per_step = current > 0 ? elapsed / static_cast<double>(current) : 0.0;
  if (!finalize) {
    const double eta = per_step * static_cast<double>(target_ - current);
    const long long e = static_cast<long long>(eta);
    if (eta > 3600) {
      std::snprintf(buf, sizeof buf, " - ETA: %lld:%02lld:%02lld", e / 3600, (e % 3600) / 60, e % 60);
    } else if (eta > 60) {
      std::snprintf(buf, sizeof buf, " - ETA: %lld:%02lld", e / 60, e % 60);
    } else {
      std::snprintf(buf, sizeof buf, " - ETA: %llds", e);
    }
    s += buf;
  } else {
    std::snprintf(buf, sizeof buf, " - %.0fs", elapsed);
    s += buf;
    if (per_step >= 1 || per_step == 0) {
      std::snprintf(buf, sizeof buf, " %.0fs/step", per_step);
    } else if (per_step >= 1e-3) {
      std::snprintf(buf, sizeof buf, " %.0fms/step", per_step * 1e3);
    } else {
      std::snprintf(buf, sizeof buf, " %.0fus/step", per_step * 1e6);
    }
    s += buf;
  }
  for (const auto& [k, v] : values) s += " - " + k + ": " + format_metric(v);
  return s;
}

void Progbar::update(std::int64_t current, const std::vector<std::pair<std::string, double>>& values) {
  const auto now = std::chrono::steady_clock::now();
  const bool finalize = current >= target_;
  if (!finalize && (!dynamic_ || now - last_draw_ < std::chrono::milliseconds(50))) return;
  last_draw_ = now;
  const std::string text = line(current, values, std::chrono::duration<double>(now - start_).count());
  if (dynamic_) {
    out_ << '\r' << text;
    if (text.size() < last_length_) out_ << std::string(last_length_ - text.size(), ' ');
    last_length_ = text.size();
  } else {
    out_ << text;
  }
  if (finalize) out_ << '\n';
  out_.flush();
}

}  // namespace reskit
