// Pictures: PNG/JPEG decoding to a channel count (PIL's convert), nearest-neighbour resize (PIL's
// NEAREST, Keras load_img's default), one picture for predict, and folders of pictures with one
// sub-folder per class (Keras image_dataset_from_directory's layout and order).
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "data/loader_util.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
namespace fs = std::filesystem;

namespace {

bool starts_with_bytes(const std::vector<std::uint8_t>& b, std::initializer_list<std::uint8_t> sig) {
  return b.size() >= sig.size() && std::equal(sig.begin(), sig.end(), b.begin());
}

void check_channels(const std::string& where, int channels) {
  if (channels != 1 && channels != 3 && channels != 4) {
    throw ConfigError(where + ": expected 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, got " +
                      std::to_string(channels));
  }
}

// PIL's Image.convert between L, LA, RGB and RGBA: luma L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
// (ITU-R 601-2), gray expanded to R = G = B, alpha dropped or set to 255.
Image convert_channels(Image src, int channels) {
  if (src.channels == channels) return src;
  const int c = src.channels;
  const std::int64_t n = src.rows * src.cols;
  Image out{src.rows, src.cols, channels, std::vector<std::uint8_t>(static_cast<std::size_t>(n * channels))};
  const bool has_alpha = c == 2 || c == 4;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* p = src.pixels.data() + i * c;
    std::uint8_t* o = out.pixels.data() + i * channels;
    std::uint8_t rgb[3];
    if (c <= 2) {
      rgb[0] = rgb[1] = rgb[2] = p[0];
    } else {
      rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
    }
    const std::uint8_t alpha = has_alpha ? p[c - 1] : 255;
    if (channels == 1) {
      o[0] = c <= 2 ? p[0]
                    : static_cast<std::uint8_t>(
                          (19595u * rgb[0] + 38470u * rgb[1] + 7471u * rgb[2] + 0x8000u) >> 16);
    } else {
      o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
      if (channels == 4) o[3] = alpha;
    }
  }
  return out;
}

// Source index of each destination index, as Pillow's ImagingScaleAffine computes it: a
// position starting at half a step, advanced by src / dst in double, truncated.
std::vector<std::int64_t> nearest_table(std::int64_t src, std::int64_t dst) {
  std::vector<std::int64_t> table(static_cast<std::size_t>(dst));
  const double step = static_cast<double>(src) / static_cast<double>(dst);
  double pos = step * 0.5;
  for (std::int64_t d = 0; d < dst; ++d, pos += step) {
    table[d] = std::clamp<std::int64_t>(static_cast<std::int64_t>(pos), 0, src - 1);
  }
  return table;
}

bool is_image_name(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::string size_str(const Image& im) { return std::to_string(im.rows) + "x" + std::to_string(im.cols); }

}  // namespace

Image read_image(const std::string& path, int channels) {
  return read_image_scaled(path, channels, nullptr, nullptr);
}

Image data_detail::read_image_scaled(const std::string& path, int channels, DecodeScale scale,
                                     void* context) {
  check_channels(path, channels);
  const std::vector<std::uint8_t> bytes = read_file(path, "a PNG or JPEG image");
  Image img;
  if (starts_with_bytes(bytes, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'})) {
    img = decode_png(path, bytes);
    if (scale) scale(context, img.rows, img.cols);
  } else if (starts_with_bytes(bytes, {0xff, 0xd8, 0xff})) {
    img = decode_jpeg(path, bytes, scale, context);
  } else {
    std::string head;
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", bytes[i]);
      head += buf;
    }
    throw FileError(path + ": expected a PNG or JPEG image, found " +
                    (bytes.empty() ? std::string("an empty file") : "a file starting with bytes " + head));
  }
  return convert_channels(std::move(img), channels);
}

Image resize_nearest(const Image& image, std::int64_t rows, std::int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    throw ConfigError("resize_nearest: expected a positive target size, got " + std::to_string(rows) + "x" +
                      std::to_string(cols));
  }
  if (image.rows == rows && image.cols == cols) return image;
  const std::vector<std::int64_t> ys = nearest_table(image.rows, rows), xs = nearest_table(image.cols, cols);
  const int c = image.channels;
  Image out{rows, cols, c, std::vector<std::uint8_t>(static_cast<std::size_t>(rows * cols * c))};
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t q = 0; q < cols; ++q) {
      const std::uint8_t* p = image.pixels.data() + (ys[r] * image.cols + xs[q]) * c;
      std::copy(p, p + c, out.pixels.data() + (r * cols + q) * c);
    }
  return out;
}

