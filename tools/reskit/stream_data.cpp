// The data of reskit train: image folders streamed (Keras's image_dataset_from_directory), HDF5
// streamed when it would not fit in memory, everything else loaded as before.
#include "stream_data.h"

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/runtime.h"

namespace reskit::cli {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A folder load_dataset reads as one sub-folder of images per class: sub-folders, and none of the
// files that make it IDX, CIFAR-10 or HDF5 data (load_dataset's order of checks).
bool is_image_folder(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  bool subfolders = false;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = lower(e.path().filename().string());
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory(ec)) {
      subfolders = true;
      continue;
    }
    if (name.find("idx3-ubyte") != std::string::npos || name == "data_batch_1.bin" ||
        name == "test_batch.bin" || ends_with(name, ".h5") || ends_with(name, ".hdf5"))
      return false;
  }
  return subfolders;
}

bool is_hdf5_file(const std::string& path) {
  const std::string name = lower(path);
  std::error_code ec;
  return fs::is_regular_file(path, ec) && (ends_with(name, ".h5") || ends_with(name, ".hdf5"));
}

std::unique_ptr<StreamDataset> first(std::unique_ptr<StreamDataset> s, std::int64_t limit) {
  if (limit > 0 && limit < s->size()) return s->subset(0, limit);
  return s;
}

}  // namespace

AugmentOptions parse_augment(const std::string& list) {
  AugmentOptions a;
  if (list.empty()) return a;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    if (item == "pad-crop") {
      a.pad_crop = 2;
    } else if (item == "flip") {
      a.horizontal_flip = true;
    } else if (item == "random-resized-crop") {
      a.random_resized_crop = true;
    } else {
      throw UsageError("--augment: expected a list of pad-crop, flip and random-resized-crop, got '" + item +
                       "'");
    }
    at = comma + 1;
  }
  return a;
}

