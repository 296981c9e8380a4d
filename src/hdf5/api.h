// Checked wrappers over the HDF5 C API (internal), shared by the Keras .h5 reader and writer
// (src/io/h5_model.cpp) and the SIGNS-layout dataset loader (src/data/hdf5.cpp): one RAII handle
// for every kind of HDF5 identifier, one quiet-errors session, one error helper, and the reads and
// writes of attributes (strings, fixed- and variable-length) and datasets.
//
// Everything read from a file is untrusted: attribute and dataset sizes, ranks and string lengths
// are checked against explicit limits before anything is allocated, objects are opened one link
// at a time through hard links only (no soft or external links), and datasets stored outside the
// file (external or virtual layouts) are refused. Failures throw FileError naming the file and
// the object, with HDF5's own description appended. HDF5's automatic error printing is silenced
// while a Session is alive. The checks of a file's bytes before HDF5 reads them are in check.h.
//
// Not here: anything about Keras (names, layouts; see src/io/) or about datasets' meaning (see
// src/data/hdf5.cpp).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reskit/tensor.h"

namespace reskit::hdf5 {

// Limits on what a file may make us allocate.
inline constexpr std::size_t kMaxStringAttrBytes = std::size_t{64} << 20;  // model_config
inline constexpr std::size_t kMaxNameCount = std::size_t{1} << 20;         // layer or weight names
inline constexpr std::size_t kMaxNameBytes = std::size_t{1} << 16;         // one name
inline constexpr int kMaxRank = 8;

// Owns an HDF5 identifier (file, group, dataset, attribute, type, space or property list).
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& other) noexcept;
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  hid_t release();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Silences HDF5's automatic error printing on this thread for its lifetime (Debian's HDF5 is
// built thread-safe, so the setting is per thread). Create one before any Hid it should outlive.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The one error helper: throws FileError(context + ": " + what), with HDF5's innermost message
// appended as " (HDF5: ...)" when its error stack holds one (the stack is then cleared). `context`
// names the file and the object ("'m.h5': layer 'conv1'"), `what` what was expected or failed.
[[noreturn]] void fail(const std::string& context, const std::string& what);

// ---------------------------------------------------------------- files

// Opens an existing HDF5 file read-only, after check.h's walk of its groups (check_hdf5_groups);
// callers check first that it exists and carries the HDF5 signature (each with its own words),
// and run check.h's other checks for what they will read.
Hid open_file_read(const std::string& path, const std::string& context);
// Creates (truncating) a file for writing.
Hid create_file(const std::string& path);
// Flushes and closes a file opened for writing; throws on failure.
void close_file(Hid& file, const std::string& path);

// ---------------------------------------------------------------- objects

// The object at `path` (relative to loc, "/"-separated) reached through hard links only; an
// invalid Hid when a link is missing. Throws FileError for a soft or external link on the way.
Hid find_object(hid_t loc, const std::string& path, const std::string& context);
// The names of a group's links in name order, at most `max` of them.
std::vector<std::string> link_names(hid_t group, std::size_t max);
// Whether `path` (relative to loc, "/"-separated) names an object reached through hard links.
bool exists(hid_t loc, const std::string& path);
// Opens a group / dataset at `path` (hard links only); throws FileError if absent or of another kind.
Hid open_group(hid_t loc, const std::string& path, const std::string& context);
Hid open_dataset(hid_t loc, const std::string& path, const std::string& context);
// Creates a group (and missing intermediate groups).
Hid create_group(hid_t loc, const std::string& path, const std::string& context);

// ---------------------------------------------------------------- attributes

bool has_attr(hid_t obj, const std::string& name);
// A scalar or single-element string attribute (fixed- or variable-length); nullopt if absent.
std::optional<std::string> read_string_attr(hid_t obj, const std::string& name, const std::string& context);
// A list of strings: a string array (fixed- or variable-length), a scalar string, or an empty
// numeric array (Keras writes np.array([]) for no names); also gathers Keras's chunked form
// name0, name1, ... ; nullopt if absent.
std::optional<std::vector<std::string>> read_string_list_attr(hid_t obj, const std::string& name,
                                                              const std::string& context);

// A scalar variable-length UTF-8 string (what h5py writes for str).
void write_vlen_string_attr(hid_t obj, const std::string& name, const std::string& value,
                            const std::string& context);
// A list of names the way Keras's save_attributes_to_hdf5_group writes it: a fixed-length
// string array, split into name0, name1, ... when it exceeds the 64 KiB object-header limit;
// an empty list is an empty float64 array of shape (0,).
void write_name_list_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                          const std::string& context);

// ---------------------------------------------------------------- datasets

// A datatype for messages: "uint8", "float32", "variable-length string", "string of 8 bytes", ...
std::string type_name(hid_t type);

// Shape of a dataset (scalar: empty shape); checks rank <= kMaxRank.
Shape dataset_shape(hid_t dset, const std::string& context);
// Checks, before a read, that a dataset's data lies in this file as its header declares: not in
// other files (external storage, a virtual dataset); contiguous data of the declared size inside
// the file; every chunk stored, inside the file, and of exactly the chunk's size once its filters
// (deflate, shuffle, fletcher32; others refused) are undone, as HDF5 will undo them: HDF5 1.10
// does not compare them and H5Dread copied past its buffer (found by fuzzing). Throws FileError
// naming `where` (the file and the dataset). The readers below call it.
void check_stored_data(hid_t dset, const std::string& where);
// Reads a floating-point (or integer) dataset whose shape equals dest's shape into dest,
// converting to dest's dtype. Throws FileError naming both shapes when they differ.
void read_dataset_into(hid_t dset, Tensor& dest, const std::string& context);
// Reads a scalar (or single-element) numeric dataset as int64.
std::int64_t read_scalar_int(hid_t dset, const std::string& context);

// The strings of a string dataset (fixed- or variable-length, any shape, read whole; fixed-length
// ones end at their first NUL, space-padded ones lose their trailing spaces), each at most
// max_each bytes and all together at most max_total. Variable-length ones only after check.h's
// check_vlen_strings has passed.
std::vector<std::string> read_string_dataset(hid_t dset, std::size_t max_each, std::size_t max_total,
                                             const std::string& context);

// Writes a tensor as a little-endian float32/float64 dataset at path (intermediate groups created).
void write_dataset(hid_t loc, const std::string& path, const Tensor& value, const std::string& context);
// Writes a scalar int64 dataset.
void write_scalar_int(hid_t loc, const std::string& path, std::int64_t value, const std::string& context);

}  // namespace reskit::hdf5
