// SIGNS-style HDF5 datasets (the notebook's train_signs.h5 / test_signs.h5), read with the HDF5
// C API.
//
// Layout: <split>_set_x (m, H, W, C) uint8 or float pixels, <split>_set_y (m,) or (1, m) integer
// labels, optional list_classes (integers or strings). HDF5's own error printing is silenced while
// reading; its innermost message is appended to ours. Before any read, a dataset's declared size
// is checked against what the file stores for it (contiguous bytes within the file, every chunk
// present), and datasets whose data lives in other files (external storage, virtual datasets)
// are refused, so a hostile header can neither make us allocate gigabytes nor read other files.
// Where HDF5 1.10 itself trusts the file (the decoded size of a compressed chunk, the global heap
// behind variable-length strings), those bytes are checked here before HDF5 reads them: fuzzing
// with AddressSanitizer found out-of-bounds copies inside H5Dread on both.
#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <utility>

#include "data/loader_util.h"
#include "hdf5/check.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;

namespace {

// An HDF5 identifier closed when it goes out of scope.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// HDF5's automatic error printing off while reading, restored afterwards.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The most specific message on HDF5's error stack (then cleared), as " (HDF5: …)".
std::string hdf5_error() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* data) -> herr_t {
        if (n == 0 && err && err->desc) *static_cast<std::string*>(data) = err->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? std::string() : " (HDF5: " + msg + ")";
}

std::string type_name(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return H5Tis_variable_str(type) > 0 ? "variable-length string"
                                          : "string of " + std::to_string(bits / 8) + " bytes";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_TIME:
      return "time";
    default:
      return "unknown type";
  }
}

// One opened dataset with its type and shape.
struct H5Data {
  std::string path;
  std::string where;  // "file: dataset 'key'"
  Hid id;
  Hid type;
  Shape dims;
  H5T_class_t cls = H5T_NO_CLASS;
  std::int64_t numel = 0;

  std::string describe() const { return type_name(type.get()) + " of shape " + shape_str(dims); }
};

// zlib-format data inflated to at most `limit` bytes (growing as it comes, so a lying size costs
// nothing); throws FileError naming `where` on corrupt data.
std::vector<std::uint8_t> inflate_limited(const std::string& where, const std::vector<std::uint8_t>& in,
                                          std::size_t limit) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw FileError(where + ": cannot start zlib");
  std::vector<std::uint8_t> out;
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK && out.size() < limit) {
    const std::size_t have = out.size();
    out.resize(std::min(limit, std::max<std::size_t>(2 * have, 4096)));
    z.next_out = out.data() + have;
    z.avail_out = static_cast<uInt>(out.size() - have);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(out.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // the stream ends early
  }
  inflateEnd(&z);
  if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
    throw FileError(where + ": corrupt gzip (deflate) data" +
                    (z.msg ? std::string(": ") + z.msg : std::string()));
  }
  return out;
}

