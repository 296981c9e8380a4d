// The second stage of transfer learning: unfreeze_from's flags (BatchNormalization layers after
// the point stay frozen, their moving statistics unchanged, unless UnfreezeOptions::batch_norm).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "reskit/io/h5.h"
#include "reskit/models/fine_tune.h"
#include "reskit/reskit.h"

using namespace reskit;

namespace {

// stem_conv -> stem_bn -> relu -> top_conv -> top_bn -> relu -> pooling -> head.
Model stem_top_head() {
  clear_session();
  set_random_seed(7);
  Tensor in = Input({4, 4, 2}, {.name = "image"});
  Tensor x = Conv2D(4, {3, 3}, {.padding = "same", .name = "stem_conv"})(in);
  x = BatchNormalization({.name = "stem_bn"})(x);
  x = Activation("relu", {.name = "stem_relu"})(x);
  x = Conv2D(4, {3, 3}, {.padding = "same", .name = "top_conv"})(x);
  x = BatchNormalization({.name = "top_bn"})(x);
  x = Activation("relu", {.name = "top_relu"})(x);
  x = GlobalAveragePooling2D({.name = "pool"})(x);
  x = Dense(2, {.activation = "softmax", .name = "head"})(x);
  Model m(in, x, "fine_tune_test");
  m.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.05}),
            std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return m;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

std::map<std::string, Tensor> weights_of(Model& m) {
  std::map<std::string, Tensor> out;
  for (Param* p : m.parameters()) out[p->name] = p->value.clone();
  return out;
}

Tensor images(int n) {
  std::vector<double> v(static_cast<std::size_t>(n) * 32);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37) % 11) / 5.0 - 1.0;
  return Tensor::from_values({n, 4, 4, 2}, v);
}

Tensor labels(int n) {
  std::vector<double> v(static_cast<std::size_t>(n) * 2);
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(2 * i + i % 2)] = 1.0;
  return Tensor::from_values({n, 2}, v);
}

void train_steps(Model& m, int steps) {
  const Tensor x = images(8), y = labels(8);
  for (int i = 0; i < steps; ++i) m.train_on_batch(x, y);
}

}  // namespace

TEST(FineTune, UnfreezeFromKeepsBatchNormalizationFrozenByDefault) {
  Model m = stem_top_head();
  EXPECT_EQ(unfreeze_from(m, "top_conv"), 4u);
  for (const char* name : {"stem_conv", "stem_bn", "top_bn"})
    EXPECT_FALSE(m.get_layer(name)->trainable()) << name;
  for (const char* name : {"top_conv", "top_relu", "head"})
    EXPECT_TRUE(m.get_layer(name)->trainable()) << name;
  const auto before = weights_of(m);
  train_steps(m, 3);
  // top_bn normalises with its moving statistics and leaves them (and gamma, beta) unchanged;
  // top_conv and the head train.
  for (Param* p : m.parameters()) {
    const bool trains = p->name.rfind("top_conv/", 0) == 0 || p->name.rfind("head/", 0) == 0;
    EXPECT_EQ(same_bits(p->value, before.at(p->name)), !trains) << p->name;
  }
}

TEST(FineTune, UnfreezeBatchNormTrainsItsStatisticsToo) {
  Model m = stem_top_head();
  EXPECT_EQ(unfreeze_from(m, "top_conv", {.batch_norm = true}), 4u);
  EXPECT_TRUE(m.get_layer("top_bn")->trainable());
  EXPECT_FALSE(m.get_layer("stem_bn")->trainable());
  const auto before = weights_of(m);
  train_steps(m, 3);
  // top_bn normalises with the batches' statistics, and moves its moving ones towards them.
  for (const char* name : {"top_bn/moving_mean:0", "top_bn/moving_variance:0", "top_bn/gamma:0"})
    EXPECT_FALSE(same_bits(weights_of(m).at(name), before.at(name))) << name;
  for (const char* name : {"stem_bn/moving_mean:0", "stem_bn/moving_variance:0", "stem_conv/kernel:0"})
    EXPECT_TRUE(same_bits(weights_of(m).at(name), before.at(name))) << name;
}

TEST(FineTune, UnfreezeFromTakesTheStartOfNamesAndNamesTheNearestOnMiss) {
  Model m = stem_top_head();
  EXPECT_EQ(unfreeze_from(m, "top"), 4u);  // the first layer whose name begins with "top_"
  EXPECT_TRUE(m.get_layer("top_conv")->trainable());
  try {
    unfreeze_from(m, "top_cnv");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("top_conv"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(m.get_layer("top_conv")->trainable());  // unchanged by the failed call
  EXPECT_FALSE(m.get_layer("stem_conv")->trainable());
}

namespace {

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("reskit_fine_tune_" + name + "_" + std::to_string(::getpid()) + ".h5"))
      .string();
}

Model head_only() {
  Model m = stem_top_head();
  m.set_trainable(false);
  m.get_layer("head")->set_trainable(true);
  return m;
}

Model from_top_conv() {
  Model m = stem_top_head();
  unfreeze_from(m, "top_conv");
  return m;
}

Adam& adam_of(Model& m) { return dynamic_cast<Adam&>(m.optimizer()); }

}  // namespace

