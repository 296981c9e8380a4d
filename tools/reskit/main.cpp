// reskit — the command line. Sub-commands live one per file; errors are printed, never thrown
// out: a usage error (CLI11's, or a UsageError from a command) exits with status 2, anything else
// (a reskit::Error, a file a flag names that is missing) with 1; --help exits with 0. An unknown
// command or flag is named, with the nearest known one when it looks like a typo.
// Under mpirun (reskit/distributed): only rank 0 writes to stdout; an error names the rank and ends
// every process of the job (MPI_Abort), so no rank waits forever in a collective.
#include <cctype>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "reskit/distributed/communicator.h"
#include "reskit/error.h"

namespace {

bool is_flag(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  // "-0.5", "-3": a (negative) number, not a flag
  return !(std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.');
}

std::string command_list(CLI::App& app) {
  std::string s;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    s += (s.empty() ? "" : ", ") + sub->get_name();
  return s;
}

// Explains a usage error from what CLI11 could not place: a word where a command belongs, or a
// flag the command does not have. Returns false when there is nothing such to explain.
bool explain_unknown(CLI::App& app) {
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty()) {
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
      commands.push_back(sub->get_name());
    std::string word, flag;
    for (const auto& arg : app.remaining()) {
      if (is_flag(arg) && flag.empty()) flag = arg;
      if (!is_flag(arg) && word.empty()) word = arg;
    }
    if (!word.empty()) {
      const std::string near = reskit::cli::nearest_name(word, commands);
      std::fprintf(stderr, "reskit: error: unknown command '%s'%s\n", word.c_str(),
                   near.empty() ? "" : ("; did you mean '" + near + "'?").c_str());
    } else {
      std::fprintf(stderr, "reskit: error: a command is required%s\n",
                   flag.empty() ? "" : (" before its flags (got '" + flag + "')").c_str());
    }
    std::fprintf(stderr, "Commands: %s (reskit COMMAND --help describes one)\n", command_list(app).c_str());
    return true;
  }
  // Flags left over by the command, or before it (reskit's own flags: --help only).
  for (const CLI::App* owner :
       {static_cast<const CLI::App*>(parsed.front()), static_cast<const CLI::App*>(&app)}) {
    for (const auto& arg : owner->remaining()) {
      if (!is_flag(arg)) continue;
      const std::string flag = arg.substr(0, arg.find('='));
      std::vector<std::string> flags;
      for (const CLI::Option* opt : owner->get_options()) {
        for (const auto& n : opt->get_lnames()) flags.push_back("--" + n);
        for (const auto& n : opt->get_snames()) flags.push_back("-" + n);
      }
      const std::string near = reskit::cli::nearest_name(flag, flags);
      const std::string name = owner == &app ? "reskit" : "reskit " + owner->get_name();
      std::fprintf(stderr, "reskit: error: unknown flag '%s' for %s%s\nRun '%s --help' for its flags.\n",
                   flag.c_str(), name.c_str(), near.empty() ? "" : ("; did you mean '" + near + "'?").c_str(),
                   name.c_str());
      return true;
    }
  }
  return false;
}

// The job's processes; a build without MPI under mpirun refuses here, before any work.
reskit::distributed::Communicator* job = nullptr;

// Prints an error (naming the rank in a job of several processes) and returns the exit status;
// in such a job, ends every process with it.
int fail(int status, const std::string& message) {
  const bool many = job && job->size() > 1;
  std::fprintf(stderr, "reskit: error: %s%s\n",
               many ? (reskit::distributed::rank_name(*job) + ": ").c_str() : "", message.c_str());
  if (many) {
    std::fflush(stderr);
    job->abort(status);
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    job = &reskit::distributed::world();
  } catch (const std::exception& e) {
    return fail(reskit::cli::kExitFailure, e.what());
  }
  if (job->rank() != 0) std::cout.setstate(std::ios::badbit);  // rank 0 prints
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
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // An unknown command or flag first: it may be why a later word was taken for a file name.
    if (explain_unknown(app)) return reskit::cli::kExitUsage;
    if (reskit::cli::file_check_failed()) return fail(reskit::cli::kExitFailure, e.what());
    app.exit(e);
    return reskit::cli::kExitUsage;
  } catch (const reskit::cli::UsageError& e) {
    return fail(reskit::cli::kExitUsage, e.what());
  } catch (const std::exception& e) {
    return fail(reskit::cli::kExitFailure, e.what());
  }
  return 0;
}
