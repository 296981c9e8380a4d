// The structural check of an HDF5 file's groups (see hdf5_check.h). Layouts from the HDF5 File
// Format Specification 3.0: "Superblock", "Object Header Prefix" (versions 1 and 2), "Symbol
// Table Message", "Link Info Message", "Link Message", "Object Header Continuation Message",
// "Version 1 B-trees", "Group Symbol Table Nodes", "Symbol Table Entry", "Local Heaps".
#include "io/hdf5_check.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "reskit/error.h"

namespace reskit::io {

namespace {

constexpr std::uint64_t kUndefined = ~std::uint64_t{0};
constexpr std::array<unsigned char, 8> kSignature{0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
// Objects (groups and what they hold) and B-tree nodes looked at, at most: far above any model's
// (ResNet-152 has a few thousand), and a bound on the work a file whose links loop can cause.
constexpr std::size_t kMaxVisits = std::size_t{1} << 20;
// Groups within groups, at most (Keras nests three deep).
constexpr int kMaxDepth = 256;

// Object header message types.
constexpr unsigned kMsgLinkInfo = 0x02, kMsgLink = 0x06, kMsgExternalFiles = 0x07, kMsgContinuation = 0x10,
                   kMsgSymbolTable = 0x11;

std::string str(std::uint64_t v) { return std::to_string(v); }

class Walker {
 public:
  Walker(const std::string& path, const std::string& context)
      : in_(path, std::ios::binary), context_(context) {
    if (!in_) throw FileError(context + ": cannot open for reading");
    in_.seekg(0, std::ios::end);
    file_size_ = static_cast<std::uint64_t>(in_.tellg());
  }

  void run() {
    find_superblock();
    std::vector<std::uint8_t> sb = bytes(base_, std::min<std::uint64_t>(file_size_ - base_, 256));
    if (sb.size() < 12) corrupt("the superblock at byte " + str(base_) + " is truncated");
    const int version = sb[8];
    std::size_t p = 0;
    std::uint64_t root = kUndefined;
    if (version == 0 || version == 1) {
      if (sb.size() < 24) corrupt("the superblock is truncated");
      set_sizes(sb[13], sb[14]);
      leaf_k_ = le(&sb[16], 2);
      internal_k_ = le(&sb[18], 2);
      if (leaf_k_ == 0 || internal_k_ == 0) {
        corrupt("the superblock declares symbol table node ranks " + str(leaf_k_) + " and " +
                str(internal_k_) + "; expected positive ranks");
      }
      p = version == 1 ? 28 : 24;
      // base address, free-space info, end of file, driver info; then the root's symbol table entry
      const std::size_t entry = p + 4 * offsets_;
      if (entry + 2 * offsets_ + 8 + 16 > sb.size()) corrupt("the superblock is truncated");
      root = addr(&sb[entry + offsets_]);
      const std::uint64_t cache_type = le(&sb[entry + 2 * offsets_], 4);
      if (cache_type == 1) {  // the root's B-tree and local heap, cached in the superblock
        const std::size_t scratch = entry + 2 * offsets_ + 8;
        symbol_table(addr(&sb[scratch]), addr(&sb[scratch + offsets_]), "the root group", 0);
      }
    } else if (version == 2 || version == 3) {
      set_sizes(sb[9], sb[10]);
      p = 12;
      if (p + 4 * offsets_ > sb.size()) corrupt("the superblock is truncated");
      root = addr(&sb[p + 3 * offsets_]);  // after the base, extension and end-of-file addresses
    } else {
      corrupt("expected superblock version 0 to 3, found " + str(static_cast<unsigned>(version)));
    }
    object(root, "the root group", 0);
  }

 private:
  struct Names {
    std::vector<std::uint8_t> heap;  // a group's local heap data segment: its members' names
  };

  [[noreturn]] void corrupt(const std::string& what) const {
    throw FileError(context_ + ": corrupt HDF5 file: " + what);
  }

  // The superblock signature sits at 0, 512, 1024, 2048, ... (after an optional user block); its
  // position is the base that addresses count from, as HDF5 takes it.
  void find_superblock() {
    for (std::uint64_t at = 0; at + 8 <= file_size_; at = at == 0 ? 512 : at * 2) {
      std::vector<std::uint8_t> head = bytes(at, 8);
      if (std::equal(head.begin(), head.end(), kSignature.begin())) {
        base_ = at;
        return;
      }
    }
    corrupt("no HDF5 signature");
  }

  void set_sizes(unsigned offsets, unsigned lengths) {
    auto ok = [](unsigned n) { return n == 2 || n == 4 || n == 8; };
    if (!ok(offsets) || !ok(lengths)) {
      corrupt("the superblock declares " + str(offsets) + "-byte addresses and " + str(lengths) +
              "-byte lengths; expected 2, 4 or 8 bytes each");
    }
    offsets_ = offsets;
    lengths_ = lengths;
  }

  static std::uint64_t le(const std::uint8_t* p, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  // An address field: all bits set is HDF5's undefined address, whatever its width.
  std::uint64_t addr(const std::uint8_t* p) const {
    bool undefined = true;
    for (std::size_t i = 0; i < offsets_; ++i) undefined = undefined && p[i] == 0xff;
    return undefined ? kUndefined : le(p, offsets_);
  }
  std::uint64_t len(const std::uint8_t* p) const { return le(p, lengths_); }

  // n bytes at absolute position `at` (the caller has checked they lie inside the file).
  std::vector<std::uint8_t> bytes(std::uint64_t at, std::uint64_t n) {
    std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(at));
    in_.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    out.resize(static_cast<std::size_t>(in_.gcount()));
    return out;
  }

  // The n bytes of `what` at file address `a`: defined, and inside the file.
  std::vector<std::uint8_t> at(std::uint64_t a, std::uint64_t n, const std::string& what) {
    if (a == kUndefined) corrupt(what + " is at an undefined address");
    const std::uint64_t room = file_size_ - base_;
    if (a > room || n > room - a) {
      corrupt(what + " at address " + str(a) + " (" + str(n) + " bytes) lies past the end of the " +
              str(file_size_) + "-byte file");
    }
    std::vector<std::uint8_t> b = bytes(base_ + a, n);
    if (b.size() != n) corrupt("cannot read " + what + " at address " + str(a));
    return b;
  }

  void visit(std::set<std::uint64_t>& seen, std::uint64_t a) {
    seen.insert(a);
    if (++visits_ > kMaxVisits) corrupt("more than " + str(kMaxVisits) + " objects and B-tree nodes");
  }

  // An object header; its symbol table or links are followed when it is a group.
  void object(std::uint64_t a, const std::string& what, int depth) {
    if (depth > kMaxDepth) corrupt(what + ": groups nested more than " + str(kMaxDepth) + " deep");
    std::vector<std::uint8_t> head = at(a, 16, "the object header of " + what);
    if (objects_.count(a)) return;
    visit(objects_, a);
    struct Block {
      std::uint64_t start, size;
    };
    std::vector<Block> blocks;
    bool v2 = false;
    if (std::equal(head.begin(), head.begin() + 4, "OHDR")) {
      v2 = true;
      if (head[4] != 2) corrupt(what + ": expected object header version 2, found " + str(head[4]));
      const unsigned flags = head[5];
      std::uint64_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
      const std::uint64_t width = std::uint64_t{1} << (flags & 3);
      std::vector<std::uint8_t> size = at(a + p, width, "the object header of " + what);
      const std::uint64_t chunk = le(size.data(), width);
      blocks.push_back({a + p + width, chunk});
      at(a + p + width, chunk + 4, "the object header of " + what);  // messages, checksum
    } else if (head[0] == 1) {
      blocks.push_back({a + 16, le(&head[8], 4)});
      at(a + 16, blocks.back().size, "the object header of " + what);
    } else {
      corrupt("expected " + what + "'s object header (version 1 or 'OHDR') at address " + str(a) +
              ", found other bytes");
    }
    for (std::size_t b = 0; b < blocks.size() && b < 1024; ++b) {
      const std::vector<std::uint8_t> m = at(blocks[b].start, blocks[b].size, "the object header of " + what);
      const std::size_t prefix = v2 ? 4 : 8;
      std::size_t p = 0;
      while (p + prefix <= m.size()) {
        const unsigned type = v2 ? m[p] : static_cast<unsigned>(le(&m[p], 2));
        const std::size_t size = static_cast<std::size_t>(le(&m[p + (v2 ? 1 : 2)], 2));
        const unsigned msg_flags = m[p + (v2 ? 3 : 4)];
        const std::size_t data = p + prefix + ((v2 && (msg_flags & 0x04)) ? 2 : 0);  // creation order
        if (data > m.size() || size > m.size() - data) {
          corrupt(what + ": a message of " + str(size) + " bytes at address " + str(blocks[b].start + p) +
                  " runs past its object header");
        }
        const std::uint8_t* d = m.data() + data;
        if (type == kMsgContinuation && size >= offsets_ + lengths_) {
          const std::uint64_t start = addr(d), n = len(d + offsets_);
          at(start, n, "a continuation of " + what + "'s object header");
          if (v2) {  // "OCHK", messages, checksum
            if (n < 8) corrupt("a continuation of " + what + "'s object header is " + str(n) + " bytes");
            blocks.push_back({start + 4, n - 8});
          } else {
            blocks.push_back({start, n});
          }
        } else if (type == kMsgSymbolTable && size >= 2 * offsets_) {
          symbol_table(addr(d), addr(d + offsets_), what, depth);
        } else if (type == kMsgLink) {
          link(d, size, what, depth);
        } else if (type == kMsgExternalFiles) {
          // Both readers refuse data kept in other files; refused here, before H5Dopen2, whose
          // failure paths after reading this message leak (seen when fuzzing).
          throw FileError(
              context_ + ": " + what +
              " keeps its data in other files (external storage); expected data stored in this file");
        } else if (type == kMsgLinkInfo && size >= 2) {
          // version, flags, [max creation index], fractal heap, name index, [creation order index]
          std::size_t q = 2 + ((d[1] & 1) ? 8 : 0);
          for (int i = 0; i < ((d[1] & 2) ? 3 : 2) && q + offsets_ <= size; ++i, q += offsets_) {
            const std::uint64_t x = addr(d + q);
            if (x != kUndefined) at(x, 4, what + "'s dense link storage");
          }
        }
        p = data + size;
      }
    }
  }

  // A link message; a hard link's target is walked.
  void link(const std::uint8_t* d, std::size_t size, const std::string& what, int depth) {
    if (size < 2 || d[0] != 1) return;  // HDF5 refuses other versions itself
    const unsigned flags = d[1];
    std::size_t q = 2;
    unsigned type = 0;
    if (flags & 0x08) type = q < size ? d[q++] : 0;
    if (flags & 0x04) q += 8;  // creation order
    if (flags & 0x10) q += 1;  // character set
    const std::size_t width = std::size_t{1} << (flags & 3);
    if (q + width > size) return;
    const std::uint64_t name_len = le(d + q, width);
    q += width;
    if (name_len > size - q)
      corrupt(what + ": a link's name of " + str(name_len) + " bytes runs past its message");
    const std::string name(reinterpret_cast<const char*>(d + q), static_cast<std::size_t>(name_len));
    q += static_cast<std::size_t>(name_len);
    if (type == 0 && q + offsets_ <= size) object(addr(d + q), what + "'s member '" + name + "'", depth + 1);
  }

  // An old-style group: its local heap of names and its B-tree of symbol table nodes.
  void symbol_table(std::uint64_t btree, std::uint64_t heap, const std::string& what, int depth) {
    if (!tables_.insert({btree, heap}).second)
      return;  // the root's, cached in the superblock and in its header
    const std::string heap_what = what + "'s local heap";
    const std::vector<std::uint8_t> h = at(heap, 8 + 2 * lengths_ + offsets_, heap_what);
    if (!std::equal(h.begin(), h.begin() + 4, "HEAP") || h[4] != 0) {
      corrupt("expected " + heap_what + " (HEAP, version 0) at address " + str(heap) + ", found other bytes");
    }
    const std::uint64_t data_size = len(&h[8]);
    const std::uint64_t data_addr = addr(&h[8 + 2 * lengths_]);
    Names names{at(data_addr, data_size, heap_what + "'s data segment of " + str(data_size) + " bytes")};
    btree_node(btree, -1, names, what, depth);
  }

  // A version 1 B-tree node of a group (type 0); `level` is what its parent expects (-1: the root).
  void btree_node(std::uint64_t a, int level, const Names& names, const std::string& what, int depth) {
    const std::string node_what = what + "'s B-tree node";
    const std::uint64_t two_k = 2 * internal_k_;
    const std::uint64_t size = 8 + 2 * offsets_ + (two_k + 1) * lengths_ + two_k * offsets_;
    const std::vector<std::uint8_t> n = at(a, size, node_what);
    if (!std::equal(n.begin(), n.begin() + 4, "TREE") || n[4] != 0) {
      corrupt("expected " + node_what + " (TREE, type 0) at address " + str(a) + ", found other bytes");
    }
    if (btree_nodes_.count(a)) corrupt(node_what + " at address " + str(a) + " is reached twice");
    visit(btree_nodes_, a);
    const int node_level = n[5];
    if (level >= 0 && node_level != level) {
      corrupt(node_what + " at address " + str(a) + " has level " + str(static_cast<unsigned>(node_level)) +
              ", expected " + str(static_cast<unsigned>(level)));
    }
    const std::uint64_t entries = le(&n[6], 2);
    if (entries > two_k) {
      corrupt(node_what + " at address " + str(a) + " declares " + str(entries) +
              " children, expected at most " + str(two_k));
    }
    for (int s = 0; s < 2; ++s) {
      const std::uint64_t sibling = addr(&n[8 + static_cast<std::size_t>(s) * offsets_]);
      if (sibling != kUndefined) at(sibling, size, "a sibling of " + node_what);
    }
    std::size_t p = 8 + 2 * offsets_ + lengths_;  // past the first key
    for (std::uint64_t i = 0; i < entries; ++i, p += offsets_ + lengths_) {
      const std::uint64_t child = addr(&n[p]);
      const std::string child_what = node_what + " at address " + str(a) + "'s child " + str(i);
      if (child == kUndefined) corrupt(child_what + " is at an undefined address");
      if (node_level > 0) {
        btree_node(child, node_level - 1, names, what, depth);
      } else {
        symbol_node(child, names, what, depth);
      }
    }
  }

  // A symbol table node: the group's entries, whose objects are walked.
  void symbol_node(std::uint64_t a, const Names& names, const std::string& what, int depth) {
    const std::string node_what = what + "'s symbol table node";
    const std::uint64_t entry = 2 * offsets_ + 24;
    const std::vector<std::uint8_t> n = at(a, 8 + 2 * leaf_k_ * entry, node_what);
    if (!std::equal(n.begin(), n.begin() + 4, "SNOD") || n[4] != 1) {
      corrupt("expected " + node_what + " (SNOD, version 1) at address " + str(a) + ", found other bytes");
    }
    const std::uint64_t count = le(&n[6], 2);
    if (count > 2 * leaf_k_) {
      corrupt(node_what + " at address " + str(a) + " declares " + str(count) +
              " entries, expected at most " + str(2 * leaf_k_));
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint8_t* e = n.data() + 8 + i * entry;
      const std::uint64_t name_at = le(e, offsets_);
      const auto& heap = names.heap;
      std::size_t end = name_at < heap.size() ? static_cast<std::size_t>(name_at) : heap.size();
      while (end < heap.size() && heap[end] != 0) ++end;
      if (end >= heap.size()) {
        corrupt(node_what + " at address " + str(a) + ": entry " + str(i) + "'s name at offset " +
                str(name_at) + " does not end inside the " + str(heap.size()) + "-byte local heap");
      }
      const std::string name(heap.begin() + static_cast<std::ptrdiff_t>(name_at),
                             heap.begin() + static_cast<std::ptrdiff_t>(end));
      const std::string member = what + "'s member '" + name + "'";
      if (le(e + 2 * offsets_, 4) == 1) {  // a group's B-tree and heap, cached in the entry
        for (int c = 0; c < 2; ++c) {
          const std::uint64_t x = addr(e + 2 * offsets_ + 8 + static_cast<std::size_t>(c) * offsets_);
          at(x, 8, member + (c == 0 ? "'s cached B-tree address" : "'s cached local heap address"));
        }
      }
      object(addr(e + offsets_), member, depth + 1);
    }
  }

  std::ifstream in_;
  std::string context_;
  std::uint64_t file_size_ = 0, base_ = 0;
  std::size_t offsets_ = 8, lengths_ = 8;
  // Version 0/1 superblocks state the ranks; later ones use HDF5's defaults.
  std::uint64_t leaf_k_ = 4, internal_k_ = 16;
  std::set<std::uint64_t> objects_, btree_nodes_;
  std::set<std::pair<std::uint64_t, std::uint64_t>> tables_;
  std::size_t visits_ = 0;
};

}  // namespace

void check_hdf5_groups(const std::string& path, const std::string& context) { Walker(path, context).run(); }

}  // namespace reskit::io
