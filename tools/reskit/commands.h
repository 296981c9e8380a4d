// The reskit command line: one function per sub-command, registered on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include "reskit/data/dataset.h"
#include "reskit/graph/model.h"
#include "reskit/tensor.h"

namespace reskit::cli {

void add_summary_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_plot_command(CLI::App& app);

// The first `limit` samples (all when 0); throws ConfigError for a negative limit.
Dataset limited(const Dataset& data, std::int64_t limit);
// A saved model, compiled with categorical cross-entropy and accuracy if the file was not.
Model load_for_inference(const std::string& path);

// "64,64,3" -> {64, 64, 3}; throws ConfigError naming the flag.
Shape parse_shape(const std::string& flag, const std::string& text);

}  // namespace reskit::cli
