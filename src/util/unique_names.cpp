// Keras's auto-name counters (util/unique_names.h) and clear_session() (reskit/layers/layer.h),
// which forgets them.
#include "util/unique_names.h"

#include <map>
#include <mutex>

#include "reskit/layers/layer.h"

namespace reskit {

namespace {
std::mutex g_names_mutex;
std::map<std::string, int> g_name_counts;
}  // namespace

void clear_session() {
  std::lock_guard lock(g_names_mutex);
  g_name_counts.clear();
}

namespace detail {
std::string unique_object_name(const std::string& base) {
  std::lock_guard lock(g_names_mutex);
  int n = g_name_counts[base]++;
  return n == 0 ? base : base + "_" + std::to_string(n);
}

// Input layers count from 1 (input_1, input_2, ...), as Keras's get_uid('input') does.
std::string unique_input_name() {
  std::lock_guard lock(g_names_mutex);
  return "input_" + std::to_string(++g_name_counts["\x01input"]);
}
}  // namespace detail

}  // namespace reskit
