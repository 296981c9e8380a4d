// CIFAR-10 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version").
//
// Each record is 1 label byte and 3072 pixel bytes: the 1024 red values of the 32x32 image in
// row-major order, then the green, then the blue ones. Records are turned into NHWC. A batch
// file must be a whole number of records; CIFAR-100's two-label layout is not read here.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/loader_util.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSide = 32;
constexpr std::int64_t kPlane = kSide * kSide;
constexpr std::int64_t kRecord = 1 + 3 * kPlane;
constexpr std::int64_t kCifarClasses = 10;

// Appends the records of one batch file (labels checked against [0, max_label)).
void append_batch(const std::string& path, std::int64_t max_label, std::vector<std::uint8_t>& pixels,
                  std::vector<std::int32_t>& labels) {
  const std::int64_t size = file_size(path, "a CIFAR-10 binary batch");
  if (size == 0 || size % kRecord != 0) {
    throw FileError(path + ": expected CIFAR-10 records of " + std::to_string(kRecord) +
                    " bytes (1 label byte + 32x32x3 pixels), found a file of " + std::to_string(size) +
                    " bytes, which is not a positive multiple of " + std::to_string(kRecord));
  }
  const std::vector<std::uint8_t> bytes = read_file(path, "a CIFAR-10 binary batch");
  const std::int64_t n = size / kRecord;
  const std::size_t base = pixels.size();
  pixels.resize(base + static_cast<std::size_t>(n * 3 * kPlane));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* rec = bytes.data() + i * kRecord;
    if (rec[0] >= max_label) {
      throw FileError(path + ": record " + std::to_string(i) + " has label " + std::to_string(rec[0]) +
                      "; expected a class in [0, " + std::to_string(max_label) + ")");
    }
    labels.push_back(rec[0]);
    std::uint8_t* out = pixels.data() + base + i * 3 * kPlane;
    for (std::int64_t p = 0; p < kPlane; ++p)
      for (std::int64_t c = 0; c < 3; ++c) out[p * 3 + c] = rec[1 + c * kPlane + p];
  }
}

// Class names, one a line, from batches.meta.txt in `dir` (none when there is no such file).
std::vector<std::string> read_meta(const fs::path& dir) {
  const fs::path meta = dir / "batches.meta.txt";
  std::vector<std::string> names;
  if (!fs::is_regular_file(meta)) return names;
  if (fs::file_size(meta) > (1 << 20)) {
    throw FileError(meta.string() + ": expected a short list of class names, found a file of " +
                    std::to_string(fs::file_size(meta)) + " bytes");
  }
  std::ifstream in(meta);
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r");
    names.push_back(line.substr(b, e - b + 1));
  }
  return names;
}

}  // namespace

Dataset load_cifar10(const std::string& path, const std::string& split, const LoadOptions& options) {
  std::vector<std::string> files;
  fs::path dir;
  if (fs::is_directory(path)) {
    dir = path;
    if (split == "train") {
      for (int i = 1; i <= 5; ++i) {
        const fs::path p = dir / ("data_batch_" + std::to_string(i) + ".bin");
        if (!fs::is_regular_file(p)) break;
        files.push_back(p.string());
      }
    } else if (split == "test") {
      const fs::path p = dir / "test_batch.bin";
      if (fs::is_regular_file(p)) files.push_back(p.string());
    } else {
      throw ConfigError(path + ": expected split 'train' or 'test' for CIFAR-10, got '" + split + "'");
    }
    if (files.empty()) {
      throw FileError(
          path + ": expected CIFAR-10 batches " +
          std::string(split == "train" ? "data_batch_1.bin .. data_batch_5.bin" : "test_batch.bin") +
          " for split '" + split + "', found none");
    }
  } else {
    files.push_back(path);
    dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
  }
  std::vector<std::string> names = read_meta(dir);
  if (names.empty()) names = numbered_class_names(kCifarClasses);
  const auto max_label = std::max<std::int64_t>(kCifarClasses, static_cast<std::int64_t>(names.size()));
  std::vector<std::uint8_t> pixels;
  std::vector<std::int32_t> labels;
  for (const auto& f : files) append_batch(f, max_label, pixels, labels);
  const int k = resolve_classes(path, labels, names, options);
  const auto n = static_cast<std::int64_t>(labels.size());
  return Dataset::from_uint8(path, {n, kSide, kSide, 3}, std::move(pixels), std::move(labels), k,
                             std::move(names));
}

}  // namespace reskit
