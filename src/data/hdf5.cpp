// SIGNS-style HDF5 datasets (the notebook's train_signs.h5 / test_signs.h5), read through the
// shared HDF5 layer: src/hdf5/api.h (handles, the error helper, strings) and src/hdf5/check.h (the
// byte checks before HDF5 reads: the group walk, variable-length strings).
//
// Layout: <split>_set_x (m, H, W, C) uint8 or float pixels, <split>_set_y (m,) or (1, m) integer
// labels, optional list_classes (integers or strings), reached through hard links only. HDF5's own
// error printing is silenced while reading; its innermost message is appended to ours. Before any
// read, a dataset's declared size is checked against what the file stores for it (contiguous
// bytes within the file, every chunk present), and datasets whose data lives in other files
// (external storage, virtual datasets) are refused, so a hostile header can neither make us
// allocate gigabytes nor read other files.
// Where HDF5 1.10 itself trusts the file (the decoded size of a compressed chunk, here; the global
// heap behind variable-length strings, in check.h), those bytes are checked before HDF5 reads
// them: fuzzing with AddressSanitizer found out-of-bounds copies inside H5Dread on both.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <utility>

#include "data/loader_util.h"
#include "hdf5/api.h"
#include "hdf5/check.h"
#include "reskit/data/loaders.h"
#include "reskit/data/stream.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
using hdf5::Hid;

namespace {

// One opened dataset with its type and shape.
struct H5Data {
  std::string path;
  std::string where;  // "file: dataset 'key'"
  Hid id;
  Hid type;
  Shape dims;
  H5T_class_t cls = H5T_NO_CLASS;
  std::int64_t numel = 0;

  std::string describe() const { return hdf5::type_name(type.get()) + " of shape " + shape_str(dims); }
};

H5Data open_dataset(hid_t file, const std::string& path, const std::string& key) {
  H5Data d;
  d.path = path;
  d.where = path + ": dataset '" + key + "'";
  d.id = hdf5::find_object(file, key, d.where);  // hard links only: no other file is read
  if (!d.id.valid()) throw FileError(path + ": expected a dataset '" + key + "', found no such key");
  if (H5Iget_type(d.id.get()) != H5I_DATASET)
    throw FileError(d.where + ": expected a dataset, found another kind of object");
  d.type = Hid(H5Dget_type(d.id.get()));
  Hid space(H5Dget_space(d.id.get()));
  if (!d.type.valid() || !space.valid()) hdf5::fail(d.where, "cannot read its type or shape");
  d.cls = H5Tget_class(d.type.get());
  const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_NULL) throw FileError(d.where + ": expected data, found an empty (null) dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > H5S_MAX_RANK) hdf5::fail(d.where, "cannot read its shape");
  hsize_t dims[H5S_MAX_RANK] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  d.numel = 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > static_cast<hsize_t>(std::numeric_limits<std::int64_t>::max())) {
      throw FileError(d.where + ": size " + std::to_string(i) + " is " + std::to_string(dims[i]) +
                      "; the header is corrupt");
    }
    d.dims.push_back(static_cast<std::int64_t>(dims[i]));
    d.numel = checked_mul(d.numel, d.dims.back(), d.where);
  }

  // What the file declares against what it stores, before anything is read (hdf5/api.h).
  hdf5::check_stored_data(d.id.get(), d.where);
  return d;
}

