// reskit/io/onnx.h — a model as an ONNX file for inference in other runtimes.
//
// export_onnx writes an ONNX model (opset 13 by default) that ONNX Runtime and OpenCV 4.6's dnn
// module run, with the output of Model::forward(x, false):
//   - one graph input named after the model's Input layer, NHWC float32 with a dynamic batch
//     dimension (dim_param "N"), transposed to NCHW inside the graph; a 4-D output is transposed
//     back to NHWC, so inputs and outputs look exactly as they do in reskit and Keras;
//   - Conv2D -> Conv (kernel as OIHW, Keras "same" as explicit asymmetric pads: TensorFlow's rule,
//     the extra row/column at the bottom/right), BatchNormalization -> BatchNormalization
//     (inference form: moving mean and variance, the layer's epsilon), Activation and the fused
//     activation of Conv2D/Dense -> Relu/Sigmoid/Tanh/Softmax (softmax over Keras's last axis),
//     Add -> Add, MaxPooling2D/AveragePooling2D -> MaxPool/AveragePool (explicit pads,
//     count_include_pad 0), Global{Max,Average}Pooling2D -> Global{Max,Average}Pool + Flatten,
//     ZeroPadding2D -> Pad (constant zeros, pads as an initializer), Flatten -> Transpose to NHWC
//     + Flatten (Keras's flattening order), Dense -> Gemm with transB = 1 (kernel stored
//     transposed, (units, in)); Dropout is left out (inference);
//   - weights as initializers named after their Keras names ("conv1/kernel:0"). A float64 model
//     is exported in float32: the weights are rounded to float32.
// No optional input is ever passed by an empty name (OpenCV refuses those). The file is written
// to a temporary file in the same folder and renamed into place once complete.
//
// Not here: importing ONNX, training graphs, other data types than float32.
#pragma once

#include <cstdint>
#include <string>

#include "reskit/graph/model.h"

namespace reskit {

struct ExportOnnxOptions {
  // ONNX opset version: 13 to 17 (the exported nodes mean the same in all of them).
  int opset = 13;
  // The batch dimension of the input and output: 0 leaves it dynamic (dim_param "N").
  std::int64_t batch_size = 0;
};

// Writes model to path as ONNX. Throws ConfigError for a layer or option ONNX export does not
// cover (naming the layer) or a bad option, FileError when the file cannot be written.
void export_onnx(const Model& model, const std::string& path, ExportOnnxOptions options = {});

}  // namespace reskit