TEST(FineTune, TrainingStateOfAnotherStageRestoresSlotsByName) {
  // Stage 1 (the head alone) saved with its optimizer; stage 2 (top_conv onwards) resumes from it:
  // the head's slots and the iterations carry on, top_conv's start fresh.
  const std::string path = temp_file("head_only");
  Model stage1 = head_only();
  train_steps(stage1, 2);
  save_model(stage1, path);
  Model stage2 = from_top_conv();
  const OptimizerRestore r = load_training_state(stage2, path);
  EXPECT_TRUE(r.restored);
  EXPECT_EQ(r.fresh, (std::vector<std::string>{"top_conv/kernel:0", "top_conv/bias:0"}));
  EXPECT_EQ(r.unused_slots, 0);
  EXPECT_EQ(stage2.optimizer().iterations(), 2);
  EXPECT_TRUE(same_bits(adam_of(stage2).slots().at("head/kernel:0").m,
                        adam_of(stage1).slots().at("head/kernel:0").m));
  EXPECT_TRUE(
      same_bits(adam_of(stage2).slots().at("head/bias:0").v, adam_of(stage1).slots().at("head/bias:0").v));
  EXPECT_EQ(adam_of(stage2).slots().count("top_conv/kernel:0"), 0u);
  for (const auto& [name, value] : weights_of(stage1))
    EXPECT_TRUE(same_bits(weights_of(stage2).at(name), value)) << name;
  const Tensor conv = weights_of(stage2).at("top_conv/kernel:0");
  train_steps(stage2, 1);
  EXPECT_EQ(stage2.optimizer().iterations(), 3);
  EXPECT_FALSE(same_bits(weights_of(stage2).at("top_conv/kernel:0"), conv));

  // The other way round: fewer weights train than when saved; their slots come back, the rest
  // of the file's (top_conv's m and v) are left out.
  const std::string wider = temp_file("top_conv");
  Model saved = from_top_conv();
  train_steps(saved, 2);
  save_model(saved, wider);
  Model narrower = head_only();
  const OptimizerRestore back = load_training_state(narrower, wider);
  EXPECT_TRUE(back.fresh.empty());
  EXPECT_EQ(back.unused_slots, 4);
  EXPECT_TRUE(same_bits(adam_of(narrower).slots().at("head/kernel:0").v,
                        adam_of(saved).slots().at("head/kernel:0").v));

  // The same weights: nothing fresh, nothing left out.
  Model same = head_only();
  const OptimizerRestore all = load_training_state(same, path);
  EXPECT_TRUE(all.fresh.empty());
  EXPECT_EQ(all.unused_slots, 0);
  std::filesystem::remove(path);
  std::filesystem::remove(wider);
}

TEST(FineTune, BackupAndRestoreSaysWhenOtherWeightsTrain) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("reskit_fine_tune_backup_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::vector<double> pixels = images(8).to_vector();
  const Dataset data =
      Dataset::from_float("synthetic", {8, 4, 4, 2}, std::vector<float>(pixels.begin(), pixels.end()),
                          {0, 1, 0, 1, 0, 1, 0, 1}, 2, {"a", "b"});
  auto run = [&](Model& m, int epochs, bool restore, std::ostream& notices) {
    std::ostringstream progress;
    fit(m, data,
        {.epochs = epochs,
         .batch_size = 4,
         .verbose = 0,
         .callbacks = {std::make_shared<BackupAndRestore>(
             dir.string(),
             BackupAndRestoreOptions{.delete_checkpoint = false, .restore = restore, .out = &notices})}});
  };
  std::ostringstream first, second, same;
  Model stage1 = head_only();
  run(stage1, 1, false, first);
  EXPECT_EQ(first.str(), "");
  Model stage2 = from_top_conv();
  run(stage2, 2, true, second);
  EXPECT_NE(
      second.str().find(
          "optimizer slots restored by name, 2 weights start with fresh slots, 0 of its slots left out"),
      std::string::npos)
      << second.str();
  EXPECT_EQ(stage2.optimizer().iterations(), 4);
  Model again = from_top_conv();
  run(again, 3, true, same);  // the backup of stage 2: the same weights train
  EXPECT_EQ(same.str(), "");
  std::filesystem::remove_all(dir);
}
