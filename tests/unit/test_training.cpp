// fit / evaluate / predict, callbacks, the progress bar and the training curves.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "reskit/reskit.h"
#include "support/tiny_training.h"
#include "training/curves_axis.h"

using namespace reskit;
using reskit_test::make_data;
using reskit_test::small_model;

TEST(Progbar, DrawsKerasLines) {
  std::ostringstream out;
  Progbar bar(34, out, 30, false);
  EXPECT_EQ(bar.line(34, {{"loss", 0.0325}, {"accuracy", 0.9898}}, 0.78),
            "34/34 [==============================] - 1s 23ms/step - loss: 0.0325 - accuracy: 0.9898");
  EXPECT_EQ(bar.line(10, {{"loss", 1.5}}, 2.0),
            "10/34 [=======>......................] - ETA: 4s - loss: 1.5000");
  EXPECT_EQ(format_metric(0.0001234), "1.2340e-04");
  bar.update(5, {{"loss", 1}});  // not a terminal: nothing until the end
  EXPECT_EQ(out.str(), "");
  bar.update(34, {{"loss", 1}});
  EXPECT_EQ(out.str().back(), '\n');
}

TEST(Fit, LearnsWithValidationHistoryAndCsv) {
  Model model = small_model();
  Dataset train = make_data(256, 1), val = make_data(64, 2);
  auto csv = std::filesystem::temp_directory_path() / "reskit_test_history.csv";
  std::filesystem::remove(csv);
  std::ostringstream out;
  History h = fit(model, train,
                  {.epochs = 3,
                   .batch_size = 32,
                   .validation_data = &val,
                   .seed = 3,
                   .callbacks = {std::make_shared<CSVLogger>(csv.string())},
                   .out = &out});
  ASSERT_EQ(h.epoch, (std::vector<int>{0, 1, 2}));
  for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy"})
    ASSERT_EQ(h.history[k].size(), 3u) << k;
  EXPECT_LT(h.history["loss"][2], h.history["loss"][0]);
  EXPECT_GT(h.history["val_accuracy"][2], 0.8);
  EXPECT_NE(out.str().find("Epoch 3/3"), std::string::npos);
  EXPECT_NE(out.str().find("8/8 [==============================]"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find(" - val_loss: "), std::string::npos);

  std::ifstream in(csv);
  std::string header, row;
  std::getline(in, header);
  EXPECT_EQ(header, "epoch,accuracy,loss,val_accuracy,val_loss");
  int rows = 0;
  while (std::getline(in, row)) ++rows;
  EXPECT_EQ(rows, 3);

  // evaluate agrees with accuracy computed independently from predict
  Scores s = evaluate(model, val, {.verbose = 0});
  Tensor probs = predict(model, val);
  int hits = 0;
  for (std::int64_t i = 0; i < val.size(); ++i)
    hits += (probs.at(i * 2 + 1) > probs.at(i * 2)) == (val.label(i) == 1);
  EXPECT_DOUBLE_EQ(s["accuracy"], hits / static_cast<double>(val.size()));
  EXPECT_NEAR(s["val_loss"], 0.0, 0.0);  // no val_ keys in evaluate
  EXPECT_NEAR(s["loss"], h.history["val_loss"][2], 1e-6);
}

TEST(Fit, ValidationSplitTakesTheLastSamples) {
  Model model = small_model();
  Dataset train = make_data(100, 4);
  std::ostringstream out;
  History h =
      fit(model, train, {.epochs = 1, .batch_size = 16, .validation_split = 0.2, .verbose = 2, .out = &out});
  // 80 training samples -> 5 steps
  EXPECT_NE(out.str().find("5/5 - "), std::string::npos) << out.str();
  EXPECT_EQ(h.history.count("val_loss"), 1u);
}

TEST(Fit, EarlyStoppingAndReduceLROnPlateau) {
  Model model = small_model();
  Dataset train = make_data(64, 5);
  auto stop = std::make_shared<EarlyStopping>(
      EarlyStoppingOptions{.monitor = "loss", .min_delta = 10.0, .patience = 2});
  auto plateau = std::make_shared<ReduceLROnPlateau>(
      ReduceLROnPlateauOptions{.monitor = "loss", .factor = 0.5, .patience = 1, .min_delta = 10.0});
  std::ostringstream out;
  History h = fit(model, train, {.epochs = 10, .verbose = 0, .callbacks = {stop, plateau}, .out = &out});
  // min_delta 10: only the first epoch improves (on infinity); two more without improvement stop it.
  EXPECT_EQ(h.epoch.size(), 3u);
  EXPECT_EQ(stop->stopped_epoch(), 2);
  // and the rate halves after each of those two epochs
  ASSERT_EQ(h.history["lr"].size(), 3u);
  EXPECT_NEAR(model.optimizer().learning_rate(), 0.02 * 0.25, 1e-12);
}

TEST(Fit, BadDataIsRejectedWithNames) {
  Model model = small_model();
  Dataset wrong = Dataset::from_float("images.h5", {2, 5, 5, 2}, std::vector<float>(100), {0, 1}, 2);
  try {
    fit(model, wrong, {.verbose = 0});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "'images.h5' has samples of shape (5, 5, 2), but model 'small' expects (4, 4, 2)"),
              std::string::npos)
        << e.what();
  }
  Dataset three = Dataset::from_float("three.h5", {2, 4, 4, 2}, std::vector<float>(64), {0, 2}, 3);
  EXPECT_THROW(fit(model, three, {.verbose = 0}), ShapeError);
  EXPECT_THROW(Dataset::from_float("bad", {2, 4, 4, 2}, std::vector<float>(64), {0, 5}, 3), Error);
  EXPECT_THROW(fit(model, make_data(8, 1), {.batch_size = 0}), ConfigError);
}

