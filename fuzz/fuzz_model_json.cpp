// Keras model_config JSON (model_from_json). reskit::Error is the expected answer to bad input;
// anything else crashes.
#include "fuzz_util.h"
#include "reskit/io/h5.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reskit::clear_session();
  try {
    reskit::Model model = reskit::model_from_json(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const reskit::Error&) {
  }
  reskit::set_floatx(reskit::DType::float32);
  return 0;
}
