// load_dataset: tells the supported kinds of data apart from a name, a file (extension or
// signature) or a folder (what it holds), and hands over to the loader of that kind.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/loader_util.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"

namespace reskit {

using namespace data_detail;
namespace fs = std::filesystem;

namespace {

const char* const kAccepted =
    "expected one of: the name fashion-mnist[:train|:test]; a SIGNS-style HDF5 file (.h5, with "
    "train_set_x / train_set_y); an IDX images file (*-images-idx3-ubyte[.gz]) or a folder of IDX files; "
    "a CIFAR-10 binary batch (.bin) or a folder with data_batch_1..5.bin / test_batch.bin; a folder with "
    "one sub-folder of PNG/JPEG images per class";

bool has_hdf5_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in.gcount() == 8 && std::equal(sig, sig + 8, "\x89HDF\r\n\x1a\n");
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

Dataset load_folder(const std::string& dir, const std::string& split, const LoadOptions& options) {
  std::vector<std::string> files, h5_for_split;
  bool subfolders = false, idx = false, cifar = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory()) {
      subfolders = true;
      continue;
    }
    files.push_back(name);
    const std::string l = lower(name);
    if (l.find("idx3-ubyte") != std::string::npos) idx = true;
    if (l == "data_batch_1.bin" || l == "test_batch.bin") cifar = true;
    if ((ends_with(l, ".h5") || ends_with(l, ".hdf5")) && l.rfind(lower(split), 0) == 0) {
      h5_for_split.push_back(e.path().string());
    }
  }
  if (idx) return load_idx_folder(dir, split, options);
  if (cifar) return load_cifar10(dir, split, options);
  if (h5_for_split.size() == 1) return load_hdf5(h5_for_split.front(), split, options);
  if (subfolders) return load_image_folder(dir, options);
  std::sort(files.begin(), files.end());
  std::string found;
  for (std::size_t i = 0; i < files.size() && i < 8; ++i) found += (i ? ", " : "") + files[i];
  if (files.size() > 8) found += ", …";
  if (h5_for_split.size() > 1) {
    throw FileError(dir + ": cannot tell which HDF5 file holds split '" + split + "' (found " + found +
                    "); give the file itself");
  }
  throw FileError(dir + ": cannot tell what data this folder holds (found " +
                  (found.empty() ? std::string("an empty folder") : found) + "); " + kAccepted);
}

Dataset load_file(const std::string& path, const std::string& split, const LoadOptions& options) {
  const std::string name = lower(fs::path(path).filename().string());
  if (ends_with(name, ".h5") || ends_with(name, ".hdf5") || ends_with(name, ".he5") ||
      has_hdf5_signature(path)) {
    return load_hdf5(path, split, options);
  }
  if (name.find("idx3-ubyte") != std::string::npos) {
    const fs::path p(path);
    const std::string labels_name =
        replace_once(replace_once(p.filename().string(), "idx3", "idx1"), "images", "labels");
    fs::path labels = p.parent_path() / labels_name;
    if (!fs::exists(labels)) {
      // the same name with or without .gz
      const fs::path other = ends_with(lower(labels_name), ".gz")
                                 ? p.parent_path() / labels_name.substr(0, labels_name.size() - 3)
                                 : p.parent_path() / (labels_name + ".gz");
      if (!fs::exists(other)) {
        throw FileError(path + ": expected its labels in " + labels.string() +
                        "[.gz] beside it, found no such file");
      }
      labels = other;
    }
    return load_idx(path, labels.string(),
                    path_says_fashion(path) ? fashion_mnist_class_names() : std::vector<std::string>{},
                    options);
  }
  if (name.find("idx1-ubyte") != std::string::npos) {
    throw FileError(
        path +
        ": expected the IDX images file (*-images-idx3-ubyte[.gz]) or its folder, found the labels "
        "file");
  }
  if (ends_with(name, ".bin")) return load_cifar10(path, split, options);
  if (ends_with(name, ".png") || ends_with(name, ".jpg") || ends_with(name, ".jpeg")) {
    throw FileError(path +
                    ": expected a dataset, found a single image; give the folder holding one sub-folder of "
                    "images per class (load_image reads one image for predict)");
  }
  throw FileError(path + ": cannot tell what data this file holds; " + std::string(kAccepted));
}

}  // namespace

Dataset load_dataset(const std::string& spec, const std::string& split, const LoadOptions& options) {
  std::string path = spec, which = split;
  for (const char* s : {"train", "test"}) {
    const std::string suffix = std::string(":") + s;
    if (ends_with(spec, suffix) && !fs::exists(spec)) {
      path = spec.substr(0, spec.size() - suffix.size());
      which = s;
    }
  }
  const std::string name = lower(path);
  if ((name == "fashion-mnist" || name == "fashion_mnist") && !fs::exists(path)) {
    return load_fashion_mnist(which, kFashionMnistDir, options);
  }
  if (path.empty()) throw FileError("load_dataset: got an empty path; " + std::string(kAccepted));
  return with_fs_errors(path, [&] {
    if (!fs::exists(path)) throw FileError(path + ": no such file or folder; " + std::string(kAccepted));
    if (fs::is_directory(path)) return load_folder(path, which, options);
    return load_file(path, which, options);
  });
}

}  // namespace reskit
