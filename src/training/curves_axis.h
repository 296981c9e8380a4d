// The value axes of the training curves (internal; training/curves.cpp draws them, the unit tests check
// them): round ticks ("nice numbers"), steps of 1, 2 or 5 times a power of ten.
#pragma once

#include <limits>
#include <vector>

namespace reskit::training {

struct AxisTicks {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> values;  // lo, lo + step, ..., hi: each the double nearest k·step
  int decimals = 1;            // digits after the point that show every tick exactly
};

// The ticks of an axis showing values from data_min to data_max: lo and hi are multiples of the
// step with lo <= data_min and hi >= data_max, at most max_intervals steps apart, and never beyond
// [bottom, top] (0 for a loss; 0 and 1 for an accuracy). A flat range gets a span around its value;
// a non-finite one (no data) gives 0 to 1.
AxisTicks nice_ticks(double data_min, double data_max,
                     double bottom = -std::numeric_limits<double>::infinity(),
                     double top = std::numeric_limits<double>::infinity(), int max_intervals = 6);

}  // namespace reskit::training
