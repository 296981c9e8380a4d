// The structural check of an HDF5 file's groups (see check.h). Layouts from the HDF5 File
// Format Specification 3.0: "Superblock", "Object Header Prefix" (versions 1 and 2), "Symbol
// Table Message", "Link Info Message", "Link Message", "Object Header Continuation Message",
// "Version 1 B-trees", "Group Symbol Table Nodes", "Symbol Table Entry", "Local Heaps",
// "Dataspace Message", "Datatype Message", "Data Layout Message", "Attribute Message",
// "Attribute Info Message".
#include "hdf5/check.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "reskit/error.h"

namespace reskit::hdf5 {

namespace {

constexpr std::uint64_t kUndefined = ~std::uint64_t{0};
constexpr std::array<unsigned char, 8> kSignature{0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
// Objects (groups and what they hold) and B-tree nodes looked at, at most: far above any model's
// (ResNet-152 has a few thousand), and a bound on the work a file whose links loop can cause.
constexpr std::size_t kMaxVisits = std::size_t{1} << 20;
// Groups within groups, at most (Keras nests three deep).
constexpr int kMaxDepth = 256;
// Variable-length strings in one attribute, at most (api.h's kMaxNameCount).
constexpr std::uint64_t kMaxVlenStrings = std::uint64_t{1} << 20;

// Object header message types.
constexpr unsigned kMsgDataspace = 0x01, kMsgLinkInfo = 0x02, kMsgDatatype = 0x03, kMsgLink = 0x06,
                   kMsgExternalFiles = 0x07, kMsgLayout = 0x08, kMsgAttribute = 0x0c, kMsgContinuation = 0x10,
                   kMsgSymbolTable = 0x11, kMsgAttributeInfo = 0x15;
// A message flag: the message is kept elsewhere (a committed datatype, the shared message heap)
// and the header holds only a reference to it.
constexpr unsigned kMsgFlagShared = 0x02;
// HDF5's largest rank (H5S_MAX_RANK) and a bound on datatypes within datatypes (compound members,
// array and variable-length bases): far above anything written, a bound on a corrupt one's recursion.
constexpr unsigned kMaxRank = 32;
constexpr int kMaxTypeDepth = 64;
// Data layout classes.
constexpr unsigned kCompact = 0, kContiguous = 1, kChunked = 2, kVirtual = 3;

std::string str(std::uint64_t v) { return std::to_string(v); }
std::string bytes_str(std::uint64_t n) { return str(n) + (n == 1 ? " byte" : " bytes"); }

// a * b, or nothing when the product does not fit in 64 bits.
std::optional<std::uint64_t> mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// What a dataspace message declares: its rank and its number of elements (none: more than 2^64).
struct Extent {
  unsigned rank = 0;
  std::optional<std::uint64_t> elements;
};

// What a datatype message declares: its class and the size of one element, in bytes.
struct Datatype {
  unsigned cls = 0;
  std::uint64_t size = 0;
};

// One object header message, copied out of its block.
struct Message {
  std::vector<std::uint8_t> data;
  unsigned flags = 0;
  std::uint64_t address = 0;  // of the message's header
};

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
      // (its link name offset is a length, as HDF5 decodes it: H5G_ent_decode)
      const std::size_t entry = p + 4 * offsets_;
      if (entry + lengths_ + offsets_ + 8 + 16 > sb.size()) corrupt("the superblock is truncated");
      end_of_file(addr(&sb[p + 2 * offsets_]));
      root = addr(&sb[entry + lengths_]);
      const std::uint64_t cache_type = le(&sb[entry + lengths_ + offsets_], 4);
      if (cache_type == 1) {  // the root's B-tree and local heap, cached in the superblock
        const std::size_t scratch = entry + lengths_ + offsets_ + 8;
        symbol_table(addr(&sb[scratch]), addr(&sb[scratch + offsets_]), "the root group", 0);
      }
    } else if (version == 2 || version == 3) {
      set_sizes(sb[9], sb[10]);
      p = 12;
      if (p + 4 * offsets_ > sb.size()) corrupt("the superblock is truncated");
      end_of_file(addr(&sb[p + 2 * offsets_]));  // after the base and extension addresses
      root = addr(&sb[p + 3 * offsets_]);
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

  // HDF5 refuses a file shorter than the end-of-file address its superblock states (truncated;
  // the one address stored absolute, user block included), and so does this walk, before it
  // meets the first structure the cut removed.
  void end_of_file(std::uint64_t eof) const {
    if (eof != kUndefined && eof > file_size_) {
      corrupt("the file is truncated: its superblock declares " + bytes_str(eof) + ", the file has " +
              bytes_str(file_size_));
    }
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

  // Throws unless the n bytes of `what` at file address `a` are defined and inside the file.
  void inside(std::uint64_t a, std::uint64_t n, const std::string& what) const {
    if (a == kUndefined) corrupt(what + " is at an undefined address");
    const std::uint64_t room = file_size_ - base_;
    if (a > room || n > room - a) {
      corrupt(what + " at address " + str(a) + " (" + str(n) + " bytes) lies past the end of the " +
              str(file_size_) + "-byte file");
    }
  }

  // The n bytes of `what` at file address `a`: defined, and inside the file.
  std::vector<std::uint8_t> at(std::uint64_t a, std::uint64_t n, const std::string& what) {
    inside(a, n, what);
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
    bool creation_order = false;  // version 2: each message's prefix holds its creation index
    if (std::equal(head.begin(), head.begin() + 4, "OHDR")) {
      v2 = true;
      if (head[4] != 2) corrupt(what + ": expected object header version 2, found " + str(head[4]));
      const unsigned flags = head[5];
      creation_order = (flags & 0x04) != 0;
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
    // A dataset's dataspace, datatype and layout, checked together once all blocks are read.
    std::optional<Message> space, type_msg, layout;
    for (std::size_t b = 0; b < blocks.size() && b < 1024; ++b) {
      const std::vector<std::uint8_t> m = at(blocks[b].start, blocks[b].size, "the object header of " + what);
      // type, size, flags, [version 2: creation index], [version 1: reserved]; a version 2 block
      // ends in a gap smaller than that
      const std::size_t prefix = v2 ? (creation_order ? 6 : 4) : 8;
      std::size_t p = 0;
      while (p + prefix <= m.size()) {
        const unsigned type = v2 ? m[p] : static_cast<unsigned>(le(&m[p], 2));
        const std::size_t size = static_cast<std::size_t>(le(&m[p + (v2 ? 1 : 2)], 2));
        const unsigned msg_flags = m[p + (v2 ? 3 : 4)];
        const std::size_t data = p + prefix;
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
        } else if (type == kMsgAttributeInfo && size >= 2) {
          // version, flags, [max creation index (2 bytes)], fractal heap, name index, [order index]
          std::size_t q = 2 + ((d[1] & 1) ? 2 : 0);
          for (int i = 0; i < ((d[1] & 2) ? 3 : 2) && q + offsets_ <= size; ++i, q += offsets_) {
            const std::uint64_t x = addr(d + q);
            if (x != kUndefined) at(x, 4, what + "'s dense attribute storage");
          }
        } else if (type == kMsgAttribute && !(msg_flags & kMsgFlagShared)) {
          attribute(d, size, what, blocks[b].start + p);
        } else if (type == kMsgDataspace || type == kMsgDatatype || type == kMsgLayout) {
          std::optional<Message>& slot = type == kMsgDataspace  ? space
                                         : type == kMsgDatatype ? type_msg
                                                                : layout;
          if (!slot) slot = Message{std::vector<std::uint8_t>(d, d + size), msg_flags, blocks[b].start + p};
        }
        p = data + size;
      }
    }
    if (layout) dataset(*layout, space, type_msg, what);
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

  // An attribute message: its name, datatype and dataspace, then its data (as many elements as
  // the dataspace holds, of the datatype's size), all inside the message; HDF5 copies each part
  // from the message by the sizes declared here without comparing them with the message's size.
  // Version 1 pads the name, datatype and dataspace to multiples of 8 bytes; version 3 adds a
  // character set byte before the name.
  void attribute(const std::uint8_t* d, std::size_t size, const std::string& what, std::uint64_t where) {
    const std::string msg = what + ": the attribute message at address " + str(where);
    if (size < 8) corrupt(msg + " is " + str(size) + " bytes, expected at least 8");
    const unsigned version = d[0];
    if (version < 1 || version > 3) corrupt(msg + " has version " + str(version) + ", expected 1, 2 or 3");
    const unsigned flags = version >= 2 ? d[1] : 0;  // bit 0: shared datatype, bit 1: shared dataspace
    const std::uint64_t name_len = le(d + 2, 2), type_len = le(d + 4, 2), space_len = le(d + 6, 2);
    auto padded = [&](std::uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
    std::uint64_t q = version == 3 ? 9 : 8;
    auto part = [&](const char* name, std::uint64_t n) {
      if (q > size || n > size - q) {
        corrupt(msg + " declares a " + name + " of " + str(n) + " bytes at byte " + str(q) +
                ", past the end of its " + str(size) + " bytes");
      }
    };
    part("name", name_len);
    // HDF5 copies the name up to its first NUL and requires that to be the declared length.
    const std::uint8_t* name_end = std::find(d + q, d + q + name_len, std::uint8_t{0});
    if (name_len == 0 || name_end != d + q + name_len - 1) {
      corrupt(msg + " declares a name of " + str(name_len) + " bytes that is not a string of " +
              str(name_len == 0 ? 0 : name_len - 1) + " characters ending in a NUL");
    }
    const std::string attr = what + "'s attribute '" + std::string(d + q, name_end) + "'";
    q = std::min<std::uint64_t>(q + padded(name_len), size + 1);
    part("datatype", type_len);
    std::optional<Datatype> dt;
    if (!(flags & 1)) dt = datatype(d + q, type_len, attr + "'s datatype", 0);
    q = std::min<std::uint64_t>(q + padded(type_len), size + 1);
    part("dataspace", space_len);
    std::optional<Extent> ds;
    if (!(flags & 2)) ds = dataspace(d + q, space_len, attr + "'s dataspace");
    q = std::min<std::uint64_t>(q + padded(space_len), size + 1);
    if (!dt || !ds) return;  // a shared datatype or dataspace: its size is not in this message
    const std::optional<std::uint64_t> data = ds->elements ? mul(*ds->elements, dt->size) : std::nullopt;
    if (!data) {
      corrupt(attr + " (message at address " + str(where) + ") declares more than 2^64 bytes of data");
    }
    if (*data > 0 && (q > size || *data > size - q)) {
      corrupt(attr + " (message at address " + str(where) + ") declares " + str(*data) + " bytes of data (" +
              str(*ds->elements) + " elements of " + bytes_str(dt->size) + "); its " + str(size) +
              "-byte message holds " + str(q > size ? 0 : size - q) +
              " after the name, datatype and dataspace");
    }
  }

  // A dataspace message (versions 1 and 2): its rank and element count, from n bytes at d.
  Extent dataspace(const std::uint8_t* d, std::uint64_t n, const std::string& what) const {
    if (n < 4) corrupt(what + " is " + str(n) + " bytes, expected at least 4");
    const unsigned version = d[0], rank = d[1], flags = d[2];
    if (version != 1 && version != 2) corrupt(what + " has version " + str(version) + ", expected 1 or 2");
    if (rank > kMaxRank)
      corrupt(what + " has " + str(rank) + " dimensions, expected at most " + str(kMaxRank));
    // version 1: 4 reserved bytes; version 2: the type (0 scalar, 1 simple, 2 null)
    const unsigned type = version == 1 ? (rank > 0 ? 1 : 0) : d[3];
    if (type > 2) corrupt(what + " has type " + str(type) + ", expected scalar, simple or null");
    const std::uint64_t start = version == 1 ? 8 : 4;
    const std::uint64_t fields = ((flags & 1) ? 2 : 1) * std::uint64_t{rank};  // sizes, maximum sizes
    if (start + fields * lengths_ > n) {
      corrupt(what + " declares " + str(rank) + " dimensions, which need " + str(start + fields * lengths_) +
              " bytes; it is " + str(n));
    }
    Extent e{rank, std::uint64_t{type == 2 ? 0u : 1u}};
    for (unsigned i = 0; i < rank && e.elements; ++i)
      e.elements = mul(*e.elements, len(d + start + i * lengths_));
    return e;
  }

  // A datatype message (versions 1 to 3, every class): returns its class and element size and,
  // through `used`, how many of the n bytes at d it takes. HDF5 decodes a datatype without
  // knowing where its message ends, so every property read must fit.
  Datatype datatype(const std::uint8_t* d, std::uint64_t n, const std::string& what, int depth,
                    std::uint64_t* used = nullptr) const {
    if (depth > kMaxTypeDepth) corrupt(what + ": datatypes nested more than " + str(kMaxTypeDepth) + " deep");
    if (n < 8) corrupt(what + " is " + str(n) + " bytes, expected at least 8");
    const unsigned cls = d[0] & 0x0f, version = d[0] >> 4;
    if (version < 1 || version > 3)
      corrupt(what + " has version " + str(version) + ", expected 1, 2 or 3 (HDF5 1.10)");
    const std::uint64_t bits = le(d + 1, 3);
    const Datatype t{cls, le(d + 4, 4)};
    if (t.size == 0) corrupt(what + " declares elements of 0 bytes");
    std::uint64_t q = 8;
    auto need = [&](std::uint64_t k, const char* part) {
      if (k > n - q) {
        corrupt(what + ": its " + std::string(part) + " (" + str(k) + " bytes at byte " + str(q) +
                ") runs past its " + str(n) + " bytes");
      }
      q += k;
    };
    // A NUL-terminated member name at q; versions 1 and 2 pad it to a multiple of 8 bytes.
    auto name = [&](const char* part) {
      const std::uint8_t* end = std::find(d + q, d + n, std::uint8_t{0});
      if (end == d + n)
        corrupt(what + ": a " + std::string(part) + " name does not end inside its " + str(n) + " bytes");
      const auto length = static_cast<std::uint64_t>(end - (d + q)) + 1;
      const std::string s(d + q, end);
      need(version < 3 ? (length + 7) / 8 * 8 : length, part);
      return s;
    };
    auto nested = [&](const std::string& inner) {
      std::uint64_t k = 0;
      const Datatype b = datatype(d + q, n - q, inner, depth + 1, &k);
      q += k;
      return b;
    };
    switch (cls) {
      case 0:  // fixed-point: bit offset, precision
      case 4:  // bitfield: the same
        need(4, "properties");
        break;
      case 1:  // floating-point: bit offset, precision, exponent and mantissa fields, bias
        need(12, "properties");
        break;
      case 2:  // time: precision
        need(2, "properties");
        break;
      case 3:  // string
      case 7:  // reference
        break;
      case 5:  // opaque: a tag whose length the class bits state
        need(bits & 0xff, "opaque tag");
        break;
      case 6: {  // compound: each member's name, byte offset, [version 1: array dims], type
        const std::uint64_t members = bits & 0xffff;
        // version 3 encodes member offsets in as few bytes as the compound's size needs
        std::uint64_t offset_width = 1;
        for (std::uint64_t s = t.size; s > 0xff; s >>= 8) ++offset_width;
        for (std::uint64_t i = 0; i < members; ++i) {
          const std::string member = name("compound member");
          const std::uint64_t width = version < 3 ? 4 : offset_width;
          need(width, "compound member offset");
          const std::uint64_t offset = le(d + q - width, width);
          std::optional<std::uint64_t> count = 1;
          if (version == 1) {  // rank, 3 reserved, permutation, 4 reserved, 4 sizes
            const std::uint64_t at_dims = q;
            need(28, "compound member dimensions");
            const unsigned rank = d[at_dims];
            if (rank > 4)
              corrupt(what + ": compound member '" + member + "' has " + str(rank) +
                      " dimensions, expected at most 4");
            for (unsigned r = 0; r < rank && count; ++r) count = mul(*count, le(d + at_dims + 12 + 4 * r, 4));
          }
          const Datatype m = nested(what + "'s member '" + member + "'");
          const std::optional<std::uint64_t> bytes = count ? mul(m.size, *count) : std::nullopt;
          if (!bytes || offset > t.size || *bytes > t.size - offset) {
            corrupt(what + ": compound member '" + member + "' at byte " + str(offset) + " (" +
                    (bytes ? str(*bytes) : std::string("more than 2^64")) +
                    " bytes) lies past the compound's " + str(t.size) + " bytes");
          }
        }
        break;
      }
      case 8: {  // enumeration: base type, member names, member values
        const std::uint64_t members = bits & 0xffff;
        const Datatype base = nested(what + "'s base type");
        if (base.size != t.size) {
          corrupt(what + ": an enumeration of " + str(t.size) + "-byte elements over a " + str(base.size) +
                  "-byte base type; expected the same size");
        }
        for (std::uint64_t i = 0; i < members; ++i) name("enumeration member");
        need(members * base.size, "enumeration values");
        break;
      }
      case 9: {  // variable-length sequence or string: its base type; stored as length + heap ID
        nested(what + "'s base type");
        const std::uint64_t stored = 8 + offsets_;
        if (t.size != stored) {
          corrupt(what + ": variable-length elements of " + str(t.size) + " bytes; expected " + str(stored) +
                  " (length, global heap address and index)");
        }
        break;
      }
      case 10: {  // array: rank, [version 2: 3 reserved], sizes, [version 2: permutation], base type
        const unsigned rank = q < n ? d[q] : 0;
        need(version < 3 ? 4 : 1, "array rank");
        if (rank > kMaxRank)
          corrupt(what + ": an array of " + str(rank) + " dimensions, expected at most " + str(kMaxRank));
        const std::uint64_t at_dims = q;
        need(4 * std::uint64_t{rank}, "array dimensions");
        if (version < 3) need(4 * std::uint64_t{rank}, "array permutation");
        std::optional<std::uint64_t> count = 1;
        for (unsigned r = 0; r < rank && count; ++r) count = mul(*count, le(d + at_dims + 4 * r, 4));
        const Datatype base = nested(what + "'s base type");
        const std::optional<std::uint64_t> bytes = count ? mul(*count, base.size) : std::nullopt;
        if (!bytes || *bytes != t.size) {
          corrupt(what + ": an array of " + (count ? str(*count) : std::string("more than 2^64")) +
                  " elements of " + bytes_str(base.size) + " declares " + bytes_str(t.size));
        }
        break;
      }
      default:
        corrupt(what + " has class " + str(cls) + ", expected 0 to 10");
    }
    if (used) *used = q;
    return t;
  }

  // A dataset (an object with a data layout message): its storage against the file and against
  // what its dataspace and datatype declare. HDF5 1.10.8 reads compact data from the message by
  // the dataspace's size without comparing them (a null read when the message holds none), copies
  // compact data from the message by the size the layout states, and reads contiguous data at
  // the address the layout states. Layouts from the spec's "Data Layout Message" (versions 1-4).
  void dataset(const Message& layout, const std::optional<Message>& space, const std::optional<Message>& type,
               const std::string& what) {
    const std::vector<std::uint8_t>& m = layout.data;
    const std::string msg = what + ": the data layout message at address " + str(layout.address);
    std::uint64_t q = 0;
    auto need = [&](std::uint64_t k) {
      if (k > m.size() - q) corrupt(msg + " is " + str(m.size()) + " bytes, too short for its fields");
      q += k;
    };
    need(2);
    const unsigned version = m[0];
    if (version < 1 || version > 4) corrupt(msg + " has version " + str(version) + ", expected 1 to 4");

    // What the dataset declares: its dataspace's elements times its datatype's size.
    std::optional<Extent> extent;
    std::optional<Datatype> element;
    if (space && !(space->flags & kMsgFlagShared))
      extent = dataspace(space->data.data(), space->data.size(), what + "'s dataspace");
    if (type && !(type->flags & kMsgFlagShared))
      element = datatype(type->data.data(), type->data.size(), what + "'s datatype", 0);
    std::optional<std::uint64_t> declared;
    std::string declared_what;
    if (extent && element) {
      declared = extent->elements ? mul(*extent->elements, element->size) : std::nullopt;
      if (!declared) corrupt(what + " declares more than 2^64 bytes of data");
      declared_what = bytes_str(*declared) + " (" + str(*extent->elements) + " elements of " +
                      bytes_str(element->size) + ")";
    }

    unsigned cls = 0;
    std::uint64_t address = kUndefined, stored = 0, compact_at = 0;
    bool stored_known = false;
    std::vector<std::uint64_t> chunk;  // chunk sizes, the element size last (versions 1-3)
    if (version < 3) {
      // dimensions, class, 5 reserved, [address], dimension sizes (4 bytes each; chunked: the
      // chunk's, the element size last), [compact: data size (4 bytes), data]
      need(6);
      const unsigned dims = m[1];
      cls = m[2];
      if (cls > kChunked) corrupt(msg + " has layout class " + str(cls) + ", expected 0 to 2");
      if (dims > kMaxRank + 1 || (cls == kChunked && dims < 2)) {
        corrupt(msg + " declares " + str(dims) + " dimensions, expected " + (cls == kChunked ? "2" : "0") +
                " to " + str(kMaxRank + 1));
      }
      if (cls != kCompact) {
        need(offsets_);
        address = addr(&m[q - offsets_]);
      }
      need(4 * std::uint64_t{dims});
      if (cls == kChunked) {
        for (unsigned i = 0; i < dims; ++i) chunk.push_back(le(&m[q - 4 * dims + 4 * i], 4));
      } else if (cls == kCompact) {
        need(4);
        stored = le(&m[q - 4], 4);
        compact_at = q;
      }
    } else {
      cls = m[1];
      if (cls == kCompact) {  // size (2 bytes), data
        need(2);
        stored = le(&m[q - 2], 2);
        compact_at = q;
      } else if (cls == kContiguous) {  // address, size
        need(offsets_ + lengths_);
        address = addr(&m[2]);
        stored = len(&m[2 + offsets_]);
        stored_known = true;
      } else if (cls == kChunked &&
                 version == 3) {  // rank + 1, address, rank + 1 sizes (the element size last)
        need(1);
        const unsigned dims = m[2];
        if (dims < 2 || dims > kMaxRank + 1)
          corrupt(msg + " declares " + str(dims) + " chunk dimensions, expected 2 to " + str(kMaxRank + 1));
        need(offsets_);
        address = addr(&m[3]);
        need(4 * std::uint64_t{dims});
        for (unsigned i = 0; i < dims; ++i) chunk.push_back(le(&m[3 + offsets_ + 4 * i], 4));
      } else if (cls == kChunked) {  // flags, rank + 1, size width, sizes, index type, its fields, address
        need(3);
        const unsigned flags = m[2], dims = m[3], width = m[4];
        if (dims < 2 || dims > kMaxRank + 1)
          corrupt(msg + " declares " + str(dims) + " chunk dimensions, expected 2 to " + str(kMaxRank + 1));
        if (width < 1 || width > 8)
          corrupt(msg + " declares " + str(width) + "-byte chunk sizes, expected 1 to 8");
        need(std::uint64_t{width} * dims);
        for (unsigned i = 0; i < dims; ++i) chunk.push_back(le(&m[5 + std::uint64_t{width} * i], width));
        need(1);
        const unsigned index = m[q - 1];
        // single chunk (filtered: size, filter mask), implicit, fixed array (page bits),
        // extensible array (5 parameters), version 2 B-tree (node size, split and merge percents)
        const std::uint64_t fields[] = {0, (flags & 2) ? lengths_ + 4 : 0, 0, 1, 5, 6};
        if (index < 1 || index > 5)
          corrupt(msg + " has chunk index type " + str(index) + ", expected 1 to 5");
        need(fields[index]);
        need(offsets_);
        address = addr(&m[q - offsets_]);
      } else if (cls == kVirtual) {
        throw FileError(
            context_ + ": " + what +
            " is a virtual dataset (its data lives in other datasets or files); expected data stored in "
            "this file");
      } else {
        corrupt(msg + " has layout class " + str(cls) + ", expected 0 to 3");
      }
    }
    if (cls == kChunked) {  // the last size is the element size
      const std::uint64_t element_size = chunk.back();
      chunk.pop_back();
      if (version < 4 && element && element_size != element->size) {
        corrupt(msg + " declares chunks of " + str(element_size) + "-byte elements; its datatype has " +
                str(element->size) + "-byte elements");
      }
    }

    if (cls == kCompact) {
      if (stored > m.size() - compact_at) {
        corrupt(msg + " declares " + str(stored) + " bytes of compact data, past the end of its " +
                str(m.size()) + " bytes");
      }
      if (declared && stored != *declared) {
        corrupt(what + " declares " + declared_what + " and stores " + str(stored) +
                " bytes of compact data (layout message at address " + str(layout.address) + ")");
      }
    } else if (cls == kContiguous) {
      // An undefined address is storage not yet allocated (HDF5 reads the fill value instead).
      if (declared && stored_known && stored < *declared) {
        corrupt(what + " declares " + declared_what + " and its contiguous storage holds " + str(stored) +
                " (layout message at address " + str(layout.address) + ")");
      }
      if (address != kUndefined) {
        std::uint64_t extent_bytes = stored_known ? stored : 0;
        if (declared) extent_bytes = std::max(extent_bytes, *declared);
        inside(address, extent_bytes, what + "'s contiguous data");
      }
    } else {  // chunked
      if (extent && chunk.size() != extent->rank) {
        corrupt(msg + " declares chunks of " + str(chunk.size()) + " dimensions for a dataspace of " +
                str(extent->rank));
      }
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        if (chunk[i] == 0)
          corrupt(msg + " declares chunk dimension " + str(i) + " of size 0, expected at least 1");
      }
      // An undefined address is a dataset with no chunks written yet.
      if (address != kUndefined) inside(address, 8, what + "'s chunk index");
    }
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
    // an entry: link name offset (a length, as HDF5 decodes it), object header address, cache
    // type, 4 reserved bytes, 16 scratch bytes
    const std::uint64_t entry = lengths_ + offsets_ + 24;
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
      const std::uint64_t name_at = le(e, lengths_);
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
      const std::uint64_t cache_type = le(e + lengths_ + offsets_, 4);
      if (cache_type == 2) continue;  // a soft link: a path in the local heap, no object header
      if (cache_type == 1) {          // a group's B-tree and heap, cached in the entry
        for (int c = 0; c < 2; ++c) {
          const std::uint64_t x = addr(e + lengths_ + offsets_ + 8 + static_cast<std::size_t>(c) * offsets_);
          at(x, 8, member + (c == 0 ? "'s cached B-tree address" : "'s cached local heap address"));
        }
      }
      object(addr(e + lengths_), member, depth + 1);
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

std::uint64_t read_le(const unsigned char* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

// Positions of `pattern` in the file, read in overlapping chunks.
std::vector<std::int64_t> find_all(std::ifstream& in, std::int64_t file_size, const std::string& pattern) {
  std::vector<std::int64_t> found;
  // 8 MiB at a time, or the whole file when smaller: a fresh 8 MiB buffer for a small file made
  // every load of one spend most of its time clearing memory (seen when fuzzing).
  const auto chunk = static_cast<std::size_t>(std::clamp<std::int64_t>(file_size, 1, std::int64_t{8} << 20));
  std::vector<char> buf(chunk + pattern.size());
  for (std::int64_t offset = 0; offset < file_size; offset += static_cast<std::int64_t>(chunk)) {
    in.clear();
    in.seekg(offset);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto end = buf.begin() + static_cast<std::ptrdiff_t>(in.gcount());
    for (auto it = buf.begin(); (it = std::search(it, end, pattern.begin(), pattern.end())) != end; ++it) {
      const std::int64_t at = offset + (it - buf.begin());
      if (at < offset + static_cast<std::int64_t>(chunk)) found.push_back(at);
    }
  }
  return found;
}

// What the global heap checks need from the superblock: where addresses count from and the
// widths of addresses and lengths.
struct Sizes {
  std::int64_t base = 0;
  std::size_t offsets = 8, lengths = 8;
};

Sizes superblock_sizes(std::ifstream& in, std::int64_t file_size, const std::string& context) {
  Sizes z;
  z.base = -1;
  std::array<unsigned char, 16> sb{};
  for (std::int64_t at = 0; at + 8 <= file_size && z.base < 0; at = at == 0 ? 512 : at * 2) {
    in.clear();
    in.seekg(at);
    in.read(reinterpret_cast<char*>(sb.data()), 8);
    if (in && std::equal(kSignature.begin(), kSignature.end(), sb.begin())) z.base = at;
  }
  if (z.base < 0) throw FileError(context + ": corrupt HDF5 file: no HDF5 signature");
  in.clear();
  in.seekg(z.base);
  in.read(reinterpret_cast<char*>(sb.data()), sb.size());
  if (!in) throw FileError(context + ": truncated HDF5 superblock");
  // Superblock v0/1: sizes of offsets and lengths at bytes 13 and 14; v2/3: at 9 and 10.
  z.offsets = sb[8] < 2 ? sb[13] : sb[9];
  z.lengths = sb[8] < 2 ? sb[14] : sb[10];
  for (std::size_t v : {z.offsets, z.lengths}) {
    if (v != 2 && v != 4 && v != 8)
      throw FileError(context + ": corrupt HDF5 superblock (field size " + str(v) + ")");
  }
  return z;
}

// The global heap collections a file's variable-length values point into, each parsed once, as
// H5HG__cache_heap_deserialize (HDF5 1.10) walks it: File Format Specification 3.0, "Global Heap",
// with the library's alignment (H5HGpkg.h: H5HG_ALIGN), which the spec's tables leave implicit:
// the collection header ("GCOL", version 1, 3 reserved bytes, the collection's size) and each
// object's header (index, reference count, 4 reserved bytes, the data's size) are padded to
// multiples of 8 bytes, and so is each object's data. Object 0 is the free space, its size
// covering its header; a tail too small for an object header is free space too. With 8-byte
// lengths the headers are 16 bytes either way; with 4-byte lengths they are 16, not 12.
class GlobalHeaps {
 public:
  GlobalHeaps(std::ifstream& in, std::int64_t file_size, Sizes sizes, std::string context)
      : in_(in), file_size_(file_size), sizes_(sizes), context_(std::move(context)) {}

  // The objects (index -> data size) of the collection at file address `address`; throws
  // FileError unless it is a collection whose objects tile its space inside the file.
  const std::map<std::uint64_t, std::uint64_t>& collection(std::uint64_t address) {
    if (auto it = parsed_.find(address); it != parsed_.end()) return it->second;
    const std::string where = context_ + ": global heap collection at address " + str(address);
    const std::uint64_t header = align(8 + sizes_.lengths), obj_header = align(8 + sizes_.lengths);
    const std::uint64_t room = static_cast<std::uint64_t>(file_size_ - sizes_.base);
    if (address > room || header > room - address) {
      throw FileError(where + ": expected a global heap collection there, found the end of the " +
                      str(static_cast<std::uint64_t>(file_size_)) + "-byte file");
    }
    std::vector<std::uint8_t> head = read(address, header);
    if (!std::equal(head.begin(), head.begin() + 4, "GCOL") || head[4] != 1) {
      throw FileError(where + ": expected a global heap collection (GCOL, version 1), found other bytes");
    }
    const std::uint64_t size = read_le(&head[8], sizes_.lengths);
    if (size < header || size > room - address) {
      throw FileError(where + ": corrupt collection size " + str(size) + " (expected " + str(header) +
                      " to " + str(room - address) + " bytes, its header to the end of the file)");
    }
    const std::vector<std::uint8_t> heap = read(address, size);
    std::map<std::uint64_t, std::uint64_t> objects;
    std::uint64_t p = header;
    while (p < size && size - p >= obj_header) {
      const std::uint64_t idx = read_le(&heap[p], 2);
      const std::uint64_t obj_size = read_le(&heap[p + 8], sizes_.lengths);
      const std::uint64_t need =
          idx > 0 ? (obj_size > size ? size + 1 : obj_header + align(obj_size)) : obj_size;
      const std::string object = where + ": corrupt object " + str(idx) + (idx == 0 ? " (free space)" : "") +
                                 " of " + bytes_str(obj_size) + " at offset " + str(p);
      if (need < obj_header || need > size - p)
        throw FileError(object + ", past its end of " + bytes_str(size) + " (or shorter than its header)");
      if (idx == 0 && need % 8 != 0) throw FileError(object + ": expected a multiple of 8 bytes");
      if (objects.count(idx)) throw FileError(object + ": its index appears twice");
      if (idx > 0) objects[idx] = obj_size;
      p += need;
    }
    return parsed_[address] = std::move(objects);
  }

  // Checks one variable-length value's descriptor ([length u32][collection address][index u32]) of
  // elements of `element_size` bytes, named by `what`: a null address is an empty value; any other
  // must name an object of the collection there (HDF5 only asserts it) of exactly that many bytes.
  // With `known_only`, addresses of no collection already parsed are left to HDF5.
  void check_value(const std::uint8_t* descriptor, std::uint64_t element_size, bool known_only,
                   const std::string& what) {
    const std::uint64_t length = read_le(descriptor, 4);
    const std::uint64_t address = read_le(descriptor + 4, sizes_.offsets);
    const std::uint64_t index = read_le(descriptor + 4 + sizes_.offsets, 4);
    if (address == 0 || (known_only && !parsed_.count(address))) return;
    const auto& objects = collection(address);
    const auto o = objects.find(index);
    const std::optional<std::uint64_t> bytes = mul(length, element_size);
    if (o != objects.end() && bytes && o->second == *bytes) return;
    throw FileError(context_ + ": corrupt variable-length value " + what + ": its length " + str(length) +
                    (element_size == 1 ? std::string() : " x " + bytes_str(element_size)) +
                    " does not match global heap object " + str(index) + " of the collection at address " +
                    str(address) + ", which " +
                    (o == objects.end() ? std::string("does not exist") : "holds " + bytes_str(o->second)));
  }

  const Sizes& sizes() const { return sizes_; }

 private:
  static std::uint64_t align(std::uint64_t n) { return (n + 7) / 8 * 8; }

  std::vector<std::uint8_t> read(std::uint64_t address, std::uint64_t n) {
    std::vector<std::uint8_t> b(static_cast<std::size_t>(n));
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(static_cast<std::uint64_t>(sizes_.base) + address));
    in_.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    if (!in_) throw FileError(context_ + ": cannot read " + bytes_str(n) + " at address " + str(address));
    return b;
  }

  std::ifstream& in_;
  std::int64_t file_size_;
  Sizes sizes_;
  std::string context_;
  std::map<std::uint64_t, std::map<std::uint64_t, std::uint64_t>> parsed_;
};

// The scan behind check_vlen_attributes (see check.h): every collection found by its signature is
// parsed; every attribute message with a variable-length datatype is found by the bytes of that
// datatype (class 9, version 1, 16-byte elements) and the attribute header before its name
// (v1 [1][0][name][dt][ds] 8-byte padded, v2 [2][flags][...], v3 [3][flags][...][encoding]
// unpadded), so that it is found wherever it is stored (object headers, dense storage).
void scan_vlen_attributes(std::ifstream& in, std::int64_t file_size, const std::string& context) {
  GlobalHeaps heaps(in, file_size, superblock_sizes(in, file_size, context), context);
  const std::int64_t base = heaps.sizes().base;
  const std::size_t offsets = heaps.sizes().offsets, lengths = heaps.sizes().lengths;
  bool any = false;
  for (std::int64_t at : find_all(in, file_size, std::string("GCOL\x01\0\0\0", 8))) {
    if (at < base) continue;
    heaps.collection(static_cast<std::uint64_t>(at - base));
    any = true;
  }
  if (!any) return;
  auto align = [](std::uint64_t x) { return (x + 7) / 8 * 8; };
  auto bytes_at = [&](std::int64_t pos, std::size_t n) {
    std::vector<unsigned char> b(n);
    in.clear();
    in.seekg(pos);
    in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    if (!in || pos < 0) b.clear();
    return b;
  };
  const std::uint64_t descriptor = 4 + static_cast<std::uint64_t>(offsets) + 4;
  std::string tail("\0\0\0\0\0", 5);  // datatype byte 3 (0) and size (descriptor bytes)
  tail[1] = static_cast<char>(descriptor);
  for (std::int64_t at : find_all(in, file_size, tail)) {
    const std::int64_t q = at - 3;  // the datatype message: class 9 (vlen), version 1, type string
    auto dt = bytes_at(q, 16);
    if (dt.size() < 16 || dt[0] != 0x19 || (dt[1] & 0x0f) != 1) continue;
    const std::uint64_t base_size = read_le(&dt[12], 4);
    // The attribute message header before the name: v1 [1][0][name][dt][ds] (8-byte padded),
    // v2 [2][flags][...], v3 [3][flags][...][encoding] (unpadded).
    std::int64_t dt_size = -1, ds_size = -1, padded = 0;
    for (std::int64_t name = 1; name <= 1024 && dt_size < 0; ++name) {
      for (int version = 1; version <= 3 && dt_size < 0; ++version) {
        const std::int64_t head = version == 3 ? 9 : 8;
        const std::int64_t m = q - head - (version == 1 ? static_cast<std::int64_t>(align(name)) : name);
        auto h = bytes_at(m, static_cast<std::size_t>(head) + static_cast<std::size_t>(name));
        if (h.empty() || h[0] != version || (version == 1 && h[1] != 0)) continue;
        if (static_cast<std::int64_t>(read_le(&h[2], 2)) != name || h[head + name - 1] != 0) continue;
        dt_size = static_cast<std::int64_t>(read_le(&h[4], 2));
        ds_size = static_cast<std::int64_t>(read_le(&h[6], 2));
        padded = version == 1;
      }
    }
    if (dt_size < 16 || ds_size < 4) continue;
    const std::int64_t d = q + (padded ? static_cast<std::int64_t>(align(dt_size)) : dt_size);
    auto ds = bytes_at(d, static_cast<std::size_t>(ds_size));
    if (ds.empty()) continue;
    const int rank = ds[1];
    std::uint64_t count = 1;
    const std::size_t dims_at = ds[0] == 1 ? 8 : 4;
    if (ds[0] == 2 && ds[3] == 2) count = 0;  // null dataspace
    if (dims_at + static_cast<std::size_t>(rank) * lengths > ds.size()) continue;
    for (int r = 0; r < rank; ++r)
      count *= read_le(&ds[dims_at + static_cast<std::size_t>(r) * lengths], lengths);
    const std::int64_t e = d + (padded ? static_cast<std::int64_t>(align(ds_size)) : ds_size);
    if (count > kMaxVlenStrings || e + static_cast<std::int64_t>(count * descriptor) > file_size) {
      throw FileError(context + ": corrupt variable-length attribute at byte " + std::to_string(q));
    }
    auto data = bytes_at(e, static_cast<std::size_t>(count * descriptor));
    if (data.size() != count * descriptor) continue;
    for (std::uint64_t i = 0; i < count; ++i) {
      heaps.check_value(&data[i * descriptor], base_size, true,
                        str(i) + " at byte " + str(static_cast<std::uint64_t>(e)));
    }
  }
}

}  // namespace

void check_hdf5_groups(const std::string& path, const std::string& context) { Walker(path, context).run(); }

void check_vlen_attributes(const std::string& path, const std::string& context) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(context + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  scan_vlen_attributes(in, static_cast<std::int64_t>(in.tellg()), context);
}

void check_vlen_strings(const std::string& path, std::uint64_t at, std::uint64_t count,
                        const std::string& context) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(context + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<std::int64_t>(in.tellg());
  GlobalHeaps heaps(in, file_size, superblock_sizes(in, file_size, context), context);
  const std::uint64_t descriptor = 4 + heaps.sizes().offsets + 4;
  const auto size = static_cast<std::uint64_t>(file_size);
  if (at > size || count > (size - at) / descriptor) {
    const std::optional<std::uint64_t> n = mul(count, descriptor);
    throw FileError(context + ": variable-length strings refer to bytes " + str(at) + ".." +
                    (n && *n <= kUndefined - at ? str(at + *n) : std::string("2^64")) +
                    ", past the end of the " + str(size) + "-byte file");
  }
  std::vector<std::uint8_t> refs(static_cast<std::size_t>(count * descriptor));
  in.clear();
  in.seekg(static_cast<std::streamoff>(at));
  in.read(reinterpret_cast<char*>(refs.data()), static_cast<std::streamsize>(refs.size()));
  if (!in) throw FileError(context + ": cannot read its variable-length strings from the file");
  for (std::uint64_t i = 0; i < count; ++i) heaps.check_value(&refs[i * descriptor], 1, false, str(i));
}

}  // namespace reskit::hdf5
