// Training curves as SVG: two panels (loss, accuracy), one polyline per series, axes with round
// ticks (the loss from 0 up, the accuracy within 0 to 1).
#include "reskit/training/curves.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "reskit/error.h"
#include "reskit/training/callbacks.h"
#include "training/curves_axis.h"

namespace reskit {

namespace training {

AxisTicks nice_ticks(double data_min, double data_max, double bottom, double top, int max_intervals) {
  double lo = data_min, hi = data_max;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  lo = std::clamp(lo, bottom, top), hi = std::clamp(hi, bottom, top);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(hi))) {  // flat: a tenth of the value each side
    const double half = lo == 0 ? 0.5 : std::abs(lo) * 0.1;
    lo = std::max(lo - half, bottom), hi = std::min(hi + half, top);
  }
  max_intervals = std::max(max_intervals, 1);
  // The smallest step m·10^e (m = 1, 2, 5) that spans the data in max_intervals steps at most.
  constexpr int kMantissas[] = {1, 2, 5};
  constexpr double kSlack = 1e-9;  // how far off a multiple of the step a value still counts as on it
  const int e0 = static_cast<int>(std::floor(std::log10((hi - lo) / max_intervals)));
  int m = 1, e = e0;
  double step = 1, first = 0, last = 0;
  for (int i = 0;; ++i) {
    m = kMantissas[i % 3], e = e0 + i / 3;
    step = m * std::pow(10.0, e);
    first = std::floor(lo / step + kSlack), last = std::ceil(hi / step - kSlack);
    if (last - first <= max_intervals) break;
  }
  first = std::max(first, std::ceil(bottom / step - kSlack));
  last = std::max(std::min(last, std::floor(top / step + kSlack)), first + 1);
  AxisTicks t;
  t.step = step;
  t.decimals = std::max(0, -e);
  // k·m / 10^-e rather than k·step: the double nearest the decimal, 0.3 and not 0.30000000000000004
  const double scale = std::pow(10.0, std::abs(e));
  for (double k = first; k <= last; ++k) t.values.push_back(e < 0 ? k * m / scale : k * m * scale);
  t.lo = t.values.front(), t.hi = t.values.back();
  return t;
}

}  // namespace training

namespace {
constexpr double kPanelW = 420, kPanelH = 300, kMargin = 50;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// One panel at x offset `left` plotting the given series (name, colour, values) on a value axis
// with round ticks, kept within [bottom, top].
std::string panel(double left, const std::string& title,
                  const std::vector<std::pair<std::string, const std::vector<double>*>>& series,
                  double bottom, double top) {
  double lo = INFINITY, hi = -INFINITY;
  std::size_t n = 0;
  for (const auto& [name, v] : series)
    for (double y : *v)
      if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y), n = std::max(n, v->size());
  const training::AxisTicks axis = training::nice_ticks(lo, hi, bottom, top);
  lo = axis.lo, hi = axis.hi;
  const double x0 = left + kMargin, y0 = kMargin, w = kPanelW - 1.5 * kMargin, h = kPanelH - 2 * kMargin;
  auto px = [&](std::size_t i) {
    return x0 + (n <= 1 ? w / 2 : w * static_cast<double>(i) / static_cast<double>(n - 1));
  };
  auto py = [&](double y) { return y0 + h * (1 - (y - lo) / (hi - lo)); };
  std::string s;
  s += "<text x=\"" + num(x0 + w / 2) + "\" y=\"30\" text-anchor=\"middle\" font-size=\"15\">" + title +
       "</text>\n";
  s += "<rect x=\"" + num(x0) + "\" y=\"" + num(y0) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
       "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double v : axis.values) {
    char label[32];
    std::snprintf(label, sizeof label, "%.*f", axis.decimals, v);
    if (v != lo && v != hi) {
      s += "<line x1=\"" + num(x0) + "\" y1=\"" + num(py(v)) + "\" x2=\"" + num(x0 + w) + "\" y2=\"" +
           num(py(v)) + "\" stroke=\"#e4e4e4\"/>\n";
    }
    s += "<text x=\"" + num(x0 - 5) + "\" y=\"" + num(py(v) + 4) +
         "\" text-anchor=\"end\" font-size=\"10\">" + label + "</text>\n";
  }
  for (std::size_t i = 0; i < n; i += std::max<std::size_t>(1, n / 8)) {
    s += "<text x=\"" + num(px(i)) + "\" y=\"" + num(y0 + h + 15) +
         "\" text-anchor=\"middle\" font-size=\"10\">" + std::to_string(i + 1) + "</text>\n";
  }
  s += "<text x=\"" + num(x0 + w / 2) + "\" y=\"" + num(y0 + h + 32) +
       "\" text-anchor=\"middle\" font-size=\"11\">epoch</text>\n";
  const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};
  int c = 0, legend = 0;
  for (const auto& [name, v] : series) {
    std::string pts;
    for (std::size_t i = 0; i < v->size(); ++i)
      if (std::isfinite((*v)[i])) pts += num(px(i)) + "," + num(py((*v)[i])) + " ";
    const char* colour = colours[c++ % 4];
    s += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"2\" points=\"" + pts +
         "\"/>\n";
    for (std::size_t i = 0; i < v->size(); ++i)
      if (std::isfinite((*v)[i]))
        s += "<circle cx=\"" + num(px(i)) + "\" cy=\"" + num(py((*v)[i])) + "\" r=\"2.5\" fill=\"" + colour +
             "\"/>\n";
    s += "<text x=\"" + num(x0 + 10) + "\" y=\"" + num(y0 + 16 + 14 * legend++) +
         "\" font-size=\"11\" fill=\"" + colour + "\">" + name + "</text>\n";
  }
  return s;
}
}  // namespace

std::string history_svg(const History& history, const std::string& title) {
  if (history.epoch.empty()) throw ConfigError("plot_history: the history has no epochs");
  auto series = [&](std::initializer_list<const char*> keys) {
    std::vector<std::pair<std::string, const std::vector<double>*>> out;
    for (const char* k : keys) {
      auto it = history.history.find(k);
      if (it != history.history.end()) out.emplace_back(k, &it->second);
    }
    return out;
  };
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(2 * kPanelW) + "\" height=\"" +
                  num(kPanelH + (title.empty() ? 0 : 20)) + "\" font-family=\"sans-serif\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    s += "<text x=\"" + num(kPanelW) + "\" y=\"16\" text-anchor=\"middle\" font-size=\"14\">" + title +
         "</text>\n<g transform=\"translate(0,20)\">\n";
  s += panel(0, "loss", series({"loss", "val_loss"}), 0, INFINITY);
  s += panel(kPanelW, "accuracy", series({"accuracy", "val_accuracy"}), 0, 1);
  if (!title.empty()) s += "</g>\n";
  return s + "</svg>\n";
}

void plot_history(const History& history, const std::string& path, const std::string& title) {
  write_file_atomically(path, history_svg(history, title));
}

}  // namespace reskit
