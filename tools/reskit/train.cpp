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
#include <set>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/distributed/communicator.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/models/registry.h"
#include "reskit/models/regularize.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/random.h"
#include "reskit/runtime.h"
#include "reskit/training/callbacks.h"
#include "reskit/training/checkpoint.h"
#include "reskit/training/curves.h"
#include "reskit/training/fit.h"
#include "stream_data.h"

namespace reskit::cli {

namespace {
struct TrainArgs {
  std::string model = "resnet20", data = "fashion-mnist", validation, optimizer = "adam", schedule = "cosine";
  std::string dtype = "float32", output, history, curves, checkpoint_dir, resume, freeze = "none",
              unfreeze_from;
  AppFlags app;
  int epochs = kDefaultEpochs, batch_size = 128, threads = 0;
  std::int64_t limit = 0, checkpoint_every = 0, lr_reference_batch = 0;
  double lr_warmup_epochs = 0.0;
  double lr = 0.0, weight_decay = 0.0, l1 = 0.0, l2 = 0.0;
  std::uint64_t seed = 0;
  bool sync_batch_norm = false, unfreeze_batch_norm = false;
  ExchangeFlags exchange;
  DataFlags data_flags;
  static constexpr int kDefaultEpochs = 10;
};

// steps_per_epoch: for --lr-warmup-epochs.
std::shared_ptr<Optimizer> make_optimizer(const TrainArgs& a, std::int64_t total_steps,
                                          std::int64_t steps_per_epoch) {
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
  // --lr-reference-batch B0: the rate is for a global batch of B0 and scales linearly with the
  // global batch (Goyal et al. 2017: lr = 0.1·B/256 for SGD).
  const double lr = linearly_scaled_learning_rate(opt->learning_rate(), a.batch_size, a.lr_reference_batch);
  opt->set_learning_rate(lr);
  const auto warmup = static_cast<std::int64_t>(a.lr_warmup_epochs * static_cast<double>(steps_per_epoch));
  std::shared_ptr<LearningRateSchedule> schedule;
  if (a.schedule == "cosine") {
    schedule =
        std::make_shared<CosineDecay>(lr, std::max<std::int64_t>(total_steps - warmup, 1), 0.0, warmup);
  } else if (a.schedule == "step") {
    // ×0.1 at half and three quarters of training (He et al. 2015, §4.2)
    schedule = std::make_shared<PiecewiseConstantDecay>(
        std::vector<std::int64_t>{total_steps / 2, total_steps * 3 / 4},
        std::vector<double>{lr, lr * 0.1, lr * 0.01});
  } else if (a.schedule != "constant") {
    throw UsageError("--lr-schedule: expected cosine, step or constant, got '" + a.schedule + "'");
  }
  // --lr-warmup-epochs with the step and constant schedules: the rate rises linearly from 0 over the
  // first warmup steps, then follows the schedule (Goyal et al. 2017's gradual warm-up).
  if (warmup > 0 && a.schedule != "cosine") schedule = std::make_shared<LinearWarmup>(schedule, lr, warmup);
  if (a.lr_reference_batch > 0 || warmup > 0) {
    std::cout << "Learning rate " << lr;
    if (a.lr_reference_batch > 0)
      std::cout << " (for the global batch " << a.batch_size << "; reference batch " << a.lr_reference_batch
                << ")";
    if (warmup > 0) std::cout << ", warmed up linearly from 0 over " << warmup << " steps";
    std::cout << "\n";
  }
  if (schedule) opt->set_schedule(schedule);
  return opt;
}

// --augment in checkpoint.json: false (none), true (pad-crop and flip, as the flag alone), or the list.
nlohmann::json augment_arg(const std::string& list) {
  if (list.empty()) return false;
  if (list == kDefaultAugment) return true;
  return list;
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
                         {"l1", a.l1},
                         {"l2", a.l2},
                         {"epochs", a.epochs},
                         {"augment", augment_arg(a.data_flags.augment)},
                         {"input", a.data_flags.input},
                         {"interpolation", a.data_flags.interpolation},
                         {"crop-to-aspect-ratio", a.data_flags.crop_to_aspect_ratio},
                         {"validation-split", a.data_flags.validation_split},
                         {"cache", a.data_flags.cache},
                         {"limit", a.limit}};
  // Only where they matter, so that checkpoints written before these flags still resume.
  if (!application_architecture(a.model).empty()) {
    args["include-top"] = a.app.include_top;
    args["pooling"] = a.app.pooling;
    args["preprocess"] = a.app.preprocess;
  }
  if (a.freeze != "none") args["freeze"] = a.freeze;
  if (!a.unfreeze_from.empty()) args["unfreeze-from"] = a.unfreeze_from;
  if (a.unfreeze_batch_norm) args["unfreeze-batch-norm"] = true;
  return args;
}

// The large-batch and exchange flags join the checked ones when set (checkpoints written without them
// resume).
nlohmann::json checked_args_all(const TrainArgs& a) {
  nlohmann::json j = checked_args(a);
  if (a.lr_reference_batch > 0) j["lr-reference-batch"] = a.lr_reference_batch;
  if (a.lr_warmup_epochs > 0) j["lr-warmup-epochs"] = a.lr_warmup_epochs;
  if (a.sync_batch_norm) j["sync-batch-norm"] = true;
  // bfloat16 sums are other gradients: the continuation would not be the same run's.
  if (a.exchange.dtype == "bfloat16") j["allreduce-dtype"] = "bfloat16";
  return j;
}

// The checked flags that args holds only when they are set (checked_args, checked_args_all).
const std::set<std::string> kSetOnly = {
    "freeze",           "unfreeze-from",   "unfreeze-batch-norm", "lr-reference-batch",
    "lr-warmup-epochs", "sync-batch-norm", "allreduce-dtype"};

// Reads the checkpoint in --resume's folder and checks that the flags match the run that wrote it.
CheckpointInfo read_resume(const TrainArgs& a) {
  CheckpointInfo c;
  try {
    c = read_checkpoint(a.resume);
  } catch (const FileError& e) {
    throw FileError("--resume: " + std::string(e.what()));
  }
  const std::string path = (std::filesystem::path(a.resume) / kCheckpointJson).string();
  const nlohmann::json want = nlohmann::json::parse(c.args), got = checked_args_all(a);
  if (!want.is_object()) throw FileError("--resume: " + path + ": args is not an object");
  // --epochs last: a differing schedule or data explains a differing --epochs better.
  std::vector<std::string> flags;
  for (const auto& [flag, value] : got.items())
    if (flag != "epochs") flags.push_back(flag);
  flags.push_back("epochs");
  for (const auto& flag : flags) {
    const nlohmann::json& value = got.at(flag);
    const auto it = want.find(flag);
    if (it == want.end() && (flag == "l1" || flag == "l2") && value == 0.0) continue;  // older checkpoints
    if (it == want.end() && kSetOnly.count(flag)) {
      throw ConfigError("--resume: --" + flag + " differs from the checkpointed run: expected none, got " +
                        value.dump());
    }
    if (it == want.end()) throw FileError("--resume: " + path + ": args has no '" + flag + "'");
    if (*it == value) continue;
    if (flag == "epochs" && a.schedule == "constant") continue;  // a constant rate spans no epochs
    throw ConfigError("--resume: --" + flag + " differs from the checkpointed run: expected " + it->dump() +
                      ", got " + value.dump() +
                      (flag == "epochs" ? " (the " + a.schedule + " schedule spans all epochs)" : ""));
  }
  // A flag the checkpointed run set and this one does not (e.g. --freeze base, then none: other
  // weights would train; a new stage starts from the last stage's file with --weights instead).
  for (const auto& [flag, value] : want.items()) {
    if (kSetOnly.count(flag) && !got.contains(flag)) {
      throw ConfigError("--resume: --" + flag + " differs from the checkpointed run: expected " +
                        value.dump() + ", got none");
    }
  }
  return c;
}

// --sync-batch-norm: the model with every BatchNormalization a SyncBatchNormalization (its Keras
// config rewritten) and the same weights.
Model with_sync_batch_norm(Model& model) {
  nlohmann::json config = nlohmann::json::parse(model_to_json(model));
  for (auto& layer : config.at("config").at("layers"))
    if (layer.at("class_name") == "BatchNormalization") layer["class_name"] = "SyncBatchNormalization";
  Model synced = model_from_json(config.dump());
  const std::vector<Param*> from = model.parameters(), to = synced.parameters();
  for (std::size_t i = 0; i < from.size(); ++i) {
    std::memcpy(to[i]->value.raw_data(), std::as_const(from[i]->value).raw_data(),
                static_cast<std::size_t>(from[i]->value.numel()) * dtype_size(from[i]->value.dtype()));
  }
  return synced;
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
  const distributed::GradientExchange exchange = gradient_exchange(a.exchange, a.dtype);
  // Under mpirun: --batch-size is the global batch; rank 0 writes every file.
  distributed::Communicator& job = distributed::world();
  const bool writer = job.rank() == 0;
  if (a.batch_size % job.size() != 0) {
    throw UsageError("--batch-size: the global batch " + std::to_string(a.batch_size) +
                     " does not split evenly over " + std::to_string(job.size()) + " processes");
  }
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
  TrainData data = open_train_data(a.data, a.validation, a.data_flags, a.limit, a.seed);
  BatchSource& train = data.train();
  BatchSource& val = data.val();
  std::cout << "Training on " << train.source() << ": " << train.size() << " samples of shape "
            << shape_str(train.sample_shape()) << ", " << train.num_classes() << " classes"
            << (data.streaming() ? " (streamed)" : "") << "; validating on " << val.size() << " samples\n";
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
  apply_freezing(model, a.freeze, a.unfreeze_from, a.unfreeze_batch_norm);
  if (a.l1 > 0 || a.l2 > 0) {  // on every Conv2D and Dense kernel, as keras.io's CIFAR-10 ResNet
    regularize_kernels(model, a.l1 > 0 && a.l2 > 0 ? Regularizer(L1L2(a.l1, a.l2))
                              : a.l1 > 0           ? Regularizer(L1(a.l1))
                                                   : Regularizer(L2(a.l2)));
  }
  if (a.sync_batch_norm) model = with_sync_batch_norm(model);
  // Keras Applications models: pictures as 0..255 RGB through the family's preprocess_input.
  std::unique_ptr<PreprocessedBatches> train_pre, val_pre;
  if (const auto mode = preprocessing_for(model, a.model, a.app.preprocess)) {
    std::cout << "Preprocessing the pictures as keras.applications' preprocess_input(mode='"
              << applications::preprocess_mode_name(*mode) << "')\n";
    if (data.streaming()) {
      train_pre = std::make_unique<PreprocessedBatches>(train, *mode);
      val_pre = std::make_unique<PreprocessedBatches>(val, *mode);
    } else {
      data.train_memory = preprocess_dataset(data.train_memory, *mode);
      data.val_memory = preprocess_dataset(data.val_memory, *mode);
    }
  }
  model.set_class_names(train.class_names());
  model.compile(make_optimizer(a, steps * a.epochs, steps), std::make_shared<CategoricalCrossentropy>(),
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
  if (data.streaming()) {
    fo.validation_source = val_pre ? val_pre.get() : &val;
  } else {
    fo.validation_data = &data.val_memory;
  }
  fo.seed = a.seed;
  fo.communicator = &job;
  fo.exchange = exchange;
  fo.augment = parse_augment(a.data_flags.augment);
  // Appending, the logger drops the rows a crash left after the checkpoint.
  if (writer) fo.callbacks.push_back(std::make_shared<CSVLogger>(files.history, ',', resuming));
  const std::string checkpoint_dir = a.checkpoint_dir.empty() ? a.resume : a.checkpoint_dir;
  if (!checkpoint_dir.empty()) {
    fo.callbacks.push_back(std::make_shared<BackupAndRestore>(
        checkpoint_dir, BackupAndRestoreOptions{.save_freq = a.checkpoint_every,
                                                .delete_checkpoint = false,
                                                .restore = resuming,
                                                .restore_dir = a.resume,
                                                .args = checked_args_all(a).dump(),
                                                .save = writer}));
  }
  History h = !data.streaming() ? fit(model, data.train_memory, fo)
              : train_pre       ? fit(model, *train_pre, fo)
                                : fit(model, train, fo);
  if (writer) {
    if (resuming) h = read_csv_history(files.history);  // the whole run, not only this part
    save_model(model, files.model);
    plot_history(h, files.curves, a.model + " on " + a.data);
  }
  std::cout << "Saved the model to " << files.model << ", the history to " << files.history
            << " and the curves to " << files.curves << "\n";
  std::cout << "Evaluating on " << data.val_spec << ":\n";
  evaluate(model, val_pre ? *val_pre : val, {.batch_size = a.batch_size, .verbose = 1, .communicator = &job});
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
  cmd->add_option(
         "--lr-reference-batch", a->lr_reference_batch,
         "The rate is for this global batch; it scales linearly with --batch-size (Goyal et al. 2017)")
      ->check(integer_at_least(1));
  cmd->add_option(
         "--lr-warmup-epochs", a->lr_warmup_epochs,
         "Raise the rate linearly from 0 over these epochs first (gradual warm-up, Goyal et al. 2017)")
      ->check(non_negative_number());
  cmd->add_option("--weight-decay", a->weight_decay, "Decoupled weight decay (adamw)")
      ->check(non_negative_number());
  cmd->add_option("--l2", a->l2,
                  "L2 kernel regularizer on every Conv2D and Dense kernel: adds L2·Σw² to the loss (Keras's "
                  "kernel_regularizer=l2(L2), e.g. 1e-4; not --weight-decay)")
      ->check(non_negative_number());
  cmd->add_option("--l1", a->l1,
                  "L1 kernel regularizer on every Conv2D and Dense kernel: adds L1·Σ|w| to the loss")
      ->check(non_negative_number());
  cmd->add_flag(
      "--sync-batch-norm", a->sync_batch_norm,
      "Under mpirun: every BatchNormalization a SyncBatchNormalization (the global batch's statistics)");
  add_exchange_flags(*cmd, a->exchange);
  add_data_flags(*cmd, a->data_flags);
  add_limit_flag(*cmd, a->limit, "Use only the first N training and validation samples");
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str()->check(integer_at_least(0));
  cmd->add_option("--dtype", a->dtype,
                  "float32, float64 or mixed_bfloat16 (float32 weights, bfloat16 convolutions)")
      ->capture_default_str()
      ->check(dtype_name());
  add_threads_flag(*cmd, a->threads);
  add_application_flags(*cmd, a->app);
  cmd->add_option("--freeze", a->freeze,
                  "base: train only the classifier (Keras base_model.trainable = False)")
      ->capture_default_str()
      ->check(one_of({"none", "base"}));
  cmd->add_option("--unfreeze-from", a->unfreeze_from,
                  "Train only this layer and those after it (a layer name or the start of names, e.g. "
                  "conv5_block1); the layers before it are frozen, and so are its BatchNormalization "
                  "layers (Keras's fine-tuning recipe)");
  cmd->add_flag("--unfreeze-batch-norm", a->unfreeze_batch_norm,
                "With --unfreeze-from: train the BatchNormalization layers after the point too (training "
                "mode: their moving statistics follow the new data's batches)");
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
