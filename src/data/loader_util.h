// Internal helpers of the dataset loaders: checked file reading, class-name defaults, the
// sanity limits on sizes read from untrusted headers, and the image codecs (png.cpp, jpeg.cpp).
// Not part of the public API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "reskit/data/loaders.h"
#include "reskit/data/stream.h"
#include "reskit/error.h"

namespace reskit::data_detail {

// Limits on what an untrusted header may ask for.
inline constexpr std::int64_t kMaxClasses = 1 << 16;
// PIL's MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3), its decompression-bomb threshold.
inline constexpr std::int64_t kMaxImagePixels = 89478485;
// deflate cannot expand data more than about 1032:1; a gzip file claiming more is lying.
inline constexpr std::int64_t kMaxDeflateRatio = 1032;

// The size of a regular file; throws FileError naming `what` (e.g. "CIFAR-10 batch") when it
// is missing or not a regular file.
std::int64_t file_size(const std::string& path, const std::string& what);
// The whole file; throws FileError when it cannot be read completely.
std::vector<std::uint8_t> read_file(const std::string& path, const std::string& what);

// a * b, throwing FileError naming `where` when it overflows int64 (hostile headers).
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& where);

// "0", "1", …, "n-1".
std::vector<std::string> numbered_class_names(std::int64_t n);
// Labels, names and num_classes reconciled: num_classes is max(names, max label + 1) or
// options.num_classes when set; names are padded with numbers up to num_classes. Throws
// FileError naming `where` for a label beyond kMaxClasses or more names than num_classes.
int resolve_classes(const std::string& where, const std::vector<std::int32_t>& labels,
                    std::vector<std::string>& names, const LoadOptions& options);

// Raw decoders: 8 bits per channel, 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels
// as stored. Throw FileError naming `path` on malformed or truncated data.
Image decode_png(const std::string& path, std::span<const std::uint8_t> bytes);
// With `scale`, decode_jpeg asks it for the scale (eighths) once it knows the stored size, and
// decodes in the DCT domain at that scale (scale_num / 8).
Image decode_jpeg(const std::string& path, std::span<const std::uint8_t> bytes, DecodeScale scale = nullptr,
                  void* context = nullptr);
// A picture's storage handed back once its pixels are used: the next JPEG this thread decodes
// writes into it instead of new memory (one buffer kept per thread, the last handed back). Saves
// a stream's workers an allocation, and fresh zeroed pages from the kernel, per picture.
void recycle_pixels(std::vector<std::uint8_t>&& pixels);
// read_image (loaders.h), with a JPEG decoded at the scale `scale` asks for; a PNG's size is told
// to `scale` too (and its answer ignored).
Image read_image_scaled(const std::string& path, int channels, DecodeScale scale, void* context);

// Whether a path names Fashion-MNIST ("fashion" in it, any case): its IDX files get that
// dataset's class names.
bool path_says_fashion(const std::string& path);

// f(), with std::filesystem errors (permissions, broken links) turned into FileError naming `where`.
template <class F>
decltype(auto) with_fs_errors(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const std::filesystem::filesystem_error& e) {
    throw FileError(where + ": " + e.what());
  }
}

// Lower-case copy (ASCII).
std::string lower(std::string s);
bool ends_with(const std::string& s, const std::string& suffix);

}  // namespace reskit::data_detail
