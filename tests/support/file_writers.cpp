// The test and fuzz-corpus file writers (file_writers.h).
#include "support/file_writers.h"

#include <png.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
// jpeglib.h needs FILE declared first.
#include <jpeglib.h>

namespace reskit_test {

namespace fs = std::filesystem;

namespace {

std::runtime_error cannot_write(const fs::path& p, const std::string& why = "") {
  return std::runtime_error("cannot write " + p.string() + (why.empty() ? "" : ": " + why));
}

void put_be32(Bytes& v, std::uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<std::uint8_t>(x >> s));
}

void check_size(const fs::path& p, int rows, int cols, int channels, const Bytes& px) {
  if (rows <= 0 || cols <= 0 || px.size() != static_cast<std::size_t>(rows) * cols * channels)
    throw cannot_write(p, "expected " + std::to_string(rows) + " x " + std::to_string(cols) + " x " +
                              std::to_string(channels) + " pixels, got " + std::to_string(px.size()) +
                              " bytes");
}

}  // namespace

Bytes pattern(std::size_t n, int mul, int add) {
  Bytes v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * mul + add) % 256);
  return v;
}

void write_bytes(const fs::path& p, const Bytes& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw cannot_write(p);
}

void write_gz(const fs::path& p, const Bytes& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  if (f == nullptr) throw cannot_write(p);
  const bool ok = bytes.empty() || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) > 0;
  if (gzclose(f) != Z_OK || !ok) throw cannot_write(p, "gzip");
}

Bytes idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes v;
  put_be32(v, magic);
  for (auto d : dims) put_be32(v, d);
  v.insert(v.end(), data.begin(), data.end());
  return v;
}

void write_png(const fs::path& p, int rows, int cols, int channels, const Bytes& px) {
  if (channels < 1 || channels > 4) throw cannot_write(p, "expected 1 to 4 channels");
  check_size(p, rows, cols, channels, px);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(cols);
  img.height = static_cast<png_uint_32>(rows);
  img.format = channels == 1   ? PNG_FORMAT_GRAY
               : channels == 2 ? PNG_FORMAT_GA
               : channels == 3 ? PNG_FORMAT_RGB
                               : PNG_FORMAT_RGBA;
  if (!png_image_write_to_file(&img, p.c_str(), 0, px.data(), 0, nullptr)) throw cannot_write(p, img.message);
}

void write_jpeg(const fs::path& p, int rows, int cols, int channels, const Bytes& px,
                const JpegOptions& options) {
  if (channels != 1 && channels != 3) throw cannot_write(p, "expected 1 or 3 channels");
  check_size(p, rows, cols, channels, px);
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (f == nullptr) throw cannot_write(p);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = static_cast<JDIMENSION>(cols);
  c.image_height = static_cast<JDIMENSION>(rows);
  c.input_components = channels;
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, options.quality, TRUE);
  if (options.progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row =
        const_cast<std::uint8_t*>(px.data()) + static_cast<std::size_t>(c.next_scanline) * cols * channels;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  if (std::fclose(f) != 0) throw cannot_write(p);
}

}  // namespace reskit_test