// Any dataset read whole into `out` as `mem_type` (elements of sizeof(T)).
template <class T>
void read_all(const H5Data& d, hid_t mem_type, std::vector<T>& out) {
  out.resize(static_cast<std::size_t>(d.numel));
  if (d.numel == 0) return;
  if (H5Dread(d.id.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    hdf5::fail(d.where, "cannot read " + d.describe());
  }
}

// A 1-D list: (n,), (1, n) or (n, 1); returns n.
std::int64_t vector_length(const H5Data& d) {
  if (d.dims.size() == 1) return d.dims[0];
  if (d.dims.size() == 2 && (d.dims[0] == 1 || d.dims[1] == 1)) return d.numel;
  return -1;
}

std::vector<std::int32_t> read_labels(const H5Data& d, std::int64_t m) {
  if (vector_length(d) != m) {
    throw FileError(d.where + ": expected " + std::to_string(m) + " labels (one per image) of shape (" +
                    std::to_string(m) + ",) or (1, " + std::to_string(m) + "), found " + d.describe());
  }
  std::vector<std::int32_t> labels(static_cast<std::size_t>(m));
  auto store = [&](std::size_t i, double v) {
    if (!(v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max())) {
      throw FileError(d.where + ": label " + std::to_string(i) + " is " + std::to_string(v) +
                      "; expected a class index");
    }
    labels[i] = static_cast<std::int32_t>(v);
  };
  if (d.cls == H5T_INTEGER) {
    std::vector<std::int64_t> v;
    read_all(d, H5T_NATIVE_INT64, v);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] < std::numeric_limits<std::int32_t>::min() ||
          v[i] > std::numeric_limits<std::int32_t>::max()) {
        throw FileError(d.where + ": label " + std::to_string(i) + " is " + std::to_string(v[i]) +
                        "; expected a class index");
      }
      labels[i] = static_cast<std::int32_t>(v[i]);
    }
  } else if (d.cls == H5T_FLOAT) {
    std::vector<double> v;
    read_all(d, H5T_NATIVE_DOUBLE, v);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] != std::floor(v[i])) {
        throw FileError(d.where + ": label " + std::to_string(i) + " is " + std::to_string(v[i]) +
                        "; expected a whole class index");
      }
      store(i, v[i]);
    }
  } else {
    throw FileError(d.where + ": expected integer labels, found " + d.describe());
  }
  return labels;
}

// HDF5 1.10 trusts the global heap that variable-length strings live in: a corrupt object size
// or index there makes H5Dread copy out of bounds. So before HDF5 reads them, hdf5/check.h checks
// the stored references and the heap collections they point into, from the file's bytes.
void check_vlen_strings(const H5Data& d) {
  Hid dcpl(H5Dget_create_plist(d.id.get()));
  if (!dcpl.valid()) hdf5::fail(d.where, "cannot read its storage layout");
  if (H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS) {
    throw FileError(d.where +
                    ": expected variable-length strings in contiguous storage (h5py's default) or "
                    "fixed-length strings, found another layout");
  }
  if (d.numel == 0) return;
  const haddr_t offset = H5Dget_offset(d.id.get());
  H5Eclear2(H5E_DEFAULT);
  if (offset == HADDR_UNDEF)
    throw FileError(d.where + ": declares " + d.describe() + ", the file holds none of it");
  hdf5::check_vlen_strings(d.path, offset, static_cast<std::uint64_t>(d.numel), d.where);
}

std::vector<std::string> read_class_names(const H5Data& d) {
  const std::int64_t k = vector_length(d);
  if (k < 0)
    throw FileError(d.where + ": expected a list of class names of shape (K,), found " + d.describe());
  if (k > kMaxClasses) {
    throw FileError(d.where + ": expected at most " + std::to_string(kMaxClasses) + " class names, found " +
                    d.describe());
  }
  std::vector<std::string> names;
  if (d.cls == H5T_INTEGER) {
    std::vector<std::int64_t> v;
    read_all(d, H5T_NATIVE_INT64, v);
    for (auto x : v) names.push_back(std::to_string(x));
  } else if (d.cls == H5T_FLOAT) {
    std::vector<double> v;
    read_all(d, H5T_NATIVE_DOUBLE, v);
    for (double x : v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", x);
      names.emplace_back(buf);
    }
  } else if (d.cls == H5T_STRING) {
    if (H5Tis_variable_str(d.type.get()) > 0) check_vlen_strings(d);
    names = hdf5::read_string_dataset(d.id.get(), hdf5::kMaxNameBytes, hdf5::kMaxStringAttrBytes, d.where);
  } else {
    throw FileError(d.where + ": expected class names as integers or strings, found " + d.describe());
  }
  return names;
}

