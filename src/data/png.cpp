// PNG decoding with libpng into 8-bit gray, gray + alpha, RGB or RGBA, as stored.
//
// Like PIL: palettes are expanded, 16-bit samples keep their high byte, a tRNS chunk becomes an
// alpha channel (dropped later if the caller asks for RGB). libpng reports errors by longjmp: every
// C++ object of decode_png is constructed before the setjmp, so none is skipped by it.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "data/loader_util.h"
#include "reskit/error.h"

namespace reskit::data_detail {

namespace {

struct PngState {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::size_t pos = 0;
  char message[256] = {};
};

void on_png_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void on_png_read(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (st->size - st->pos < n) png_error(png, "unexpected end of file (truncated)");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

// Frees libpng's structures however decode_png leaves.
struct PngGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngGuard() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

}  // namespace

Image decode_png(const std::string& path, std::span<const std::uint8_t> bytes) {
  Image img;
  std::vector<png_bytep> rows;
  PngState st;
  st.data = bytes.data();
  st.size = bytes.size();
  PngGuard guard;
  guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_png_error, on_png_warning);
  if (!guard.png) throw FileError(path + ": cannot start the PNG decoder");
  guard.info = png_create_info_struct(guard.png);
  if (!guard.info) throw FileError(path + ": cannot start the PNG decoder");
  if (setjmp(png_jmpbuf(guard.png))) {
    throw FileError(path + ": expected a valid PNG image, found: " + st.message);
  }
  png_structp png = guard.png;
  png_infop info = guard.info;
  png_set_read_fn(png, &st, on_png_read);
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  if (static_cast<std::int64_t>(width) * height > kMaxImagePixels) {
    std::snprintf(st.message, sizeof st.message, "%ux%u pixels, more than the limit of %lld", width, height,
                  static_cast<long long>(kMaxImagePixels));
    png_longjmp(png, 1);
  }
  // The image data is deflated: a header declaring more than the file can hold is refused before
  // the pixels are allocated (each row stored is a filter byte and the row's bytes).
  const auto stored_rows =
      static_cast<std::int64_t>(height) * (static_cast<std::int64_t>(png_get_rowbytes(png, info)) + 1);
  if (stored_rows > static_cast<std::int64_t>(bytes.size()) * kMaxDeflateRatio) {
    std::snprintf(st.message, sizeof st.message,
                  "%ux%u pixels (%lld bytes of image data), more than a %zu-byte file can hold", width,
                  height, static_cast<long long>(stored_rows), bytes.size());
    png_longjmp(png, 1);
  }
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_strip_16(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  const png_size_t row_bytes = png_get_rowbytes(png, info);
  if (channels < 1 || channels > 4 || row_bytes != static_cast<png_size_t>(width) * channels) {
    std::snprintf(st.message, sizeof st.message, "an unsupported pixel layout (%d channels, %zu bytes a row)",
                  channels, static_cast<std::size_t>(row_bytes));
    png_longjmp(png, 1);
  }
  img.rows = height;
  img.cols = width;
  img.channels = channels;
  img.pixels.resize(static_cast<std::size_t>(height) * row_bytes);
  rows.resize(height);
  for (png_uint_32 r = 0; r < height; ++r) rows[r] = img.pixels.data() + r * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  return img;
}

}  // namespace reskit::data_detail
