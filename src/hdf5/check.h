// The validator of HDF5 files: checks of a file's bytes before the HDF5 library reads them,
// where HDF5 1.10 trusts them (internal; used by the Keras .h5 reader and the SIGNS-layout dataset
// loader alike): the walk of the groups (check_hdf5_groups) and the global heap behind
// variable-length strings (check_vlen_attributes, check_vlen_strings). What a dataset's chunks
// decode to is checked through the HDF5 API, in api.h (check_stored_data).
//
// HDF5 1.10.8 follows the addresses a file's group metadata holds without checking them, and
// fuzzing found two ways to crash it: an undefined address (all bits set, HADDR_UNDEF) where a
// group's B-tree, a B-tree child or a local heap should be makes H5F__accum_read copy from a null
// pointer (under H5Gget_info, H5Lexists, H5Dopen2: any look-up in the group), and a local heap
// whose data segment declares 2^64-1 bytes makes H5C_protect pass a negative size to memcpy.
// So every group reachable from the root through hard links is walked here first, as the File
// Format Specification (version 3.0) lays it out: the superblock (versions 0-3), object headers
// (versions 1 and 2, with their continuation blocks), the symbol table of an old-style group
// (version 1 B-tree nodes of type 0, symbol table nodes, its local heap) and the link messages of
// a new-style one; each address HDF5 will follow must be defined and lie, with the structure it
// points to, inside the file. Dense link storage (fractal heap, version 2 B-tree) only has its
// addresses checked.
//
// The messages of every object header walked are checked too, where HDF5 1.10.8 copies by sizes
// the file states without comparing them with the message holding them (both found by fuzzing):
// an attribute's name, datatype, dataspace and data must lie inside its message (H5Aexists read
// past the object header when they did not), and a dataset's data layout must agree with its
// dataspace and datatype: compact data of exactly the declared size inside the layout message
// (H5Dread copied from a null pointer when a compact layout stored none), contiguous data of at
// least the declared size inside the file, chunks of positive sizes whose rank matches the
// dataspace's, chunk indexes inside the file. Datatypes are parsed whole (every class, nested
// ones too) so that none reads past its message. A file shorter than the end-of-file address
// its superblock states is refused as truncated. Undefined storage addresses (data not written
// yet) are left to HDF5, which reads the fill value for them.
//
// Datasets whose data lives in other files (an External Data Files message, a virtual layout) are
// refused here. Not in the walk: the chunks themselves and what they decode to, filters, fill
// values, the global heap behind variable-length data (the checks below), groups and attributes
// kept in dense storage (fractal heaps: only their addresses are checked), and anything about
// what the groups mean.
#pragma once

#include <string>

namespace reskit::hdf5 {

// Throws FileError("<context>: corrupt HDF5 file: <what is wrong, where>") when the group
// structure of the HDF5 file at `path`, or an attribute or dataset layout in it, points outside
// the file or its message or is not what HDF5 expects to find there; returns normally otherwise.
// `path` must exist (callers check it first).
void check_hdf5_groups(const std::string& path, const std::string& context);

// HDF5 1.10 trusts what variable-length strings point at: H5HG_read copies a global heap
// object's stored size into a buffer sized by the string's own length field, so a corrupt size
// on either side overflows the heap (found by fuzzing). The two checks below parse the global
// heap collections (one parser, HDF5's own 8-byte alignment of headers and objects) and compare
// each string's length with the object it names; they throw FileError naming `context`.

// For readers of variable-length string attributes (the Keras reader: model_config), before HDF5
// opens the file: every global heap collection in the file is well formed, and every
// variable-length attribute (found by its attribute message, wherever it is stored) names objects
// of its lengths. `path` must exist and carry the HDF5 signature.
void check_vlen_attributes(const std::string& path, const std::string& context);

// For a reader of a variable-length string dataset (the SIGNS loader's list_classes), before it
// reads: the `count` descriptors stored contiguously at byte `at` of the file (H5Dget_offset) lie
// inside the file and each names an object of a collection of its length (or is null).
void check_vlen_strings(const std::string& path, std::uint64_t at, std::uint64_t count,
                        const std::string& context);

}  // namespace reskit::hdf5
