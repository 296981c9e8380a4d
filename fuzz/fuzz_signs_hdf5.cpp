// SIGNS-layout HDF5 data sets (load_hdf5), split "train" and "test". reskit::Error is the
// expected answer to bad input; anything else crashes.
#include "fuzz_util.h"
#include "reskit/data/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = reskit_fuzz::write_temp("signs.h5", data, size);
  for (const char* split : {"train", "test"}) {
    try {
      reskit::Dataset d = reskit::load_hdf5(path, split);
    } catch (const reskit::Error&) {
    }
  }
  return 0;
}
