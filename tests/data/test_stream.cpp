// Streaming datasets (reskit/data/stream.h): the same batches as the in-memory loader, for any
// number of workers and prefetch depth, after a resume inside an epoch, and in two runs; Keras's
// split of a folder (numpy's shuffle, checked against gen_numpy_shuffle.py); the random resized
// crop and aspect-ratio boxes; JPEG DCT scaling; bad files as errors naming them or skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "data/sample_ops.h"
#include "reskit/data/loaders.h"
#include "reskit/data/stream.h"
#include "reskit/reskit.h"
#include "reskit/training/checkpoint.h"
#include "reskit/training/fit.h"
#include "support/crash_at.h"
#include "support/file_writers.h"

using namespace reskit;
using reskit::test::Crash;
using reskit::test::CrashAt;
using namespace reskit_test;
namespace fs = std::filesystem;

namespace {

class Stream : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("reskit_stream_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // n pictures rows x cols in `classes` sub-folders, PNG (or JPEG every third one when mixed).
  fs::path make_folder(int n, int rows, int cols, int classes = 3, bool mixed = false) {
    const fs::path root = dir_ / "images";
    for (int i = 0; i < n; ++i) {
      const fs::path sub = root / ("class_" + std::to_string(i % classes));
      fs::create_directories(sub);
      const Bytes px = pattern(static_cast<std::size_t>(rows * cols * 3), 7 + i, 3 * i);
      char name[32];
      std::snprintf(name, sizeof name, "img_%04d", i);
      if (mixed && i % 3 == 0) {
        write_jpeg(sub / (std::string(name) + ".jpg"), rows, cols, 3, px);
      } else {
        write_png(sub / (std::string(name) + ".png"), rows, cols, 3, px);
      }
    }
    return root;
  }
  fs::path dir_;
};

std::vector<float> values(const Tensor& t) { return {t.values<float>().begin(), t.values<float>().end()}; }

// Every batch of one epoch in `order`.
std::vector<std::vector<float>> epoch_batches(BatchSource& s, int epoch,
                                              const std::vector<std::int64_t>& order, std::int64_t b,
                                              const AugmentOptions& augment = {},
                                              std::int64_t first_step = 0) {
  std::vector<std::vector<float>> out;
  Tensor x = Tensor::uninitialized({1}, DType::float32), y;
  s.start_epoch(epoch, order, b, first_step, augment, nullptr);
  const std::int64_t steps = (static_cast<std::int64_t>(order.size()) + b - 1) / b;
  for (std::int64_t step = first_step; step < steps; ++step) {
    s.next_batch(step, x, y);
    auto v = values(x);
    const auto yv = values(y);
    v.insert(v.end(), yv.begin(), yv.end());
    out.push_back(std::move(v));
  }
  s.end_epoch();
  return out;
}

std::vector<std::int64_t> shuffled(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 gen(seed);
  std::shuffle(order.begin(), order.end(), gen);
  return order;
}

}  // namespace

TEST_F(Stream, SameBatchesAsTheInMemoryLoader) {
  const fs::path root = make_folder(23, 6, 5, 3, true);
  LoadOptions lo;
  const Dataset mem = load_image_folder(root.string(), lo);
  ImageFolderOptions fo;
  fo.rows = 0, fo.cols = 0;  // the files' own size
  auto stream = open_image_folder(root.string(), fo, {.workers = 3, .prefetch = 2});
  ASSERT_EQ(stream->size(), mem.size());
  EXPECT_EQ(stream->sample_shape(), mem.sample_shape());
  EXPECT_EQ(stream->class_names(), mem.class_names());
  DatasetBatches mem_batches(mem);
  const auto order = shuffled(mem.size(), 5);
  EXPECT_EQ(epoch_batches(*stream, 0, order, 4), epoch_batches(mem_batches, 0, order, 4));
}

