// reskit export MODEL.h5 -o MODEL.onnx [--opset N] [--batch-size N]: a saved model as an ONNX file for
// inference in other runtimes (ONNX Runtime, OpenCV's dnn module); see reskit/io/onnx.h.
#include <iostream>

#include "commands.h"
#include "reskit/io/h5.h"
#include "reskit/io/onnx.h"

namespace reskit::cli {

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a saved model as ONNX (NHWC float32 input)");
  struct Args {
    std::string model, output;
    ExportOnnxOptions options;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "Model file (.h5)")->required()->check(existing_file());
  cmd->add_option("-o,--output", a->output, "ONNX file to write")->required()->check(writable_file());
  cmd->add_option("--opset", a->options.opset, "ONNX opset version (13 to 17)")
      ->capture_default_str()
      ->check(integer_in(13, 17));
  cmd->add_option("--batch-size,--batch", a->options.batch_size,
                  "Fixed batch size of the ONNX input (default: dynamic)")
      ->check(integer_at_least(1));
  cmd->callback([a] {
    Model model = load_model(a->model, {.compile = false});
    export_onnx(model, a->output, a->options);
    std::cout << "Wrote " << a->output << " (ONNX opset " << a->options.opset << ", model '" << model.name()
              << "', " << model.layers().size() << " layers";
    if (model.dtype() == DType::float64) std::cout << ", float64 weights rounded to float32";
    std::cout << ")\n";
  });
}

}  // namespace reskit::cli