Tensor load_image(const std::string& path, std::int64_t rows, std::int64_t cols, int channels) {
  Image img = read_image(path, channels);
  if (rows > 0 && cols > 0) img = resize_nearest(img, rows, cols);
  Tensor x = Tensor::uninitialized({1, img.rows, img.cols, img.channels}, DType::float32);
  float* out = x.data<float>();
  for (std::size_t i = 0; i < img.pixels.size(); ++i) out[i] = static_cast<float>(img.pixels[i]) / 255.0f;
  return x;
}

namespace {
Dataset load_image_folder_impl(const std::string& dir, const LoadOptions& options) {
  check_channels(dir, options.channels);
  if ((options.rows > 0) != (options.cols > 0)) {
    throw ConfigError(dir +
                      ": expected a target size with both rows and cols positive (or neither, to keep the "
                      "images' size), got " +
                      std::to_string(options.rows) + "x" + std::to_string(options.cols));
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw FileError(dir +
                    ": expected a folder with one sub-folder of images per class, found no such folder");
  }
  std::vector<std::string> classes;
  std::string loose_image;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory()) {
      classes.push_back(name);
    } else if (loose_image.empty() && is_image_name(e.path())) {
      loose_image = name;
    }
  }
  if (classes.empty()) {
    throw FileError(dir + ": expected one sub-folder of PNG/JPEG images per class, found " +
                    (loose_image.empty() ? std::string("no sub-folders")
                                         : "images directly in the folder (e.g. " + loose_image +
                                               "); put each class's images in a sub-folder named after it"));
  }
  std::sort(classes.begin(), classes.end());
  std::vector<std::string> files;
  std::vector<std::int32_t> labels;
  for (std::size_t k = 0; k < classes.size(); ++k) {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(dir) / classes[k],
                                                          fs::directory_options::follow_directory_symlink)) {
      if (e.is_regular_file() && is_image_name(e.path()) && e.path().filename().string()[0] != '.') {
        found.push_back(e.path().string());
      }
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
      files.push_back(std::move(f));
      labels.push_back(static_cast<std::int32_t>(k));
    }
  }
  if (files.empty()) {
    std::string list;
    for (const auto& c : classes) list += (list.empty() ? "" : ", ") + c;
    throw FileError(dir + ": expected .png/.jpg/.jpeg images in its class sub-folders, found none in " +
                    list);
  }
  const auto n = static_cast<std::int64_t>(files.size());
  const bool resize = options.rows > 0;
  std::int64_t rows = resize ? options.rows : 0, cols = resize ? options.cols : 0;
  const int channels = options.channels;
  std::vector<std::uint8_t> pixels;
  std::string first;
  Image first_image;
  for (std::int64_t i = 0; i < n; ++i) {
    Image img = read_image(files[i], channels);
    if (i == 0) {
      first = files[0];
      first_image = Image{img.rows, img.cols, img.channels, {}};
      if (rows == 0) rows = img.rows, cols = img.cols;
      // Grown as images arrive beyond 256 MiB, so a huge first picture reserves nothing.
      const std::int64_t total =
          checked_mul(checked_mul(checked_mul(n, rows, dir), cols, dir), channels, dir);
      pixels.reserve(static_cast<std::size_t>(std::min<std::int64_t>(total, std::int64_t{1} << 28)));
    }
    if (resize) {
      img = resize_nearest(img, rows, cols);
    } else if (img.rows != rows || img.cols != cols) {
      throw FileError(dir + ": expected images of one size (or a target size to resize them to), found " +
                      first + " (" + size_str(first_image) + ") and " + files[i] + " (" + size_str(img) +
                      ")");
    }
    pixels.insert(pixels.end(), img.pixels.begin(), img.pixels.end());
  }
  const int k = resolve_classes(dir, labels, classes, options);
  return Dataset::from_uint8(dir, {n, rows, cols, channels}, std::move(pixels), std::move(labels), k,
                             std::move(classes));
}
}  // namespace

Dataset load_image_folder(const std::string& dir, const LoadOptions& options) {
  return with_fs_errors(dir, [&] { return load_image_folder_impl(dir, options); });
}

}  // namespace reskit
