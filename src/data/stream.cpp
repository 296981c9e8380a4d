// StreamDataset: the worker threads, the ring of prefetched batches, and what a worker does to one
// sample (decode, crop, resize, flip, pad-and-crop), every random choice drawn from the sample's
// own generator (seed, epoch, sample index).
#include "reskit/data/stream.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "data/loader_util.h"
#include "data/sample_ops.h"
#include "reskit/error.h"
#include "reskit/runtime.h"
#include "util/dtype_visit.h"

namespace reskit {

using namespace data_detail;

Interpolation parse_interpolation(const std::string& name) {
  for (auto i :
       {Interpolation::bilinear, Interpolation::nearest, Interpolation::bicubic, Interpolation::area})
    if (name == interpolation_name(i)) return i;
  throw ConfigError("interpolation: expected bilinear, nearest, bicubic or area, got '" + name + "'");
}

const char* interpolation_name(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::bilinear:
      return "bilinear";
    case Interpolation::nearest:
      return "nearest";
    case Interpolation::bicubic:
      return "bicubic";
    case Interpolation::area:
      return "area";
  }
  return "?";
}

int default_data_workers() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores - num_threads());
}

std::vector<std::int64_t> shard_order(std::span<const std::int64_t> order, std::int64_t global_batch,
                                      int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world) {
    throw ConfigError("shard_order: expected 0 <= rank < world, got rank " + std::to_string(rank) + " of " +
                      std::to_string(world));
  }
  if (global_batch < 1 || global_batch % world != 0) {
    throw ConfigError("shard_order: expected a global batch that splits evenly over " +
                      std::to_string(world) + " ranks, got " + std::to_string(global_batch));
  }
  const auto n = static_cast<std::int64_t>(order.size());
  std::vector<std::int64_t> part;
  part.reserve(static_cast<std::size_t>(n / world + 1));
  for (std::int64_t lo = 0; lo < n; lo += global_batch) {
    const std::int64_t size = std::min(global_batch, n - lo);
    if (size < world) break;  // too few samples for every rank: skipped
    const std::int64_t base = size / world, extra = size % world;
    const std::int64_t begin = lo + rank * base + std::min<std::int64_t>(rank, extra);
    const std::int64_t end = begin + base + (rank < extra ? 1 : 0);
    part.insert(part.end(), order.begin() + begin, order.begin() + end);
  }
  return part;
}

// Decoded samples kept after their first read (StreamOptions::cache).
namespace {
// Each entry is the resized sample, or the whole decoded picture (kept for random resized crop).
struct CachedImage {
  Image image;
  bool resized = false;
};
}  // namespace

struct StreamDataset::Cache {
  std::mutex mutex;
  std::vector<std::shared_ptr<const CachedImage>> images;
};

// StreamTimes as nanoseconds, added to by the workers at once.
struct StreamDataset::Timing {
  enum Stage { decode, resize, augment, batch, count };
  std::atomic<std::int64_t> ns[count] = {};
  std::atomic<std::int64_t> samples{0};
  using Clock = std::chrono::steady_clock;
  // The nanoseconds since `since`, added to `stage`; returns now.
  Clock::time_point add(Stage stage, Clock::time_point since) {
    const Clock::time_point now = Clock::now();
    ns[stage].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count(),
                        std::memory_order_relaxed);
    return now;
  }
};

// One epoch's workers and ring of batches. Worker w takes the epoch's positions p = first*b,
// first*b + 1, ... from a shared counter; position p is row p % b of step p / b, which goes into
// slot (p / b) % depth once the training thread has taken the step `depth` before it.
struct StreamDataset::Pipeline {
  struct Slot {
    std::int64_t step = -1;
    std::int64_t remaining = 0;  // samples of the step not yet written
    std::vector<std::uint8_t> pixels;
    std::vector<char> bad;               // rows left out (skip_bad)
    std::exception_ptr error;            // the first failure among the step's samples
    std::int64_t error_position = -1;    // its position, so the earliest one is reported
    std::vector<std::string> bad_notes;  // "file: reason" of rows left out
  };
  const StreamDataset& owner;
  int epoch = 0;
  std::span<const std::int64_t> order;
  std::int64_t batch = 1, steps = 0, n = 0, per = 0;
  AugmentOptions augment;
  std::vector<Slot> slots;
  std::atomic<std::int64_t> next_position{0};
  std::mutex mutex;
  std::condition_variable space, ready;
  std::int64_t consumer_step = 0;  // the step the training thread takes next
  bool stopping = false;
  std::vector<std::thread> threads;
  std::int64_t skipped = 0;
  std::string first_skip;