// HDF5 1.10 does not check that a chunk decodes to the chunk's size: a corrupt chunk makes
// H5Dread copy past its buffer. So every chunk is looked at here first: inside the file, and of
// exactly the chunk's size once its filters (deflate, shuffle, fletcher32; others refused) are
// undone, as HDF5 will undo them.
void check_chunks(const H5Data& d, hid_t dcpl, const hsize_t* dims, const hsize_t* chunk,
                  std::int64_t file_bytes) {
  const int rank = static_cast<int>(d.dims.size());
  std::int64_t chunk_bytes = static_cast<std::int64_t>(H5Tget_size(d.type.get()));
  for (int i = 0; i < rank; ++i)
    chunk_bytes = checked_mul(chunk_bytes, static_cast<std::int64_t>(chunk[i]), d.where);
  const int nfilters = H5Pget_nfilters(dcpl);
  std::vector<H5Z_filter_t> filters;
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    char name[64] = {};
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nvalues, nullptr, sizeof name, name, &config);
    if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32) {
      throw FileError(d.where +
                      ": expected chunks filtered by gzip (deflate), shuffle or fletcher32, found filter " +
                      std::to_string(id) + (name[0] ? std::string(" (") + name + ")" : std::string()));
    }
    filters.push_back(id);
  }
  unsigned opts = 0;
  H5Pget_chunk_opts(dcpl, &opts);
  std::vector<hsize_t> offset(static_cast<std::size_t>(rank), 0);
  std::vector<std::uint8_t> raw;
  while (true) {
    std::string at = "(";
    bool edge = false;
    for (int i = 0; i < rank; ++i) {
      at += (i ? ", " : "") + std::to_string(offset[i]);
      edge = edge || offset[i] + chunk[i] > dims[i];
    }
    at = d.where + ": chunk at " + at + (rank == 1 ? ",)" : ")");
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(d.id.get(), offset.data(), &mask, &addr, &size) < 0 ||
        addr == HADDR_UNDEF) {
      throw FileError(at + ": expected it stored, found none" + hdf5_error());
    }
    if (addr > static_cast<haddr_t>(file_bytes) || size > static_cast<hsize_t>(file_bytes) - addr) {
      throw FileError(at + ": stored at " + std::to_string(addr) + " with " + std::to_string(size) +
                      " bytes, past the end of the " + std::to_string(file_bytes) + "-byte file (truncated)");
    }
    const bool filtered = !filters.empty() && !(edge && (opts & H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS));
    std::int64_t decoded = static_cast<std::int64_t>(size);
    if (filtered) {
      raw.resize(static_cast<std::size_t>(size));
      std::uint32_t skipped = 0;
      if (H5Dread_chunk(d.id.get(), H5P_DEFAULT, offset.data(), &skipped, raw.data()) < 0) {
        throw FileError(at + ": cannot read its " + std::to_string(size) + " stored bytes" + hdf5_error());
      }
      for (int f = static_cast<int>(filters.size()) - 1; f >= 0; --f) {
        if (skipped & (1u << f)) continue;
        if (filters[f] == H5Z_FILTER_FLETCHER32) {
          if (raw.size() < 4)
            throw FileError(at + ": expected a fletcher32 checksum, found " + std::to_string(raw.size()) +
                            " bytes");
          raw.resize(raw.size() - 4);
        } else if (filters[f] == H5Z_FILTER_DEFLATE) {
          raw = inflate_limited(at, raw, static_cast<std::size_t>(chunk_bytes) + 1);
        }
      }
      decoded = static_cast<std::int64_t>(raw.size());
    }
    if (decoded != chunk_bytes) {
      throw FileError(at + ": expected " + std::to_string(chunk_bytes) + " bytes once decoded, found " +
                      (decoded > chunk_bytes ? "more" : std::to_string(decoded)));
    }
    int i = rank - 1;
    for (; i >= 0; --i) {
      offset[i] += chunk[i];
      if (offset[i] < dims[i]) break;
      offset[i] = 0;
    }
    if (i < 0) break;
  }
}

