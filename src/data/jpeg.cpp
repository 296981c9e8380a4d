// JPEG decoding with libjpeg(-turbo) into 8-bit gray or RGB, as stored.
//
// The library's defaults (islow DCT, fancy upsampling) are PIL's. A premature end of data is an
// error, as PIL's "image file is truncated"; other libjpeg warnings are ignored, as PIL does.
// CMYK/YCCK files are refused. A caller may ask for DCT-domain scaling (scale_num / 8), as Pillow's
// draft mode does. libjpeg reports errors by longjmp: every C++ object of decode_jpeg
// is constructed before the setjmp, so none is skipped by it.
#include <csetjmp>
#include <cstdio>
// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "data/loader_util.h"
#include "reskit/error.h"

namespace reskit::data_detail {

namespace {

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

[[noreturn]] void on_jpeg_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) on_jpeg_error(cinfo);
}

struct JpegGuard {
  jpeg_decompress_struct cinfo;
  volatile bool created = false;
  ~JpegGuard() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

thread_local std::vector<std::uint8_t> spare_pixels;

}  // namespace

void recycle_pixels(std::vector<std::uint8_t>&& pixels) {
  if (pixels.capacity() > spare_pixels.capacity()) spare_pixels = std::move(pixels);
}

Image decode_jpeg(const std::string& path, std::span<const std::uint8_t> bytes, DecodeScale scale,
                  void* context) {
  Image img;
  JpegError err;
  JpegGuard guard;
  jpeg_decompress_struct& cinfo = guard.cinfo;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_jpeg_error;
  err.mgr.emit_message = on_jpeg_message;
  if (setjmp(err.jump)) {
    throw FileError(path + ": expected a valid JPEG image, found: " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  guard.created = true;
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<std::int64_t>(cinfo.image_width) * cinfo.image_height > kMaxImagePixels) {
    std::snprintf(err.message, sizeof err.message, "%ux%u pixels, more than the limit of %lld",
                  cinfo.image_width, cinfo.image_height, static_cast<long long>(kMaxImagePixels));
    std::longjmp(err.jump, 1);
  }
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      std::snprintf(err.message, sizeof err.message, "a CMYK image; expected grayscale or RGB (YCbCr)");
      std::longjmp(err.jump, 1);
    default:
      cinfo.out_color_space = JCS_RGB;
  }
  if (scale) {
    // Called outside libjpeg: an exception from it never crosses libjpeg's frames.
    const std::int64_t eighths = scale(context, cinfo.image_height, cinfo.image_width);
    if (eighths >= 1 && eighths < 8) {
      cinfo.scale_num = static_cast<unsigned>(eighths);
      cinfo.scale_denom = 8;
    }
  }
  jpeg_start_decompress(&cinfo);
  const auto row_bytes = static_cast<std::size_t>(cinfo.output_width) * cinfo.output_components;
  img.rows = cinfo.output_height;
  img.cols = cinfo.output_width;
  img.channels = cinfo.output_components;
  img.pixels = std::move(spare_pixels);  // every byte is written below
  spare_pixels = {};
  img.pixels.resize(row_bytes * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.pixels.data() + static_cast<std::size_t>(cinfo.output_scanline) * row_bytes;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      std::snprintf(err.message, sizeof err.message, "no data for row %u", cinfo.output_scanline);
      std::longjmp(err.jump, 1);
    }
  }
  jpeg_finish_decompress(&cinfo);
  return img;
}

}  // namespace reskit::data_detail
