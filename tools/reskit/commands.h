// The reskit command line: one function per sub-command, registered on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "reskit/data/dataset.h"
#include "reskit/error.h"
#include "reskit/graph/model.h"
#include "reskit/tensor.h"

namespace reskit::cli {

// Exit statuses: a usage error (an unknown command or flag, a missing or malformed argument,
// flags that do not go together) exits with 2, as most Unix tools do; anything that goes wrong
// while running (a file missing, unreadable or malformed, too little memory) with 1.
constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

// A mistake in the command line found after CLI11 parsed it (a malformed --input, flags that do
// not go together): main() prints it and exits with kExitUsage.
class UsageError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

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

// "64,64,3" -> {64, 64, 3}; throws UsageError naming the flag.
Shape parse_shape(const std::string& flag, const std::string& text);

// The name in `names` nearest to a mistyped `word` (edit distance: insertions, deletions,
// substitutions, swaps of neighbours; or a unique name it begins), or "" when none is near enough
// to be what was meant. main.cpp suggests it for an unknown command or flag.
std::string nearest_name(const std::string& word, const std::vector<std::string>& names);

// ---------------------------------------------------------------- flag checks (flags.cpp)
// CLI11 validators, run on a flag's text before the command starts; a failure prints
// "<flag>: expected ..., got '...'" and exits non-zero.

// The --dtype values train and bench accept: a new one is one line in flags.cpp.
const std::vector<std::string>& dtype_names();
CLI::Validator dtype_name();
// A name that build_model knows (models/registry.h).
CLI::Validator model_name();
CLI::Validator one_of(const std::vector<std::string>& names);
CLI::Validator integer_at_least(long long min);
CLI::Validator integer_in(long long min, long long max);
CLI::Validator positive_number();
CLI::Validator non_negative_number();
CLI::Validator existing_file();
CLI::Validator existing_folder();
// A file to write: not a folder, in an existing folder that can be written.
CLI::Validator writable_file();
// A folder to write into, created if missing: its nearest existing ancestor can be written.
CLI::Validator writable_folder();
// The flags that mean the same in every command, registered here once: --batch-size (with --batch
// as another name for it), --threads and --limit, with their checks and help.
CLI::Option* add_batch_size_flag(CLI::App& cmd, int& batch_size, const std::string& help = "Batch size");
CLI::Option* add_threads_flag(CLI::App& cmd, int& threads);
CLI::Option* add_limit_flag(CLI::App& cmd, std::int64_t& limit,
                            const std::string& help = "Use only the first N samples of the data");

// The data pipeline's flags (stream_data.h): --augment [LIST] (alone: kDefaultAugment),
// --data-workers, --cache, --skip-bad-images, --input, --interpolation, --crop-to-aspect-ratio,
// --validation-split.
struct DataFlags;
inline constexpr const char* kDefaultAugment = "pad-crop,flip";
void add_data_flags(CLI::App& cmd, DataFlags& flags);

// Whether one of the four file-system checks above refused a flag: that is a run-time failure
// (exit 1), not a usage error, though CLI11 reports it as a ValidationError.
bool file_check_failed();

}  // namespace reskit::cli
