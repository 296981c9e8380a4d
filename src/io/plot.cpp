// plot_model: the model graph as DOT text (tf.keras 2.x keras/utils/vis_utils.py model_to_dot),
// drawn by Graphviz's library (libgvc: the dot layout, the svg and cairo png renderers).
//
// Graphviz keeps its error handler and plugin state in globals, so drawing is serialised, and one
// Graphviz context serves the whole process: Graphviz 2.42's pango plugin keeps pointers into a
// context's font table after gvFreeContext (a use after free that AddressSanitizer reports when a
// second context draws text), so the context is created once and never freed.
#include "reskit/io/plot.h"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "reskit/error.h"
#include "util/atomic_file.h"

namespace reskit {

namespace {

// Text for a DOT double-quoted string.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A layer name or shape inside a record label: the record syntax characters escaped.
std::string record_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '{' || c == '}' || c == '|' || c == '<' || c == '>') out += '\\';
    out += c;
  }
  return out;
}

// Keras's layer.input_shape / output_shape text: a list for an InputLayer and for a layer with
// several inputs, a tuple otherwise.
std::string shapes_text(const std::vector<Shape>& shapes, bool as_list) {
  std::string s;
  for (const auto& shape : shapes) s += (s.empty() ? "" : ", ") + shape_str(shape);
  return as_list ? "[" + s + "]" : s;
}

std::string layer_label(const Model& model, const graph::ModelNode& node, const PlotModelOptions& options) {
  const Layer& layer = *node.layer;
  std::string label =
      options.show_layer_names ? layer.name() + ": " + layer.class_name() : layer.class_name();
  label = record_text(label);
  if (!options.show_shapes) return label;
  const bool is_input = node.inputs.empty();
  std::vector<Shape> ins;
  for (int in : node.inputs) ins.push_back(model.nodes()[in].output_shape);
  if (is_input) ins.push_back(node.output_shape);
  const std::string in = shapes_text(ins, is_input || ins.size() > 1);
  const std::string out = shapes_text({node.output_shape}, is_input);
  // Keras: '%s\n|{input:|output:}|{{%s}|{%s}}' (a newline character, not an escape).
  return label + "\n|{input:|output:}|{{" + record_text(in) + "}|{" + record_text(out) + "}}";
}

void check_options(const PlotModelOptions& options, const std::string& context) {
  static const std::set<std::string> rankdirs{"TB", "LR", "BT", "RL"};
  if (!rankdirs.count(options.rankdir))
    throw ConfigError(context + ": rankdir: expected TB, LR, BT or RL, got '" + options.rankdir + "'");
  if (options.dpi <= 0 || options.dpi > 10000)
    throw ConfigError(context + ": dpi: expected 1 to 10000, got " + std::to_string(options.dpi));
}

// ---------------------------------------------------------------- Graphviz

std::mutex g_graphviz_mutex;
std::string* g_graphviz_errors = nullptr;  // where the error handler collects, under the mutex

int collect_graphviz_error(char* message) {
  if (g_graphviz_errors && message) *g_graphviz_errors += message;
  return 0;
}

// Graphviz's drawing of the DOT text in format ("svg", "png").
std::string render(const std::string& dot, const char* format, const std::string& context) {
  std::lock_guard<std::mutex> lock(g_graphviz_mutex);
  std::string errors;
  // Graphviz's messages go to `errors` while drawing, whatever happens.
  struct ErrorCapture {
    agusererrf previous;
    explicit ErrorCapture(std::string& out) : previous(agseterrf(collect_graphviz_error)) {
      g_graphviz_errors = &out;
    }
    ~ErrorCapture() {
      agseterrf(previous);
      g_graphviz_errors = nullptr;
    }
    ErrorCapture(const ErrorCapture&) = delete;
    ErrorCapture& operator=(const ErrorCapture&) = delete;
  } capture(errors);
  auto failure = [&](const std::string& what) {
    while (!errors.empty() && std::isspace(static_cast<unsigned char>(errors.back()))) errors.pop_back();
    return FileError(context + ": Graphviz " + what + (errors.empty() ? "" : ": " + errors));
  };
  static GVC_t* const gvc = gvContext();
  Agraph_t* g = nullptr;
  std::string result;
  bool ok = false;
  std::string what;
  if (!gvc) {
    what = "could not start (is libgvc6 installed?)";
  } else if (!(g = agmemread(dot.c_str()))) {
    what = "could not read the DOT text";
  } else if (gvLayout(gvc, g, "dot") != 0) {
    what = "could not lay out the graph (is the dot layout plugin of libgvc6 installed?)";
  } else {
    char* data = nullptr;
    unsigned int length = 0;
    if (gvRenderData(gvc, g, format, &data, &length) != 0 || !data) {
      what = std::string("could not draw ") + format + " (is the renderer plugin of libgvc6 installed?)";
    } else {
      result.assign(data, length);
      ok = true;
    }
    gvFreeRenderData(data);
    gvFreeLayout(gvc, g);
  }
  if (g) agclose(g);
  if (!ok) throw failure(what);
  return result;
}

std::string lower_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

std::string model_to_dot(const Model& model, const PlotModelOptions& options) {
  check_options(options, "model_to_dot");
  std::string dot = "digraph G {\n";
  dot += "rankdir=" + options.rankdir + ";\n";
  dot += "concentrate=True;\n";
  dot += "dpi=" + std::to_string(options.dpi) + ";\n";
  dot += "node [shape=record];\n";
  for (const auto& layer : model.layers()) {
    dot += quoted(layer->name()) + " [label=" + quoted(layer_label(model, model.node_of(*layer), options)) +
           "];\n";
  }
  std::set<std::pair<std::string, std::string>> edges;
  for (const auto& layer : model.layers()) {
    for (int in : model.node_of(*layer).inputs) {
      const std::string& from = model.nodes()[in].layer->name();
      if (!edges.emplace(from, layer->name()).second) continue;  // Keras draws a pair once
      dot += quoted(from) + " -> " + quoted(layer->name()) + ";\n";
    }
  }
  return dot + "}\n";
}

void plot_model(const Model& model, const std::string& path, const PlotModelOptions& options) {
  const std::string context = "plot_model '" + path + "'";
  check_options(options, context);
  const std::string ext = lower_extension(path);
  if (ext != ".dot" && ext != ".svg" && ext != ".png") {
    throw ConfigError(context + ": expected a file name ending in .dot, .svg or .png, got " +
                      (ext.empty() ? std::string("no extension") : "'" + ext + "'"));
  }
  const std::string dot = model_to_dot(model, options);
  const std::string content = ext == ".dot" ? dot : render(dot, ext == ".svg" ? "svg" : "png", context);
  util::write_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw FileError(context + ": cannot open '" + temp + "' for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) throw FileError(context + ": writing '" + temp + "' failed (disk full?)");
  });
}

}  // namespace reskit
