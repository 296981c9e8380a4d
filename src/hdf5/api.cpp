// Checked wrappers over the HDF5 C API (see api.h).
#include "hdf5/api.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <limits>

#include "hdf5/check.h"
#include "reskit/error.h"

namespace reskit::hdf5 {

namespace {
// Keras's HDF5_OBJECT_HEADER_LIMIT: the largest attribute h5py writes in the default format.
constexpr std::size_t kObjectHeaderLimit = 64512;
// deflate cannot expand data more than about 1032:1; a dataset claiming more is lying.
constexpr std::int64_t kMaxDeflateRatio = 1032;

herr_t innermost_error(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (err && err->desc && *err->desc) *out = err->desc;  // walking downward: the last is innermost
  return 0;
}

std::string hdf5_message() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost_error, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg;
}

std::vector<std::string> split_path(const std::string& path, const std::string& context) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == ".") fail(context, "unsupported object name '" + path + "' (a '.' component)");
    if (!part.empty()) parts.push_back(std::move(part));
    start = end + 1;
  }
  if (parts.empty()) fail(context, "empty object name");
  return parts;
}

Hid link_create_plist() {
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE));
  if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0) {
    throw FileError("HDF5: cannot create a link property list");
  }
  return lcpl;
}

std::int64_t space_points(hid_t space, const std::string& context, const std::string& what) {
  switch (H5Sget_simple_extent_type(space)) {
    case H5S_SCALAR:
      return 1;
    case H5S_NULL:
      return 0;
    case H5S_SIMPLE: {
      int rank = H5Sget_simple_extent_ndims(space);
      if (rank < 0 || rank > kMaxRank) fail(context, what + ": unsupported rank " + std::to_string(rank));
      std::array<hsize_t, kMaxRank> dims{};
      H5Sget_simple_extent_dims(space, dims.data(), nullptr);
      std::int64_t n = 1;
      for (int i = 0; i < rank; ++i) {
        if (dims[i] > (hsize_t{1} << 40)) fail(context, what + ": dimension too large");
        n *= static_cast<std::int64_t>(dims[i]);
        if (n > (std::int64_t{1} << 40)) fail(context, what + ": too many elements");
      }
      return n;
    }
    default:
      fail(context, what + ": unreadable dataspace");
  }
}

// Reads n strings (fixed- or variable-length) from an attribute or, when `dataset`, a dataset.
std::vector<std::string> read_strings(hid_t obj, bool dataset, hid_t ftype, hid_t space, std::size_t n,
                                      std::size_t max_each, std::size_t max_total, const std::string& context,
                                      const std::string& what) {
  std::vector<std::string> out;
  if (n == 0) return out;
  auto read = [&](hid_t mtype, void* buf) {
    if ((dataset ? H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : H5Aread(obj, mtype, buf)) < 0)
      fail(context, what + ": cannot read the strings");
  };
  H5T_cset_t cset = H5Tget_cset(ftype);
  if (cset < 0) cset = H5T_CSET_ASCII;
  Hid mtype(H5Tcopy(H5T_C_S1));
  if (H5Tis_variable_str(ftype) > 0) {
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), cset);
    std::vector<char*> ptrs(n, nullptr);
    read(mtype.get(), ptrs.data());
    std::size_t total = 0;
    bool too_long = false;
    for (char* p : ptrs) {
      std::size_t len = p ? strnlen(p, max_each + 1) : 0;
      total += len;
      if (len > max_each || total > max_total) {
        too_long = true;
        break;
      }
      out.emplace_back(p ? p : "", len);
    }
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mtype.get(), space, H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mtype.get(), space, H5P_DEFAULT, ptrs.data());
#endif
    if (too_long)
      fail(context, what + ": string longer than the limit of " + std::to_string(max_each) + " bytes");
    return out;
  }
  const std::size_t size = H5Tget_size(ftype);
  if (size == 0 || size > max_each || size * n > max_total) {
    fail(context,
         what + ": " + std::to_string(n) + " strings of " + std::to_string(size) + " bytes exceed the limit");
  }
  H5Tset_size(mtype.get(), size);
  H5Tset_strpad(mtype.get(), H5T_STR_NULLPAD);
  H5Tset_cset(mtype.get(), cset);
  std::vector<char> buf(size * n, '\0');
  read(mtype.get(), buf.data());
  for (std::size_t i = 0; i < n; ++i) {
    const char* s = buf.data() + i * size;
    std::size_t len = strnlen(s, size);
    if (H5Tget_strpad(ftype) == H5T_STR_SPACEPAD)
      while (len > 0 && s[len - 1] == ' ') --len;
    out.emplace_back(s, len);
  }
  return out;
}