std::string join(const std::vector<std::string>& v) {
  if (v.empty()) return "nothing";
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// The x and y keys: explicit ones, else the file's *_set_x / *_set_y pair (the split's when it
// has several).
std::pair<std::string, std::string> find_keys(const std::string& path, const std::vector<std::string>& names,
                                              const std::string& split, const LoadOptions& options) {
  std::string xk = options.x_key, yk = options.y_key;
  // train_set_x <-> train_set_y, X <-> Y
  auto swap_last = [](std::string k, char from, char to) {
    if (!k.empty() && k.back() == from) k.back() = to;
    if (!k.empty() && k.back() == from - 'a' + 'A') k.back() = static_cast<char>(to - 'a' + 'A');
    return k;
  };
  if (!xk.empty() && yk.empty()) yk = swap_last(xk, 'x', 'y');
  if (xk.empty() && !yk.empty()) xk = swap_last(yk, 'y', 'x');
  if (!xk.empty()) {
    if (xk == yk) {
      throw ConfigError(path + ": expected both an images key (x_key) and a labels key (y_key), got only '" +
                        xk + "'");
    }
    return {xk, yk};
  }
  const std::string sx = "_set_x", sy = "_set_y";
  std::vector<std::string> prefixes;
  for (const auto& n : names) {
    if (!ends_with(n, sx)) continue;
    const std::string prefix = n.substr(0, n.size() - sx.size());
    if (std::find(names.begin(), names.end(), prefix + sy) != names.end()) prefixes.push_back(prefix);
  }
  if (prefixes.empty()) {
    throw FileError(
        path + ": expected datasets <split>_set_x and <split>_set_y (e.g. train_set_x, train_set_y), found " +
        join(names) + "; name them explicitly (x_key, y_key)");
  }
  std::string prefix = prefixes.front();
  if (prefixes.size() > 1) {
    if (std::find(prefixes.begin(), prefixes.end(), split) == prefixes.end()) {
      throw FileError(path + ": expected split '" + split + "' among the file's splits, found " +
                      join(prefixes));
    }
    prefix = split;
  }
  return {prefix + sx, prefix + sy};
}

// A SIGNS-style file opened (under the caller's hdf5::Session): its x, y and class-name keys
// (ck empty when there are none) and the x dataset.
struct SignsFile {
  Hid file;
  std::string xk, yk, ck;
  H5Data x;
};

SignsFile open_signs(const std::string& path, const std::string& split, const LoadOptions& options) {
  file_size(path, "an HDF5 file");  // exists and is a regular file
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw FileError(path + ": expected an HDF5 file, found no HDF5 signature");
  }
  Hid file = hdf5::open_file_read(path, path);  // after the walk of its groups (hdf5/check.h)
  const std::vector<std::string> names = hdf5::link_names(file.get(), 4096);
  auto [xk, yk] = find_keys(path, names, split, options);
  std::string ck = options.classes_key;
  if (ck.empty() && std::find(names.begin(), names.end(), "list_classes") != names.end()) ck = "list_classes";
  H5Data x = open_dataset(file.get(), path, xk);
  return {std::move(file), std::move(xk), std::move(yk), std::move(ck), std::move(x)};
}

}  // namespace

Dataset load_hdf5(const std::string& path, const std::string& split, const LoadOptions& options) {
  hdf5::Session quiet;
  auto [file, xk, yk, ck, x] = open_signs(path, split, options);
  Shape shape = x.dims;
  if (shape.size() == 3) shape.push_back(1);  // (m, H, W) grayscale
  if (shape.size() != 4 || std::any_of(shape.begin(), shape.end(), [](auto v) { return v <= 0; })) {
    throw FileError(x.where +
                    ": expected images of shape (m, H, W, C) or (m, H, W) with positive sizes, found " +
                    x.describe());
  }
  if (x.cls != H5T_INTEGER && x.cls != H5T_FLOAT) {
    throw FileError(x.where + ": expected uint8 or float pixels, found " + x.describe());
  }
  const std::int64_t m = shape[0];
  std::vector<std::int32_t> labels = read_labels(open_dataset(file.get(), path, yk), m);
  std::vector<std::string> class_names;
  if (!ck.empty()) class_names = read_class_names(open_dataset(file.get(), path, ck));
  const int k = resolve_classes(path + ": dataset '" + yk + "'", labels, class_names, options);

  if (x.cls == H5T_INTEGER && H5Tget_size(x.type.get()) == 1 && H5Tget_sign(x.type.get()) == H5T_SGN_NONE) {
    std::vector<std::uint8_t> pixels;
    read_all(x, H5T_NATIVE_UINT8, pixels);
    return Dataset::from_uint8(path, shape, std::move(pixels), std::move(labels), k, std::move(class_names));
  }
  if (x.cls == H5T_FLOAT) {
    std::vector<float> values;
    read_all(x, H5T_NATIVE_FLOAT, values);
    return Dataset::from_float(path, shape, std::move(values), std::move(labels), k, std::move(class_names));
  }
  // Wider integers holding 8-bit pixels (numpy's default int64).
  std::vector<std::int64_t> wide;
  read_all(x, H5T_NATIVE_INT64, wide);
  std::vector<std::uint8_t> pixels(wide.size());
  for (std::size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < 0 || wide[i] > 255) {
      throw FileError(x.where + ": expected 8-bit pixel values in [0, 255] in " + x.describe() + ", found " +
                      std::to_string(wide[i]) + " at element " + std::to_string(i));
    }
    pixels[i] = static_cast<std::uint8_t>(wide[i]);
  }
  return Dataset::from_uint8(path, shape, std::move(pixels), std::move(labels), k, std::move(class_names));
}

