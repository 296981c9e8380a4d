// Writes what tests/io/check_onnx.py runs in OpenCV: for each case an ONNX file (export_onnx), an
// input batch and reskit's output on it (Model::forward(x, false)), as float32 .npy files:
//   OUT/<case>.onnx  OUT/<case>_x.npy  OUT/<case>_y.npy
// Cases: small (every exported layer and option), small64 (the same model in float64, exported as
// float32), small_opset17 (fixed batch 3, opset 17), conv_softmax (a 4-D output), preprocessing
// (Rescaling, Normalization, ReLU, LeakyReLU, Concatenate, Softmax), resnet50 (the
// notebook's, 64x64x3, 6 classes).
//   reskit_io_write_onnx_sample OUT_DIR
#include <cstdio>
#include <fstream>
#include <iostream>

#include "io/onnx_models.h"
#include "reskit/io/onnx.h"
#include "reskit/reskit.h"

namespace {

using namespace reskit;

// NumPy's .npy format 1.0: magic, header length, a Python dict padded to 64 bytes, the data.
void write_npy(const std::string& path, const Tensor& t) {
  Tensor f = t.to(DType::float32);
  std::string shape;
  for (auto d : f.shape()) shape += std::to_string(d) + ", ";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_bytes, 2);
  out << header;
  out.write(static_cast<const char*>(f.raw_data()), static_cast<std::streamsize>(f.numel() * sizeof(float)));
  if (!out) throw FileError("cannot write '" + path + "'");
}

void write_case(const std::string& dir, const std::string& name, Model model, std::int64_t batch,
                ExportOnnxOptions options = {}) {
  Shape in(model.inputs()[0].shape().begin() + 1, model.inputs()[0].shape().end());
  Tensor x = onnx_test::sample_input(in, batch, 11);
  onnx_test::make_weights_interesting(model, onnx_test::sample_input(in, 8, 5));
  Tensor y = model.forward(x.to(model.dtype()), false);
  export_onnx(model, dir + "/" + name + ".onnx", options);
  write_npy(dir + "/" + name + "_x.npy", x);
  write_npy(dir + "/" + name + "_y.npy", y);
  std::cout << name << ": " << shape_str(x.shape()) << " -> " << shape_str(y.shape()) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: reskit_io_write_onnx_sample OUT_DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  try {
    set_random_seed(3);
    write_case(dir, "small", onnx_test::small_resnet(), 3);
    set_floatx(DType::float64);
    write_case(dir, "small64", onnx_test::small_resnet(), 2);
    set_floatx(DType::float32);
    write_case(dir, "small_opset17", onnx_test::small_resnet(), 3, {.opset = 17, .batch_size = 3});
    write_case(dir, "conv_softmax", onnx_test::conv_softmax(), 2);
    write_case(dir, "preprocessing", onnx_test::preprocessing(), 2);
    write_case(dir, "resnet50", resnet50({64, 64, 3}, 6), 2);
  } catch (const std::exception& e) {
    std::cerr << "reskit_io_write_onnx_sample: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