// Reads one attribute as a list of strings (or an empty numeric array).
std::vector<std::string> read_attr_strings(hid_t obj, const std::string& name, std::size_t max_each,
                                           std::size_t max_total, const std::string& context) {
  const std::string what = "attribute '" + name + "'";
  Hid attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) fail(context, "cannot open " + what);
  Hid ftype(H5Aget_type(attr.get()));
  Hid space(H5Aget_space(attr.get()));
  if (!ftype.valid() || !space.valid()) fail(context, "cannot read " + what);
  const std::int64_t n = space_points(space.get(), context, what);
  if (H5Sget_simple_extent_type(space.get()) == H5S_SIMPLE && H5Sget_simple_extent_ndims(space.get()) > 1) {
    fail(context, what + ": expected a scalar or a 1-D array of strings");
  }
  const H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls != H5T_STRING) {
    if ((cls == H5T_FLOAT || cls == H5T_INTEGER) && n == 0) return {};
    fail(context, what + ": expected strings, got another HDF5 type");
  }
  if (static_cast<std::size_t>(n) > kMaxNameCount) {
    fail(context,
         what + ": " + std::to_string(n) + " strings exceed the limit of " + std::to_string(kMaxNameCount));
  }
  return read_strings(attr.get(), false, ftype.get(), space.get(), static_cast<std::size_t>(n), max_each,
                      max_total, context, what);
}

// The size in bytes of the file holding `obj`, as the file system has it.
std::int64_t file_size_of(hid_t obj, const std::string& where) {
  const ssize_t n = H5Fget_name(obj, nullptr, 0);
  if (n < 0) fail(where, "cannot read the file's name");
  std::string name(static_cast<std::size_t>(n) + 1, '\0');
  H5Fget_name(obj, name.data(), name.size());
  name.resize(static_cast<std::size_t>(n));
  std::error_code ec;
  const auto size = std::filesystem::file_size(name, ec);
  if (ec) throw FileError(where + ": cannot read the size of '" + name + "': " + ec.message());
  return static_cast<std::int64_t>(size);
}

// One dataset as check_stored_data sees it.
struct Stored {
  hid_t id = H5I_INVALID_HID;
  std::string where;  // "file: dataset 'key'"
  Hid type;
  Shape dims;
  H5T_class_t cls = H5T_NO_CLASS;
  std::int64_t numel = 0;