TrainData open_train_data(const std::string& data, const std::string& validation, const DataFlags& f,
                          std::int64_t limit, std::uint64_t seed) {
  TrainData d;
  const StreamOptions so{
      .workers = f.workers, .cache = f.cache == "memory", .skip_bad = f.skip_bad, .seed = seed};
  ImageFolderOptions fo;
  fo.rows = 0, fo.cols = 0;  // the files' own size unless --input says
  if (!f.input.empty()) {
    const Shape in = parse_shape("--input", f.input);
    if (in.size() != 3 || (in[2] != 1 && in[2] != 3 && in[2] != 4))
      throw UsageError("--input: expected H,W,C with C 1, 3 or 4, got '" + f.input + "'");
    fo.rows = in[0], fo.cols = in[1], fo.channels = static_cast<int>(in[2]);
  }
  fo.interpolation = parse_interpolation(f.interpolation);
  fo.crop_to_aspect_ratio = f.crop_to_aspect_ratio;
  if (f.validation_split > 0.0 && !validation.empty())
    throw UsageError("--validation-split: expected it or --validation, got both");

  std::unique_ptr<StreamDataset> train;
  if (is_image_folder(data)) {
    if (f.validation_split > 0.0) {
      fo.validation_split = f.validation_split, fo.seed = seed;
      fo.subset = "training";
      train = open_image_folder(data, fo, so);
      fo.subset = "validation";
      d.val_stream = open_image_folder(data, fo, so);
      d.val_spec = "the validation subset of " + data + " (validation_split " +
                   std::to_string(f.validation_split) + ", seed " + std::to_string(seed) + ")";
    } else {
      train = open_image_folder(data, fo, so);
    }
  } else if (!f.input.empty() || f.validation_split > 0.0) {
    throw UsageError(std::string(!f.input.empty() ? "--input" : "--validation-split") +
                     ": expected --data to be a folder of images (one sub-folder per class), got '" + data +
                     "'");
  } else if (is_hdf5_file(data)) {
    // Streamed only when its pixels would not fit in the memory available.
    auto s = open_hdf5_stream(data, "train", {}, so);
    const std::int64_t bytes = s->size() * shape_numel(s->sample_shape());
    if (bytes > available_memory()) {
      std::cout << "Streaming " << data << ": its " << format_bytes(bytes) << " of pixels exceed the "
                << format_bytes(available_memory()) << " of memory available\n";
      train = std::move(s);
    }
  }
  if (!train) {
    d.train_memory = load_dataset(data, "train");
    if (!validation.empty()) {
      d.val_memory = load_dataset(validation, "test");
      d.val_spec = validation;
    } else {
      // The test split of the same data; a file holding one split gives it back whatever the split
      // asked, so then hold out the last 10% of the training samples instead, at least one (as
      // Keras's validation_split takes the last samples).
      d.val_memory = load_dataset(data, "test");
      d.val_spec = data + " (test split)";
      if (d.val_memory.source() == d.train_memory.source() && d.val_memory.size() == d.train_memory.size()) {
        const std::int64_t n = d.train_memory.size(), split_at = n - std::max<std::int64_t>(1, n / 10);
        if (split_at < 1)
          throw ConfigError("--data: '" + data + "' has too few samples to hold some out for validation");
        d.val_memory = d.train_memory.subset(split_at, n);
        d.train_memory = d.train_memory.subset(0, split_at);
        d.val_spec = "the last " + std::to_string(d.val_memory.size()) + " samples of " + data +
                     " (held out; no test split found)";
      }
    }
    if (limit > 0) {
      d.train_memory = d.train_memory.subset(0, std::min(limit, d.train_memory.size()));
      d.val_memory = d.val_memory.subset(0, std::min(limit, d.val_memory.size()));
    }
    d.train_batches = std::make_unique<DatasetBatches>(d.train_memory);
    d.val_batches = std::make_unique<DatasetBatches>(d.val_memory);
    return d;
  }
  if (!d.val_stream) {
    if (!validation.empty()) {
      if (is_image_folder(validation)) {
        fo.rows = train->sample_shape()[0], fo.cols = train->sample_shape()[1];
        d.val_stream = open_image_folder(validation, fo, so);
      } else {
        LoadOptions lo;
        lo.rows = train->sample_shape()[0], lo.cols = train->sample_shape()[1];
        lo.channels = static_cast<int>(train->sample_shape()[2]);
        d.val_memory = load_dataset(validation, "test", lo);
      }
      d.val_spec = validation;
    } else if (is_hdf5_file(data)) {
      d.val_stream = open_hdf5_stream(data, "test", {}, so);
      d.val_spec = data + " (test split)";
    }
    if (!d.val_stream && d.val_memory.empty()) {
      // Hold out the last 10% (at least one sample), as the in-memory path does.
      const std::int64_t n = train->size(), split_at = n - std::max<std::int64_t>(1, n / 10);
      if (split_at < 1)
        throw ConfigError("--data: '" + data + "' has too few samples to hold some out for validation");
      d.val_stream = train->subset(split_at, n);
      train = train->subset(0, split_at);
      d.val_spec = "the last " + std::to_string(d.val_stream->size()) + " samples of " + data +
                   " (held out; no test split found)";
    } else if (d.val_stream && d.val_stream->source() == train->source() &&
               d.val_stream->size() == train->size()) {
      const std::int64_t n = train->size(), split_at = n - std::max<std::int64_t>(1, n / 10);
      d.val_stream = train->subset(split_at, n);
      train = train->subset(0, split_at);
      d.val_spec = "the last " + std::to_string(d.val_stream->size()) + " samples of " + data +
                   " (held out; no test split found)";
    }
  }
  d.train_stream = first(std::move(train), limit);
  if (d.val_stream) {
    d.val_stream = first(std::move(d.val_stream), limit);
  } else {
    if (limit > 0) d.val_memory = d.val_memory.subset(0, std::min(limit, d.val_memory.size()));
    d.val_batches = std::make_unique<DatasetBatches>(d.val_memory);
  }
  return d;
}

}  // namespace reskit::cli