TEST_F(Stream, SameBitsForAnyWorkersPrefetchAndResume) {
  const fs::path root = make_folder(30, 12, 10, 3, true);
  ImageFolderOptions fo;
  fo.rows = 8, fo.cols = 8;
  const AugmentOptions aug{.pad_crop = 2, .horizontal_flip = true, .random_resized_crop = true};
  const auto order = shuffled(30, 9);
  auto one = open_image_folder(root.string(), fo, {.workers = 1, .prefetch = 1, .seed = 4});
  const auto want = epoch_batches(*one, 3, order, 7, aug);
  for (int workers : {2, 5}) {
    for (int prefetch : {1, 3}) {
      auto s = open_image_folder(root.string(), fo, {.workers = workers, .prefetch = prefetch, .seed = 4});
      EXPECT_EQ(epoch_batches(*s, 3, order, 7, aug), want) << workers << " workers, prefetch " << prefetch;
      // resumed at step 2: the rest of the epoch, the same bits
      const auto rest = epoch_batches(*s, 3, order, 7, aug, 2);
      EXPECT_EQ(rest, std::vector<std::vector<float>>(want.begin() + 2, want.end()));
    }
  }
  // another epoch or seed draws other crops
  EXPECT_NE(epoch_batches(*one, 4, order, 7, aug), want);
  auto other_seed = open_image_folder(root.string(), fo, {.workers = 2, .seed = 5});
  EXPECT_NE(epoch_batches(*other_seed, 3, order, 7, aug), want);
  // the cache gives the same samples
  auto cached =
      open_image_folder(root.string(), fo, {.workers = 2, .cache = true, .seed = 4, .dct_scaling = false});
  auto plain = open_image_folder(root.string(), fo, {.workers = 2, .seed = 4, .dct_scaling = false});
  const auto plain_batches = epoch_batches(*plain, 3, order, 7, aug);
  EXPECT_EQ(epoch_batches(*cached, 3, order, 7, aug), plain_batches);
  EXPECT_EQ(epoch_batches(*cached, 3, order, 7, aug), plain_batches);  // from the cache
  EXPECT_EQ(epoch_batches(*cached, 3, order, 7), epoch_batches(*plain, 3, order, 7));
}

namespace {

Model tiny_model() {
  clear_session();
  set_random_seed(3);
  Tensor in = Input({8, 8, 3});
  Tensor x = Conv2D(4, {3, 3}, {.padding = "same"})(in);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(2, {.activation = "softmax"})(x);
  Model m(in, x, "tiny");
  m.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return m;
}

std::vector<float> weights(Model& m) {
  std::vector<float> w;
  for (Param* p : m.parameters()) {
    const auto v = values(p->value);
    w.insert(w.end(), v.begin(), v.end());
  }
  return w;
}

}  // namespace

TEST_F(Stream, FitOnAStreamRepeatsForAnyWorkersAndResumesExactly) {
  const fs::path root = make_folder(40, 8, 8, 2, true);
  const ImageFolderOptions fo{.rows = 8, .cols = 8};
  const AugmentOptions aug{.horizontal_flip = true, .random_resized_crop = true};
  auto options = [&](std::vector<std::shared_ptr<Callback>> callbacks) {
    return FitOptions{.epochs = 2,
                      .batch_size = 8,
                      .seed = 2,
                      .verbose = 0,
                      .augment = aug,
                      .callbacks = std::move(callbacks)};
  };
  auto run = [&](int workers) {
    Model m = tiny_model();
    auto s = open_image_folder(root.string(), fo, {.workers = workers, .seed = 1});
    fit(m, *s, options({}));
    return weights(m);
  };
  const auto want = run(1);
  EXPECT_EQ(run(3), want);
  // a crash at step 3 of epoch 2, backed up every step, resumed on a fresh stream
  const std::string backup = (dir_ / "backup").string();
  {
    Model m = tiny_model();
    auto s = open_image_folder(root.string(), fo, {.workers = 2, .seed = 1});
    EXPECT_THROW(
        fit(m, *s,
            options({std::make_shared<BackupAndRestore>(backup, BackupAndRestoreOptions{.save_freq = 1}),
                     std::make_shared<CrashAt>(1, 2)})),
        Crash);
  }
  EXPECT_EQ(read_checkpoint(backup).steps_done, 3);
  Model m = tiny_model();
  auto s = open_image_folder(root.string(), fo, {.workers = 4, .seed = 1});
  fit(m, *s, options({std::make_shared<BackupAndRestore>(backup, BackupAndRestoreOptions{.save_freq = 1})}));
  EXPECT_EQ(weights(m), want);
}

