// The streaming readers: a picture (PNG or JPEG, told apart by content) in a one-class image folder
// streamed with random resized crop, flip and JPEG DCT scaling on two workers, at a target size
// and in a channel count picked by the input's size; one epoch of batches. reskit::Error is the
// expected answer to bad input (it must reach this thread from the worker); anything else crashes.
#include <numeric>

#include "fuzz_util.h"
#include "reskit/data/stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const fs::path root = reskit_fuzz::temp_dir() / "stream";
  fs::create_directories(root / "a");
  reskit_fuzz::write_temp("stream/a/picture.png", data, size);
  static constexpr int kChannels[] = {1, 3, 4};
  const std::int64_t side = 1 + static_cast<std::int64_t>(size % 13);
  try {
    auto s = reskit::open_image_folder(root.string(),
                                       {.rows = side, .cols = side + 1, .channels = kChannels[size % 3]},
                                       {.workers = 2, .prefetch = 1, .seed = size});
    std::vector<std::int64_t> order(static_cast<std::size_t>(s->size()));
    std::iota(order.begin(), order.end(), 0);
    reskit::Tensor x = reskit::Tensor::uninitialized({1}, reskit::DType::float32), y;
    s->start_epoch(0, order, 2, 0, {.horizontal_flip = true, .random_resized_crop = true}, nullptr);
    s->next_batch(0, x, y);
    s->end_epoch();
  } catch (const reskit::Error&) {
  }
  return 0;
}
