// The reskit command line: one function per sub-command, registered on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include "reskit/tensor.h"

namespace reskit::cli {

void add_summary_command(CLI::App& app);
void add_bench_command(CLI::App& app);

// "64,64,3" -> {64, 64, 3}; throws ConfigError naming the flag.
Shape parse_shape(const std::string& flag, const std::string& text);

}  // namespace reskit::cli