H5Data open_dataset(hid_t file, const std::string& path, const std::string& key, std::int64_t file_bytes) {
  H5Data d;
  d.path = path;
  d.where = path + ": dataset '" + key + "'";
  if (H5Lexists(file, key.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw FileError(path + ": expected a dataset '" + key + "', found no such key");
  }
  d.id = Hid(H5Dopen2(file, key.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.id.valid())
    throw FileError(d.where + ": expected a dataset, found another kind of object" + hdf5_error());
  d.type = Hid(H5Dget_type(d.id.get()), H5Tclose);
  Hid space(H5Dget_space(d.id.get()), H5Sclose);
  if (!d.type.valid() || !space.valid())
    throw FileError(d.where + ": cannot read its type or shape" + hdf5_error());
  d.cls = H5Tget_class(d.type.get());
  const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_NULL) throw FileError(d.where + ": expected data, found an empty (null) dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > H5S_MAX_RANK) throw FileError(d.where + ": cannot read its shape" + hdf5_error());
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

  // What the file declares against what it stores.
  Hid dcpl(H5Dget_create_plist(d.id.get()), H5Pclose);
  if (!dcpl.valid()) throw FileError(d.where + ": cannot read its storage layout" + hdf5_error());
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  const std::int64_t needed =
      checked_mul(d.numel, static_cast<std::int64_t>(H5Tget_size(d.type.get())), d.where);
  const auto stored = static_cast<std::int64_t>(H5Dget_storage_size(d.id.get()));
  const std::string declared = "declares " + d.describe() + " = " + std::to_string(needed) + " bytes";
  const bool fixed_size = H5Tis_variable_str(d.type.get()) <= 0 && d.cls != H5T_VLEN;
  if (layout == H5D_VIRTUAL)
    throw FileError(d.where + ": expected data stored in this file, found a virtual dataset");
  if (H5Pget_external_count(dcpl.get()) > 0) {
    throw FileError(d.where + ": expected data stored in this file, found external storage");
  }
  if (layout == H5D_CONTIGUOUS && needed > 0) {
    if (fixed_size && stored < needed) {
      throw FileError(d.where + ": " + declared + ", the file holds " + std::to_string(stored));
    }
    const haddr_t offset = H5Dget_offset(d.id.get());
    H5Eclear2(H5E_DEFAULT);
    if (offset == HADDR_UNDEF) throw FileError(d.where + ": " + declared + ", the file holds none of it");
    if (fixed_size && (offset > static_cast<haddr_t>(file_bytes) ||
                       static_cast<haddr_t>(needed) > static_cast<haddr_t>(file_bytes) - offset)) {
      throw FileError(d.where + ": " + declared + " at offset " + std::to_string(offset) +
                      ", past the end of the " + std::to_string(file_bytes) + "-byte file (truncated)");
    }
  } else if (layout == H5D_CHUNKED && needed > 0) {
    hsize_t chunk[H5S_MAX_RANK] = {};
    if (H5Pget_chunk(dcpl.get(), rank, chunk) != rank)
      throw FileError(d.where + ": cannot read its chunk shape" + hdf5_error());
    std::int64_t expected_chunks = 1;
    for (int i = 0; i < rank; ++i) {
      if (chunk[i] == 0)
        throw FileError(d.where + ": chunk size " + std::to_string(i) + " is 0; the header is corrupt");
      expected_chunks = checked_mul(expected_chunks,
                                    static_cast<std::int64_t>((dims[i] + chunk[i] - 1) / chunk[i]), d.where);
    }
    hsize_t chunks = 0;
    if (H5Dget_num_chunks(d.id.get(), space.get(), &chunks) < 0) {
      throw FileError(d.where + ": cannot count its chunks" + hdf5_error());
    }
    if (static_cast<std::int64_t>(chunks) < expected_chunks) {
      throw FileError(d.where + ": " + declared + " in " + std::to_string(expected_chunks) +
                      " chunks, the file holds " + std::to_string(chunks) + " of them (" +
                      std::to_string(stored) + " bytes)");
    }
    if (fixed_size && needed / kMaxDeflateRatio > stored) {
      throw FileError(d.where + ": " + declared + ", more than its " + std::to_string(stored) +
                      " stored bytes can expand to");
    }
    if (fixed_size) check_chunks(d, dcpl.get(), dims, chunk, file_bytes);
  }
  return d;
}

// Any dataset read whole into `out` as `mem_type` (elements of sizeof(T)).
template <class T>
void read_all(const H5Data& d, hid_t mem_type, std::vector<T>& out) {
  out.resize(static_cast<std::size_t>(d.numel));
  if (d.numel == 0) return;
  if (H5Dread(d.id.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    throw FileError(d.where + ": cannot read " + d.describe() + hdf5_error());
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

// HDF5 1.10 trusts the global heap that variable-length strings live in: a corrupt object
// size or index there makes H5Dread copy out of bounds. So before HDF5 reads them, the stored
// references and the heap collections they point into are checked here, from the file's bytes:
// every string is an object of its stated length inside a well-formed collection inside the file.
// (File format spec, "Global Heap" and "Variable-length" datatype; the walk mirrors H5HG's.)
void check_vlen_strings(const H5Data& d, std::int64_t file_bytes) {
  Hid file(H5Iget_file_id(d.id.get()), H5Fclose);
  Hid fcpl(file.valid() ? H5Fget_create_plist(file.get()) : H5I_INVALID_HID, H5Pclose);
  Hid dcpl(H5Dget_create_plist(d.id.get()), H5Pclose);
  size_t sizeof_addr = 0, sizeof_size = 0;
  hsize_t base = 0;
  if (!fcpl.valid() || !dcpl.valid() || H5Pget_sizes(fcpl.get(), &sizeof_addr, &sizeof_size) < 0 ||
      H5Pget_userblock(fcpl.get(), &base) < 0) {
    throw FileError(d.where + ": cannot read the file's address sizes" + hdf5_error());
  }
  if ((sizeof_addr != 4 && sizeof_addr != 8) || (sizeof_size != 4 && sizeof_size != 8)) {
    throw FileError(d.where + ": expected 4- or 8-byte file addresses and lengths, found " +
                    std::to_string(sizeof_addr) + " and " + std::to_string(sizeof_size));
  }
  if (H5Pget_layout(dcpl.get()) != H5D_CONTIGUOUS) {
    throw FileError(d.where +
                    ": expected variable-length strings in contiguous storage (h5py's default) or "
                    "fixed-length strings, found another layout");
  }
  const haddr_t offset = H5Dget_offset(d.id.get());
  H5Eclear2(H5E_DEFAULT);
  std::ifstream in(d.path, std::ios::binary);
  const auto fsize = static_cast<std::uint64_t>(file_bytes);
  auto read_at = [&](std::uint64_t at, std::uint64_t n, std::vector<std::uint8_t>& out) {
    if (at > fsize || n > fsize - at) {
      throw FileError(d.where + ": variable-length strings refer to bytes " + std::to_string(at) + ".." +
                      std::to_string(at + n) + ", past the end of the " + std::to_string(fsize) +
                      "-byte file");
    }
    out.resize(static_cast<std::size_t>(n));
    in.seekg(static_cast<std::streamoff>(at));
    in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    if (!in) throw FileError(d.where + ": cannot read its variable-length strings from the file");
  };
  auto le = [](const std::uint8_t* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  };
  if (d.numel == 0) return;
  if (offset == HADDR_UNDEF)
    throw FileError(d.where + ": declares " + d.describe() + ", the file holds none of it");
  const std::size_t ref_size = 4 + sizeof_addr + 4;
  std::vector<std::uint8_t> refs;
  read_at(offset, static_cast<std::uint64_t>(d.numel) * ref_size, refs);

  // Each collection once: object index -> (start of its data, its size).
  struct Collection {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> objects;  // indexed by heap object index
  };
  std::vector<std::pair<std::uint64_t, Collection>> seen;
  const std::uint64_t header = 8 + sizeof_size, obj_header = 8 + sizeof_size;
  auto collection = [&](std::uint64_t addr) -> const Collection& {
    for (const auto& [a, c] : seen)
      if (a == addr) return c;
    std::vector<std::uint8_t> head;
    read_at(base + addr, header, head);
    if (!std::equal(head.begin(), head.begin() + 4, "GCOL") || head[4] != 1) {
      throw FileError(d.where + ": expected a global heap collection (GCOL, version 1) at address " +
                      std::to_string(addr) + ", found other bytes");
    }
    const std::uint64_t size = le(head.data() + 8, sizeof_size);
    if (size < header) {
      throw FileError(d.where + ": global heap collection at " + std::to_string(addr) + " declares " +
                      std::to_string(size) + " bytes, less than its header");
    }
    std::vector<std::uint8_t> bytes;
    read_at(base + addr, size, bytes);
    Collection c;
    std::uint64_t p = header;
    while (p < size && size - p >= obj_header) {
      const std::uint64_t idx = le(bytes.data() + p, 2);
      const std::uint64_t len = le(bytes.data() + p + 8, sizeof_size);
      // object 0 is the free space: its size covers its header
      const std::uint64_t need = idx == 0     ? len
                                 : len > size ? size
                                              : obj_header + ((len + 7) & ~std::uint64_t{7});
      if (need < obj_header || need > size - p) {
        throw FileError(d.where + ": global heap collection at " + std::to_string(addr) +
                        " has an object of " + std::to_string(len) + " bytes at offset " + std::to_string(p) +
                        ", past its end of " + std::to_string(size) + " bytes");
      }
      if (idx >= c.objects.size()) c.objects.resize(static_cast<std::size_t>(idx) + 1, {0, 0});
      c.objects[static_cast<std::size_t>(idx)] = {p + obj_header, idx > 0 ? len : 0};
      p += need;
    }
    seen.emplace_back(addr, std::move(c));
    return seen.back().second;
  };
  for (std::int64_t i = 0; i < d.numel; ++i) {
    const std::uint8_t* r = refs.data() + i * ref_size;
    const std::uint64_t len = le(r, 4), addr = le(r + 4, sizeof_addr), idx = le(r + 4 + sizeof_addr, 4);
    if (addr == 0) continue;  // a null string
    const Collection& c = collection(addr);
    if (idx == 0 || idx >= c.objects.size() || c.objects[static_cast<std::size_t>(idx)].first == 0 ||
        c.objects[static_cast<std::size_t>(idx)].second != len) {
      throw FileError(d.where + ": string " + std::to_string(i) + " of " + std::to_string(len) +
                      " bytes refers to global heap object " + std::to_string(idx) + " at " +
                      std::to_string(addr) + ", which does not hold it");
    }
  }
}

std::vector<std::string> read_class_names(const H5Data& d, std::int64_t file_bytes) {
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
    const H5T_cset_t cset = H5Tget_cset(d.type.get());
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_cset(mem.get(), cset);
    if (H5Tis_variable_str(d.type.get()) > 0) {
      H5Tset_size(mem.get(), H5T_VARIABLE);
      check_vlen_strings(d, file_bytes);
      std::vector<char*> v;
      read_all(d, mem.get(), v);
      for (char* s : v) names.emplace_back(s ? s : "");
      Hid space(H5Dget_space(d.id.get()), H5Sclose);
#if H5_VERSION_GE(1, 12, 0)
      H5Treclaim(mem.get(), space.get(), H5P_DEFAULT, v.data());
#else
      H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, v.data());
#endif
    } else {
      const std::size_t len = H5Tget_size(d.type.get());
      H5Tset_size(mem.get(), len);
      H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
      std::vector<char> buf(static_cast<std::size_t>(k) * len);
      if (k > 0 && H5Dread(d.id.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
        throw FileError(d.where + ": cannot read " + d.describe() + hdf5_error());
      }
      for (std::int64_t i = 0; i < k; ++i) {
        std::string s(buf.data() + i * len, len);
        s = s.substr(0, s.find('\0'));
        s.erase(s.find_last_not_of(' ') + 1);
        names.push_back(std::move(s));
      }
    }
  } else {
    throw FileError(d.where + ": expected class names as integers or strings, found " + d.describe());
  }
  return names;
}

std::vector<std::string> root_names(hid_t file) {
  std::vector<std::string> names;
  H5G_info_t info{};
  if (H5Gget_info(file, &info) < 0) return names;
  for (hsize_t i = 0; i < info.nlinks && i < 4096; ++i) {
    const ssize_t len = H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) continue;
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(file, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  H5Eclear2(H5E_DEFAULT);
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

}  // namespace

Dataset load_hdf5(const std::string& path, const std::string& split, const LoadOptions& options) {
  const std::int64_t file_bytes = file_size(path, "an HDF5 file");
  QuietHdf5 quiet;
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw FileError(path + ": expected an HDF5 file, found no HDF5 signature");
  }
  hdf5::check_hdf5_groups(path, path);  // before HDF5 follows the groups' addresses (hdf5_check.h)
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid())
    throw FileError(path + ": cannot open as HDF5, the file is corrupt or truncated" + hdf5_error());
  const std::vector<std::string> names = root_names(file.get());
  const auto [xk, yk] = find_keys(path, names, split, options);
  std::string ck = options.classes_key;
  if (ck.empty() && std::find(names.begin(), names.end(), "list_classes") != names.end()) ck = "list_classes";

  H5Data x = open_dataset(file.get(), path, xk, file_bytes);
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
  std::vector<std::int32_t> labels = read_labels(open_dataset(file.get(), path, yk, file_bytes), m);
  std::vector<std::string> class_names;
  if (!ck.empty()) class_names = read_class_names(open_dataset(file.get(), path, ck, file_bytes), file_bytes);
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

}  // namespace reskit