  explicit Pipeline(const StreamDataset& o) : owner(o) {}

  std::int64_t rows_of(std::int64_t step) const { return std::min(n, (step + 1) * batch) - step * batch; }

  void arm(Slot& s, std::int64_t step) {
    s.step = step;
    s.remaining = step < steps ? rows_of(step) : 0;
    std::fill(s.bad.begin(), s.bad.end(), 0);
    s.error = nullptr;
    s.error_position = -1;
    s.bad_notes.clear();
  }

  void work() {
    for (;;) {
      const std::int64_t p = next_position.fetch_add(1);
      if (p >= n) return;
      const std::int64_t step = p / batch, row = p % batch;
      {
        std::unique_lock lock(mutex);
        space.wait(
            lock, [&] { return stopping || step < consumer_step + static_cast<std::int64_t>(slots.size()); });
        if (stopping) return;
      }
      Slot& s = slots[static_cast<std::size_t>(step % static_cast<std::int64_t>(slots.size()))];
      std::exception_ptr error;
      std::string note;
      try {
        owner.make_sample(epoch, order[static_cast<std::size_t>(p)], augment, s.pixels.data() + row * per);
      } catch (const FileError& e) {
        if (owner.options_.skip_bad) {
          note = e.what();
        } else {
          error = std::current_exception();
        }
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(mutex);
      if (!note.empty()) {
        s.bad[static_cast<std::size_t>(row)] = 1;
        s.bad_notes.push_back(std::move(note));
      }
      if (error && (s.error_position < 0 || p < s.error_position)) s.error = error, s.error_position = p;
      if (--s.remaining == 0) ready.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    space.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

StreamDataset::StreamDataset(std::shared_ptr<const SampleReader> reader, std::string source,
                             Shape sample_shape, int num_classes, std::vector<std::string> class_names,
                             Interpolation interpolation, bool crop_to_aspect_ratio, StreamOptions options)
    : reader_(std::move(reader)),
      source_(std::move(source)),
      sample_shape_(std::move(sample_shape)),
      num_classes_(num_classes),
      class_names_(std::move(class_names)),
      interpolation_(interpolation),
      crop_to_aspect_ratio_(crop_to_aspect_ratio),
      options_(options),
      cache_(std::make_unique<Cache>()),
      timing_(std::make_unique<Timing>()) {
  if (sample_shape_.size() != 3 || sample_shape_[0] < 1 || sample_shape_[1] < 1 ||
      (sample_shape_[2] != 1 && sample_shape_[2] != 3 && sample_shape_[2] != 4)) {
    throw ConfigError(source_ + ": expected a sample shape (H, W, C) with C 1, 3 or 4, got " +
                      shape_str(sample_shape_));
  }
  if (options_.workers < 0)
    throw ConfigError(source_ + ": expected data workers >= 0, got " + std::to_string(options_.workers));
  if (options_.prefetch < 1)
    throw ConfigError(source_ + ": expected prefetch >= 1 batch, got " + std::to_string(options_.prefetch));
  if (options_.cache) cache_->images.resize(static_cast<std::size_t>(reader_->size()));
}

StreamDataset::~StreamDataset() { stop(); }

std::int64_t StreamDataset::size() const { return reader_->size(); }

namespace {
// Samples [begin, end) of another reader.
class SubsetReader final : public SampleReader {
 public:
  SubsetReader(std::shared_ptr<const SampleReader> base, std::int64_t begin, std::int64_t end)
      : base_(std::move(base)), begin_(begin), end_(end) {}
  std::int64_t size() const override { return end_ - begin_; }
  std::int32_t label(std::int64_t i) const override { return base_->label(begin_ + i); }
  std::string name(std::int64_t i) const override { return base_->name(begin_ + i); }
  Image read(std::int64_t i, DecodeScale scale, void* context) const override {
    return base_->read(begin_ + i, scale, context);
  }

 private:
  std::shared_ptr<const SampleReader> base_;
  std::int64_t begin_, end_;
};
}  // namespace

std::unique_ptr<StreamDataset> StreamDataset::subset(std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || end > size() || begin > end) {
    throw Error(source_ + ": subset [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") out of range for " + std::to_string(size()) + " samples");
  }
  return std::make_unique<StreamDataset>(std::make_shared<SubsetReader>(reader_, begin, end), source_,
                                         sample_shape_, num_classes_, class_names_, interpolation_,
                                         crop_to_aspect_ratio_, options_);
}

StreamTimes StreamDataset::times() const {
  auto seconds = [&](Timing::Stage stage) { return 1e-9 * static_cast<double>(timing_->ns[stage].load()); };
  return {.decode = seconds(Timing::decode),
          .resize = seconds(Timing::resize),
          .augment = seconds(Timing::augment),
          .batch = seconds(Timing::batch),
          .samples = timing_->samples.load()};
}

int StreamDataset::workers() const {
  return options_.workers > 0 ? options_.workers : default_data_workers();
}

void StreamDataset::stop() {
  if (pipeline_) pipeline_->stop();
  pipeline_.reset();
}

void StreamDataset::start_epoch(int epoch, std::span<const std::int64_t> order, std::int64_t batch_size,
                                std::int64_t first_step, const AugmentOptions& augment, std::mt19937_64*) {
  stop();
  for (std::int64_t i : order) {
    if (i < 0 || i >= size()) {
      throw Error(source_ + ": sample index " + std::to_string(i) + " out of range for " +
                  std::to_string(size()) + " samples");
    }
  }
  auto p = std::make_unique<Pipeline>(*this);
  p->epoch = epoch;
  p->order = order;
  p->batch = std::max<std::int64_t>(1, batch_size);
  p->n = static_cast<std::int64_t>(order.size());
  p->steps = (p->n + p->batch - 1) / p->batch;
  p->per = shape_numel(sample_shape_);
  p->augment = augment;
  p->consumer_step = first_step;
  p->slots.resize(static_cast<std::size_t>(options_.prefetch));
  for (std::size_t k = 0; k < p->slots.size(); ++k) {
    auto& s = p->slots[k];
    s.pixels.resize(static_cast<std::size_t>(p->batch * p->per));
    s.bad.resize(static_cast<std::size_t>(p->batch));
  }
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(p->slots.size()); ++k) {
    const std::int64_t step = first_step + k;
    p->arm(p->slots[static_cast<std::size_t>(step % static_cast<std::int64_t>(p->slots.size()))], step);
  }
  p->next_position = std::min(p->n, first_step * p->batch);
  skipped_ = 0;
  pipeline_ = std::move(p);
  const int w = workers();
  for (int t = 0; t < w; ++t) pipeline_->threads.emplace_back([q = pipeline_.get()] { q->work(); });
}

void StreamDataset::next_batch(std::int64_t step, Tensor& x, Tensor& y) {
  if (!pipeline_) throw Error(source_ + ": next_batch before start_epoch");
  Pipeline& p = *pipeline_;
  if (step != p.consumer_step || step >= p.steps) {
    throw Error(source_ + ": expected step " + std::to_string(p.consumer_step) + " of " +
                std::to_string(p.steps) + ", got " + std::to_string(step));
  }
  Pipeline::Slot& s = p.slots[static_cast<std::size_t>(step % static_cast<std::int64_t>(p.slots.size()))];
  {
    std::unique_lock lock(p.mutex);
    p.ready.wait(lock, [&] { return s.remaining == 0; });
  }
  if (s.error) {
    const std::exception_ptr e = s.error;
    stop();
    std::rethrow_exception(e);
  }
  const std::int64_t rows = p.rows_of(step);
  std::int64_t kept = 0;
  for (std::int64_t r = 0; r < rows; ++r) kept += s.bad[static_cast<std::size_t>(r)] ? 0 : 1;
  p.skipped += rows - kept;
  if (p.first_skip.empty() && !s.bad_notes.empty()) p.first_skip = s.bad_notes.front();
  if (kept == 0) {
    const std::string note = s.bad_notes.empty() ? "" : " (e.g. " + s.bad_notes.front() + ")";
    stop();
    throw FileError(source_ + ": every file of batch " + std::to_string(step + 1) + " is unreadable" + note);
  }
  const auto assembly = Timing::Clock::now();
  const std::int64_t h = sample_shape_[0], w = sample_shape_[1], c = sample_shape_[2];
  const Shape xs{kept, h, w, c};
  if (!x.defined() || x.shape() != xs) x = Tensor::uninitialized(xs, x.defined() ? x.dtype() : floatx());
  if (!y.defined() || y.shape() != Shape{kept, num_classes_})
    y = Tensor(Shape{kept, num_classes_}, x.dtype());
  y.zero();
  detail::visit_dtype(x.dtype(), [&]<class T>(T) {
    T* out = x.data<T>();
    T* oy = y.data<T>();
    std::int64_t i = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (s.bad[static_cast<std::size_t>(r)]) continue;
      const std::uint8_t* src = s.pixels.data() + r * p.per;
      T* dst = out + i * p.per;
      for (std::int64_t k = 0; k < p.per; ++k) dst[k] = static_cast<T>(src[k]) / T(255);
      oy[i * num_classes_ + reader_->label(p.order[static_cast<std::size_t>(step * p.batch + r)])] = T(1);
      ++i;
    }
  });
  timing_->add(Timing::batch, assembly);
  {
    std::lock_guard lock(p.mutex);
    p.consumer_step = step + 1;
    p.arm(s, step + static_cast<std::int64_t>(p.slots.size()));
  }
  p.space.notify_all();
}

std::string StreamDataset::end_epoch() {
  if (!pipeline_) return {};
  const std::int64_t skipped = pipeline_->skipped;
  const std::string first = pipeline_->first_skip;
  stop();
  skipped_ = skipped;
  if (skipped == 0) return {};
  return "warning: " + source_ + ": skipped " + std::to_string(skipped) + " unreadable file" +
         (skipped == 1 ? "" : "s") + " in this epoch (first: " + first + ")";
}

Image StreamDataset::sample(int epoch, std::int64_t i, const AugmentOptions& augment) const {
  if (i < 0 || i >= size())
    throw Error(source_ + ": sample " + std::to_string(i) + " out of range for " + std::to_string(size()));
  Image out{sample_shape_[0], sample_shape_[1], static_cast<int>(sample_shape_[2]), {}};
  out.pixels.resize(static_cast<std::size_t>(shape_numel(sample_shape_)));
  make_sample(epoch, i, augment, out.pixels.data());
  return out;
}

namespace {
// What make_sample tells the decoder through DecodeScale: the box to keep, chosen once the stored
// size is known, and whether the JPEG may be decoded smaller.
struct DecodePlan {
  const AugmentOptions* augment;
  SampleRng* rng;
  bool crop_to_aspect_ratio;
  bool allow_scaling;
  std::int64_t target_rows, target_cols;
  std::int64_t full_rows = 0, full_cols = 0;
  Box box;
  bool planned = false;