TEST(Schedules, CosineAndPiecewise) {
  CosineDecay cos(0.1, 100, 0.0, 10);
  EXPECT_NEAR(cos(0), 0.01, 1e-12);
  EXPECT_NEAR(cos(10), 0.1, 1e-12);
  EXPECT_NEAR(cos(60), 0.05, 1e-12);
  EXPECT_NEAR(cos(110), 0.0, 1e-12);
  PiecewiseConstantDecay pw({10, 20}, {1.0, 0.5, 0.1});
  EXPECT_EQ(pw(10), 1.0);
  EXPECT_EQ(pw(11), 0.5);
  EXPECT_EQ(pw(25), 0.1);
  EXPECT_THROW(PiecewiseConstantDecay({1}, {1.0}), ConfigError);
}

// Goyal et al. 2017's large-batch recipe: the rate scales with the global batch (0.1 · B / 256),
// then rises linearly from 0 over the warm-up steps (lr · (step + 1) / W) and follows the schedule.
TEST(Schedules, LinearScalingAndWarmup) {
  EXPECT_DOUBLE_EQ(linearly_scaled_learning_rate(0.1, 8192, 256), 3.2);
  EXPECT_DOUBLE_EQ(linearly_scaled_learning_rate(0.1, 64, 256), 0.025);
  EXPECT_EQ(linearly_scaled_learning_rate(0.1, 64, 0), 0.1);  // no reference: unchanged
  EXPECT_THROW(linearly_scaled_learning_rate(0.1, 0, 256), ConfigError);
  const LinearWarmup constant(nullptr, 0.4, 4);
  const double want[] = {0.1, 0.2, 0.3, 0.4, 0.4, 0.4};
  for (std::int64_t step = 0; step < 6; ++step) EXPECT_DOUBLE_EQ(constant(step), want[step]) << step;
  const LinearWarmup stepped(
      std::make_shared<PiecewiseConstantDecay>(std::vector<std::int64_t>{5}, std::vector<double>{0.4, 0.04}),
      0.4, 2);
  EXPECT_DOUBLE_EQ(stepped(0), 0.2);
  EXPECT_DOUBLE_EQ(stepped(1), 0.4);
  EXPECT_DOUBLE_EQ(stepped(5), 0.4);
  EXPECT_DOUBLE_EQ(stepped(6), 0.04);
  EXPECT_EQ(LinearWarmup(nullptr, 0.4, 0)(0), 0.4);
  EXPECT_THROW(LinearWarmup(nullptr, 0.4, -1), ConfigError);
}

