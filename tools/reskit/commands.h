// The reskit command line: one function per sub-command, registered on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reskit/data/batch_source.h"
#include "reskit/data/dataset.h"
#include "reskit/distributed/data_parallel.h"
#include "reskit/error.h"
#include "reskit/graph/model.h"
#include "reskit/models/applications.h"
#include "reskit/models/registry.h"
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

// ---------------------------------------------------------------- Keras Applications (applications.cpp)

// The flags of the -imagenet models (Keras Applications), registered by add_application_flags.
struct AppFlags {
  std::string weights;              // --weights FILE.h5, loaded by layer name
  bool include_top = true;          // --include-top
  std::string pooling = "none";     // --pooling none|avg|max
  std::string preprocess = "auto";  // --preprocess auto|none|caffe|tf|torch
  std::string class_index;          // --class-index imagenet_class_index.json
};
// Which of the flags a command takes.
struct AppFlagSet {
  bool weights = true, top = true, preprocess = true, class_index = false;
};
void add_application_flags(CLI::App& cmd, AppFlags& flags, AppFlagSet set = {});
// A model file, or a name build_model knows.
CLI::Validator model_file_or_name();
// BuildOptions from the flags; new_head: a new softmax head when the top is left out (train).
BuildOptions build_options(const AppFlags& flags, bool new_head);
// Loads --weights, if given, by layer name into model: every layer with weights must be in it.
void load_app_weights(Model& model, const AppFlags& flags);
bool is_model_name(const std::string& arg);
// A saved model (compiled as load_for_inference does) or, for a built-in name, the model built for
// input and classes with --weights loaded, compiled with Adam and categorical cross-entropy.
Model model_from_arg(const std::string& arg, const AppFlags& flags, const Shape& input, int classes);
// The preprocessing of --preprocess; "auto": the -imagenet name's family, or for a model file a
// Keras Applications ResNet recognised by its layer names; nullopt: pixels scaled by 1/255.
std::optional<applications::PreprocessMode> preprocessing_for(const Model& model,
                                                              const std::string& model_arg,
                                                              const std::string& flag);
// One picture as the model's input (1, rows, cols, channels): scaled by 1/255, or as 0..255 RGB
// pixels through preprocess_input.
Tensor picture_input(const std::string& path, const Shape& input,
                     std::optional<applications::PreprocessMode> mode);
// The dataset's pictures as 0..255 values through preprocess_input, held as float32.
Dataset preprocess_dataset(const Dataset& data, applications::PreprocessMode mode);
// A stream's batches as 0..255 values through preprocess_input (preprocess_dataset's twin for data
// that is not in memory); the source must outlive it.
class PreprocessedBatches final : public BatchSource {
 public:
  PreprocessedBatches(BatchSource& source, applications::PreprocessMode mode)
      : source_(source), mode_(mode) {}
  std::int64_t size() const override { return source_.size(); }
  const Shape& sample_shape() const override { return source_.sample_shape(); }
  int num_classes() const override { return source_.num_classes(); }
  const std::vector<std::string>& class_names() const override { return source_.class_names(); }
  const std::string& source() const override { return source_.source(); }
  void start_epoch(int epoch, std::span<const std::int64_t> order, std::int64_t batch_size,
                   std::int64_t first_step, const AugmentOptions& augment, std::mt19937_64* gen) override {
    source_.start_epoch(epoch, order, batch_size, first_step, augment, gen);
  }
  void next_batch(std::int64_t step, Tensor& x, Tensor& y) override;
  std::string end_epoch() override { return source_.end_epoch(); }

 private:
  BatchSource& source_;
  applications::PreprocessMode mode_;
};
// The class index of --class-index; without it, for 1000 classes, Keras's cached
// imagenet_class_index.json ($KERAS_HOME/models or ~/.keras/models) when there is one.
std::optional<applications::ClassIndex> find_class_index(const std::string& flag, std::int64_t classes);

// --freeze base: every layer frozen but the last (the classifier: a new head or "predictions");
// --unfreeze-from LAYER: the layers before LAYER (a layer name, or the start of names, e.g.
// conv5_block1) frozen, LAYER and those after it trainable but the BatchNormalization layers, which
// stay frozen unless unfreeze_batch_norm (reskit/models/fine_tune.h). Prints what trains.
void apply_freezing(Model& model, const std::string& freeze, const std::string& unfreeze_from,
                    bool unfreeze_batch_norm = false);

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

// How the gradients are summed under mpirun (train and bench): --allreduce-dtype (the weights'
// dtype, the default, or bfloat16: half the traffic) and --allreduce-bucket-mb (25 as DDP's
// buckets, summed while backward goes on; 0: one sum after backward).
struct ExchangeFlags {
  std::string dtype;
  double bucket_mb = 25.0;
  bool shared_memory = true;
};
void add_exchange_flags(CLI::App& cmd, ExchangeFlags& flags);
// The exchange for a run with this --dtype; UsageError when --allreduce-dtype names another type.
distributed::GradientExchange gradient_exchange(const ExchangeFlags& flags, const std::string& dtype);

// Whether one of the four file-system checks above refused a flag: that is a run-time failure
// (exit 1), not a usage error, though CLI11 reports it as a ValidationError.
bool file_check_failed();

}  // namespace reskit::cli
