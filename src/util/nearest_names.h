// The names nearest a misspelt one, for messages ("did you mean"). Not part of the public API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reskit::detail {

// Edit distance (Levenshtein: insertions, deletions, substitutions of one byte each).
std::size_t edit_distance(std::string_view a, std::string_view b);

// Up to `count` names from `names` nearest `name`: by edit distance, a name containing `name`
// counting as distance 1, ties in the order given; only those within max(3, |name| / 2).
std::vector<std::string> nearest_names(std::string_view name, const std::vector<std::string>& names,
                                       std::size_t count = 3);

// "; nearest: 'a', 'b'" for a message, or "" when no name is near.
std::string nearest_names_hint(std::string_view name, const std::vector<std::string>& names);

}  // namespace reskit::detail
