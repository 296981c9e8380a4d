// reskit bench --data FOLDER: the input pipeline's own speed, no model. One pass over an image
// folder as training reads it (a shuffled order, workers reading, decoding, cropping, resizing and
// augmenting into the ring of batches, each batch taken as float32 by this thread), then images/s,
// the process's peak resident memory (getrusage: the workers are threads of this one process) and
// where the workers' time went per image.
#include <fmt/core.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <vector>

#include "commands.h"
#include "reskit/data/stream.h"
#include "reskit/error.h"
#include "reskit/runtime.h"
#include "stream_data.h"

namespace reskit::cli {

void run_data_bench(const DataBenchArgs& a) {
  ImageFolderOptions fo;
  fo.rows = 0, fo.cols = 0;  // the files' own size unless --input says
  if (!a.input.empty()) {
    const Shape in = parse_shape("--input", a.input);
    if (in.size() != 3 || (in[2] != 1 && in[2] != 3 && in[2] != 4))
      throw UsageError("--input: expected H,W,C with C 1, 3 or 4, got '" + a.input + "'");
    fo.rows = in[0], fo.cols = in[1], fo.channels = static_cast<int>(in[2]);
  }
  fo.interpolation = parse_interpolation(a.interpolation);
  const AugmentOptions augment = parse_augment(a.augment);
  const StreamOptions so{.workers = a.workers, .seed = 0, .dct_scaling = a.dct_scaling};
  std::unique_ptr<StreamDataset> data = open_image_folder(a.data, fo, so);
  if (a.limit > 0 && a.limit < data->size()) data = data->subset(0, a.limit);

  const std::int64_t n = data->size(), b = a.batch;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 gen(0);
  std::shuffle(order.begin(), order.end(), gen);  // as fit shuffles an epoch
  const std::int64_t steps = (n + b - 1) / b;
  Tensor x = Tensor::uninitialized({1}, DType::float32), y;

  const auto start = std::chrono::steady_clock::now();
  data->start_epoch(0, order, b, 0, augment, &gen);
  std::int64_t images = 0;
  for (std::int64_t step = 0; step < steps; ++step) {
    data->next_batch(step, x, y);
    images += x.dim(0);
  }
  const std::string note = data->end_epoch();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!note.empty()) fmt::print("{}\n", note);

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const Shape& s = data->sample_shape();
  fmt::print(
      "data pipeline: {} images of {}x{}x{}, batch {}, data workers {}, augment {}, JPEG DCT scaling {}\n",
      images, s[0], s[1], s[2], b, data->workers(), a.augment.empty() ? "none" : a.augment,
      a.dct_scaling ? "on" : "off");
  const StreamTimes t = data->times();
  const double per = t.samples > 0 ? 1e3 / static_cast<double>(t.samples) : 0.0;
  fmt::print("worker ms per image: decode {:.3f} crop+resize {:.3f} augment {:.3f}; batch assembly {:.3f}\n",
             t.decode * per, t.resize * per, t.augment * per, t.batch * per);
  fmt::print("peak_rss_mb={:.1f}\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
  fmt::print("{:.1f} images/s\n", static_cast<double>(images) / seconds);
}

}  // namespace reskit::cli
