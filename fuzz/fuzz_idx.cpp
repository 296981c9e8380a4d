// MNIST-style IDX pairs (load_idx). The input is
//   byte 0          flags: bit 0 gzips the images file, bit 1 the labels file (here, with zlib)
//   bytes 1..4      n, little-endian: the images file is the next n bytes (or all that is left)
//   the rest        the labels file
// so that both the plain and the gzip path see fuzzed IDX content; a fuzzed gzip stream is
// reached by a file that starts with gzip's magic bytes. reskit::Error is the expected answer to
// bad input; anything else crashes.
#include <zlib.h>

#include <algorithm>
#include <vector>

#include "fuzz_util.h"
#include "reskit/data/loaders.h"

namespace {

std::string write_maybe_gzipped(const std::string& name, const std::uint8_t* data, std::size_t size,
                                bool gzip) {
  if (!gzip) return reskit_fuzz::write_temp(name, data, size);
  const std::string path = (reskit_fuzz::temp_dir() / (name + ".gz")).string();
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && gzwrite(f, data, static_cast<unsigned>(size)) != static_cast<int>(size)) std::abort();
  gzclose(f);
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::uint8_t flags = data[0];
  const std::uint32_t n = std::uint32_t{data[1]} | (std::uint32_t{data[2]} << 8) |
                          (std::uint32_t{data[3]} << 16) | (std::uint32_t{data[4]} << 24);
  const std::size_t rest = size - 5;
  const std::size_t images_size = std::min<std::size_t>(n, rest);
  const std::string images = write_maybe_gzipped("images-idx3-ubyte", data + 5, images_size, flags & 1);
  const std::string labels =
      write_maybe_gzipped("labels-idx1-ubyte", data + 5 + images_size, rest - images_size, flags & 2);
  try {
    reskit::Dataset d = reskit::load_idx(images, labels);
  } catch (const reskit::Error&) {
  }
  return 0;
}