  void plan(std::int64_t rows, std::int64_t cols) {
    full_rows = rows, full_cols = cols;
    if (augment->random_resized_crop) {
      box = random_resized_crop_box(rows, cols, *augment, *rng);
    } else if (crop_to_aspect_ratio) {
      box = aspect_ratio_box(rows, cols, target_rows, target_cols);
    } else {
      box = {0, 0, rows, cols};
    }
    planned = true;
  }
  static std::int64_t scale(void* context, std::int64_t rows, std::int64_t cols) {
    auto& p = *static_cast<DecodePlan*>(context);
    p.plan(rows, cols);
    return p.allow_scaling ? jpeg_scale_for(p.box, p.target_rows, p.target_cols) : 8;
  }
  // The box in a picture decoded at rows x cols (a DCT-scaled one is smaller than stored).
  Box box_in(std::int64_t rows, std::int64_t cols) const {
    if (rows == full_rows && cols == full_cols) return box;
    const double sr = static_cast<double>(rows) / static_cast<double>(full_rows);
    const double sc = static_cast<double>(cols) / static_cast<double>(full_cols);
    Box b;
    b.top = std::min(rows - 1, static_cast<std::int64_t>(std::llround(static_cast<double>(box.top) * sr)));
    b.left = std::min(cols - 1, static_cast<std::int64_t>(std::llround(static_cast<double>(box.left) * sc)));
    b.rows = std::clamp<std::int64_t>(std::llround(static_cast<double>(box.rows) * sr), 1, rows - b.top);
    b.cols = std::clamp<std::int64_t>(std::llround(static_cast<double>(box.cols) * sc), 1, cols - b.left);
    return b;
  }
};
}  // namespace

void StreamDataset::make_sample(int epoch, std::int64_t i, const AugmentOptions& augment,
                                std::uint8_t* out) const {
  const std::int64_t h = sample_shape_[0], w = sample_shape_[1], c = sample_shape_[2];
  Timing::Clock::time_point t = Timing::Clock::now();
  SampleRng rng(options_.seed, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(i));
  DecodePlan plan{.augment = &augment,
                  .rng = &rng,
                  .crop_to_aspect_ratio = crop_to_aspect_ratio_,
                  .allow_scaling = options_.dct_scaling && !options_.cache,
                  .target_rows = h,
                  .target_cols = w};
  // The cache holds what comes before the random choices: the resized picture, or the whole
  // decoded one when the crop is random.
  std::shared_ptr<const CachedImage> cached;
  if (options_.cache) {
    std::lock_guard lock(cache_->mutex);
    cached = cache_->images[static_cast<std::size_t>(i)];
  }
  const bool rrc = augment.random_resized_crop;
  auto keep = [&](const Image& image, bool resized) {
    std::lock_guard lock(cache_->mutex);
    cache_->images[static_cast<std::size_t>(i)] =
        std::make_shared<const CachedImage>(CachedImage{image, resized});
  };
  // This thread's last resized picture: its storage is reused, as the decoders reuse the pixels
  // handed back by recycle_pixels (no allocation, no fresh pages, per sample).
  thread_local Image resized;
  const Image* src = nullptr;
  if (cached && cached->resized && !rrc) {
    src = &cached->image;
  } else {
    Image img;
    const Image* whole = &img;
    if (cached && !cached->resized) {
      whole = &cached->image;
    } else {
      img = reader_->read(i, &DecodePlan::scale, &plan);
      if (img.channels != c) {
        throw FileError(reader_->name(i) + ": expected " + std::to_string(c) + " channels, found " +
                        std::to_string(img.channels));
      }
      if (options_.cache && rrc) keep(img, false);
      t = timing_->add(Timing::decode, t);
    }
    if (!plan.planned) plan.plan(whole->rows, whole->cols);
    resize_image_into(*whole, plan.box_in(whole->rows, whole->cols), h, w, interpolation_, resized);
    recycle_pixels(std::move(img.pixels));
    if (options_.cache && !rrc && !cached) keep(resized, true);
    t = timing_->add(Timing::resize, t);
    src = &resized;
  }
  timing_->samples.fetch_add(1, std::memory_order_relaxed);
  // Then, as Dataset::fill_batch: the pad-and-crop offsets, then the flip.
  std::int64_t dr = 0, dc = 0;
  if (augment.pad_crop > 0) {
    dr = rng.below(2 * augment.pad_crop + 1) - augment.pad_crop;
    dc = rng.below(2 * augment.pad_crop + 1) - augment.pad_crop;
  }
  const bool flip = augment.horizontal_flip && rng.below(2) == 1;
  if (dr == 0 && dc == 0 && !flip) {
    std::copy(src->pixels.begin(), src->pixels.end(), out);
  } else {
    for (std::int64_t r = 0; r < h; ++r)
      for (std::int64_t q = 0; q < w; ++q) {
        const std::int64_t sr = r + dr, sq = (flip ? w - 1 - q : q) + dc;
        std::uint8_t* o = out + (r * w + q) * c;
        if (sr < 0 || sr >= h || sq < 0 || sq >= w) {
          std::fill_n(o, c, std::uint8_t{0});
        } else {
          std::copy_n(src->pixels.data() + (sr * w + sq) * c, c, o);
        }
      }
  }
  timing_->add(Timing::augment, t);
}

}  // namespace reskit
