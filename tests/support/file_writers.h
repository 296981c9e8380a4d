// Writers of small data files for the tests and the fuzz corpora: raw and gzipped bytes, IDX
// framing, PNG (libpng) and JPEG (libjpeg) pictures, and a repeatable byte pattern. One set, so
// that a loader test and a fuzz seed write a format the same way. Every writer throws
// std::runtime_error naming the file when it cannot write it. Not part of reskit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace reskit_test {

using Bytes = std::vector<std::uint8_t>;

// n bytes (i * mul + add) % 256: pixels that differ from one another, the same every run.
Bytes pattern(std::size_t n, int mul = 7, int add = 3);

void write_bytes(const std::filesystem::path& p, const Bytes& bytes);
// gzip framing (zlib's gzwrite), as Debian ships the Fashion-MNIST files.
void write_gz(const std::filesystem::path& p, const Bytes& bytes);

// An IDX file: the big-endian magic (0x0000080N for N dimensions of uint8), each dimension as a
// big-endian 32-bit count, then the data.
Bytes idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data);

// rows x cols x channels, 8 bits, channels 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
void write_png(const std::filesystem::path& p, int rows, int cols, int channels, const Bytes& px);

struct JpegOptions {
  int quality = 90;
  bool progressive = false;
};
// rows x cols x channels, channels 1 (gray) or 3 (RGB).
void write_jpeg(const std::filesystem::path& p, int rows, int cols, int channels, const Bytes& px,
                const JpegOptions& options = {});

}  // namespace reskit_test