  std::string describe() const { return type_name(type.get()) + " of shape " + shape_str(dims); }
};

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& where) {
  std::int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) {
    throw FileError(where + ": sizes " + std::to_string(a) + " x " + std::to_string(b) +
                    " overflow; the header is corrupt");
  }
  return r;
}

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
void check_chunks(const Stored& d, hid_t dcpl, const hsize_t* dims, const hsize_t* chunk,
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
    if (H5Dget_chunk_info_by_coord(d.id, offset.data(), &mask, &addr, &size) < 0 || addr == HADDR_UNDEF) {
      fail(at, "expected it stored, found none");
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
      if (H5Dread_chunk(d.id, H5P_DEFAULT, offset.data(), &skipped, raw.data()) < 0) {
        fail(at, "cannot read its " + std::to_string(size) + " stored bytes");
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

}  // namespace

// ---------------------------------------------------------------- Hid, Session, errors

Hid& Hid::operator=(Hid&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Hid::reset() {
  if (id_ >= 0 && H5Iis_valid(id_) > 0) H5Idec_ref(id_);
  id_ = H5I_INVALID_HID;
}

hid_t Hid::release() {
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  return id;
}

Session::Session() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Session::~Session() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

void fail(const std::string& context, const std::string& what) {
  std::string detail = hdf5_message();
  throw FileError(context + ": " + what + (detail.empty() ? "" : " (HDF5: " + detail + ")"));
}

// ---------------------------------------------------------------- files

Hid open_file_read(const std::string& path, const std::string& context) {
  check_hdf5_groups(path, context);
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!file.valid()) fail(context, "cannot open as HDF5, the file is corrupt or truncated");
  return file;
}

Hid create_file(const std::string& path) {
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!file.valid()) fail("'" + path + "'", "cannot create the file");
  return file;
}

void close_file(Hid& file, const std::string& path) {
  if (H5Fflush(file.get(), H5F_SCOPE_LOCAL) < 0) fail("'" + path + "'", "cannot flush the file");
  if (H5Fclose(file.release()) < 0) fail("'" + path + "'", "cannot close the file");
}

// ---------------------------------------------------------------- objects

Hid find_object(hid_t loc, const std::string& path, const std::string& context) {
  auto parts = split_path(path, context);
  Hid current(H5Oopen(loc, ".", H5P_DEFAULT));
  if (!current.valid()) fail(context, "cannot open the enclosing group");
  for (const auto& part : parts) {
    if (H5Iget_type(current.get()) != H5I_GROUP && H5Iget_type(current.get()) != H5I_FILE) return Hid();
    htri_t ok = H5Lexists(current.get(), part.c_str(), H5P_DEFAULT);
    if (ok <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return Hid();
    }
    H5L_info_t info;
    if (H5Lget_info(current.get(), part.c_str(), &info, H5P_DEFAULT) < 0)
      fail(context, "cannot read link '" + part + "'");
    if (info.type != H5L_TYPE_HARD) {
      fail(context, "'" + path + "' goes through a soft or external link; only hard links are accepted");
    }
    Hid next(H5Oopen(current.get(), part.c_str(), H5P_DEFAULT));
    if (!next.valid()) fail(context, "cannot open '" + path + "'");
    current = std::move(next);
  }
  return current;
}

std::vector<std::string> link_names(hid_t group, std::size_t max) {
  std::vector<std::string> names;
  H5G_info_t info{};
  if (H5Gget_info(group, &info) < 0) return names;
  for (hsize_t i = 0; i < info.nlinks && i < max; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) continue;
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  H5Eclear2(H5E_DEFAULT);
  return names;
}

bool exists(hid_t loc, const std::string& path) { return find_object(loc, path, "HDF5").valid(); }

Hid open_group(hid_t loc, const std::string& path, const std::string& context) {
  Hid obj = find_object(loc, path, context);
  if (!obj.valid()) fail(context, "missing group '" + path + "'");
  if (H5Iget_type(obj.get()) != H5I_GROUP) fail(context, "'" + path + "' is not a group");
  return obj;
}

Hid open_dataset(hid_t loc, const std::string& path, const std::string& context) {
  Hid obj = find_object(loc, path, context);
  if (!obj.valid()) fail(context, "missing dataset '" + path + "'");
  if (H5Iget_type(obj.get()) != H5I_DATASET) fail(context, "'" + path + "' is not a dataset");
  return obj;
}

Hid create_group(hid_t loc, const std::string& path, const std::string& context) {
  Hid lcpl = link_create_plist();
  Hid g(H5Gcreate2(loc, path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!g.valid()) fail(context, "cannot create group '" + path + "'");
  return g;
}

// ---------------------------------------------------------------- attributes

bool has_attr(hid_t obj, const std::string& name) {
  htri_t r = H5Aexists(obj, name.c_str());
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::optional<std::string> read_string_attr(hid_t obj, const std::string& name, const std::string& context) {
  if (!has_attr(obj, name)) return std::nullopt;
  auto values = read_attr_strings(obj, name, kMaxStringAttrBytes, kMaxStringAttrBytes, context);
  if (values.size() != 1) {
    fail(context, "attribute '" + name + "': expected one string, got " + std::to_string(values.size()));
  }
  return std::move(values[0]);
}

std::optional<std::vector<std::string>> read_string_list_attr(hid_t obj, const std::string& name,
                                                              const std::string& context) {
  if (has_attr(obj, name)) return read_attr_strings(obj, name, kMaxNameBytes, kMaxStringAttrBytes, context);
  std::vector<std::string> all;
  bool any = false;
  for (std::size_t chunk = 0; chunk < kMaxNameCount; ++chunk) {
    const std::string chunk_name = name + std::to_string(chunk);
    if (!has_attr(obj, chunk_name)) break;
    any = true;
    auto part = read_attr_strings(obj, chunk_name, kMaxNameBytes, kMaxStringAttrBytes, context);
    if (all.size() + part.size() > kMaxNameCount) fail(context, "attribute '" + name + "': too many names");
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  if (!any) return std::nullopt;
  return all;
}

void write_vlen_string_attr(hid_t obj, const std::string& name, const std::string& value,
                            const std::string& context) {
  Hid type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Hid space(H5Screate(H5S_SCALAR));
  if (has_attr(obj, name)) H5Adelete(obj, name.c_str());
  Hid attr(H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* ptr = value.c_str();
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), &ptr) < 0) {
    fail(context, "cannot write attribute '" + name + "'");
  }
}

void write_name_list_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                          const std::string& context) {
  if (values.empty()) {
    hsize_t zero = 0;
    Hid space(H5Screate_simple(1, &zero, nullptr));
    Hid attr(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!attr.valid()) fail(context, "cannot write attribute '" + name + "'");
    return;
  }
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  if (width > kObjectHeaderLimit) {
    fail(context, "attribute '" + name + "': a name longer than " + std::to_string(kObjectHeaderLimit) +
                      " bytes cannot be saved");
  }
  // numpy.array_split into the fewest chunks that each fit the object header (Keras).
  const std::size_t n = values.size();
  std::size_t chunks = 1;
  while (((n + chunks - 1) / chunks) * width > kObjectHeaderLimit) ++chunks;
  Hid type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), width);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  std::size_t begin = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t count = n / chunks + (c < n % chunks ? 1 : 0);
    std::vector<char> buf(count * width, '\0');
    for (std::size_t i = 0; i < count; ++i)
      std::memcpy(buf.data() + i * width, values[begin + i].data(), values[begin + i].size());
    begin += count;
    hsize_t dim = count;
    Hid space(H5Screate_simple(1, &dim, nullptr));
    const std::string attr_name = chunks == 1 ? name : name + std::to_string(c);
    Hid attr(H5Acreate2(obj, attr_name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!attr.valid() || H5Awrite(attr.get(), type.get(), buf.data()) < 0) {
      fail(context, "cannot write attribute '" + attr_name + "'");
    }
  }
}

