// reskit/io/plot.h — a picture of the model graph, like Keras's plot_model.
//
// model_to_dot returns the Graphviz DOT text Keras 2.x's model_to_dot builds: one record node per
// layer labelled "name: ClassName" (or "ClassName" without layer names), with show_shapes a table
// "|{input:|output:}|{{in}|{out}}" of the shapes as Keras prints them ("(None, 64, 64, 3)"; an
// InputLayer's and a merge layer's as a list), and one edge per inbound connection from the
// producing layer to the consumer (a pair connected twice is drawn once), top to bottom by
// default. plot_model writes that text (.dot) or Graphviz's drawing of it (.svg, .png), rendered
// in-process by Graphviz's dot layout (libgvc). The file is written to a temporary file in the
// same folder and renamed into place once complete.
//
// Not here: nested models (expand_nested), dtypes in the labels, layer ranges.
#pragma once

#include <string>

#include "reskit/graph/model.h"

namespace reskit {

struct PlotModelOptions {
  bool show_shapes = false;
  bool show_layer_names = true;
  std::string rankdir = "TB";  // "TB" (top to bottom), "LR", "BT" or "RL"
  int dpi = 96;                // the graph's dpi attribute: the scale of a .png
};

// The DOT text of the model graph. Throws ConfigError for a bad rankdir or dpi.
std::string model_to_dot(const Model& model, const PlotModelOptions& options = {});

// Writes the model graph to path; the extension picks the format: .dot, .svg or .png (any case).
// Throws ConfigError for another extension (naming the ones it takes), FileError when Graphviz
// cannot draw the graph or the file cannot be written.
void plot_model(const Model& model, const std::string& path, const PlotModelOptions& options = {});

}  // namespace reskit
