// reskit plot MODEL -o FILE [--show-shapes] [--no-layer-names] [--rankdir LR]: the model graph as
// Keras's plot_model draws it (.svg, .png) or its DOT text (.dot); MODEL is a saved model (.h5)
// or a model name with --input and --classes, as `reskit summary` takes.
#include "reskit/io/plot.h"

#include <cctype>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "reskit/io/h5.h"
#include "reskit/models/registry.h"

namespace reskit::cli {

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "Draw a model's graph (.svg, .png or .dot), like Keras plot_model");
  struct Args {
    std::string model, output, input = "64,64,3";
    int classes = 6;
    bool no_layer_names = false;
    PlotModelOptions options;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "Model file (.h5) or model name (as for summary)")->required();
  cmd->add_option("-o,--output", a->output, "File to write: .svg, .png or .dot")
      ->required()
      ->check(writable_file());
  cmd->add_flag("--show-shapes", a->options.show_shapes, "Show each layer's input and output shapes");
  cmd->add_flag("--no-layer-names", a->no_layer_names, "Show class names only");
  cmd->add_option("--rankdir", a->options.rankdir, "TB (top to bottom), LR, BT or RL")
      ->capture_default_str()
      ->check(one_of({"TB", "LR", "BT", "RL"}));
  cmd->add_option("--dpi", a->options.dpi, "Resolution of a .png")
      ->capture_default_str()
      ->check(integer_at_least(1));
  cmd->add_option("--input", a->input, "Input shape H,W,C for a model name")->capture_default_str();
  cmd->add_option("--classes", a->classes, "Number of classes for a model name")
      ->capture_default_str()
      ->check(integer_at_least(1));
  cmd->callback([a] {
    a->options.show_layer_names = !a->no_layer_names;
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool is_file = fs::is_regular_file(a->model, ec) || fs::path(a->model).extension() == ".h5";
    // Mistakes in the command line (exit 2) before the library meets them.
    if (std::string name = a->model, problem = model_name()(name); !is_file && !problem.empty())
      throw UsageError("model: " + problem + ", or a model file (.h5)");
    std::string ext = fs::path(a->output).extension().string();
    for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ext != ".dot" && ext != ".svg" && ext != ".png") {
      throw UsageError("--output: expected a file name ending in .dot, .svg or .png, got " +
                       (ext.empty() ? std::string("no extension") : "'" + ext + "'"));
    }
    Model model = is_file ? load_model(a->model, {.compile = false})
                          : build_model(a->model, parse_shape("--input", a->input), a->classes);
    plot_model(model, a->output, a->options);
    std::cout << "Wrote " << a->output << " (" << model.layers().size() << " layers)\n";
  });
}

}  // namespace reskit::cli
