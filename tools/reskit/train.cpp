// reskit train: the main job. With no arguments it trains the CIFAR-style ResNet-20 on Debian's
// Fashion-MNIST and leaves the model, the history CSV and the training curves in the working
// folder; every choice is a flag. Input shape and class count come from the data (pictures in a
// folder may be resized with --input). A Keras Applications model (resnet50-imagenet, ...) takes
// --weights FILE.h5 (loaded by layer name) and, with --include-top false --pooling avg, gets a new
// softmax head for the data's classes (Keras's transfer learning); its data go through the
// family's preprocess_input.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/models/registry.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/random.h"
#include "reskit/runtime.h"
#include "reskit/training/callbacks.h"
#include "reskit/training/checkpoint.h"
#include "reskit/training/curves.h"
#include "reskit/training/fit.h"

namespace reskit::cli {

namespace {
struct TrainArgs {
  std::string model = "resnet20", data = "fashion-mnist", validation, optimizer = "adam", schedule = "cosine";
  std::string dtype = "float32", output, history, curves, checkpoint_dir, resume, input, freeze = "none",
              unfreeze_from;
  AppFlags app;
  int epochs = kDefaultEpochs, batch_size = 128, threads = 0;
  std::int64_t limit = 0, checkpoint_every = 0;
  double lr = 0.0, weight_decay = 0.0;
  std::uint64_t seed = 0;
  bool augment = false;
  static constexpr int kDefaultEpochs = 10;
};

std::shared_ptr<Optimizer> make_optimizer(const TrainArgs& a, std::int64_t total_steps) {
  std::shared_ptr<Optimizer> opt;
  if (a.optimizer == "adam" || a.optimizer == "adamw") {
    AdamOptions o;
    o.learning_rate = a.lr > 0 ? a.lr : 0.002;
    o.weight_decay = a.optimizer == "adamw" ? (a.weight_decay > 0 ? a.weight_decay : 0.004) : a.weight_decay;
    opt = std::make_shared<Adam>(o);
  } else if (a.optimizer == "sgd") {
    opt = std::make_shared<SGD>(
        SGDOptions{.learning_rate = a.lr > 0 ? a.lr : 0.1, .momentum = 0.9, .nesterov = true});
  } else {
    throw UsageError("--optimizer: expected adam, adamw or sgd, got '" + a.optimizer + "'");
  }
  const double lr = opt->learning_rate();
  if (a.schedule == "cosine") {
    opt->set_schedule(std::make_shared<CosineDecay>(lr, std::max<std::int64_t>(total_steps, 1)));
  } else if (a.schedule == "step") {
    // ×0.1 at half and three quarters of training (He et al. 2015, §4.2)
    opt->set_schedule(std::make_shared<PiecewiseConstantDecay>(
        std::vector<std::int64_t>{total_steps / 2, total_steps * 3 / 4},
        std::vector<double>{lr, lr * 0.1, lr * 0.01}));
  } else if (a.schedule != "constant") {
    throw UsageError("--lr-schedule: expected cosine, step or constant, got '" + a.schedule + "'");
  }
  return opt;
}

// --resume: the flags a resumed run must repeat (stored in checkpoint.json's args by
// BackupAndRestore) decide the data, the model, the batches and the schedule. --epochs only
// matters to cosine and step schedules (they span all epochs).
nlohmann::json checked_args(const TrainArgs& a) {
  nlohmann::json args = {{"model", a.model},
                         {"data", a.data},
                         {"validation", a.validation},
                         {"batch-size", a.batch_size},
                         {"seed", a.seed},
                         {"dtype", a.dtype},
                         {"optimizer", a.optimizer},
                         {"lr", a.lr},
                         {"lr-schedule", a.schedule},
                         {"weight-decay", a.weight_decay},
                         {"epochs", a.epochs},
                         {"augment", a.augment},
                         {"limit", a.limit}};
  // Only where they matter, so that checkpoints written before these flags still resume.
  if (!application_architecture(a.model).empty() || !a.input.empty()) {
    args["input"] = a.input;
    args["include-top"] = a.app.include_top;
    args["pooling"] = a.app.pooling;
    args["preprocess"] = a.app.preprocess;
  }
  if (a.freeze != "none") args["freeze"] = a.freeze;
  if (!a.unfreeze_from.empty()) args["unfreeze-from"] = a.unfreeze_from;
  return args;
}

// Reads the checkpoint in --resume's folder and checks that the flags match the run that wrote it.
CheckpointInfo read_resume(const TrainArgs& a) {
  CheckpointInfo c;
  try {
    c = read_checkpoint(a.resume);
  } catch (const FileError& e) {
    throw FileError("--resume: " + std::string(e.what()));
  }
  const std::string path = (std::filesystem::path(a.resume) / kCheckpointJson).string();
  const nlohmann::json want = nlohmann::json::parse(c.args), got = checked_args(a);
  if (!want.is_object()) throw FileError("--resume: " + path + ": args is not an object");
  // --epochs last: a differing schedule or data explains a differing --epochs better.
  std::vector<std::string> flags;
  for (const auto& [flag, value] : got.items())
    if (flag != "epochs") flags.push_back(flag);
  flags.push_back("epochs");
  for (const auto& flag : flags) {
    const nlohmann::json& value = got.at(flag);
    const auto it = want.find(flag);
    if (it == want.end()) throw FileError("--resume: " + path + ": args has no '" + flag + "'");
    if (*it == value) continue;
    if (flag == "epochs" && a.schedule == "constant") continue;  // a constant rate spans no epochs
    throw ConfigError("--resume: --" + flag + " differs from the checkpointed run: expected " + it->dump() +
                      ", got " + value.dump() +
                      (flag == "epochs" ? " (the " + a.schedule + " schedule spans all epochs)" : ""));
  }
  return c;
}

// The files a run writes: the flags' names, or the defaults named after the model and the data.
struct OutputFiles {
  std::string model, history, curves;
};

OutputFiles output_files(const TrainArgs& a) {
  const std::string stem = a.model + "-" + std::filesystem::path(a.data).stem().string();
  OutputFiles f;
  f.model = a.output.empty() ? stem + ".h5" : a.output;
  f.history = a.history.empty() ? stem + "-history.csv" : a.history;
  f.curves =
      a.curves.empty() ? std::filesystem::path(f.history).replace_extension(".svg").string() : a.curves;
  // The defaults go to the working folder: checked here, not after hours of training.
  for (const auto& [flag, path] :
       {std::pair{"-o/--output", f.model}, {"--history", f.history}, {"--curves", f.curves}}) {
    std::string text = path;
    const std::string problem = writable_file()(text);
    if (!problem.empty()) throw ConfigError(std::string(flag) + ": " + problem);
  }
  return f;
}

void run_train(const TrainArgs& a) {
  if (a.epochs < 1) throw UsageError("--epochs: expected a count >= 1, got " + std::to_string(a.epochs));
  if (a.batch_size < 1)
    throw UsageError("--batch-size: expected a size >= 1, got " + std::to_string(a.batch_size));
  if (a.checkpoint_every > 0 && a.checkpoint_dir.empty() && a.resume.empty())
    throw UsageError("--checkpoint-every: expected --checkpoint-dir (or --resume) with it");
  const OutputFiles files = output_files(a);
  if (a.threads != 0) set_num_threads(a.threads);
  set_global_policy(a.dtype);
  set_random_seed(a.seed);
  // A checkpoint that does not fit the flags is refused before any data is read.
  const bool resuming = !a.resume.empty();
  CheckpointInfo resume;
  if (resuming) {
    resume = read_resume(a);
    if (resume.threads > 0 && resume.threads != num_threads()) {
      std::cerr << "reskit: warning: the checkpointed run used " << resume.threads << " threads, this one "
                << num_threads() << "; the result may differ in the last bits from an uninterrupted run\n";
    }
  }

  const BuildOptions build = build_options(a.app, true);
  LoadOptions lo;
  if (!a.input.empty()) {
    const Shape in = parse_shape("--input", a.input);
    if (in.size() != 3) throw UsageError("--input: expected H,W,C, got '" + a.input + "'");
    lo.rows = in[0], lo.cols = in[1], lo.channels = static_cast<int>(in[2]);
  }
  Dataset train = load_dataset(a.data, "train", lo);
  Dataset val;
  std::string val_spec = a.validation;
  if (!val_spec.empty()) {
    val = load_dataset(val_spec, "test", lo);
  } else {
    // The test split of the same data; a file holding one split gives it back whatever the split
    // asked, so then hold out the last 10% of the training samples instead, at least one (as
    // Keras's validation_split takes the last samples; not FitOptions::validation_split, which
    // rounds differently and would come after --limit).
    val = load_dataset(a.data, "test", lo);
    val_spec = a.data + " (test split)";
    if (val.source() == train.source() && val.size() == train.size()) {
      const std::int64_t split_at = train.size() - std::max<std::int64_t>(1, train.size() / 10);
      if (split_at < 1)
        throw ConfigError("--data: '" + a.data + "' has too few samples to hold some out for validation");
      val = train.subset(split_at, train.size());
      train = train.subset(0, split_at);
      val_spec = "the last " + std::to_string(val.size()) + " samples of " + a.data +
                 " (held out; no test split found)";
    }
  }

  if (a.limit < 0) throw UsageError("--limit: expected a count >= 0, got " + std::to_string(a.limit));
  if (a.limit > 0) {
    train = train.subset(0, std::min(a.limit, train.size()));
    val = val.subset(0, std::min(a.limit, val.size()));
  }
  std::cout << "Training on " << train.source() << ": " << train.size() << " samples of shape "
            << shape_str(train.sample_shape()) << ", " << train.num_classes() << " classes; validating on "
            << val.size() << " samples\n";
  const std::int64_t steps = (train.size() + a.batch_size - 1) / a.batch_size;
  // The base first, its weights loaded by name, then the new head (which no file holds).
  BuildOptions base_options = build;
  base_options.new_head = false;
  Model model = build_model(a.model, train.sample_shape(), train.num_classes(), base_options);
  load_app_weights(model, a.app);
  if (build.new_head) {
    model = with_new_head(model, train.num_classes());
    // A file of an earlier stage holds the head too ("dense"): loaded by name where present.
    if (!a.app.weights.empty()) load_weights(model, a.app.weights, {.by_name = true});
  }
  apply_freezing(model, a.freeze, a.unfreeze_from);
  if (const auto mode = preprocessing_for(model, a.model, a.app.preprocess)) {
    std::cout << "Preprocessing the pictures as keras.applications' preprocess_input(mode='"
              << applications::preprocess_mode_name(*mode) << "')\n";
    train = preprocess_dataset(train, *mode);
    val = preprocess_dataset(val, *mode);
  }
  model.set_class_names(train.class_names());
  model.compile(make_optimizer(a, steps * a.epochs), std::make_shared<CategoricalCrossentropy>(),
                {"accuracy"});
  if (resuming) {
    std::cout << "Resuming from " << resume.model_path << " after ";
    if (resume.steps_done > 0) std::cout << "step " << resume.steps_done << " of ";
    std::cout << "epoch " << resume.epochs_done + (resume.steps_done > 0 ? 1 : 0) << " (" << resume.iterations
              << " steps)\n";
  }

  FitOptions fo;
  fo.epochs = a.epochs;
  fo.batch_size = a.batch_size;
  fo.validation_data = &val;
  fo.seed = a.seed;
  if (a.augment) fo.augment = {.pad_crop = 2, .horizontal_flip = true};
  // Appending, the logger drops the rows a crash left after the checkpoint.
  fo.callbacks.push_back(std::make_shared<CSVLogger>(files.history, ',', resuming));
  const std::string checkpoint_dir = a.checkpoint_dir.empty() ? a.resume : a.checkpoint_dir;
  if (!checkpoint_dir.empty()) {
    fo.callbacks.push_back(std::make_shared<BackupAndRestore>(
        checkpoint_dir, BackupAndRestoreOptions{.save_freq = a.checkpoint_every,
                                                .delete_checkpoint = false,
                                                .restore = resuming,
                                                .restore_dir = a.resume,
                                                .args = checked_args(a).dump()}));
  }
  History h = fit(model, train, fo);
  if (resuming) h = read_csv_history(files.history);  // the whole run, not only this part
  save_model(model, files.model);
  plot_history(h, files.curves, a.model + " on " + a.data);
  std::cout << "Saved the model to " << files.model << ", the history to " << files.history
            << " and the curves to " << files.curves << "\n";
  std::cout << "Evaluating on " << val_spec << ":\n";
  evaluate(model, val, {.batch_size = a.batch_size, .verbose = 1});
}
}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model (default: ResNet-20 on Fashion-MNIST)");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option(
         "--model", a->model,
         "Model name (" +
             [] {
               std::string s;
               for (const auto& n : model_names()) s += (s.empty() ? "" : ", ") + n;
               return s;
             }() +
             ")")
      ->capture_default_str()
      ->check(model_name());
  cmd->add_option("--data", a->data,
                  "Training data: fashion-mnist, a SIGNS .h5, IDX, CIFAR-10 or an image folder")
      ->capture_default_str();
  cmd->add_option("--validation", a->validation, "Validation data (default: the test split of --data)");
  cmd->add_option("--epochs", a->epochs, "Epochs")->capture_default_str()->check(integer_at_least(1));
  add_batch_size_flag(*cmd, a->batch_size);
  cmd->add_option("--optimizer", a->optimizer, "Optimizer")
      ->capture_default_str()
      ->check(one_of({"adam", "adamw", "sgd"}));
  cmd->add_option("--lr", a->lr, "Learning rate (default: 0.002 for adam, 0.1 for sgd)")
      ->check(positive_number());
  cmd->add_option("--lr-schedule", a->schedule, "Learning-rate schedule")
      ->capture_default_str()
      ->check(one_of({"cosine", "step", "constant"}));
  cmd->add_option("--weight-decay", a->weight_decay, "Decoupled weight decay (adamw)")
      ->check(non_negative_number());
  cmd->add_flag("--augment", a->augment, "Random crop (pad 2) and horizontal flip");
  add_limit_flag(*cmd, a->limit, "Use only the first N training and validation samples");
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str()->check(integer_at_least(0));
  cmd->add_option("--dtype", a->dtype,
                  "float32, float64 or mixed_bfloat16 (float32 weights, bfloat16 convolutions)")
      ->capture_default_str()
      ->check(dtype_name());
  add_threads_flag(*cmd, a->threads);
  cmd->add_option("--input", a->input, "Resize the pictures of a folder to H,W,C (e.g. 224,224,3)");
  add_application_flags(*cmd, a->app);
  cmd->add_option("--freeze", a->freeze,
                  "base: train only the classifier (Keras base_model.trainable = False)")
      ->capture_default_str()
      ->check(one_of({"none", "base"}));
  cmd->add_option("--unfreeze-from", a->unfreeze_from,
                  "Train only this layer and those after it (a layer name or the start of names, e.g. "
                  "conv5_block1); the layers before it are frozen");
  cmd->add_option("-o,--output", a->output, "Model file to write (default: <model>-<data>.h5)")
      ->check(writable_file());
  cmd->add_option("--history", a->history, "History CSV (default: <model>-<data>-history.csv)")
      ->check(writable_file());
  cmd->add_option("--curves", a->curves, "Training curves SVG (default: the history's name with .svg)")
      ->check(writable_file());
  cmd->add_option(
         "--checkpoint-dir", a->checkpoint_dir,
         "After every epoch save the model (epoch-NNN.h5, the last two kept) and checkpoint.json here")
      ->check(writable_folder());
  cmd->add_option("--checkpoint-every", a->checkpoint_every,
                  "With --checkpoint-dir (or --resume), also checkpoint every S steps inside an epoch")
      ->check(integer_at_least(1));
  cmd->add_option("--resume", a->resume,
                  "Continue the run checkpointed in this folder (same flags; --epochs may grow with "
                  "--lr-schedule constant); it goes on checkpointing there unless --checkpoint-dir is given")
      ->check(existing_folder());
  cmd->callback([a] { run_train(*a); });
}

}  // namespace reskit::cli
