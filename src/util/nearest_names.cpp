// The names nearest a misspelt one: edit distance, ranked, as a message hint.
#include "util/nearest_names.h"

#include <algorithm>
#include <numeric>

namespace reskit::detail {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // One row of the dynamic-programming table at a time: row[j] = distance(a[0..i), b[0..j)).
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<std::string> nearest_names(std::string_view name, const std::vector<std::string>& names,
                                       std::size_t count) {
  const std::size_t limit = std::max<std::size_t>(3, name.size() / 2);
  std::vector<std::pair<std::size_t, std::size_t>> ranked;  // (distance, index)
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::size_t d = edit_distance(name, names[i]);
    if (!name.empty() && names[i].find(name) != std::string::npos) d = std::min<std::size_t>(d, 1);
    if (d <= limit) ranked.emplace_back(d, i);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t k = 0; k < ranked.size() && k < count; ++k) out.push_back(names[ranked[k].second]);
  return out;
}

std::string nearest_names_hint(std::string_view name, const std::vector<std::string>& names) {
  const std::vector<std::string> near = nearest_names(name, names);
  if (near.empty()) return "";
  std::string out = "; nearest: ";
  for (std::size_t i = 0; i < near.size(); ++i) out += (i > 0 ? ", '" : "'") + near[i] + "'";
  return out;
}

}  // namespace reskit::detail
