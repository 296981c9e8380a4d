// JPEG decoding (read_image, which tells PNG from JPEG by content), converted to 1, 3 or 4
// channels (picked by the input's size). reskit::Error is the expected answer to bad input;
// anything else crashes.
#include "fuzz_util.h"
#include "reskit/data/loaders.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = reskit_fuzz::write_temp("image.jpeg", data, size);
  static constexpr int kChannels[] = {1, 3, 4};
  try {
    reskit::Image img = reskit::read_image(path, kChannels[size % 3]);
  } catch (const reskit::Error&) {
  }
  return 0;
}
