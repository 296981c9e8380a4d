// Shared by the fuzz targets and make_corpus.cpp: a per-process temporary folder that the
// parsers read their input from (they take paths; HDF5's C library reads real files), and the
// small model whose weights the .h5 target loads.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "reskit/reskit.h"

namespace reskit_fuzz {

namespace fs = std::filesystem;

// /tmp/reskit_fuzz_<pid>/, created on first use and removed when the process exits normally
// (a crash leaves it behind for inspection).
inline const fs::path& temp_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("reskit_fuzz_" + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(fs::temp_directory_path() / ("reskit_fuzz_" + std::to_string(::getpid())), ec);
    });
    return d;
  }();
  return dir;
}

// Writes bytes to temp_dir()/name and returns the path.
inline std::string write_temp(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = (temp_dir() / name).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// The model of the .h5 seeds: (6, 6, 2) -> Conv2D(2, 3x3) -> BatchNormalization -> ReLU ->
// Flatten -> Dense(3, softmax); a few dozen weights, so the file stays a few KB.
inline reskit::Model small_model() {
  using namespace reskit;
  Tensor in = Input({6, 6, 2}, {.name = "input_1"});
  Tensor x = Conv2D(2, {3, 3}, {.name = "conv1"})(in);
  x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
  x = Activation("relu", {.name = "relu1"})(x);
  x = Flatten({.name = "flatten"})(x);
  x = Dense(3, {.activation = "softmax", .name = "fc"})(x);
  return Model(in, x, "fuzz_small");
}

}  // namespace reskit_fuzz
