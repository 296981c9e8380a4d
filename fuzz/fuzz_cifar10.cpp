// CIFAR-10 binary batches (load_cifar10 on one .bin file). reskit::Error is the expected answer
// to bad input; anything else crashes.
#include "fuzz_util.h"
#include "reskit/data/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = reskit_fuzz::write_temp("data_batch_1.bin", data, size);
  try {
    reskit::Dataset d = reskit::load_cifar10(path);
  } catch (const reskit::Error&) {
  }
  return 0;
}
