// reskit — the command line. Sub-commands live one per file; errors are printed, never thrown
// out: a reskit::Error or a bad flag exits with status 1 (CLI11 usage errors with its own code).
#include <cstdio>
#include <exception>

#include "commands.h"
#include "reskit/error.h"

int main(int argc, char** argv) {
  CLI::App app{"reskit: residual networks in C++ (Keras semantics)", "reskit"};
  app.require_subcommand(1);
  reskit::cli::add_summary_command(app);
  reskit::cli::add_bench_command(app);
  reskit::cli::add_train_command(app);
  reskit::cli::add_evaluate_command(app);
  reskit::cli::add_predict_command(app);
  reskit::cli::add_export_command(app);
  reskit::cli::add_plot_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reskit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