// ---------------------------------------------------------------- datasets

std::string type_name(hid_t type) {
  const std::size_t bits = H5Tget_size(type) * 8;
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

Shape dataset_shape(hid_t dset, const std::string& context) {
  Hid space(H5Dget_space(dset));
  if (!space.valid()) fail(context, "cannot read the dataset's shape");
  switch (H5Sget_simple_extent_type(space.get())) {
    case H5S_SCALAR:
      return {};
    case H5S_SIMPLE: {
      int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0 || rank > kMaxRank) fail(context, "unsupported dataset rank " + std::to_string(rank));
      std::array<hsize_t, kMaxRank> dims{};
      H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
      Shape shape;
      for (int i = 0; i < rank; ++i) {
        if (dims[i] > (hsize_t{1} << 40)) fail(context, "dataset dimension too large");
        shape.push_back(static_cast<std::int64_t>(dims[i]));
      }
      return shape;
    }
    default:
      fail(context, "the dataset has no data (null dataspace)");
  }
}

void check_stored_data(hid_t dset, const std::string& where) {
  Stored d;
  d.id = dset;
  d.where = where;
  d.type = Hid(H5Dget_type(dset));
  Hid space(H5Dget_space(dset));
  if (!d.type.valid() || !space.valid()) fail(where, "cannot read its type or shape");
  d.cls = H5Tget_class(d.type.get());
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > H5S_MAX_RANK) fail(where, "cannot read its shape");
  hsize_t dims[H5S_MAX_RANK] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  d.numel = H5Sget_simple_extent_type(space.get()) == H5S_NULL ? 0 : 1;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] > static_cast<hsize_t>(std::numeric_limits<std::int64_t>::max())) {
      throw FileError(where + ": size " + std::to_string(i) + " is " + std::to_string(dims[i]) +
                      "; the header is corrupt");
    }
    d.dims.push_back(static_cast<std::int64_t>(dims[i]));
    d.numel = checked_mul(d.numel, d.dims.back(), where);
  }
  const std::int64_t file_bytes = file_size_of(dset, where);
  Hid dcpl(H5Dget_create_plist(d.id));
  if (!dcpl.valid()) fail(d.where, "cannot read its storage layout");
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  const std::int64_t needed =
      checked_mul(d.numel, static_cast<std::int64_t>(H5Tget_size(d.type.get())), d.where);
  const auto stored = static_cast<std::int64_t>(H5Dget_storage_size(d.id));
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
    const haddr_t offset = H5Dget_offset(d.id);
    H5Eclear2(H5E_DEFAULT);
    if (offset == HADDR_UNDEF) throw FileError(d.where + ": " + declared + ", the file holds none of it");
    if (fixed_size && (offset > static_cast<haddr_t>(file_bytes) ||
                       static_cast<haddr_t>(needed) > static_cast<haddr_t>(file_bytes) - offset)) {
      throw FileError(d.where + ": " + declared + " at offset " + std::to_string(offset) +
                      ", past the end of the " + std::to_string(file_bytes) + "-byte file (truncated)");
    }
  } else if (layout == H5D_CHUNKED && needed > 0) {
    hsize_t chunk[H5S_MAX_RANK] = {};
    if (H5Pget_chunk(dcpl.get(), rank, chunk) != rank) fail(d.where, "cannot read its chunk shape");
    std::int64_t expected_chunks = 1;
    for (int i = 0; i < rank; ++i) {
      if (chunk[i] == 0)
        throw FileError(d.where + ": chunk size " + std::to_string(i) + " is 0; the header is corrupt");
      expected_chunks = checked_mul(expected_chunks,
                                    static_cast<std::int64_t>((dims[i] + chunk[i] - 1) / chunk[i]), d.where);
    }
    hsize_t chunks = 0;
    if (H5Dget_num_chunks(d.id, space.get(), &chunks) < 0) {
      fail(d.where, "cannot count its chunks");
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
}

void read_dataset_into(hid_t dset, Tensor& dest, const std::string& context) {
  Shape shape = dataset_shape(dset, context);
  if (shape != dest.shape()) {
    fail(context,
         "shape " + shape_str(shape) + " in the file does not match the expected " + shape_str(dest.shape()));
  }
  Hid ftype(H5Dget_type(dset));
  const H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail(context, "expected a numeric dataset");
  check_stored_data(dset, context);
  if (dest.numel() == 0) return;
  hid_t mtype = dest.dtype() == DType::float32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
  if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dest.raw_data()) < 0) {
    fail(context, "cannot read the dataset");
  }
}

