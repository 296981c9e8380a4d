// reskit/data/loaders.h — reading labelled image data from files into a Dataset.
//
// Formats: SIGNS-style HDF5 (the notebook's train_signs.h5 / test_signs.h5), MNIST / Fashion-MNIST
// IDX files (gzipped or not), CIFAR-10 binary batches, and folders of PNG/JPEG images with one
// sub-folder per class. load_dataset() tells them apart from a path or a name; load_image() reads
// one picture for prediction, resized like Keras load_img (nearest neighbour).
//
// Files are untrusted: every size read from a header is checked against what the file holds
// before anything is allocated, and every failure is a reskit::FileError (reskit::Error for
// labels out of range) naming the file, the key, what was expected and what was found.
//
// Not here: augmentation and batching (data/dataset.h), model files (io/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reskit/data/dataset.h"
#include "reskit/tensor.h"

namespace reskit {

// Where Debian's dataset-fashion-mnist package puts the IDX files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct LoadOptions {
  // Folders of images: the size every image is resized to (nearest neighbour, as Keras
  // load_img); 0 (or -1, an unknown model input size) keeps the files' own size, which must then
  // be the same for all of them.
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  // Folders of images: 1 (grayscale), 3 (RGB) or 4 (RGBA). Other formats keep their own.
  int channels = 3;
  // HDF5: dataset names; empty finds them (<split>_set_x, <split>_set_y, list_classes).
  std::string x_key;
  std::string y_key;
  std::string classes_key;
  // The number of classes the labels must fit (a model's output width); 0 takes it from the data.
  int num_classes = 0;
};

// Resolves `spec` and loads split "train" or "test" of it. `spec` is a path or a name:
//   fashion-mnist[:train|:test]   Debian's dataset-fashion-mnist files (kFashionMnistDir)
//   *.h5, *.hdf5                  SIGNS-style HDF5
//   *-idx3-ubyte[.gz]             IDX images (labels from the matching *-idx1-ubyte[.gz])
//   *.bin                         one CIFAR-10 binary batch
//   a folder                      IDX files (train-* / t10k-*), CIFAR-10 batches
//                                 (data_batch_1..5.bin / test_batch.bin), HDF5 files named
//                                 <split>*.h5, or one sub-folder of PNG/JPEG images per class
// A ":train" or ":test" suffix on `spec` overrides `split`. Throws FileError listing the accepted
// kinds when it cannot tell what `spec` is.
Dataset load_dataset(const std::string& spec, const std::string& split = "train",
                     const LoadOptions& options = {});

// SIGNS layout: x (m, H, W, C) or (m, H, W) as uint8 (kept, scaled by 1/255 when batched) or
// float32/float64 (taken as it is); y (m,), (1, m) or (m, 1) of any integer type; optional
// list_classes (integers or strings). The keys are found automatically: the one *_set_x /
// *_set_y pair in the file, or the pair of `split` when there are several.
Dataset load_hdf5(const std::string& path, const std::string& split = "train",
                  const LoadOptions& options = {});

// IDX images (magic 0x00000803, (n, rows, cols) uint8) and labels (0x00000801, (n) uint8), each
// gzipped (.gz) or not. Class names default to "0".."9" (MNIST).
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::vector<std::string> class_names = {}, const LoadOptions& options = {});
// A folder of IDX files: train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] for split
// "train", t10k-* for "test". Fashion-MNIST class names when the folder's name says "fashion".
Dataset load_idx_folder(const std::string& dir, const std::string& split = "train",
                        const LoadOptions& options = {});
// Fashion-MNIST from Debian's package: 60000 (train) or 10000 (test) images (28, 28, 1).
Dataset load_fashion_mnist(const std::string& split = "train", const std::string& dir = kFashionMnistDir,
                           const LoadOptions& options = {});
const std::vector<std::string>& fashion_mnist_class_names();

// CIFAR-10 binary: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, each 32x32
// row-major), turned into (32, 32, 3) NHWC. `path` is one .bin file or a folder holding
// data_batch_1..5.bin (split "train") and test_batch.bin ("test"). Class names from
// batches.meta.txt beside the batches when present, else "0".."9".
Dataset load_cifar10(const std::string& path, const std::string& split = "train",
                     const LoadOptions& options = {});

// A folder with one sub-folder of PNG/JPEG images per class (class names: the sorted sub-folder
// names; images in sorted file order). Images are resized to options.rows x options.cols and
// converted to options.channels (grayscale expanded to RGB, as PIL's convert).
Dataset load_image_folder(const std::string& dir, const LoadOptions& options = {});

// A decoded picture: rows x cols x channels uint8, row-major (HWC).
struct Image {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;
};

// Decodes a PNG or JPEG file (told apart by content) into `channels` (1, 3 or 4) channels, as
// PIL's Image.convert("L" / "RGB" / "RGBA") would.
Image read_image(const std::string& path, int channels = 3);
// Nearest-neighbour resize as PIL's Image.NEAREST (Keras load_img's default): destination pixel
// d reads source floor((d + 0.5) * src / dst), clamped, computed as Pillow does (a position
// starting at src / dst / 2, advanced by src / dst in double), so where that product is exactly a
// whole number the rounding may pick the source pixel before it, as Pillow does.
Image resize_nearest(const Image& image, std::int64_t rows, std::int64_t cols);

// One picture for predict: (1, rows, cols, channels) float32 scaled by 1/255, resized as above
// (not resized when rows or cols is not positive, e.g. a model input of unknown size).
Tensor load_image(const std::string& path, std::int64_t rows, std::int64_t cols, int channels = 3);

}  // namespace reskit
