// Peak memory of a streamed epoch does not grow with the data: one epoch of a tiny model on
// folders of 2,048, 8,192 and 32,768 small PNG pictures, each in a child process (fork) whose
// peak resident set (wait4's ru_maxrss) is compared. The stream holds the file list (about 30
// bytes a file: the paths in one string, the epoch's order) and the ring of prefetched batches;
// in memory, 32,000 pictures would add 24 MiB. A batch of 256 and a 16-filter convolution make
// the run's own memory (about 30 MiB) what a small training run holds.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "reskit/data/stream.h"
#include "reskit/reskit.h"
#include "reskit/training/fit.h"
#include "support/file_writers.h"

using namespace reskit;
namespace fs = std::filesystem;

namespace {

constexpr int kSide = 16;  // 16x16x3 pictures: 768 bytes each decoded, 24 MiB for 32,000

void write_folder(const fs::path& root, int n) {
  for (int k = 0; k < 2; ++k) fs::create_directories(root / std::to_string(k));
  for (int i = 0; i < n; ++i) {
    reskit_test::write_png(root / std::to_string(i % 2) / (std::to_string(i) + ".png"), kSide, kSide, 3,
                           reskit_test::pattern(kSide * kSide * 3, 3 + i % 7, i));
  }
}

// One epoch in a child process; its peak resident set in KiB.
long epoch_peak_kib(const fs::path& root) {
  const pid_t pid = fork();
  if (pid == 0) {
    int status = 0;
    try {
      set_num_threads(1);
      clear_session();
      set_random_seed(1);
      Tensor in = Input({kSide, kSide, 3});
      Tensor x = Conv2D(16, {3, 3}, {.padding = "same"})(in);
      x = Activation("relu")(x);
      x = GlobalAveragePooling2D()(x);
      x = Dense(2, {.activation = "softmax"})(x);
      Model m(in, x, "tiny");
      m.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
      auto s =
          open_image_folder(root.string(), {.rows = kSide, .cols = kSide}, {.workers = 2, .prefetch = 2});
      fit(m, *s, {.epochs = 1, .batch_size = 256, .verbose = 0});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      status = 1;
    }
    _exit(status);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return usage.ru_maxrss;
}

}  // namespace

TEST(StreamMemory, PeakDoesNotGrowWithTheData) {
  const fs::path dir = fs::temp_directory_path() / ("rk_mem_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::vector<long> peaks;
  // whole batches of 256: the same tensor sizes in each run
  for (int n : {2048, 8192, 32768}) {
    const fs::path root = dir / std::to_string(n);
    write_folder(root, n);
    peaks.push_back(epoch_peak_kib(root));
    fs::remove_all(root);
    ASSERT_GT(peaks.back(), 0) << "the epoch on " << n << " pictures failed";
  }
  fs::remove_all(dir);
  std::printf("peak RSS: %ld KiB (2k), %ld KiB (8k), %ld KiB (32k)\n", peaks[0], peaks[1], peaks[2]);
  // 8%: the file list alone adds ~1 MiB at 32k; measured on 2026-12-05 (AMD EPYC family 25 model
  // 17) 33256-33552 KiB at 2k against 34672-34952 KiB at 32k, up to 5.05% (5% failed once in eight).
  // Holding the pictures would add 24 MiB, ~70%.
  EXPECT_LE(static_cast<double>(peaks[2]), 1.08 * static_cast<double>(peaks[0]));
  EXPECT_LE(static_cast<double>(peaks[1]), 1.08 * static_cast<double>(peaks[0]));
}
