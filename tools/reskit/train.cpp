// reskit train: the main job. With no arguments it trains the CIFAR-style ResNet-20 on Debian's
// Fashion-MNIST and leaves the model, the history CSV and the training curves in the working
// folder; every choice is a flag. Input shape and class count come from the data.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/io/curves.h"
#include "reskit/io/h5.h"
#include "reskit/models/registry.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/random.h"
#include "reskit/runtime.h"
#include "reskit/training/fit.h"

namespace reskit::cli {

namespace {
struct TrainArgs {
  std::string model = "resnet20", data = "fashion-mnist", validation, optimizer = "adam", schedule = "cosine";
  std::string dtype = "float32", output, history, curves, checkpoint_dir;
  int epochs = kDefaultEpochs, batch_size = 128, threads = 0;
  std::int64_t limit = 0;
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
    throw ConfigError("--optimizer: expected adam, adamw or sgd, got '" + a.optimizer + "'");
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
    throw ConfigError("--lr-schedule: expected cosine, step or constant, got '" + a.schedule + "'");
  }
  return opt;
}

void run_train(const TrainArgs& a) {
  if (a.epochs < 1) throw ConfigError("--epochs: expected a count >= 1, got " + std::to_string(a.epochs));
  if (a.batch_size < 1)
    throw ConfigError("--batch-size: expected a size >= 1, got " + std::to_string(a.batch_size));
  if (a.threads != 0) set_num_threads(a.threads);
  set_floatx(parse_dtype(a.dtype));
  set_random_seed(a.seed);

  Dataset train = load_dataset(a.data, "train");
  Dataset val;
  std::string val_spec = a.validation;
  if (!val_spec.empty()) {
    val = load_dataset(val_spec, "test");
  } else {
    // The test split of the same data; a file holding one split gives it back whatever the split
    // asked, so then hold out the last 10% of the training samples instead (Keras validation_split).
    val = load_dataset(a.data, "test");
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

  if (a.limit < 0) throw ConfigError("--limit: expected a count >= 0, got " + std::to_string(a.limit));
  if (a.limit > 0) {
    train = train.subset(0, std::min(a.limit, train.size()));
    val = val.subset(0, std::min(a.limit, val.size()));
  }
  std::cout << "Training on " << train.source() << ": " << train.size() << " samples of shape "
            << shape_str(train.sample_shape()) << ", " << train.num_classes() << " classes; validating on "
            << val.size() << " samples\n";
  Model model = build_model(a.model, train.sample_shape(), train.num_classes());
  model.set_class_names(train.class_names());
  const std::int64_t steps = (train.size() + a.batch_size - 1) / a.batch_size;
  model.compile(make_optimizer(a, steps * a.epochs), std::make_shared<CategoricalCrossentropy>(),
                {"accuracy"});

  const std::string stem = a.model + "-" + std::filesystem::path(a.data).stem().string();
  const std::string output = a.output.empty() ? stem + ".h5" : a.output;
  const std::string history = a.history.empty() ? stem + "-history.csv" : a.history;
  const std::string curves =
      a.curves.empty() ? std::filesystem::path(history).replace_extension(".svg").string() : a.curves;

  FitOptions fo;
  fo.epochs = a.epochs;
  fo.batch_size = a.batch_size;
  fo.validation_data = &val;
  fo.seed = a.seed;
  if (a.augment) fo.augment = {.pad_crop = 2, .horizontal_flip = true};
  fo.callbacks.push_back(std::make_shared<CSVLogger>(history));
  if (!a.checkpoint_dir.empty()) {
    std::filesystem::create_directories(a.checkpoint_dir);
    fo.callbacks.push_back(std::make_shared<ModelCheckpoint>(
        (std::filesystem::path(a.checkpoint_dir) / "epoch-{epoch:03d}.h5").string()));
  }
  History h = fit(model, train, fo);
  save_model(model, output);
  plot_history(h, curves, a.model + " on " + a.data);
  std::cout << "Saved the model to " << output << ", the history to " << history << " and the curves to "
            << curves << "\n";
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
      ->capture_default_str();
  cmd->add_option("--data", a->data,
                  "Training data: fashion-mnist, a SIGNS .h5, IDX, CIFAR-10 or an image folder")
      ->capture_default_str();
  cmd->add_option("--validation", a->validation, "Validation data (default: the test split of --data)");
  cmd->add_option("--epochs", a->epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "adam, adamw or sgd")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Learning rate (default: 0.002 for adam, 0.1 for sgd)");
  cmd->add_option("--lr-schedule", a->schedule, "cosine, step or constant")->capture_default_str();
  cmd->add_option("--weight-decay", a->weight_decay, "Decoupled weight decay (adamw)");
  cmd->add_flag("--augment", a->augment, "Random crop (pad 2) and horizontal flip");
  cmd->add_option("--limit", a->limit, "Use only the first N training and validation samples");
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "float32 or float64")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("-o,--output", a->output, "Model file to write (default: <model>-<data>.h5)");
  cmd->add_option("--history", a->history, "History CSV (default: <model>-<data>-history.csv)");
  cmd->add_option("--curves", a->curves, "Training curves SVG (default: the history's name with .svg)");
  cmd->add_option("--checkpoint-dir", a->checkpoint_dir, "Save the model here after every epoch");
  cmd->callback([a] { run_train(*a); });
}

}  // namespace reskit::cli
