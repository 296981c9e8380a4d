// A structural check of an HDF5 file's groups, from its bytes, before the HDF5 library walks
// them (internal; used by the Keras .h5 reader and the SIGNS-layout dataset loader).
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
// Datasets whose data lives in other files (an External Data Files message) are refused here.
// Not here: datasets' storage and attributes (the readers check those through HDF5's own API),
// and anything about what the groups mean.
#pragma once

#include <string>

namespace reskit::io {

// Throws FileError("<context>: corrupt HDF5 file: <what is wrong, where>") when the group
// structure of the HDF5 file at `path` points outside the file or is not what HDF5 expects to
// find there; returns normally otherwise. `path` must exist (callers check it first).
void check_hdf5_groups(const std::string& path, const std::string& context);

}  // namespace reskit::io