std::int64_t read_scalar_int(hid_t dset, const std::string& context) {
  Shape shape = dataset_shape(dset, context);
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  if (n != 1) fail(context, "expected a scalar, got shape " + shape_str(shape));
  Hid ftype(H5Dget_type(dset));
  const H5T_class_t cls = H5Tget_class(ftype.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail(context, "expected a numeric scalar");
  check_stored_data(dset, context);
  double value = 0;
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) {
    fail(context, "cannot read the scalar");
  }
  if (!(value >= 0.0 && value < 9.0e18) || value != static_cast<double>(static_cast<std::int64_t>(value))) {
    fail(context, "expected a non-negative integer, got " + std::to_string(value));
  }
  return static_cast<std::int64_t>(value);
}

std::vector<std::string> read_string_dataset(hid_t dset, std::size_t max_each, std::size_t max_total,
                                             const std::string& context) {
  Hid ftype(H5Dget_type(dset));
  Hid space(H5Dget_space(dset));
  if (!ftype.valid() || !space.valid()) fail(context, "cannot read the dataset's type or shape");
  const std::string what = type_name(ftype.get()) + " data";
  if (H5Tget_class(ftype.get()) != H5T_STRING) fail(context, what + ": expected strings");
  const std::int64_t n = space_points(space.get(), context, what);
  if (static_cast<std::size_t>(n) > kMaxNameCount) {
    fail(context,
         what + ": " + std::to_string(n) + " strings exceed the limit of " + std::to_string(kMaxNameCount));
  }
  check_stored_data(dset, context);
  return read_strings(dset, true, ftype.get(), space.get(), static_cast<std::size_t>(n), max_each, max_total,
                      context, what);
}

void write_dataset(hid_t loc, const std::string& path, const Tensor& value, const std::string& context) {
  std::vector<hsize_t> dims(value.shape().begin(), value.shape().end());
  Hid space(dims.empty() ? H5Screate(H5S_SCALAR)
                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  const bool f32 = value.dtype() == DType::float32;
  Hid lcpl = link_create_plist();
  Hid dset(H5Dcreate2(loc, path.c_str(), f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space.get(), lcpl.get(),
                      H5P_DEFAULT, H5P_DEFAULT));
  if (!dset.valid()) fail(context, "cannot create dataset '" + path + "'");
  if (value.numel() > 0 && H5Dwrite(dset.get(), f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                                    H5P_DEFAULT, value.raw_data()) < 0) {
    fail(context, "cannot write dataset '" + path + "'");
  }
}

void write_scalar_int(hid_t loc, const std::string& path, std::int64_t value, const std::string& context) {
  Hid space(H5Screate(H5S_SCALAR));
  Hid lcpl = link_create_plist();
  Hid dset(H5Dcreate2(loc, path.c_str(), H5T_STD_I64LE, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!dset.valid() || H5Dwrite(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) {
    fail(context, "cannot write dataset '" + path + "'");
  }
}

}  // namespace reskit::hdf5
