// Keras .h5 model files: the input is written to a file that load_model reads, then
// load_weights reads it into the small model of fuzz_util.h, in order and by name.
// reskit::Error is the expected answer to bad input; anything else crashes.
#include "fuzz_util.h"
#include "reskit/io/h5.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = reskit_fuzz::write_temp("model.h5", data, size);
  reskit::clear_session();
  try {
    reskit::Model model = reskit::load_model(path);
  } catch (const reskit::Error&) {
  }
  reskit::set_floatx(reskit::DType::float32);
  for (const bool by_name : {false, true}) {
    reskit::clear_session();
    reskit::Model small = reskit_fuzz::small_model();
    try {
      reskit::load_weights(small, path, {.by_name = by_name});
    } catch (const reskit::Error&) {
    }
  }
  return 0;
}