TEST_F(Stream, KerasSplitShuffle) {
  struct Case {
    std::int64_t n;
    std::uint32_t seed;
    std::vector<std::int64_t> want;
  };
  const std::vector<Case> cases = {
      {10, 0, {2, 8, 4, 9, 1, 6, 7, 3, 0, 5}},
      {10, 1337, {6, 3, 0, 4, 5, 2, 1, 9, 8, 7}},
      {37, 42, {17, 13, 4,  29, 35, 25, 6,  26, 24, 16, 8,  15, 12, 32, 9,  19, 0,  31, 5,
                11, 1,  27, 21, 2,  36, 34, 3,  33, 23, 30, 10, 22, 18, 20, 7,  14, 28}},
      {300,
       123456,
       {233, 40,  237, 236, 85,  50,  91,  172, 6,   144, 1,   12,  231, 78,  111, 135, 2,   250, 235, 13,
        35,  107, 262, 137, 253, 192, 285, 114, 261, 10,  254, 210, 270, 117, 41,  200, 112, 298, 7,   161,
        228, 133, 74,  89,  96,  24,  81,  28,  63,  245, 9,   205, 299, 151, 271, 162, 123, 188, 22,  197,
        121, 286, 142, 183, 184, 76,  70,  116, 165, 160, 222, 225, 154, 255, 82,  251, 60,  203, 247, 229,
        296, 100, 174, 196, 69,  110, 179, 148, 26,  190, 217, 19,  27,  15,  168, 202, 59,  115, 243, 54,
        158, 90,  216, 213, 52,  17,  166, 72,  57,  265, 103, 92,  232, 241, 108, 38,  185, 75,  207, 169,
        280, 206, 98,  8,   77,  14,  295, 214, 122, 278, 46,  221, 293, 88,  21,  246, 3,   180, 79,  191,
        58,  279, 139, 29,  277, 47,  42,  149, 16,  97,  64,  106, 131, 230, 155, 153, 127, 284, 227, 173,
        182, 105, 55,  93,  289, 37,  109, 23,  128, 258, 150, 219, 104, 126, 80,  208, 276, 211, 297, 48,
        11,  177, 163, 124, 147, 73,  61,  189, 129, 223, 267, 263, 86,  252, 141, 226, 181, 273, 218, 87,
        102, 283, 281, 199, 66,  282, 33,  269, 186, 39,  118, 287, 274, 259, 125, 187, 134, 31,  5,   176,
        36,  264, 0,   44,  4,   152, 67,  238, 288, 157, 45,  71,  248, 257, 220, 132, 113, 256, 292, 195,
        240, 249, 201, 99,  130, 51,  62,  25,  170, 156, 30,  204, 83,  120, 53,  242, 101, 146, 145, 193,
        260, 95,  159, 272, 140, 138, 209, 84,  224, 294, 143, 18,  167, 290, 275, 212, 244, 291, 94,  68,
        175, 194, 198, 34,  119, 178, 20,  268, 266, 136, 164, 215, 32,  43,  239, 171, 56,  49,  234, 65}},
  };
  for (const auto& c : cases) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(c.n));
    std::iota(v.begin(), v.end(), 0);
    numpy_shuffle(v, c.seed);
    EXPECT_EQ(v, c.want) << "n " << c.n << ", seed " << c.seed;
  }
}

