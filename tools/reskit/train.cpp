// reskit train: the main job. With no arguments it trains the CIFAR-style ResNet-20 on Debian's
// Fashion-MNIST and leaves the model, the history CSV and the training curves in the working
// folder; every choice is a flag. Input shape and class count come from the data.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>

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
#include "reskit/training/callbacks.h"
#include "reskit/training/fit.h"

namespace reskit::cli {

namespace {
struct TrainArgs {
  std::string model = "resnet20", data = "fashion-mnist", validation, optimizer = "adam", schedule = "cosine";
  std::string dtype = "float32", output, history, curves, checkpoint_dir, resume;
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

// ---------------------------------------------------------------- checkpoints for --resume
//
// DIR/epoch-NNN.h5 (the model with its optimizer state, save_model) is written first, then
// DIR/checkpoint.json, both through a temporary file renamed into place: a crash leaves the JSON
// naming the last complete checkpoint. With --checkpoint-every S, checkpoints inside an epoch
// (epoch-NNN-step-SSSSSS.h5: NNN epochs and SSSSSS steps done) also hold the epoch's sample order
// and running sums. The two newest model files are kept.

constexpr int kCheckpointFormat = 1;
const char* const kCheckpointJson = "checkpoint.json";

// The flags a resumed run must repeat: they decide the data, the model, the batches and the
// schedule. --epochs only matters to cosine and step schedules (they span all epochs).
nlohmann::json checked_args(const TrainArgs& a) {
  return {{"model", a.model},
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
}

std::string checkpoint_file_name(int epochs_done, std::int64_t steps_done) {
  char buf[48];
  if (steps_done == 0) {
    std::snprintf(buf, sizeof buf, "epoch-%03d.h5", epochs_done);
  } else {
    std::snprintf(buf, sizeof buf, "epoch-%03d-step-%06lld.h5", epochs_done,
                  static_cast<long long>(steps_done));
  }
  return buf;
}

// The position a checkpoint file name records: epoch-NNN.h5 -> {NNN, 0},
// epoch-NNN-step-SSSSSS.h5 -> {NNN, SSSSSS}; nothing for any other name.
std::optional<std::pair<long long, long long>> checkpoint_position(const std::string& name) {
  std::size_t at = 0;
  auto number = [&](long long& value) {  // 1 to 18 digits
    const std::size_t start = at;
    value = 0;
    while (at < name.size() && at - start < 18 && name[at] >= '0' && name[at] <= '9')
      value = value * 10 + (name[at++] - '0');
    return at > start && (at == name.size() || name[at] < '0' || name[at] > '9');
  };
  auto literal = [&](std::string_view text) {
    if (name.compare(at, text.size(), text) != 0) return false;
    at += text.size();
    return true;
  };
  long long epochs = 0, steps = 0;
  if (!literal("epoch-") || !number(epochs)) return std::nullopt;
  if (literal("-step-") && !number(steps)) return std::nullopt;
  if (!literal(".h5") || at != name.size()) return std::nullopt;
  return std::pair{epochs, steps};
}

class TrainCheckpoint : public Callback {
 public:
  TrainCheckpoint(std::filesystem::path dir, const TrainArgs& args, const std::mt19937_64* gen,
                  const EpochProgress* progress, std::int64_t steps_per_epoch)
      : dir_(std::move(dir)),
        args_(checked_args(args)),
        threads_(num_threads()),
        every_(args.checkpoint_every),
        steps_per_epoch_(steps_per_epoch),
        gen_(gen),
        progress_(progress) {}

  void on_epoch_begin(int epoch) override { epoch_ = epoch; }
  void on_batch_end(std::int64_t step, const Logs& /*logs*/) override {
    if (every_ > 0 && (step + 1) % every_ == 0 && step + 1 < steps_per_epoch_) save(epoch_, step + 1);
  }
  void on_epoch_end(int epoch, Logs& /*logs*/) override { save(epoch + 1, 0); }

 private:
  void save(int epochs_done, std::int64_t steps_done) {
    namespace fs = std::filesystem;
    const std::string file = checkpoint_file_name(epochs_done, steps_done);
    save_model(model(), (dir_ / file).string());
    std::ostringstream state;
    state << *gen_;
    nlohmann::json j = {{"format", kCheckpointFormat}, {"epochs_done", epochs_done},
                        {"steps_done", steps_done},    {"iterations", model().optimizer().iterations()},
                        {"generator", state.str()},    {"model_file", file},
                        {"threads", threads_},         {"args", args_}};
    if (steps_done > 0) {
      j["order"] = progress_->order;
      j["sums"] = progress_->sums;
    }
    write_file_atomically((dir_ / kCheckpointJson).string(), j.dump(2) + "\n");
    // Only now may older checkpoints go: keep this one and the newest before it. (Later ones, left
    // by a crash between a model file and its JSON, are overwritten when the run gets there.)
    const std::pair<long long, long long> now{epochs_done, steps_done};
    std::vector<std::pair<std::pair<long long, long long>, fs::path>> older;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const auto at = checkpoint_position(entry.path().filename().string());
      if (at && *at < now) older.emplace_back(*at, entry.path());
    }
    std::sort(older.begin(), older.end());
    for (std::size_t i = 0; i + 1 < older.size(); ++i) fs::remove(older[i].second, ec);
  }

  std::filesystem::path dir_;
  nlohmann::json args_;
  int threads_;
  std::int64_t every_, steps_per_epoch_;
  const std::mt19937_64* gen_;
  const EpochProgress* progress_;
  int epoch_ = 0;
};

struct Checkpoint {
  int epochs_done = 0;
  std::int64_t steps_done = 0;
  std::vector<std::int64_t> order;
  std::array<double, 4> sums{};
  std::int64_t iterations = 0;
  int threads = 0;
  std::string generator, model_path;
};

// Reads DIR/checkpoint.json and checks that the flags match the run that wrote it.
Checkpoint read_checkpoint(const std::string& dir, const TrainArgs& a) {
  const std::string path = (std::filesystem::path(dir) / kCheckpointJson).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw FileError("--resume: " + path + ": no such file (is " + dir +
                    " a --checkpoint-dir with at least one finished epoch?)");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  Checkpoint c;
  try {
    j = nlohmann::json::parse(ss.str());
    if (j.at("format").get<int>() != kCheckpointFormat) {
      throw FileError("--resume: " + path + ": unsupported format " + j.at("format").dump() + " (expected " +
                      std::to_string(kCheckpointFormat) + ")");
    }
    c.epochs_done = j.at("epochs_done").get<int>();
    c.steps_done = j.value("steps_done", std::int64_t{0});
    if (c.steps_done > 0) {
      c.order = j.at("order").get<std::vector<std::int64_t>>();
      c.sums = j.at("sums").get<std::array<double, 4>>();
    }
    c.iterations = j.at("iterations").get<std::int64_t>();
    c.generator = j.at("generator").get<std::string>();
    c.threads = j.value("threads", 0);
    const auto file = j.at("model_file").get<std::string>();
    if (c.epochs_done < 0 || c.steps_done < 0 || (c.epochs_done == 0 && c.steps_done == 0) ||
        c.iterations < 0 || file.empty() || file.find('/') != std::string::npos || file == "." ||
        file == "..")
      throw FileError("--resume: " + path + ": invalid epochs_done, steps_done, iterations or model_file");
    c.model_path = (std::filesystem::path(dir) / file).string();
    const nlohmann::json want = j.at("args"), got = checked_args(a);
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
  } catch (const nlohmann::json::exception& e) {
    throw FileError("--resume: " + path + ": not a valid checkpoint (" + e.what() + ")");
  }
  if (!std::filesystem::is_regular_file(c.model_path))
    throw FileError("--resume: " + c.model_path + ": no such file (named by " + path + ")");
  return c;
}

// Keeps the history CSV's header and its rows for epochs before `epochs_done`: rows a crash left
// after the last checkpoint go, so the resumed run appends each epoch once.
void truncate_history(const std::string& path, int epochs_done) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::string line, text;
  bool header = true;
  while (std::getline(in, line)) {
    if (!header) {
      const std::string first = line.substr(0, line.find(','));
      char* end = nullptr;
      const long e = std::strtol(first.c_str(), &end, 10);
      if (first.empty() || *end != '\0' || e < 0 || e >= epochs_done) continue;
    }
    header = false;
    text += line + "\n";
  }
  write_file_atomically(path, text);
}

// The whole history from the CSV (a resumed fit returns only its own epochs).
History read_history(const std::string& path) {
  History h;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) return h;
  std::vector<std::string> keys;
  for (std::stringstream ss(line); std::getline(ss, line, ',');) keys.push_back(line);
  std::string row;
  while (std::getline(in, row)) {
    std::stringstream ss(row);
    std::string cell;
    for (std::size_t i = 0; std::getline(ss, cell, ',') && i < keys.size(); ++i) {
      if (i == 0)
        h.epoch.push_back(std::stoi(cell));
      else
        h.history[keys[i]].push_back(cell.empty() ? std::nan("") : std::stod(cell));
    }
  }
  return h;
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
  Checkpoint resume;
  if (!a.resume.empty()) {
    resume = read_checkpoint(a.resume, a);
    if (resume.threads > 0 && resume.threads != num_threads()) {
      std::cerr << "reskit: warning: the checkpointed run used " << resume.threads << " threads, this one "
                << num_threads() << "; the result may differ in the last bits from an uninterrupted run\n";
    }
  }

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

