// Checked file reading and class bookkeeping shared by the dataset loaders.
#include "data/loader_util.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>

#include "reskit/error.h"

namespace reskit::data_detail {

namespace fs = std::filesystem;

std::int64_t file_size(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw FileError(path + ": no such file (expected " + what + ")");
  if (!fs::is_regular_file(status))
    throw FileError(path + ": expected " + what + ", found something that is not a file");
  const auto size = fs::file_size(path, ec);
  if (ec) throw FileError(path + ": cannot read the size of " + what + ": " + ec.message());
  return static_cast<std::int64_t>(size);
}

std::vector<std::uint8_t> read_file(const std::string& path, const std::string& what) {
  const std::int64_t size = file_size(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open " + what + " for reading");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) {
    throw FileError(path + ": expected " + std::to_string(size) + " bytes of " + what + ", read " +
                    std::to_string(in.gcount()));
  }
  return bytes;
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& where) {
  if (a < 0 || b < 0 || (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a)) {
    throw FileError(where + ": sizes " + std::to_string(a) + " x " + std::to_string(b) +
                    " overflow; the header is corrupt");
  }
  return a * b;
}

std::vector<std::string> numbered_class_names(std::int64_t n) {
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) names.push_back(std::to_string(i));
  return names;
}

int resolve_classes(const std::string& where, const std::vector<std::int32_t>& labels,
                    std::vector<std::string>& names, const LoadOptions& options) {
  std::int64_t from_labels = 0;
  for (std::int32_t label : labels) {
    if (label >= kMaxClasses) {
      throw FileError(where + ": label " + std::to_string(label) + " is beyond the limit of " +
                      std::to_string(kMaxClasses) + " classes; expected class indices from 0");
    }
    from_labels = std::max<std::int64_t>(from_labels, label + 1);
  }
  std::int64_t k = std::max<std::int64_t>(from_labels, static_cast<std::int64_t>(names.size()));
  if (options.num_classes < 0) {
    throw ConfigError(where + ": expected num_classes >= 0 (0 takes it from the data), got " +
                      std::to_string(options.num_classes));
  }
  if (options.num_classes > 0) {
    if (static_cast<std::int64_t>(names.size()) > options.num_classes) {
      throw FileError(where + ": names " + std::to_string(names.size()) + " classes, expected at most " +
                      std::to_string(options.num_classes) + " (num_classes)");
    }
    // Labels beyond it are reported by Dataset's own check, naming the sample.
    k = options.num_classes;
  }
  for (auto i = static_cast<std::int64_t>(names.size()); i < k; ++i) names.push_back(std::to_string(i));
  return static_cast<int>(k);
}

bool path_says_fashion(const std::string& path) {
  return lower(fs::absolute(path).lexically_normal().string()).find("fashion") != std::string::npos;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace reskit::data_detail
