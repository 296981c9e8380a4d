// Folders of images as streams: the file index in Keras's order with its validation split
// (image_dataset_from_directory, keras/utils/dataset_utils.py), and the reader that decodes one
// file per sample.
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <string_view>

#include "data/loader_util.h"
#include "reskit/data/stream.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

class FolderReader final : public SampleReader {
 public:
  FolderReader(FolderIndex index, int channels) : index_(std::move(index)), channels_(channels) {}
  std::int64_t size() const override { return index_.size(); }
  std::int32_t label(std::int64_t i) const override { return index_.labels[static_cast<std::size_t>(i)]; }
  std::string name(std::int64_t i) const override { return index_.file(i); }
  Image read(std::int64_t i, DecodeScale scale, void* context) const override {
    const std::string path = index_.file(i);
    return with_fs_errors(path, [&] { return read_image_scaled(path, channels_, scale, context); });
  }

 private:
  FolderIndex index_;
  int channels_;
};

}  // namespace

void numpy_shuffle(std::vector<std::int64_t>& v, std::uint32_t seed) {
  // RandomState(seed) seeds MT19937 with init_genrand(seed), as std::mt19937(seed); shuffle swaps
  // v[i] with v[j], j = random_interval(i) (masked draws of 32 bits, rejected above i), for i
  // from n - 1 down to 1.
  std::mt19937 mt(seed);
  for (std::size_t i = v.size(); i-- > 1;) {
    std::uint64_t mask = i;
    for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
    std::uint64_t j = 0;
    do {
      j = mt() & mask;
    } while (j > i);
    std::swap(v[i], v[static_cast<std::size_t>(j)]);
  }
}

std::string FolderIndex::file(std::int64_t i) const {
  return (fs::path(root) / (paths.data() + starts[static_cast<std::size_t>(i)])).string();
}

void FolderIndex::add(const std::string& path, std::int32_t label) {
  starts.push_back(paths.size());
  paths += path;
  paths += '\0';
  labels.push_back(label);
}