  if (a.limit < 0) throw UsageError("--limit: expected a count >= 0, got " + std::to_string(a.limit));
  if (a.limit > 0) {
    train = train.subset(0, std::min(a.limit, train.size()));
    val = val.subset(0, std::min(a.limit, val.size()));
  }
  std::cout << "Training on " << train.source() << ": " << train.size() << " samples of shape "
            << shape_str(train.sample_shape()) << ", " << train.num_classes() << " classes; validating on "
            << val.size() << " samples\n";
  const std::int64_t steps = (train.size() + a.batch_size - 1) / a.batch_size;
  std::mt19937_64 gen(a.seed);
  std::optional<Model> loaded;
  if (!a.resume.empty()) {
    loaded.emplace(load_model(resume.model_path));
    if (!loaded->compiled()) throw FileError(resume.model_path + ": has no optimizer state to resume from");
    if (loaded->optimizer().iterations() != resume.iterations) {
      throw FileError(resume.model_path + ": the optimizer made " +
                      std::to_string(loaded->optimizer().iterations()) + " steps, but the checkpoint says " +
                      std::to_string(resume.iterations));
    }
    std::istringstream state(resume.generator);
    state >> gen;
    if (!state) throw FileError("--resume: the generator state in the checkpoint is invalid");
    // The schedule is not in the .h5: make it as a fresh run does, from the same flags.
    auto fresh = make_optimizer(a, steps * a.epochs);
    Optimizer& opt = loaded->optimizer();
    opt.set_schedule(fresh->schedule());
    if (!fresh->schedule()) opt.set_learning_rate(fresh->learning_rate());
    std::cout << "Resuming from " << resume.model_path << " after ";
    if (resume.steps_done > 0) std::cout << "step " << resume.steps_done << " of ";
    std::cout << "epoch " << resume.epochs_done + (resume.steps_done > 0 ? 1 : 0) << " (" << resume.iterations
              << " steps)\n";
  } else {
    loaded.emplace(build_model(a.model, train.sample_shape(), train.num_classes()));
    loaded->set_class_names(train.class_names());
    loaded->compile(make_optimizer(a, steps * a.epochs), std::make_shared<CategoricalCrossentropy>(),
                    {"accuracy"});
  }
  Model& model = *loaded;