namespace {

// A SIGNS-style file read one sample (one hyperslab of x) at a time; the labels are read whole.
class Hdf5Reader final : public SampleReader {
 public:
  Hdf5Reader(Hid file, H5Data x, Shape shape, std::vector<std::int32_t> labels)
      : file_(std::move(file)), x_(std::move(x)), shape_(std::move(shape)), labels_(std::move(labels)) {}
  std::int64_t size() const override { return shape_[0]; }
  std::int32_t label(std::int64_t i) const override { return labels_[static_cast<std::size_t>(i)]; }
  std::string name(std::int64_t i) const override { return x_.where + " sample " + std::to_string(i); }
  Image read(std::int64_t i, DecodeScale scale, void* context) const override {
    Image img{shape_[1], shape_[2], static_cast<int>(shape_[3]), {}};
    img.pixels.resize(static_cast<std::size_t>(shape_[1] * shape_[2] * shape_[3]));
    {
      std::lock_guard lock(mutex_);
      hdf5::Session quiet;
      Hid space(H5Dget_space(x_.id.get()));
      std::vector<hsize_t> start(x_.dims.size(), 0), count(x_.dims.begin(), x_.dims.end());
      start[0] = static_cast<hsize_t>(i);
      count[0] = 1;
      Hid mem(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
      if (!space.valid() || !mem.valid() ||
          H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) <
              0 ||
          H5Dread(x_.id.get(), H5T_NATIVE_UINT8, mem.get(), space.get(), H5P_DEFAULT, img.pixels.data()) <
              0) {
        hdf5::fail(name(i), "cannot read " + x_.describe());
      }
    }
    if (scale) scale(context, img.rows, img.cols);
    return img;
  }

 private:
  Hid file_;
  H5Data x_;
  Shape shape_;
  std::vector<std::int32_t> labels_;
  mutable std::mutex mutex_;
};

}  // namespace

std::unique_ptr<StreamDataset> open_hdf5_stream(const std::string& path, const std::string& split,
                                                const LoadOptions& options, const StreamOptions& stream) {
  hdf5::Session quiet;
  auto [file, xk, yk, ck, x] = open_signs(path, split, options);
  Shape shape = x.dims;
  if (shape.size() == 3) shape.push_back(1);
  if (shape.size() != 4 || std::any_of(shape.begin(), shape.end(), [](auto v) { return v <= 0; }) ||
      (shape[3] != 1 && shape[3] != 3 && shape[3] != 4)) {
    throw FileError(x.where +
                    ": expected images of shape (m, H, W, C) or (m, H, W) with C 1, 3 or 4, found " +
                    x.describe());
  }
  if (x.cls != H5T_INTEGER) {
    throw FileError(x.where + ": expected integer (uint8) pixels to stream, found " + x.describe() +
                    "; load it into memory instead");
  }
  std::vector<std::int32_t> labels = read_labels(open_dataset(file.get(), path, yk), shape[0]);
  std::vector<std::string> class_names;
  if (!ck.empty()) class_names = read_class_names(open_dataset(file.get(), path, ck));
  const int k = resolve_classes(path + ": dataset '" + yk + "'", labels, class_names, options);
  const Shape sample{shape[1], shape[2], shape[3]};
  auto reader = std::make_shared<Hdf5Reader>(std::move(file), std::move(x), shape, std::move(labels));
  return std::make_unique<StreamDataset>(std::move(reader), path, sample, k, std::move(class_names),
                                         Interpolation::nearest, false, stream);
}

}  // namespace reskit
