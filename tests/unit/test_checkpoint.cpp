// BackupAndRestore: a fit interrupted (between epochs or inside one) and run again with the same
// backup folder ends with the same bits as an uninterrupted one; its files rotate; bad backups are
// refused with the file named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "reskit/reskit.h"
#include "support/crash_at.h"
#include "support/tiny_training.h"

using namespace reskit;
using reskit::test::Crash;
using reskit::test::CrashAt;
using reskit_test::make_data;
using reskit_test::small_model;
namespace fs = std::filesystem;

namespace {

std::vector<std::vector<double>> weights(Model& model) {
  std::vector<std::vector<double>> w;
  for (Param* p : model.parameters()) w.push_back(p->value.to_vector());
  return w;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A folder of its own for each test (ctest may run tests side by side).
fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("reskit_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

const Dataset& train_data() {
  static const Dataset d = make_data(96, 9);  // 6 steps of 16
  return d;
}
const Dataset& val_data() {
  static const Dataset d = make_data(32, 10);
  return d;
}

FitOptions options(int epochs, std::vector<std::shared_ptr<Callback>> callbacks) {
  return {.epochs = epochs,
          .batch_size = 16,
          .validation_data = &val_data(),
          .seed = 5,
          .verbose = 0,
          .augment = {.pad_crop = 1, .horizontal_flip = true},
          .callbacks = std::move(callbacks)};
}

// Three epochs in one go: the weights, the optimizer's iterations and the history CSV.
struct Straight {
  std::vector<std::vector<double>> w;
  std::int64_t iterations;
  std::string csv;
};
Straight straight_run(const fs::path& dir) {
  fs::create_directories(dir);
  Model model = small_model();
  fit(model, train_data(),
      options(3, {std::make_shared<CSVLogger>((dir / "straight.csv").string(), ',', true),
                  std::make_shared<BackupAndRestore>((dir / "straight").string())}));
  EXPECT_FALSE(fs::exists(dir / "straight")) << "delete_checkpoint (the default) keeps no backup";
  return {weights(model), model.optimizer().iterations(), read_text(dir / "straight.csv")};
}

void expect_same(const Straight& a, Model& b) {
  EXPECT_EQ(b.optimizer().iterations(), a.iterations);
  const auto wb = weights(b);
  ASSERT_EQ(a.w.size(), wb.size());
  for (std::size_t i = 0; i < wb.size(); ++i) EXPECT_EQ(a.w[i], wb[i]) << b.parameters()[i]->name;
}
}  // namespace

// A crash after epoch 2's history row but before its backup: the run again resumes after epoch 1,
// writes epoch 2's row once, and ends with the uninterrupted run's weights and history.
TEST(BackupAndRestore, CrashBetweenEpochsResumesBitIdentical) {
  const fs::path dir = fresh_dir("backup_epoch");
  const Straight want = straight_run(dir);
  const std::string csv = (dir / "run.csv").string(), backup = (dir / "run").string();
  {
    Model model = small_model();
    EXPECT_THROW(
        fit(model, train_data(),
            options(3, {std::make_shared<CSVLogger>(csv, ',', true), std::make_shared<CrashAt>(1, -1),
                        std::make_shared<BackupAndRestore>(backup)})),
        Crash);
  }
  EXPECT_EQ(read_checkpoint(backup).epochs_done, 1);
  EXPECT_NE(read_text(csv).find("\n1,"), std::string::npos) << "the crashed run wrote epoch 2's row";
  Model model = small_model();
  const History h = fit(
      model, train_data(),
      options(3, {std::make_shared<CSVLogger>(csv, ',', true), std::make_shared<BackupAndRestore>(backup)}));
  EXPECT_EQ(h.epoch, (std::vector<int>{1, 2}));
  expect_same(want, model);
  EXPECT_EQ(read_text(csv), want.csv);
  EXPECT_EQ(read_csv_history(csv).epoch, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(fs::exists(backup));
  fs::remove_all(dir);
}

// Backups every 2 steps; a crash at step 5 of epoch 2 resumes after its step 4, with that epoch's
// sample order, running means and generator.
TEST(BackupAndRestore, CrashInsideAnEpochResumesBitIdentical) {
  const fs::path dir = fresh_dir("backup_step");
  const Straight want = straight_run(dir);
  const std::string csv = (dir / "run.csv").string(), backup = (dir / "run").string();
  const BackupAndRestoreOptions every2{.save_freq = 2};
  {
    Model model = small_model();
    EXPECT_THROW(fit(model, train_data(),
                     options(3, {std::make_shared<CSVLogger>(csv, ',', true),
                                 std::make_shared<BackupAndRestore>(backup, every2),
                                 std::make_shared<CrashAt>(1, 4)})),
                 Crash);
  }
  const CheckpointInfo c = read_checkpoint(backup);
  EXPECT_EQ(c.epochs_done, 1);
  EXPECT_EQ(c.steps_done, 4);
  EXPECT_EQ(c.progress.order.size(), 96u);
  EXPECT_EQ(c.progress.samples_seen, 64);
  EXPECT_EQ(c.iterations, 10);
  Model model = small_model();
  fit(model, train_data(),
      options(3, {std::make_shared<CSVLogger>(csv, ',', true),
                  std::make_shared<BackupAndRestore>(backup, every2)}));
  expect_same(want, model);
  EXPECT_EQ(read_text(csv), want.csv) << "the resumed epoch's means include the steps before the crash";
  fs::remove_all(dir);
}

// fit(epochs = 1) keeping its backup, then fit(epochs = 3): the same as three in one go.
TEST(BackupAndRestore, StopAfterAnEpochAndGoOn) {
  const fs::path dir = fresh_dir("backup_stop");
  const Straight want = straight_run(dir);
  const std::string backup = (dir / "run").string();
  const BackupAndRestoreOptions keep{.delete_checkpoint = false};
  const std::string csv = (dir / "run.csv").string();
  {
    Model model = small_model();
    fit(model, train_data(),
        options(1, {std::make_shared<CSVLogger>(csv, ',', true),
                    std::make_shared<BackupAndRestore>(backup, keep)}));
  }
  EXPECT_EQ(read_csv_history(csv).epoch, (std::vector<int>{0}));
  Model model = small_model();
  fit(model, train_data(),
      options(3, {std::make_shared<CSVLogger>(csv, ',', true),
                  std::make_shared<BackupAndRestore>(backup, keep)}));
  expect_same(want, model);
  EXPECT_EQ(read_text(csv), want.csv);
  EXPECT_EQ(read_checkpoint(backup).epochs_done, 3);
  // restore = false starts afresh over an existing backup.
  Model again = small_model();
  const History h =
      fit(again, train_data(),
          options(1, {std::make_shared<BackupAndRestore>(
                         backup, BackupAndRestoreOptions{.delete_checkpoint = false, .restore = false})}));
  EXPECT_EQ(h.epoch, (std::vector<int>{0}));
  EXPECT_EQ(read_checkpoint(backup).epochs_done, 1);
  fs::remove_all(dir);
}

// Only the newest two model files stay, next to checkpoint.json, which names the newest and keeps
// the caller's args.
TEST(BackupAndRestore, KeepsTheLastTwoModelFiles) {
  const fs::path dir = fresh_dir("backup_rotate");
  const BackupAndRestoreOptions o{.save_freq = 2, .delete_checkpoint = false, .args = R"({"flag": 3})"};
  auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  Model model = small_model();
  fit(model, train_data(), options(1, {std::make_shared<BackupAndRestore>(dir.string(), o)}));
  EXPECT_EQ(listing(),
            (std::vector<std::string>{"checkpoint.json", "epoch-000-step-000004.h5", "epoch-001.h5"}));
  fit(model, train_data(), options(2, {std::make_shared<BackupAndRestore>(dir.string(), o)}));
  EXPECT_EQ(listing(),
            (std::vector<std::string>{"checkpoint.json", "epoch-001-step-000004.h5", "epoch-002.h5"}));
  const CheckpointInfo c = read_checkpoint(dir.string());
  EXPECT_EQ(c.model_path, (dir / "epoch-002.h5").string());
  EXPECT_EQ(c.steps_done, 0);
  EXPECT_EQ(c.args, R"({"flag":3})");
  EXPECT_GT(c.threads, 0);
  fs::remove_all(dir);
}

// A missing or corrupt checkpoint.json, or a missing model file, is a FileError naming the file.
TEST(BackupAndRestore, BadBackupsAreRefusedNamingTheFile) {
  const fs::path dir = fresh_dir("backup_bad");
  fs::create_directories(dir / "empty");
  auto message = [&](const fs::path& restore_dir) {
    Model model = small_model();
    try {
      fit(model, train_data(),
          options(
              1, {std::make_shared<BackupAndRestore>(
                     (dir / "out").string(), BackupAndRestoreOptions{.restore_dir = restore_dir.string()})}));
    } catch (const FileError& e) {
      return std::string(e.what());
    }
    return std::string("no FileError");
  };
  const std::string missing = message(dir / "empty");
  EXPECT_NE(missing.find((dir / "empty" / "checkpoint.json").string() + ": no such file"), std::string::npos)
      << missing;

  fs::create_directories(dir / "corrupt");
  std::ofstream(dir / "corrupt" / "checkpoint.json") << R"({"format": 1, "epochs_done": )";
  const std::string corrupt = message(dir / "corrupt");
  EXPECT_NE(corrupt.find((dir / "corrupt" / "checkpoint.json").string() + ": not a valid checkpoint"),
            std::string::npos)
      << corrupt;

  // A complete backup whose model file went missing, then one whose model file is not a model.
  {
    Model model = small_model();
    fit(model, train_data(),
        options(1, {std::make_shared<BackupAndRestore>(
                       (dir / "gone").string(), BackupAndRestoreOptions{.delete_checkpoint = false})}));
  }
  fs::remove(dir / "gone" / "epoch-001.h5");
  const std::string gone = message(dir / "gone");
  EXPECT_NE(gone.find((dir / "gone" / "epoch-001.h5").string() + ": no such file"), std::string::npos)
      << gone;
  std::ofstream(dir / "gone" / "epoch-001.h5") << "<html>not a model</html>";
  const std::string junk = message(dir / "gone");
  EXPECT_NE(junk.find("epoch-001.h5"), std::string::npos) << junk;
  fs::remove_all(dir);
}

// Without a backup restored, CSVLogger's append keeps every row, as Keras's does.
TEST(BackupAndRestore, CsvLoggerAppendsWhenNotResumed) {
  const fs::path dir = fresh_dir("backup_csv");
  fs::create_directories(dir);
  const std::string csv = (dir / "log.csv").string();
  Model model = small_model();
  for (int i = 0; i < 2; ++i)
    fit(model, train_data(), options(1, {std::make_shared<CSVLogger>(csv, ',', true)}));
  EXPECT_EQ(read_csv_history(csv).epoch, (std::vector<int>{0, 0}));
  fs::remove_all(dir);
}