FolderIndex index_image_folder(const std::string& dir, const ImageFolderOptions& o) {
  return with_fs_errors(dir, [&] {
    if (!(o.validation_split >= 0.0 && o.validation_split < 1.0)) {
      throw ConfigError(dir + ": expected validation_split in [0, 1), got " +
                        std::to_string(o.validation_split));
    }
    if ((o.validation_split > 0.0) != !o.subset.empty()) {
      throw ConfigError(
          dir + ": expected validation_split and subset together (or neither), got validation_split " +
          std::to_string(o.validation_split) + " and subset '" + o.subset + "'");
    }
    if (!o.subset.empty() && o.subset != "training" && o.subset != "validation") {
      throw ConfigError(dir + ": expected subset \"training\" or \"validation\", got '" + o.subset + "'");
    }
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      throw FileError(dir +
                      ": expected a folder with one sub-folder of images per class, found no such folder");
    }
    FolderIndex index;
    index.root = dir;
    std::string loose_image;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (e.is_directory()) {
        index.class_names.push_back(name);
      } else if (loose_image.empty() && is_image_name(e.path())) {
        loose_image = name;
      }
    }
    if (index.class_names.empty()) {
      throw FileError(dir + ": expected one sub-folder of PNG/JPEG images per class, found " +
                      (loose_image.empty()
                           ? std::string("no sub-folders")
                           : "images directly in the folder (e.g. " + loose_image +
                                 "); put each class's images in a sub-folder named after it"));
    }
    std::sort(index.class_names.begin(), index.class_names.end());
    for (std::size_t k = 0; k < index.class_names.size(); ++k) {
      // Keras: os.walk's folders sorted by path, each folder's files sorted by name.
      const fs::path class_dir = fs::path(dir) / index.class_names[k];
      std::vector<std::string> found;  // paths below dir
      for (const auto& e :
           fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && is_image_name(e.path()) && name[0] != '.')
          found.push_back(e.path().lexically_relative(dir).string());
      }
      // by folder, then by name
      std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
        const std::size_t sa = a.rfind('/'), sb = b.rfind('/');
        const int by_folder = std::string_view(a).substr(0, sa).compare(std::string_view(b).substr(0, sb));
        return by_folder != 0 ? by_folder < 0
                              : std::string_view(a).substr(sa + 1) < std::string_view(b).substr(sb + 1);
      });
      for (const auto& path : found) index.add(path, static_cast<std::int32_t>(k));
    }
    if (index.size() == 0) {
      std::string list;
      for (const auto& c : index.class_names) list += (list.empty() ? "" : ", ") + c;
      throw FileError(dir + ": expected .png/.jpg/.jpeg images in its class sub-folders, found none in " +
                      list);
    }
    const std::int64_t n = index.size();
    std::vector<std::int64_t> keep(static_cast<std::size_t>(n));
    std::iota(keep.begin(), keep.end(), 0);
    if (o.shuffle && o.validation_split > 0.0) {
      if (o.seed > 0xffffffffULL)
        throw ConfigError(dir + ": expected a split seed below 2^32 (numpy's), got " +
                          std::to_string(o.seed));
      numpy_shuffle(keep, static_cast<std::uint32_t>(o.seed));
    }
    if (o.validation_split > 0.0) {
      const auto val = static_cast<std::int64_t>(o.validation_split * static_cast<double>(n));
      if (val == 0 || val == n) {
        throw ConfigError(dir + ": validation_split " + std::to_string(o.validation_split) + " of " +
                          std::to_string(n) + " files leaves " +
                          (val == 0 ? "no validation" : "no training") + " files");
      }
      const std::int64_t lo = o.subset == "training" ? 0 : n - val, hi = o.subset == "training" ? n - val : n;
      keep = std::vector<std::int64_t>(keep.begin() + lo, keep.begin() + hi);
    }
    if (static_cast<std::int64_t>(keep.size()) != n || !std::is_sorted(keep.begin(), keep.end())) {
      FolderIndex picked;
      picked.root = index.root;
      picked.class_names = index.class_names;
      for (std::int64_t i : keep) {
        picked.add(index.paths.data() + index.starts[static_cast<std::size_t>(i)],
                   index.labels[static_cast<std::size_t>(i)]);
      }
      index = std::move(picked);
    }
    return index;
  });
}

std::unique_ptr<StreamDataset> open_image_folder(const std::string& dir, const ImageFolderOptions& o,
                                                 const StreamOptions& stream) {
  if (o.channels != 1 && o.channels != 3 && o.channels != 4) {
    throw ConfigError(dir + ": expected color_mode with 1 (grayscale), 3 (rgb) or 4 (rgba) channels, got " +
                      std::to_string(o.channels));
  }
  if (o.rows < 0 || o.cols < 0 || (o.rows > 0) != (o.cols > 0)) {
    throw ConfigError(dir +
                      ": expected an image size with both rows and cols positive (or both 0, to keep the "
                      "files' size), got " +
                      std::to_string(o.rows) + "x" + std::to_string(o.cols));
  }
  FolderIndex index = index_image_folder(dir, o);
  std::vector<std::string> names = index.class_names;
  LoadOptions lo;
  lo.num_classes = o.num_classes;
  const int k = resolve_classes(dir, index.labels, names, lo);
  std::int64_t rows = o.rows, cols = o.cols;
  if (rows == 0) {
    // The first file's size, every other resized to it.
    const Image first = read_image(index.file(0), o.channels);
    rows = first.rows, cols = first.cols;
  }
  auto reader = std::make_shared<FolderReader>(std::move(index), o.channels);
  return std::make_unique<StreamDataset>(std::move(reader), dir, Shape{rows, cols, o.channels}, k,
                                         std::move(names), o.interpolation, o.crop_to_aspect_ratio, stream);
}

}  // namespace reskit