  // Inside an epoch: its sample order must be a permutation of this data, and steps remain.
  EpochProgress progress;
  if (resume.steps_done > 0) {
    std::vector<bool> seen(static_cast<std::size_t>(train.size()), false);
    bool ok = static_cast<std::int64_t>(resume.order.size()) == train.size() && resume.steps_done < steps;
    for (std::int64_t i : resume.order) {
      ok = ok && i >= 0 && i < train.size() && !seen[static_cast<std::size_t>(i)];
      if (ok) seen[static_cast<std::size_t>(i)] = true;
    }
    if (!ok) {
      throw FileError("--resume: " + resume.model_path + ": the checkpoint's sample order or step (" +
                      std::to_string(resume.steps_done) + ") does not fit " + std::to_string(train.size()) +
                      " samples in " + std::to_string(steps) + " steps");
    }
    progress = {resume.order, resume.steps_done, resume.sums};
  }

  const std::string &output = files.model, &history = files.history, &curves = files.curves;

  FitOptions fo;
  fo.epochs = a.epochs;
  fo.batch_size = a.batch_size;
  fo.validation_data = &val;
  fo.seed = a.seed;
  fo.generator = &gen;
  fo.initial_epoch = resume.epochs_done;
  fo.progress = &progress;
  if (a.augment) fo.augment = {.pad_crop = 2, .horizontal_flip = true};
  if (!a.resume.empty()) truncate_history(history, resume.epochs_done);
  fo.callbacks.push_back(std::make_shared<CSVLogger>(history, ',', !a.resume.empty()));
  const std::string checkpoint_dir = a.checkpoint_dir.empty() ? a.resume : a.checkpoint_dir;
  if (!checkpoint_dir.empty()) {
    std::filesystem::create_directories(checkpoint_dir);
    fo.callbacks.push_back(std::make_shared<TrainCheckpoint>(checkpoint_dir, a, &gen, &progress, steps));
  }
  History h = fit(model, train, fo);
  if (!a.resume.empty()) h = read_history(history);
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
      ->capture_default_str()
      ->check(model_name());
  cmd->add_option("--data", a->data,
                  "Training data: fashion-mnist, a SIGNS .h5, IDX, CIFAR-10 or an image folder")
      ->capture_default_str();
  cmd->add_option("--validation", a->validation, "Validation data (default: the test split of --data)");
  cmd->add_option("--epochs", a->epochs, "Epochs")->capture_default_str()->check(integer_at_least(1));
  cmd->add_option("--batch-size", a->batch_size, "Batch size")
      ->capture_default_str()
      ->check(integer_at_least(1));
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
  cmd->add_option("--limit", a->limit, "Use only the first N training and validation samples")
      ->check(integer_at_least(0));
  cmd->add_option("--seed", a->seed, "Random seed")->capture_default_str()->check(integer_at_least(0));
  cmd->add_option("--dtype", a->dtype,
                  "float32, float64 or mixed_bfloat16 (float32 weights, bfloat16 convolutions)")
      ->capture_default_str()
      ->check(dtype_name());
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")->check(integer_at_least(1));
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
