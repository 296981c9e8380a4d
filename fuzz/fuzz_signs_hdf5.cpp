// SIGNS-layout HDF5 data sets (load_hdf5), split "train" and "test", and the same file streamed
// (open_hdf5_stream, every sample read on its own). reskit::Error is the expected answer to bad
// input; anything else crashes.
#include "fuzz_util.h"
#include "reskit/data/loaders.h"
#include "reskit/data/stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = reskit_fuzz::write_temp("signs.h5", data, size);
  for (const char* split : {"train", "test"}) {
    try {
      reskit::Dataset d = reskit::load_hdf5(path, split);
    } catch (const reskit::Error&) {
    }
    try {
      auto s = reskit::open_hdf5_stream(path, split, {}, {.workers = 1});
      for (std::int64_t i = 0; i < std::min<std::int64_t>(s->size(), 64); ++i) s->sample(0, i);
    } catch (const reskit::Error&) {
    }
  }
  return 0;
}