TEST_F(Stream, KerasValidationSplit) {
  const fs::path root = make_folder(10, 4, 4, 2);
  const FolderIndex all = index_image_folder(root.string(), {.shuffle = false});
  ASSERT_EQ(all.size(), 10);
  // classes in order, files sorted in each
  EXPECT_EQ(all.file(0), (root / "class_0" / "img_0000.png").string());
  EXPECT_EQ(all.file(5), (root / "class_1" / "img_0001.png").string());
  EXPECT_EQ(all.class_names, (std::vector<std::string>{"class_0", "class_1"}));
  // seed 1337 permutes range(10) to 6 3 0 4 5 2 1 9 8 7; validation is the last int(0.2 * 10)
  ImageFolderOptions o{.validation_split = 0.2, .subset = "validation", .seed = 1337};
  const FolderIndex val = index_image_folder(root.string(), o);
  ASSERT_EQ(val.size(), 2);
  EXPECT_EQ(val.file(0), all.file(8));
  EXPECT_EQ(val.file(1), all.file(7));
  o.subset = "training";
  const FolderIndex train = index_image_folder(root.string(), o);
  ASSERT_EQ(train.size(), 8);
  EXPECT_EQ(train.file(0), all.file(6));
  EXPECT_EQ(train.labels.front(), all.labels[6]);
  o.subset = "";
  EXPECT_THROW(index_image_folder(root.string(), o), ConfigError);
  o.subset = "training", o.validation_split = 0.05;  // int(0.5) = 0 files
  EXPECT_THROW(index_image_folder(root.string(), o), ConfigError);
}

TEST_F(Stream, RandomResizedCropBoxes) {
  using namespace data_detail;
  const AugmentOptions a{.random_resized_crop = true};
  for (std::uint64_t i = 0; i < 200; ++i) {
    SampleRng rng(1, 2, i);
    const Box b = random_resized_crop_box(375, 500, a, rng);
    EXPECT_GE(b.top, 0);
    EXPECT_GE(b.left, 0);
    EXPECT_LE(b.top + b.rows, 375);
    EXPECT_LE(b.left + b.cols, 500);
    const double area = static_cast<double>(b.rows * b.cols) / (375.0 * 500.0);
    EXPECT_GE(area, 0.07);
    EXPECT_LE(area, 1.0);
    const double ratio = static_cast<double>(b.cols) / static_cast<double>(b.rows);
    EXPECT_GE(ratio, 0.70);
    EXPECT_LE(ratio, 1.40);
    SampleRng again(1, 2, i);
    const Box c = random_resized_crop_box(375, 500, a, again);
    EXPECT_EQ(b.top, c.top);
    EXPECT_EQ(b.cols, c.cols);
  }
  // a 1x100 strip never fits 10 tries: the centred crop of ratio 4/3
  SampleRng rng(0, 0, 0);
  const Box f = random_resized_crop_box(1, 100, a, rng);
  EXPECT_EQ(f.rows, 1);
  EXPECT_EQ(f.cols, 1);  // round(1 * 4/3)
  EXPECT_EQ(f.left, 49);
  // smart_resize: 100x50 to a square keeps the centred 50x50
  const Box s = aspect_ratio_box(100, 50, 8, 8);
  EXPECT_EQ(s.top, 25);
  EXPECT_EQ(s.left, 0);
  EXPECT_EQ(s.rows, 50);
  EXPECT_EQ(s.cols, 50);
  // JPEG DCT scaling only at half the size or less
  EXPECT_EQ(jpeg_scale_for({0, 0, 375, 500}, 224, 224), 8);
  EXPECT_EQ(jpeg_scale_for({0, 0, 448, 500}, 224, 224), 4);
  EXPECT_EQ(jpeg_scale_for({0, 0, 2000, 1800}, 224, 224), 1);
}

TEST_F(Stream, JpegDctScalingIsCloseToTheFullDecode) {
  const fs::path root = dir_ / "jpg";
  fs::create_directories(root / "a");
  Bytes px(128 * 96 * 3);
  for (int r = 0; r < 128; ++r)
    for (int c = 0; c < 96; ++c)
      for (int k = 0; k < 3; ++k)
        px[(r * 96 + c) * 3 + k] = static_cast<std::uint8_t>((r + 2 * c + 40 * k) % 256);
  write_jpeg(root / "a" / "x.jpg", 128, 96, 3, px);
  ImageFolderOptions fo{.rows = 16, .cols = 12};
  auto fast = open_image_folder(root.string(), fo, {.dct_scaling = true});
  auto full = open_image_folder(root.string(), fo, {.dct_scaling = false});
  const Image a = fast->sample(0, 0), b = full->sample(0, 0);
  ASSERT_EQ(a.pixels.size(), b.pixels.size());
  double diff = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) diff += std::abs(a.pixels[i] - b.pixels[i]);
  EXPECT_NE(a.pixels, b.pixels);  // it did decode smaller
  EXPECT_LT(diff / static_cast<double>(a.pixels.size()), 12.0);
}

