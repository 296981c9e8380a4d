// reskit/data/stream.h — datasets bigger than memory: samples read and decoded on demand by a pool
// of worker threads, batches prefetched ahead of the training step.
//
// A StreamDataset is a BatchSource (data/batch_source.h) over a SampleReader, which hands out
// sample i by index: a folder of PNG/JPEG images with one sub-folder per class (Keras's
// image_dataset_from_directory: class names and labels from the sub-folders, image_size with an
// interpolation, crop_to_aspect_ratio, color_mode, validation_split with subset and seed), or a
// SIGNS-style HDF5 file read one sample at a time. For each epoch fit gives the order (its
// shuffle); workers take the epoch's samples in that order, each decoded, cropped, resized and
// augmented into a slot of a ring of `prefetch` batches, and the training thread takes the
// batches in step order.
//
// Determinism: every random choice for a sample (random resized crop, flip, pad-and-crop) comes
// from a generator seeded by (StreamOptions::seed, epoch, sample index), so the batches are the
// same bits for any number of workers, in two runs, and after a resume inside an epoch (fit's
// checkpoint keeps the order and the step; nothing else is needed). A worker's error reaches the
// training thread when it asks for the batch holding that sample, as an Error naming the file.
//
// Sharding (data parallelism): shard_order() cuts an epoch's order into the part one rank reads and
// decodes: its slice of every global batch. A sample's augmentation depends on (seed, epoch, sample
// index) only, so N ranks together make the very samples one process makes for the same batch.
//
// Not here: the shuffle (fit's), in-memory datasets (data/dataset.h), file formats themselves
// (data/loaders.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "reskit/data/batch_source.h"
#include "reskit/data/loaders.h"

namespace reskit {

// TensorFlow's tf.image.resize methods (Keras image_dataset_from_directory's `interpolation`).
enum class Interpolation { bilinear, nearest, bicubic, area };
// "bilinear", "nearest", "bicubic", "area"; ConfigError listing them otherwise.
Interpolation parse_interpolation(const std::string& name);
const char* interpolation_name(Interpolation interpolation);

// Keras image_dataset_from_directory's arguments (labels "inferred", label_mode "categorical").
struct ImageFolderOptions {
  // image_size: every picture is resized to rows x cols (Keras's default 256 x 256); 0 takes the
  // first file's size (others are resized to it).
  std::int64_t rows = 256;
  std::int64_t cols = 256;
  int channels = 3;  // color_mode: 1 "grayscale", 3 "rgb", 4 "rgba"
  Interpolation interpolation = Interpolation::bilinear;
  // Crop the largest centred box of the target's aspect ratio before resizing (no distortion).
  bool crop_to_aspect_ratio = false;
  // Keras's split: the file list (classes in order, files sorted) is shuffled by
  // numpy.random.RandomState(seed).shuffle (when shuffle), then "validation" is its last
  // int(validation_split * n) files and "training" the rest.
  double validation_split = 0.0;
  std::string subset;  // "training" or "validation" (with validation_split)
  bool shuffle = true;
  std::uint64_t seed = 0;
  // The number of classes the labels must fit (a model's output width); 0: the sub-folders'.
  int num_classes = 0;
};

struct StreamOptions {
  int workers = 0;   // decoding threads; 0: default_data_workers()
  int prefetch = 2;  // batches decoded ahead of the training step (at least 1)
  // Keep each sample after its first decode (tf.data's cache()): the resized picture, or, with
  // random resized crop, the whole decoded picture (the crop varies by epoch).
  bool cache = false;
  // An unreadable file (corrupt, truncated, not an image): false fails with an Error naming it;
  // true leaves it out of its batch and end_epoch() reports the count.
  bool skip_bad = false;
  std::uint64_t seed = 0;  // the per-sample random streams: (seed, epoch, sample index)
  // JPEG: decode at 1/2, 1/4 or 1/8 scale in the DCT (libjpeg's scale_num / scale_denom, as
  // Pillow's draft mode) where the region to resize is still at least the target size.
  bool dct_scaling = true;
};

// Where a stream's time went (StreamDataset::times()): seconds summed over the threads that did
// the work, so that a stage's cost per image is its seconds / samples whatever the worker count.
struct StreamTimes {
  double decode = 0;   // workers: reading and decoding files (a cached sample costs nothing here)
  double resize = 0;   // workers: crop and resize
  double augment = 0;  // workers: flip and pad-and-crop into the batch's slot
  double batch = 0;    // next_batch: the batch as x's dtype (scaled by 1/255) and one-hot y
  std::int64_t samples = 0;
};

// Hardware threads less the training threads (num_threads()), at least 1.
int default_data_workers();

// What a worker may do to the decoding of one picture: told its stored size (rows, cols), it
// returns the JPEG scale in eighths (8: full size; 4, 2, 1: 1/2, 1/4, 1/8). PNG ignores it.
using DecodeScale = std::int64_t (*)(void* context, std::int64_t rows, std::int64_t cols);

// Samples by index, read by the workers at once (every method is thread-safe).
class SampleReader {
 public:
  virtual ~SampleReader() = default;
  virtual std::int64_t size() const = 0;
  virtual std::int32_t label(std::int64_t i) const = 0;
  // The file (and, inside a file, the sample) for messages.
  virtual std::string name(std::int64_t i) const = 0;
  // Sample i as stored (a picture at its own size, or at the scale `scale` returns); FileError
  // naming the file when it cannot be read or decoded.
  virtual Image read(std::int64_t i, DecodeScale scale, void* context) const = 0;
};

class StreamDataset final : public BatchSource {
 public:
  // `sample_shape` (H, W, C): what every sample is resized (and converted) to.
  StreamDataset(std::shared_ptr<const SampleReader> reader, std::string source, Shape sample_shape,
                int num_classes, std::vector<std::string> class_names, Interpolation interpolation,
                bool crop_to_aspect_ratio, StreamOptions options);
  ~StreamDataset() override;
  StreamDataset(const StreamDataset&) = delete;
  StreamDataset& operator=(const StreamDataset&) = delete;

