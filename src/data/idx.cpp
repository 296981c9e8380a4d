// MNIST / Fashion-MNIST IDX files, gzipped or not (zlib reads both).
//
// Layout (big-endian): magic 0x000008dd (0x08 = unsigned bytes, dd = number of dimensions), dd
// 32-bit sizes, then the data. Images are idx3 (n, rows, cols), labels idx1 (n).
// http://yann.lecun.com/exdb/mnist/ — the header sizes are checked against the data the file
// actually holds before the data is kept: a plain file must have exactly header + data bytes; a
// gzipped one is read incrementally, so a lying header never allocates more than the stream holds.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "data/loader_util.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
namespace fs = std::filesystem;

namespace {

struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

class GzReader {
 public:
  GzReader(const std::string& path, const std::string& what) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw FileError(path + ": cannot open " + what + " for reading");
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many it got (fewer only at the end of the data).
  std::int64_t read(std::uint8_t* out, std::int64_t n) {
    std::int64_t got = 0;
    while (got < n) {
      const auto want = static_cast<unsigned>(std::min<std::int64_t>(n - got, 1 << 30));
      const int r = gzread(file_, out + got, want);
      if (r < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        throw FileError(path_ + ": corrupt gzip data: " + (msg ? msg : "unknown zlib error"));
      }
      if (r == 0) break;
      got += r;
    }
    return got;
  }
  bool compressed() const { return gzdirect(file_) == 0; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

// An IDX file of unsigned bytes with `ndim` dimensions; `what` names it in messages.
IdxArray read_idx(const std::string& path, int ndim, const std::string& what) {
  const std::int64_t stored = file_size(path, what);
  const std::uint32_t expected_magic = 0x00000800u | static_cast<std::uint32_t>(ndim);
  const std::string expect = "IDX magic " + hex32(expected_magic) + " (" + what + ": unsigned bytes, " +
                             std::to_string(ndim) + (ndim == 1 ? " dimension)" : " dimensions)");
  GzReader in(path, what);
  std::uint8_t head[4 * 8];
  const std::int64_t got_magic = in.read(head, 4);
  if (got_magic < 4) {
    throw FileError(path + ": truncated: expected a 4-byte " + expect + ", got " + std::to_string(got_magic) +
                    " bytes");
  }
  const auto be32 = [](const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
  };
  const std::uint32_t magic = be32(head);
  if (magic != expected_magic) throw FileError(path + ": expected " + expect + ", found " + hex32(magic));
  const std::int64_t dims_bytes = 4 * ndim;
  const std::int64_t got_dims = in.read(head, dims_bytes);
  if (got_dims < dims_bytes) {
    throw FileError(path + ": truncated header: expected " + std::to_string(ndim) + " 4-byte sizes, got " +
                    std::to_string(got_dims) + " bytes");
  }
  IdxArray a;
  std::int64_t needed = 1;
  for (int i = 0; i < ndim; ++i) {
    const std::int64_t d = be32(head + 4 * i);
    if (d <= 0) {
      throw FileError(path + ": size " + std::to_string(i) + " of the header is " + std::to_string(d) +
                      "; expected a positive size");
    }
    a.dims.push_back(d);
    needed = checked_mul(needed, d, path);
  }
  std::string declared = "(" + std::to_string(a.dims[0]);
  for (int i = 1; i < ndim; ++i) declared += ", " + std::to_string(a.dims[i]);
  declared += ndim == 1 ? ",)" : ")";
  declared = "header declares " + declared + " = " + std::to_string(needed) + " bytes of data";
  const std::int64_t header = 4 + dims_bytes;
  if (!in.compressed()) {
    if (stored - header != needed) {
      throw FileError(path + ": " + declared + ", the file holds " + std::to_string(stored - header) +
                      (stored - header < needed ? " (truncated)" : ""));
    }
    a.data.resize(static_cast<std::size_t>(needed));
    const std::int64_t got = in.read(a.data.data(), needed);
    if (got != needed) throw FileError(path + ": " + declared + ", read " + std::to_string(got));
    return a;
  }
  if (needed / kMaxDeflateRatio > stored) {
    throw FileError(path + ": " + declared + ", more than a gzip file of " + std::to_string(stored) +
                    " bytes can hold");
  }
  // Grow as the stream delivers, so a lying header costs no more memory than the data itself.
  constexpr std::int64_t kChunk = std::int64_t{1} << 24;
  std::int64_t have = 0;
  while (have < needed) {
    const std::int64_t want = std::min(kChunk, needed - have);
    a.data.resize(static_cast<std::size_t>(have + want));
    const std::int64_t got = in.read(a.data.data() + have, want);
    have += got;
    if (got < want) {
      throw FileError(path + ": truncated: " + declared + ", the gzip stream holds " + std::to_string(have));
    }
  }
  std::uint8_t extra = 0;
  if (in.read(&extra, 1) != 0) {
    throw FileError(path + ": " + declared + ", the gzip stream holds more; expected exactly that much");
  }
  return a;
}

// "train" -> the file-name prefixes of that split.
std::vector<std::string> idx_prefixes(const std::string& split) {
  if (split == "train") return {"train"};
  if (split == "test") return {"t10k", "test"};
  throw ConfigError("IDX data: expected split 'train' or 'test', got '" + split + "'");
}

std::string find_idx_file(const std::string& dir, const std::string& split, const std::string& kind,
                          const std::string& idx) {
  for (const auto& prefix : idx_prefixes(split)) {
    for (const char* sep : {"-", "."}) {
      for (const char* gz : {".gz", ""}) {
        const fs::path p = fs::path(dir) / (prefix + "-" + kind + sep + idx + "-ubyte" + gz);
        if (fs::is_regular_file(p)) return p.string();
      }
    }
  }
  const std::string first = idx_prefixes(split).front();
  throw FileError(dir + ": expected " + first + "-" + kind + "-" + idx + "-ubyte[.gz] for split '" + split +
                  "', found no such file");
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names, const LoadOptions& options) {
  IdxArray images = read_idx(images_path, 3, "IDX images");
  IdxArray labels = read_idx(labels_path, 1, "IDX labels");
  const std::int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    throw FileError(labels_path + ": expected " + std::to_string(n) + " labels (one per image in " +
                    images_path + "), found " + std::to_string(labels.dims[0]));
  }
  std::vector<std::int32_t> y(labels.data.begin(), labels.data.end());
  if (class_names.empty()) class_names = numbered_class_names(10);  // MNIST digits
  const int k = resolve_classes(labels_path, y, class_names, options);
  return Dataset::from_uint8(images_path, {n, images.dims[1], images.dims[2], 1}, std::move(images.data),
                             std::move(y), k, std::move(class_names));
}

Dataset load_idx_folder(const std::string& dir, const std::string& split, const LoadOptions& options) {
  if (!fs::is_directory(dir)) throw FileError(dir + ": expected a folder of IDX files, found no such folder");
  const std::string images = find_idx_file(dir, split, "images", "idx3");
  const std::string labels = find_idx_file(dir, split, "labels", "idx1");
  return load_idx(images, labels,
                  path_says_fashion(dir) ? fashion_mnist_class_names() : std::vector<std::string>{}, options);
}

Dataset load_fashion_mnist(const std::string& split, const std::string& dir, const LoadOptions& options) {
  if (!fs::is_directory(dir)) {
    throw FileError(dir +
                    ": expected the Fashion-MNIST IDX files here, found no such folder; install Debian's "
                    "dataset-fashion-mnist package (scripts/setup.sh)");
  }
  const std::string images = find_idx_file(dir, split, "images", "idx3");
  const std::string labels = find_idx_file(dir, split, "labels", "idx1");
  return load_idx(images, labels, fashion_mnist_class_names(), options);
}

}  // namespace reskit