// The rate each training step uses, as fit runs: SGD at 0.05 for a batch of 8, trained on batches
// of 16 (0.1), warmed up over one epoch of 4 steps, then constant.
TEST(Schedules, FitStepsFollowTheScaledWarmup) {
  struct Rates : Callback {
    std::vector<std::pair<std::int64_t, double>> seen;  // (iterations, the next step's rate)
    void on_train_begin() override { record(); }
    void on_batch_end(std::int64_t, const Logs&) override { record(); }
    void record() {
      seen.emplace_back(model().optimizer().iterations(), model().optimizer().learning_rate());
    }
  };
  Model model = small_model();
  const double lr = linearly_scaled_learning_rate(0.05, 16, 8);
  auto sgd = std::make_shared<SGD>(SGDOptions{.learning_rate = lr});
  sgd->set_schedule(std::make_shared<LinearWarmup>(nullptr, lr, 4));
  model.compile(sgd, std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  auto rates = std::make_shared<Rates>();
  fit(model, make_data(64, 3), {.epochs = 2, .batch_size = 16, .verbose = 0, .callbacks = {rates}});
  ASSERT_EQ(rates->seen.size(), 9u);
  for (std::size_t k = 0; k < rates->seen.size(); ++k) {
    EXPECT_EQ(rates->seen[k].first, static_cast<std::int64_t>(k));
    EXPECT_DOUBLE_EQ(rates->seen[k].second, 0.1 * std::min(1.0, static_cast<double>(k + 1) / 4.0)) << k;
  }
}

TEST(Fit, ModelCheckpointSavesEveryEpochAndBestOnly) {
  Model model = small_model();
  Dataset train = make_data(64, 6), val = make_data(32, 7);
  auto dir = std::filesystem::temp_directory_path() / "reskit_test_ckpt";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto every = std::make_shared<ModelCheckpoint>((dir / "e{epoch:02d}.h5").string());
  int best_saves = 0;
  auto best = std::make_shared<ModelCheckpoint>(
      (dir / "best.h5").string(), [&](Model&, const std::string&) { ++best_saves; },
      ModelCheckpointOptions{.monitor = "loss", .save_best_only = true, .mode = "max"});
  fit(model, train, {.epochs = 3, .validation_data = &val, .verbose = 0, .callbacks = {every, best}});
  for (const char* f : {"e01.h5", "e02.h5", "e03.h5"}) EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  // mode "max" on a falling loss: only the first epoch is a "best"
  EXPECT_EQ(best_saves, 1);
  Model again = load_model((dir / "e03.h5").string());
  Tensor x = val.images(DType::float32);
  EXPECT_EQ(again.forward(x, false).to_vector(), model.forward(x, false).to_vector());
  std::filesystem::remove_all(dir);
}

TEST(Fit, SameSeedGivesBitIdenticalWeights) {
  auto run = [] {
    Model model = small_model();
    fit(model, make_data(96, 8),
        {.epochs = 2,
         .batch_size = 16,
         .seed = 5,
         .verbose = 0,
         .augment = {.pad_crop = 1, .horizontal_flip = true}});
    std::vector<double> w;
    for (Param* p : model.parameters()) {
      auto v = p->value.to_vector();
      w.insert(w.end(), v.begin(), v.end());
    }
    return w;
  };
  EXPECT_EQ(run(), run());
}

TEST(Fit, ResumeFromSavedModelAndGeneratorIsBitIdentical) {
  const Dataset train = make_data(96, 9), val = make_data(32, 10);
  const AugmentOptions augment{.pad_crop = 1, .horizontal_flip = true};
  auto weights = [](Model& model) {
    std::vector<std::vector<double>> w;
    for (Param* p : model.parameters()) w.push_back(p->value.to_vector());
    return w;
  };
  // Three epochs in one go, the generator passed in.
  Model straight = small_model();
  std::mt19937_64 gen_a(5);
  fit(straight, train,
      {.epochs = 3,
       .batch_size = 16,
       .validation_data = &val,
       .verbose = 0,
       .augment = augment,
       .generator = &gen_a});

  // One epoch, then save the model and the generator's state and start again from the files.
  auto dir = std::filesystem::temp_directory_path() / "reskit_test_resume";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string state;
  {
    Model first = small_model();
    std::mt19937_64 gen(5);
    fit(first, train,
        {.epochs = 1,
         .batch_size = 16,
         .validation_data = &val,
         .verbose = 0,
         .augment = augment,
         .generator = &gen});
    save_model(first, (dir / "epoch-001.h5").string());
    std::ostringstream ss;
    ss << gen;
    state = ss.str();
  }
  clear_session();
  Model resumed = load_model((dir / "epoch-001.h5").string());
  ASSERT_TRUE(resumed.compiled());
  EXPECT_EQ(resumed.optimizer().iterations(), 6);
  std::mt19937_64 gen_b;
  std::istringstream(state) >> gen_b;
  History h = fit(resumed, train,
                  {.epochs = 3,
                   .batch_size = 16,
                   .validation_data = &val,
                   .verbose = 0,
                   .initial_epoch = 1,
                   .augment = augment,
                   .generator = &gen_b});
  EXPECT_EQ(h.epoch, (std::vector<int>{1, 2}));
  EXPECT_EQ(resumed.optimizer().iterations(), straight.optimizer().iterations());
  EXPECT_TRUE(gen_a == gen_b);
  const auto a = weights(straight), b = weights(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << straight.parameters()[i]->name;
  std::filesystem::remove_all(dir);
}

TEST(Fit, WithoutAGeneratorFitDrawsFromItsSeed) {
  auto run = [](bool pass_generator) {
    Model model = small_model();
    std::mt19937_64 gen(5);
    fit(model, make_data(64, 8),
        {.epochs = 1,
         .batch_size = 16,
         .seed = 5,
         .verbose = 0,
         .augment = {.pad_crop = 1, .horizontal_flip = true},
         .generator = pass_generator ? &gen : nullptr});
    std::vector<double> w;
    for (Param* p : model.parameters()) {
      auto v = p->value.to_vector();
      w.insert(w.end(), v.begin(), v.end());
    }
    return w;
  };
  EXPECT_EQ(run(false), run(true));
}

// Every file reskit writes goes through a temporary file renamed into place, created with the mode
// open(2) gives under the umask: the history CSV, the curves SVG and predict's CSV (through
// write_file_atomically) as the .h5 model; 0644 under umask 022 (mkstemp's 0600 before).
TEST(Files, WrittenFilesHonourTheUmask) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "reskit_test_umask";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Model model = small_model();
  History h;
  h.epoch = {0, 1};
  h.history = {{"loss", {0.9, 0.5}}, {"accuracy", {0.4, 0.7}}};
  auto mode = [](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_mode & 0777 : ~0u;
  };
  for (const mode_t mask : {mode_t{022}, mode_t{027}}) {
    const mode_t old = ::umask(mask);
    write_file_atomically((dir / "probabilities.csv").string(), "neg,pos\n0.25,0.75\n");
    CSVLogger csv((dir / "history.csv").string());
    csv.on_train_begin();
    Logs logs{{"loss", 0.5}};
    csv.on_epoch_end(0, logs);
    plot_history(h, (dir / "curves.svg").string());
    save_model(model, (dir / "model.h5").string());
    ::umask(old);
    for (const char* f : {"probabilities.csv", "history.csv", "curves.svg", "model.h5"})
      EXPECT_EQ(mode(dir / f), 0666u & ~mask) << f << " written under umask 0" << std::oct << mask;
  }
  fs::remove_all(dir);
}

// The training curves' value axes: round ticks (steps of 1, 2 or 5 x 10^k), the loss axis from 0
// up, the accuracy axis within [0, 1] (they showed -0.0614 and 1.015).
TEST(Curves, TicksAreRoundAndWithinBounds) {
  const training::AxisTicks loss = training::nice_ticks(0.23, 2.31, 0);
  EXPECT_EQ(loss.values, (std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5}));
  EXPECT_EQ(loss.step, 0.5);
  EXPECT_EQ(loss.decimals, 1);
  EXPECT_EQ(training::nice_ticks(0.1, 0.93, 0, 1).values, (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(training::nice_ticks(0.951, 0.999, 0, 1).values,
            (std::vector<double>{0.95, 0.96, 0.97, 0.98, 0.99, 1}));
  EXPECT_EQ(training::nice_ticks(0.004, 0.31, 0).values, (std::vector<double>{0, 0.1, 0.2, 0.3, 0.4}));
  EXPECT_EQ(training::nice_ticks(120, 980).values, (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  // a flat series gets a span around it, still within bounds; no data gives 0 to 1
  const training::AxisTicks flat = training::nice_ticks(1, 1, 0, 1);
  EXPECT_LT(flat.lo, 1);
  EXPECT_EQ(flat.hi, 1);
  EXPECT_EQ(training::nice_ticks(INFINITY, -INFINITY, 0, 1).values,
            (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1}));

  // Any range: covered, at most 6 steps of m·10^k (m = 1, 2, 5), every tick a multiple of the step.
  std::mt19937_64 gen(1);
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 2000; ++i) {
    const bool accuracy = i % 2 == 0;
    const double scale = accuracy ? 1 : std::pow(10.0, 4 * u(gen) - 2);
    double a = u(gen) * scale, b = u(gen) * scale;
    if (a > b) std::swap(a, b);
    const training::AxisTicks t = training::nice_ticks(a, b, 0, accuracy ? 1 : INFINITY);
    SCOPED_TRACE(std::to_string(a) + " to " + std::to_string(b));
    ASSERT_GE(t.values.size(), 2u);
    ASSERT_LE(t.values.size(), 7u);
    EXPECT_LE(t.lo, a);
    EXPECT_GE(t.hi, b);
    EXPECT_GE(t.lo, 0);
    if (accuracy) EXPECT_LE(t.hi, 1);
    const double mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-9));
    EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                std::abs(mantissa - 5) < 1e-9)
        << t.step;
    for (double v : t.values) EXPECT_NEAR(v / t.step, std::round(v / t.step), 1e-6) << v;
  }
}

TEST(Curves, SvgLabelsTheRoundTicks) {
  History h;
  h.epoch = {0, 1, 2};
  h.history = {{"loss", {2.31, 1.2, 0.23}},
               {"val_loss", {2.0, 1.0, 0.5}},
               {"accuracy", {0.1, 0.5, 0.93}},
               {"val_accuracy", {0.2, 0.6, 0.9}}};
  const std::string svg = history_svg(h, "test");
  std::vector<std::string> labels;  // the value axes' labels, right-aligned left of each panel
  const std::string mark = "text-anchor=\"end\" font-size=\"10\">";
  for (auto at = svg.find(mark); at != std::string::npos; at = svg.find(mark, at + 1)) {
    const auto start = at + mark.size();
    labels.push_back(svg.substr(start, svg.find('<', start) - start));
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"0.0", "0.5", "1.0", "1.5", "2.0", "2.5",    // loss
                                              "0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}))  // accuracy
      << svg;
}