  std::int64_t size() const override;
  const Shape& sample_shape() const override { return sample_shape_; }
  int num_classes() const override { return num_classes_; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  const std::string& source() const override { return source_; }
  void start_epoch(int epoch, std::span<const std::int64_t> order, std::int64_t batch_size,
                   std::int64_t first_step, const AugmentOptions& augment, std::mt19937_64* gen) override;
  void next_batch(std::int64_t step, Tensor& x, Tensor& y) override;
  std::string end_epoch() override;

  // Samples [begin, end) as a stream of their own (the same reader, options and cache policy).
  std::unique_ptr<StreamDataset> subset(std::int64_t begin, std::int64_t end) const;
  const StreamOptions& options() const { return options_; }
  int workers() const;
  std::int32_t label(std::int64_t i) const { return reader_->label(i); }
  // Files left out of the batches of the last epoch (skip_bad).
  std::int64_t skipped() const { return skipped_; }
  // The time spent on this stream's samples since it was opened (all epochs).
  StreamTimes times() const;
  // Sample i of `epoch` as the workers make it, with the augmentation: (H, W, C) uint8.
  Image sample(int epoch, std::int64_t i, const AugmentOptions& augment = {}) const;

 private:
  struct Pipeline;
  struct Cache;
  struct Timing;
  void stop();
  // Sample i of `epoch`, augmented, into out (H * W * C bytes). Called by the workers at once.
  void make_sample(int epoch, std::int64_t i, const AugmentOptions& augment, std::uint8_t* out) const;

  std::shared_ptr<const SampleReader> reader_;
  std::string source_;
  Shape sample_shape_;
  int num_classes_ = 0;
  std::vector<std::string> class_names_;
  Interpolation interpolation_;
  bool crop_to_aspect_ratio_ = false;
  StreamOptions options_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<Timing> timing_;
  std::unique_ptr<Pipeline> pipeline_;
  std::int64_t skipped_ = 0;
};

// A folder of images (Keras's image_dataset_from_directory; see ImageFolderOptions), streamed.
// FileError naming the folder when it has no class sub-folders or no images; ConfigError for
// inconsistent options.
std::unique_ptr<StreamDataset> open_image_folder(const std::string& dir,
                                                 const ImageFolderOptions& options = {},
                                                 const StreamOptions& stream = {});
// A SIGNS-style HDF5 file (load_hdf5's layout, uint8 pixels) read one sample at a time.
std::unique_ptr<StreamDataset> open_hdf5_stream(const std::string& path, const std::string& split = "train",
                                                const LoadOptions& options = {},
                                                const StreamOptions& stream = {});

// The files of a folder in Keras's order (classes in sorted order; in each, files sorted by
// folder then name), shuffled and split as ImageFolderOptions says; labels and class names with
// them. The paths are kept in one string (a few bytes a file, not a std::string each): the index
// is what a stream's memory grows by with the number of files.
struct FolderIndex {
  std::string root;                   // the folder, joined with each file's path below it
  std::string paths;                  // every file's path below root, each ended by '\0'
  std::vector<std::uint64_t> starts;  // where file i's path begins in `paths`
  std::vector<std::int32_t> labels;
  std::vector<std::string> class_names;
  std::int64_t size() const { return static_cast<std::int64_t>(starts.size()); }
  // root / file i's path
  std::string file(std::int64_t i) const;
  void add(const std::string& path, std::int32_t label);
};
FolderIndex index_image_folder(const std::string& dir, const ImageFolderOptions& options = {});
// numpy.random.RandomState(seed).shuffle(v) for a list: the same permutation, bit for bit.
void numpy_shuffle(std::vector<std::int64_t>& v, std::uint32_t seed);

// The part of an epoch's order that rank `rank` of `world` reads when fit trains data-parallel on
// global batches of `global_batch` samples: of each global batch order[k*B, k*B + B), its slice
// `rank` of `world` contiguous slices, the first (size mod world) one longer (the rule of
// distributed::shard_range, which fit's gradient scale uses); a last batch with fewer samples than
// ranks is read by no rank (fit skips it). The parts are concatenated in step order, so every full
// step holds global_batch / world samples: the rank's stream runs with that batch size and the
// same step numbers as fit. The order must be the same on every rank (the same seed).
// ConfigError when global_batch does not split evenly over the ranks.
std::vector<std::int64_t> shard_order(std::span<const std::int64_t> order, std::int64_t global_batch,
                                      int rank, int world);

}  // namespace reskit
