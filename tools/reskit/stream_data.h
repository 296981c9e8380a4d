// The data a command trains or benchmarks on: an image folder as a stream (the default), a
// SIGNS-style HDF5 file streamed when its pixels do not fit in the memory available, or any
// other data in memory as before. The flags for it (--data-workers, --cache, --skip-bad-images,
// --input, --interpolation, --crop-to-aspect-ratio, --validation-split, --augment) are
// registered in flags.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "reskit/data/batch_source.h"
#include "reskit/data/dataset.h"
#include "reskit/data/stream.h"

namespace reskit::cli {

struct DataFlags {
  int workers = 0;
  std::string cache = "none";  // "none" or "memory"
  bool skip_bad = false;
  std::string input;  // "H,W,C": image folders are resized (and converted) to it
  std::string interpolation = "bilinear";
  bool crop_to_aspect_ratio = false;
  double validation_split = 0.0;  // image folders: Keras's split with --seed
  // --augment: absent "", given alone "pad-crop,flip" (random crop after padding 2 and flip),
  // or a list of pad-crop, flip, random-resized-crop.
  std::string augment;
};

// --augment's list as AugmentOptions; UsageError naming an unknown item.
AugmentOptions parse_augment(const std::string& list);

// Training and validation data for `data` (and `validation`, "" for the test split or a held-out
// part). In memory when `train_memory` is set; else streams.
struct TrainData {
  Dataset train_memory, val_memory;
  std::unique_ptr<StreamDataset> train_stream, val_stream;
  std::unique_ptr<DatasetBatches> train_batches, val_batches;
  std::string val_spec;
  bool streaming() const { return train_stream != nullptr; }
  BatchSource& train() { return train_stream ? static_cast<BatchSource&>(*train_stream) : *train_batches; }
  BatchSource& val() { return val_stream ? static_cast<BatchSource&>(*val_stream) : *val_batches; }
};

TrainData open_train_data(const std::string& data, const std::string& validation, const DataFlags& flags,
                          std::int64_t limit, std::uint64_t seed);

// reskit bench --data FOLDER (bench_data.cpp): the pipeline's own images/s over one pass of the
// folder, no model; input "" keeps the files' size.
struct DataBenchArgs {
  std::string data, input, augment, interpolation = "bilinear";
  int workers = 0, batch = 32;
  std::int64_t limit = 0;
  bool dct_scaling = true;
};
void run_data_bench(const DataBenchArgs& args);

}  // namespace reskit::cli