TEST_F(Stream, BadFilesFailNamingThemOrAreSkipped) {
  const fs::path root = make_folder(12, 6, 6, 2);
  const fs::path bad = root / "class_1" / "img_0005.png";
  write_bytes(bad, Bytes{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0});  // truncated
  const fs::path text = root / "class_0" / "notes.jpg";
  write_bytes(text, Bytes{'h', 'e', 'l', 'l', 'o'});
  std::vector<std::int64_t> order(13);
  std::iota(order.begin(), order.end(), 0);
  ImageFolderOptions fo{.rows = 6, .cols = 6};
  {
    auto s = open_image_folder(root.string(), fo, {.workers = 3});
    ASSERT_EQ(s->size(), 13);
    try {
      epoch_batches(*s, 0, order, 4);
      ADD_FAILURE() << "expected a FileError";
    } catch (const FileError& e) {
      // the first bad file in the epoch's order
      EXPECT_NE(std::string(e.what()).find("notes.jpg"), std::string::npos) << e.what();
    }
    // the stream is usable again afterwards
    EXPECT_THROW(epoch_batches(*s, 1, order, 4), FileError);
  }
  auto s = open_image_folder(root.string(), fo, {.workers = 2, .skip_bad = true});
  Tensor x = Tensor::uninitialized({1}, DType::float32), y;
  s->start_epoch(0, order, 4, 0, {}, nullptr);
  std::int64_t rows = 0;
  for (int step = 0; step < 4; ++step) {
    s->next_batch(step, x, y);
    rows += x.dim(0);
  }
  const std::string note = s->end_epoch();
  EXPECT_EQ(rows, 11);
  EXPECT_EQ(s->skipped(), 2);
  EXPECT_NE(note.find("skipped 2 unreadable files"), std::string::npos) << note;
}

TEST_F(Stream, AbandonedEpochStopsItsWorkers) {
  const fs::path root = make_folder(40, 6, 6, 2);
  auto s = open_image_folder(root.string(), {.rows = 6, .cols = 6}, {.workers = 4, .prefetch = 2});
  const auto order = shuffled(40, 1);
  Tensor x = Tensor::uninitialized({1}, DType::float32), y;
  s->start_epoch(0, order, 4, 0, {}, nullptr);
  s->next_batch(0, x, y);
  EXPECT_THROW(s->next_batch(2, x, y), Error);  // out of order
  s->start_epoch(1, order, 4, 0, {}, nullptr);  // the old epoch's workers stop
  s->next_batch(0, x, y);
  s.reset();  // and these, mid-epoch
  SUCCEED();
}

// Each rank's slice of every global batch (distributed::shard_range's rule: contiguous, the first
// size mod N one longer), concatenated in step order; a last batch with fewer samples than ranks
// is nobody's.
TEST_F(Stream, ShardOrder) {
  const std::vector<std::int64_t> order{5, 3, 9, 0, 1, 7, 2, 8, 6, 4, 10};
  EXPECT_EQ(shard_order(order, 4, 0, 2), (std::vector<std::int64_t>{5, 3, 1, 7, 6, 4}));
  EXPECT_EQ(shard_order(order, 4, 1, 2), (std::vector<std::int64_t>{9, 0, 2, 8, 10}));
  EXPECT_EQ(shard_order(order, 4, 0, 4), (std::vector<std::int64_t>{5, 1}));  // 3 left: too few for 4
  EXPECT_EQ(shard_order(order, 4, 3, 4), (std::vector<std::int64_t>{0, 8}));
  EXPECT_EQ(shard_order(order, 6, 1, 3), (std::vector<std::int64_t>{9, 0, 6, 4}));  // last: 2, 2, 1
  EXPECT_EQ(shard_order(order, 6, 2, 3), (std::vector<std::int64_t>{1, 7, 10}));
  EXPECT_EQ(shard_order(order, 5, 0, 1), order);
  EXPECT_THROW(shard_order(order, 4, 2, 2), ConfigError);
  EXPECT_THROW(shard_order(order, 5, 0, 2), ConfigError);  // 5 does not split over 2
}
