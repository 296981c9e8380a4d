// Keras .h5 files: save -> load round trips (bit-identical predictions, float32 and float64),
// resumed training, load_weights in order and by name, files in the layouts other Keras versions
// write (built here with the raw HDF5 API), and bad or hostile files that must give FileError.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "reskit/io/h5.h"
#include "reskit/reskit.h"

using namespace reskit;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test, removed afterwards.
class H5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_session();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("reskit_io_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    set_floatx(DType::float32);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Every parameter drawn at random (moving variances positive), so that no weight keeps its
// initial value and BatchNormalization's inference path uses non-trivial statistics; with
// only_vectors, just the 1-D ones (biases, BatchNormalization), kernels keep their random init.
void randomize(Model& model, unsigned seed, bool only_vectors = false) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  for (Param* p : model.parameters()) {
    if (only_vectors && p->value.rank() != 1) continue;
    const bool variance = p->name.find("moving_variance") != std::string::npos;
    for (std::int64_t i = 0; i < p->value.numel(); ++i)
      p->value.set(i, variance ? 0.5 + u(gen) * 0.8 : u(gen));
  }
}

Tensor random_input(const Shape& shape, unsigned seed, DType dtype = floatx()) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = u(gen);
  return Tensor::from_values(shape, v, dtype);
}

Tensor one_hot(std::int64_t n, std::int64_t k) {
  Tensor y({n, k});
  for (std::int64_t i = 0; i < n; ++i) y.set(i * k + (i * 7 + 3) % k, 1.0);
  return y;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

void expect_same_weights(Model& a, Model& b) {
  auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(same_bits(pa[i]->value, pb[i]->value)) << pa[i]->name;
}

// A small ResNet with every layer class reskit saves: padding, convs (fused ReLU, no bias,
// strides, "same"), BatchNormalization, pooling, a convolutional and an identity block, global
// pooling, Flatten, Dense, Dropout.
Model small_resnet(bool dropout = true) {
  Tensor in = Input({8, 8, 3});
  Tensor x = ZeroPadding2D(std::array<int, 2>{1, 2})(in);
  x = Conv2D(4, {3, 3}, {.name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({2, 2}, {.strides = std::array<int, 2>{1, 1}, .padding = "same"})(x);
  x = convolutional_block(x, 2, {2, 2, 6}, 2, "2", "a");
  x = identity_block(x, 3, {2, 2, 6}, "2", "b");
  x = Conv2D(5, {3, 3}, {.strides = {2, 2}, .padding = "same", .activation = "relu", .use_bias = false})(x);
  x = AveragePooling2D({2, 2}, {.padding = "same"})(x);
  x = Flatten()(x);
  x = Dense(6, {.activation = "relu"})(x);
  if (dropout) x = Dropout(0.25)(x);
  x = Dense(3, {.activation = "softmax", .name = "fc3"})(x);
  return Model(in, x, "small_resnet");
}

// ---------------------------------------------------------------- raw HDF5 helpers for the tests

struct H5 {
  hid_t id;
  explicit H5(hid_t i) : id(i) {}
  ~H5() {
    if (id >= 0) H5Idec_ref(id);
  }
  H5(const H5&) = delete;
  H5& operator=(const H5&) = delete;
};

std::string read_vlen_attr(const std::string& file, const std::string& name) {
  H5 f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5 a(H5Aopen(f.id, name.c_str(), H5P_DEFAULT));
  H5 t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id, H5T_VARIABLE);
  H5Tset_cset(t.id, H5T_CSET_UTF8);
  char* s = nullptr;
  EXPECT_GE(H5Aread(a.id, t.id, &s), 0);
  std::string out = s ? s : "";
  H5free_memory(s);
  return out;
}

void put_fixed_attr(hid_t obj, const std::string& name, const std::string& value) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5 t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id, std::max<std::size_t>(1, value.size()));
  H5Tset_strpad(t.id, H5T_STR_NULLPAD);
  H5 s(H5Screate(H5S_SCALAR));
  H5 a(H5Acreate2(obj, name.c_str(), t.id, s.id, H5P_DEFAULT, H5P_DEFAULT));
  std::string buf = value.empty() ? std::string(1, '\0') : value;
  H5Awrite(a.id, t.id, buf.data());
}

void put_fixed_list(hid_t obj, const std::string& name, const std::vector<std::string>& values) {
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  std::vector<char> buf(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  H5 t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id, width);
  hsize_t n = values.size();
  H5 s(H5Screate_simple(1, &n, nullptr));
  H5 a(H5Acreate2(obj, name.c_str(), t.id, s.id, H5P_DEFAULT, H5P_DEFAULT));
  H5Awrite(a.id, t.id, buf.data());
}

void put_empty_f64(hid_t obj, const std::string& name) {
  hsize_t n = 0;
  H5 s(H5Screate_simple(1, &n, nullptr));
  H5 a(H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, s.id, H5P_DEFAULT, H5P_DEFAULT));
}

void put_dataset(hid_t loc, const std::string& name, const Tensor& t) {
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id, 1);
  std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
  H5 s(dims.empty() ? H5Screate(H5S_SCALAR)
                    : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Tensor f = t.to(DType::float32);
  H5 d(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F32LE, s.id, lcpl.id, H5P_DEFAULT, H5P_DEFAULT));
  H5Dwrite(d.id, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f.raw_data());
}

void put_int_scalar(hid_t loc, const std::string& name, std::int64_t v) {
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id, 1);
  H5 s(H5Screate(H5S_SCALAR));
  H5 d(H5Dcreate2(loc, name.c_str(), H5T_STD_I64LE, s.id, lcpl.id, H5P_DEFAULT, H5P_DEFAULT));
  H5Dwrite(d.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v);
}

void put_vlen_attr(hid_t obj, const std::string& name, const std::string& value) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5 t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id, H5T_VARIABLE);
  H5Tset_cset(t.id, H5T_CSET_UTF8);
  H5 s(H5Screate(H5S_SCALAR));
  H5 a(H5Acreate2(obj, name.c_str(), t.id, s.id, H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  H5Awrite(a.id, t.id, &p);
}

// Replaces a root string attribute of an existing file (fixed-length when it fits the object
// header, the other kind of string HDF5 files carry; variable-length otherwise).
void rewrite_attr(const std::string& file, const std::string& name, const std::string& value) {
  H5 f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  ASSERT_GE(f.id, 0);
  if (value.size() < 60000) {
    put_fixed_attr(f.id, name, value);
  } else {
    put_vlen_attr(f.id, name, value);
  }
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

// Expects load_model(path) to throw FileError whose message contains every piece.
void expect_load_error(const std::string& file, std::initializer_list<std::string> pieces) {
  try {
    load_model(file);
    ADD_FAILURE() << "expected FileError for " << file;
  } catch (const FileError& e) {
    for (const auto& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected FileError, got: " << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------- round trips

TEST_F(H5Test, RoundTripFloat32GivesIdenticalPredictions) {
  Model model = small_resnet();
  randomize(model, 1);
  Tensor x = random_input({5, 8, 8, 3}, 2);
  Tensor before = model.forward(x, false).clone();
  save_model(model, path("m.h5"));
  clear_session();
  Model again = load_model(path("m.h5"));
  EXPECT_EQ(again.name(), "small_resnet");
  EXPECT_EQ(again.dtype(), DType::float32);
  EXPECT_EQ(again.summary_string(), model.summary_string());
  EXPECT_EQ(model_to_json(again), model_to_json(model));
  expect_same_weights(model, again);
  EXPECT_TRUE(same_bits(again.forward(x, false), before));
  EXPECT_FALSE(again.compiled());
}

TEST_F(H5Test, RoundTripFloat64GivesIdenticalPredictions) {
  set_floatx(DType::float64);
  Model model = small_resnet();
  randomize(model, 3);
  Tensor x = random_input({4, 8, 8, 3}, 4, DType::float64);
  Tensor before = model.forward(x, false).clone();
  save_model(model, path("m64.h5"));
  set_floatx(DType::float32);  // the file, not floatx, decides the dtype
  Model again = load_model(path("m64.h5"));
  EXPECT_EQ(again.dtype(), DType::float64);
  for (Param* p : again.parameters()) EXPECT_EQ(p->value.dtype(), DType::float64) << p->name;
  EXPECT_TRUE(same_bits(again.forward(x, false), before));
  EXPECT_EQ(floatx(), DType::float32);
}

// ResNet-50's table, config and every weight survive (the small models above check predictions;
// equal architecture and equal weights give equal predictions).
TEST_F(H5Test, ResNet50SummaryConfigAndWeightsSurvive) {
  Model model = resnet50({64, 64, 3}, 6);
  randomize(model, 5, /*only_vectors=*/true);
  model.set_class_names({"0", "1", "2", "3", "4", "5"});
  save_model(model, path("resnet50.h5"));
  clear_session();
  Model again = load_model(path("resnet50.h5"));
  EXPECT_EQ(again.summary_string(), model.summary_string());
  EXPECT_EQ(model_to_json(again), model_to_json(model));
  EXPECT_EQ(again.count_params(), 23600006);
  EXPECT_EQ(again.count_trainable_params(), 23546886);
  EXPECT_EQ(again.class_names(), model.class_names());
  expect_same_weights(model, again);
}

TEST_F(H5Test, ModelFromJsonRebuildsTheArchitecture) {
  Model model = small_resnet();
  Model again = model_from_json(model_to_json(model));
  EXPECT_EQ(again.summary_string(), model.summary_string());
  EXPECT_THROW(model_from_json("{\"class_name\": \"Functional\"}"), ConfigError);
  EXPECT_THROW(model_from_json("not json"), ConfigError);
}

// ---------------------------------------------------------------- resumed training

namespace {
void check_resume(const std::function<std::shared_ptr<Optimizer>()>& make_optimizer,
                  const std::string& file) {
  set_random_seed(11);
  clear_session();
  Model a = small_resnet(/*dropout=*/false);
  a.compile(make_optimizer(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  std::vector<Tensor> xs;
  for (unsigned s = 0; s < 6; ++s) xs.push_back(random_input({4, 8, 8, 3}, 100 + s));
  const Tensor y = one_hot(4, 3);
  for (int s = 0; s < 3; ++s) a.train_on_batch(xs[s], y);
  save_model(a, file);
  clear_session();
  Model b = load_model(file);
  ASSERT_TRUE(b.compiled());
  EXPECT_EQ(b.optimizer().name(), a.optimizer().name());
  EXPECT_EQ(b.optimizer().iterations(), 3);
  EXPECT_EQ(b.metrics(), a.metrics());
  EXPECT_EQ(b.loss().name(), "categorical_crossentropy");
  for (int s = 3; s < 6; ++s) {
    StepResult ra = a.train_on_batch(xs[s], y);
    StepResult rb = b.train_on_batch(xs[s], y);
    EXPECT_EQ(ra.loss, rb.loss);
  }
  expect_same_weights(a, b);
  EXPECT_EQ(b.optimizer().iterations(), 6);
}
}  // namespace

TEST_F(H5Test, AdamTrainingResumesIdentically) {
  check_resume([] { return std::make_shared<Adam>(AdamOptions{.learning_rate = 0.01}); }, path("adam.h5"));
}

TEST_F(H5Test, SgdMomentumTrainingResumesIdentically) {
  check_resume(
      [] {
        return std::make_shared<SGD>(SGDOptions{.learning_rate = 0.05, .momentum = 0.9, .nesterov = true});
      },
      path("sgd.h5"));
}

TEST_F(H5Test, AdamWTrainingResumesIdentically) {
  check_resume([] { return std::make_shared<Adam>(adamw_options(0.01, 0.01)); }, path("adamw.h5"));
}

TEST_F(H5Test, CompiledButUntrainedModelLoadsCompiled) {
  Model a = small_resnet(false);
  a.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  save_model(a, path("c.h5"));
  Model b = load_model(path("c.h5"));
  EXPECT_TRUE(b.compiled());
  EXPECT_EQ(b.optimizer().iterations(), 0);
  Model c = load_model(path("c.h5"), {.compile = false});
  EXPECT_FALSE(c.compiled());
  save_model(a, path("no_opt.h5"), {.include_optimizer = false});
  EXPECT_FALSE(load_model(path("no_opt.h5")).compiled());
}

// ---------------------------------------------------------------- weights only

TEST_F(H5Test, SaveWeightsLoadWeightsInTopologicalOrder) {
  Model a = small_resnet();
  randomize(a, 7);
  save_weights(a, path("w.h5"));
  // Same architecture, other auto-names (conv2d_1 ... instead of conv2d ...): matched by order.
  Model b = small_resnet();
  ASSERT_NE(a.layers()[1]->name(), b.layers()[1]->name());
  load_weights(b, path("w.h5"));
  expect_same_weights(a, b);
  Tensor x = random_input({2, 8, 8, 3}, 8);
  EXPECT_TRUE(same_bits(a.forward(x, false), b.forward(x, false)));
  // A full model file works too (its model_weights group).
  save_model(a, path("full.h5"));
  Model c = small_resnet();
  load_weights(c, path("full.h5"));
  expect_same_weights(a, c);
}

TEST_F(H5Test, LoadWeightsByName) {
  Model a = small_resnet();
  randomize(a, 9);
  save_weights(a, path("w.h5"));
  // Another model sharing only the names conv1, bn1 and fc3 (shapes must match per name).
  Tensor in = Input({8, 8, 3});
  Tensor x = ZeroPadding2D(std::array<int, 2>{1, 2})(in);
  x = Conv2D(4, {3, 3}, {.name = "conv1"})(x);
  x = BatchNormalization({.name = "bn1"})(x);
  x = Conv2D(7, {1, 1}, {.name = "other"})(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(5, {.name = "head"})(x);
  Model b(in, x);
  Tensor other_before = b.get_layer("other")->param("kernel").value.clone();
  load_weights(b, path("w.h5"), {.by_name = true});
  for (const char* name : {"conv1", "bn1"}) {
    auto& pa = a.get_layer(name)->params();
    auto& pb = b.get_layer(name)->params();
    for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(same_bits(pa[i].value, pb[i].value)) << name;
  }
  EXPECT_TRUE(same_bits(b.get_layer("other")->param("kernel").value, other_before));
  // In order, the layer counts differ: refused, and the model is left untouched.
  randomize(b, 10);
  Tensor conv_before = b.get_layer("conv1")->param("kernel").value.clone();
  try {
    load_weights(b, path("w.h5"));
    ADD_FAILURE() << "expected FileError";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("layers with weights"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(same_bits(b.get_layer("conv1")->param("kernel").value, conv_before));
}

TEST_F(H5Test, LoadWeightsRefusesMismatchedShapes) {
  Model a = small_resnet();
  save_weights(a, path("w.h5"));
  Tensor in = Input({8, 8, 3});
  Tensor x = Conv2D(5, {3, 3}, {.name = "conv1"})(in);
  x = Flatten()(x);
  Model b(in, Dense(3)(x));
  try {
    load_weights(b, path("w.h5"), {.by_name = true});
    ADD_FAILURE() << "expected FileError";
  } catch (const FileError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("conv1/kernel:0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(3, 3, 3, 4)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(3, 3, 3, 5)"), std::string::npos) << msg;
  }
}

// ---------------------------------------------------------------- writes are atomic

TEST_F(H5Test, FailedSaveLeavesTheOldFileAndNoTemporaries) {
  Model a = small_resnet();
  save_model(a, path("keep.h5"));
  const auto size = fs::file_size(path("keep.h5"));
  struct Odd : Optimizer {
    Odd() : Optimizer(0.1) {}
    std::string name() const override { return "Odd"; }
    void apply(const std::vector<Param*>&) override {}
  };
  a.compile(std::make_shared<Odd>(), std::make_shared<CategoricalCrossentropy>());
  EXPECT_THROW(save_model(a, path("keep.h5")), FileError);
  EXPECT_EQ(fs::file_size(path("keep.h5")), size);
  EXPECT_NO_THROW(load_model(path("keep.h5")));
  EXPECT_THROW(save_model(a, path("no_such_dir/x.h5"), {.include_optimizer = false}), FileError);
  EXPECT_THROW(save_weights(a, dir_.string()), FileError);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) entries += e.path().filename() == "keep.h5" ? 0 : 1;
  EXPECT_EQ(entries, 0) << "temporary files left behind";
}

// ---------------------------------------------------------------- bad and hostile files

TEST_F(H5Test, NotHdf5FilesAreRefused) {
  std::ofstream(path("text.h5")) << "just some text, not HDF5\n";
  expect_load_error(path("text.h5"), {"text.h5", "not an HDF5 file"});
  std::ofstream(path("page.h5")) << "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
                                    "<body>The model you requested is gone.</body></html>\n";
  expect_load_error(path("page.h5"), {"page.h5", "not an HDF5 file"});
  std::ofstream(path("empty.h5")).close();
  expect_load_error(path("empty.h5"), {"empty file"});
  expect_load_error(path("missing.h5"), {"missing.h5", "no such file"});
  Model m = small_resnet();
  EXPECT_THROW(load_weights(m, path("page.h5")), FileError);
}

TEST_F(H5Test, TruncatedFilesAreRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  const auto size = fs::file_size(path("m.h5"));
  for (double fraction : {0.9, 0.5, 0.05}) {
    fs::copy_file(path("m.h5"), path("t.h5"), fs::copy_options::overwrite_existing);
    fs::resize_file(path("t.h5"), static_cast<std::uintmax_t>(size * fraction));
    EXPECT_THROW(load_model(path("t.h5")), FileError) << fraction;
    Model b = small_resnet();
    EXPECT_THROW(load_weights(b, path("t.h5")), FileError) << fraction;
  }
}

TEST_F(H5Test, ConfigProblemsNameTheLayerAndOption) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  const std::string config = read_vlen_attr(path("m.h5"), "model_config");
  ASSERT_NE(config.find("\"class_name\":\"Flatten\""), std::string::npos);
  auto variant = [&](const std::string& name, const std::string& text) {
    fs::copy_file(path("m.h5"), path(name), fs::copy_options::overwrite_existing);
    rewrite_attr(path(name), "model_config", text);
    return path(name);
  };
  expect_load_error(
      variant("class.h5", replace_once(config, "\"class_name\":\"Flatten\"", "\"class_name\":\"Conv3D\"")),
      {"unsupported layer class 'Conv3D'", "'flatten'"});
  expect_load_error(variant("neg.h5", replace_once(config, "\"filters\":4", "\"filters\":-4")),
                    {"Conv2D 'conv1'", "filters", "-4"});
  expect_load_error(
      variant("dil.h5", replace_once(config, "\"dilation_rate\":[1,1]", "\"dilation_rate\":[2,2]")),
      {"Conv2D 'conv1'", "dilation_rate"});
  expect_load_error(
      variant("act.h5", replace_once(config, "\"activation\":\"relu\"", "\"activation\":\"gelu\"")),
      {"activation", "gelu"});
  // The config now asks for 5 filters; the stored kernel has 4.
  expect_load_error(variant("shape.h5", replace_once(config, "\"filters\":4", "\"filters\":5")),
                    {"conv1/kernel:0", "(3, 3, 3, 4)", "(3, 3, 3, 5)"});
  // Sizes that would need terabytes are refused before anything is allocated.
  expect_load_error(variant("huge.h5", replace_once(config, "\"filters\":4", "\"filters\":16000000")),
                    {"Conv2D 'conv1'", "refusing to allocate"});
  expect_load_error(variant("json.h5", config.substr(0, config.size() / 2)),
                    {"model_config", "not valid JSON"});
  expect_load_error(variant("deep.h5", std::string(100000, '[') + std::string(100000, ']')),
                    {"nested deeper"});
  expect_load_error(variant("inbound.h5", replace_once(config, "[[[\"zero_padding2d\",0,0,{}]]]",
                                                       "[[[\"nowhere\",0,0,{}]]]")),
                    {"inbound layer 'nowhere'"});
  expect_load_error(
      variant("shared.h5", replace_once(config, "[[[\"zero_padding2d\",0,0,{}]]]",
                                        "[[[\"zero_padding2d\",0,0,{}]],[[\"zero_padding2d\",0,0,{}]]]")),
      {"shared layers"});
  expect_load_error(variant("bn.h5", replace_once(config, "\"axis\":[3]", "\"axis\":[1]")),
                    {"BatchNormalization 'bn1'", "axis"});
  expect_load_error(variant("model.h5", replace_once(config, "\"Functional\"", "\"Subclassed\"")),
                    {"unsupported model class 'Subclassed'"});
}

TEST_F(H5Test, WrongAttributeTypesAreRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  {
    H5 f(H5Fopen(path("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    H5Adelete(f.id, "model_config");
    put_empty_f64(f.id, "model_config");
  }
  expect_load_error(path("m.h5"), {"model_config"});
  save_model(a, path("n.h5"));
  {
    H5 f(H5Fopen(path("n.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    H5 g(H5Gopen2(f.id, "model_weights/conv1", H5P_DEFAULT));
    H5Ldelete(g.id, "conv1/kernel:0", H5P_DEFAULT);
    put_dataset(g.id, "conv1/kernel:0", Tensor({3, 3, 3}));
  }
  expect_load_error(path("n.h5"), {"conv1/kernel:0", "(3, 3, 3)", "(3, 3, 3, 4)"});
}

// ---------------------------------------------------------------- files other Keras versions write

namespace {
// conv2d (3x3 "same", fused relu) -> bn (axis -1) -> ReLU -> GlobalMaxPooling2D -> dense (softmax)
Model reference_model() {
  Tensor in = Input({6, 6, 2}, {.name = "input_layer"});
  Tensor x = Conv2D(3, {3, 3}, {.padding = "same", .activation = "relu", .name = "conv2d"})(in);
  x = BatchNormalization({.name = "batch_normalization"})(x);
  x = Activation("relu", {.name = "re_lu"})(x);
  x = GlobalMaxPooling2D({.name = "global_max_pooling2d"})(x);
  x = Dense(2, {.activation = "softmax", .name = "dense"})(x);
  return Model(in, x, "functional");
}

std::string keras_tensor(const std::string& layer) {
  return R"({"class_name": "__keras_tensor__", "config": {"shape": [null], "dtype": "float32", "keras_history": [")" +
         layer + R"(", 0, 0]}})";
}

// What Keras 3.x legacy .h5 saving writes for reference_model().
std::string keras3_config() {
  const std::string policy =
      R"({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})";
  auto node = [&](const std::string& from) {
    return R"([{"args": [)" + keras_tensor(from) + R"(], "kwargs": {}}])";
  };
  return R"({"module": "keras.src.models.functional", "class_name": "Functional", "config": {"name": "functional", "trainable": true, "layers": [)"
         R"({"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 6, 6, 2], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null, "name": "input_layer", "inbound_nodes": []},)"
         R"({"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "dtype": )" +
         policy +
         R"(, "filters": 3, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 6, 6, 2]}, "name": "conv2d", "inbound_nodes": )" +
         node("input_layer") +
         R"(},{"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "batch_normalization", "trainable": true, "dtype": )" +
         policy +
         R"(, "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true, "beta_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "gamma_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null}, "moving_mean_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "moving_variance_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null}, "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null, "synchronized": false}, "registered_name": null, "name": "batch_normalization", "inbound_nodes": )" +
         node("conv2d") +
         R"(},{"module": "keras.layers", "class_name": "ReLU", "config": {"name": "re_lu", "trainable": true, "dtype": )" +
         policy +
         R"(, "max_value": null, "negative_slope": 0.0, "threshold": 0.0}, "registered_name": null, "name": "re_lu", "inbound_nodes": )" +
         node("batch_normalization") +
         R"(},{"module": "keras.layers", "class_name": "GlobalMaxPooling2D", "config": {"name": "global_max_pooling2d", "trainable": true, "dtype": )" +
         policy +
         R"(, "data_format": "channels_last", "keepdims": false}, "registered_name": null, "name": "global_max_pooling2d", "inbound_nodes": )" +
         node("re_lu") +
         R"(},{"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": )" +
         policy +
         R"(, "units": 2, "activation": "softmax", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "name": "dense", "inbound_nodes": )" +
         node("global_max_pooling2d") +
         R"(}], "input_layers": ["input_layer", 0, 0], "output_layers": ["dense", 0, 0]}})";
}
}  // namespace

TEST_F(H5Test, ReadsKeras3LegacyH5) {
  Model ref = reference_model();
  randomize(ref, 21);
  // The file stores float32; the reference computes with the stored values.
  const std::string file = path("keras3.h5");
  {
    H5 f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    put_fixed_attr(f.id, "keras_version", "3.11.3");
    put_fixed_attr(f.id, "backend", "jax");
    put_vlen_attr(f.id, "model_config", keras3_config());
    H5 g(H5Gcreate2(f.id, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    std::vector<std::string> names;
    for (const auto& l : ref.layers()) names.push_back(l->name());
    put_fixed_list(g.id, "layer_names", names);
    for (const auto& l : ref.layers()) {
      H5 lg(H5Gcreate2(g.id, l->name().c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      if (l->params().empty()) {
        put_empty_f64(lg.id, "weight_names");
        continue;
      }
      std::vector<std::string> wn;
      for (const auto& p : l->params()) wn.push_back(p.name.substr(0, p.name.size() - 2));  // no ":0"
      put_fixed_list(lg.id, "weight_names", wn);
      for (std::size_t i = 0; i < wn.size(); ++i) put_dataset(lg.id, wn[i], l->params()[i].value);
    }
  }
  Model m = load_model(file);
  EXPECT_EQ(m.name(), "functional");
  ASSERT_EQ(m.layers().size(), 6u);
  EXPECT_EQ(m.layers()[3]->class_name(), "ReLU");
  Tensor x = random_input({3, 6, 6, 2}, 22);
  EXPECT_TRUE(same_bits(m.forward(x, false), ref.forward(x, false)));
}

TEST_F(H5Test, ReadsTfKerasSequentialWithChunkedNamesAndOtherPrefixes) {
  // tf.keras 2.x Sequential: InputLayer first in the config but not in layer_names, fixed-length
  // strings, layer_names split into layer_names0/1, a group "dense_1" whose weights are named
  // "dense/kernel:0", a Keras 2.2-style Adam state (training/Adam/Variable_k:0, positional).
  auto build = [] {
    Tensor in = Input({4, 4, 1}, {.name = "sequential_input"});
    Tensor x = Conv2D(2, {3, 3}, {.name = "conv2d"})(in);
    x = Flatten({.name = "flatten"})(x);
    x = Dense(3, {.activation = "softmax", .name = "dense_1"})(x);
    return Model(in, x, "sequential");
  };
  Model ref = build();
  randomize(ref, 31);
  const std::string config =
      R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [)"
      R"({"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4, 4, 1], "dtype": "float32", "sparse": false, "ragged": false, "name": "sequential_input"}},)"
      R"({"class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "dtype": "float32", "filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "linear", "use_bias": true}},)"
      R"({"class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "dtype": "float32", "data_format": "channels_last"}},)"
      R"({"class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "dtype": "float32", "units": 3, "activation": "softmax", "use_bias": true}}]}})";
  const std::string training =
      R"({"loss": {"class_name": "CategoricalCrossentropy", "config": {"reduction": "auto", "name": "categorical_crossentropy", "from_logits": false, "label_smoothing": 0}},)"
      R"( "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]],)"
      R"( "optimizer_config": {"class_name": "Adam", "config": {"lr": 0.002, "beta_1": 0.9, "beta_2": 0.999, "decay": 0.0, "epsilon": 1e-07, "amsgrad": false}}})";
  const std::string file = path("seq.h5");
  auto params = ref.trainable_parameters();
  {
    H5 f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    put_fixed_attr(f.id, "keras_version", "2.4.0");
    put_fixed_attr(f.id, "backend", "tensorflow");
    put_fixed_attr(f.id, "model_config", config);
    put_fixed_attr(f.id, "training_config", training);
    H5 g(H5Gcreate2(f.id, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    put_fixed_list(g.id, "layer_names0", {"conv2d", "flatten"});
    put_fixed_list(g.id, "layer_names1", {"dense_1"});
    {
      H5 lg(H5Gcreate2(g.id, "conv2d", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      put_fixed_list(lg.id, "weight_names", {"conv2d/kernel:0", "conv2d/bias:0"});
      put_dataset(lg.id, "conv2d/kernel:0", ref.get_layer("conv2d")->param("kernel").value);
      put_dataset(lg.id, "conv2d/bias:0", ref.get_layer("conv2d")->param("bias").value);
    }
    {
      H5 lg(H5Gcreate2(g.id, "flatten", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      put_empty_f64(lg.id, "weight_names");
    }
    {
      H5 lg(H5Gcreate2(g.id, "dense_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      put_fixed_list(lg.id, "weight_names", {"dense/kernel:0", "dense/bias:0"});
      put_dataset(lg.id, "dense/kernel:0", ref.get_layer("dense_1")->param("kernel").value);
      put_dataset(lg.id, "dense/bias:0", ref.get_layer("dense_1")->param("bias").value);
    }
    H5 o(H5Gcreate2(f.id, "optimizer_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    std::vector<std::string> names{"Adam/iterations:0"};
    for (std::size_t i = 0; i < 3 * params.size(); ++i)
      names.push_back("training/Adam/Variable_" + std::to_string(i) + ":0");
    put_fixed_list(o.id, "weight_names", names);
    put_int_scalar(o.id, names[0], 42);
    for (std::size_t i = 0; i < params.size(); ++i) {
      Tensor m(params[i]->value.shape()), v(params[i]->value.shape());
      m.fill(0.01 * (i + 1));
      v.fill(0.02 * (i + 1));
      put_dataset(o.id, names[1 + i], m);
      put_dataset(o.id, names[1 + params.size() + i], v);
      put_dataset(o.id, names[1 + 2 * params.size() + i], Tensor({1}));  // vhat placeholders
    }
  }
  Model m = load_model(file);
  EXPECT_EQ(m.name(), "sequential");
  Tensor x = random_input({2, 4, 4, 1}, 32);
  EXPECT_TRUE(same_bits(m.forward(x, false), ref.forward(x, false)));
  ASSERT_TRUE(m.compiled());
  EXPECT_EQ(m.metrics(), std::vector<std::string>{"accuracy"});
  EXPECT_DOUBLE_EQ(m.optimizer().learning_rate(), 0.002);
  EXPECT_EQ(m.optimizer().iterations(), 42);
  auto& slots = dynamic_cast<Adam&>(m.optimizer()).slots();
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_FLOAT_EQ(static_cast<float>(slots.at("dense_1/kernel:0").m.at(0)), 0.03f);
  EXPECT_FLOAT_EQ(static_cast<float>(slots.at("dense_1/kernel:0").v.at(0)), 0.06f);
  // load_weights by name uses the group names (dense_1), not the weight-name prefix (dense).
  Model other = build();
  randomize(other, 99);
  load_weights(other, file, {.by_name = true});
  expect_same_weights(other, ref);
}

TEST_F(H5Test, UnmappableOptimizerStateStillLoadsTheModel) {
  Model a = small_resnet(false);
  a.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>());
  a.train_on_batch(random_input({2, 8, 8, 3}, 1), one_hot(2, 3));
  save_model(a, path("m.h5"));
  {
    H5 f(H5Fopen(path("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    H5 o(H5Gopen2(f.id, "optimizer_weights", H5P_DEFAULT));
    H5Adelete(o.id, "weight_names");
    put_fixed_list(o.id, "weight_names", {"Adam/iter:0", "Adam/unknown/thing:0"});
  }
  Model b = load_model(path("m.h5"));
  ASSERT_TRUE(b.compiled());
  EXPECT_EQ(b.optimizer().iterations(), 0);
  expect_same_weights(a, b);
}

// HDF5 1.10 trusts the sizes behind variable-length strings (model_config is one): corrupting
// either the heap object's size or the string's length made H5Aread overflow its buffer (found
// by fuzzing). Both are refused before HDF5 reads them.
TEST_F(H5Test, CorruptStringStorageIsRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  std::ifstream in(path("m.h5"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::size_t heap = bytes.find(std::string("GCOL\x01\0\0\0", 8));
  ASSERT_NE(heap, std::string::npos);
  const std::uint32_t config_len =
      static_cast<std::uint32_t>(read_vlen_attr(path("m.h5"), "model_config").size());
  std::string descriptor(12, '\0');  // [length u32][heap address u64]
  std::memcpy(descriptor.data(), &config_len, 4);
  const std::uint64_t address = heap;
  std::memcpy(descriptor.data() + 4, &address, 8);
  const std::size_t at = bytes.find(descriptor);
  ASSERT_NE(at, std::string::npos);
  auto write_variant = [&](const std::string& name, std::size_t pos, char value) {
    std::string copy = bytes;
    copy[pos] = value;
    std::ofstream(path(name), std::ios::binary) << copy;
    return path(name);
  };
  expect_load_error(write_variant("len.h5", at + 1, static_cast<char>(bytes[at + 1] ^ 0x20)),
                    {"corrupt variable-length"});
  expect_load_error(write_variant("idx.h5", at + 15, 4), {"corrupt variable-length"});
  expect_load_error(write_variant("heap.h5", heap + 16 + 8 + 3, 2), {"global heap", "corrupt object"});
}

// A weight stored in deflate chunks, one of which decodes to fewer bytes than the chunk holds:
// HDF5 1.10 would copy past its buffer (found by fuzzing the SIGNS loader). The .h5 reader checks
// every chunk as the loader does (hdf5::check_stored_data) and refuses the file.
TEST_F(H5Test, WeightChunkThatDecodesShortIsRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  {
    H5 f(H5Fopen(path("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    const char* name = "model_weights/fc3/fc3/bias:0";  // 3 float32 values
    ASSERT_GE(H5Ldelete(f.id, name, H5P_DEFAULT), 0);
    hsize_t dims[1] = {3}, chunk[1] = {2};
    H5 dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.id, 1, chunk);
    H5Pset_deflate(dcpl.id, 6);
    H5 space(H5Screate_simple(1, dims, nullptr));
    H5 d(H5Dcreate2(f.id, name, H5T_IEEE_F32LE, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT));
    for (hsize_t i = 0; i < 2; ++i) {
      const std::vector<float> values(i == 0 ? 2 : 1, 0.5f);  // the second chunk is short
      std::vector<unsigned char> z(64);
      uLongf zn = z.size();
      compress2(z.data(), &zn, reinterpret_cast<const Bytef*>(values.data()), values.size() * sizeof(float),
                6);
      hsize_t off[1] = {2 * i};
      ASSERT_GE(H5Dwrite_chunk(d.id, H5P_DEFAULT, 0, off, zn, z.data()), 0);
    }
  }
  expect_load_error(path("m.h5"), {"fc3/bias:0", "chunk at (2,)", "expected 8 bytes once decoded, found 4"});
}

// HDF5 1.10.8 follows group addresses unchecked (found by fuzzing the SIGNS loader; the .h5 reader
// walks many more groups): an undefined B-tree child address or a local heap of 2^64-1 bytes
// crashed it. load_model and load_weights refuse such files before HDF5 walks the groups.
TEST_F(H5Test, CorruptGroupAddressesAreRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  std::ifstream in(path("m.h5"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::size_t tree = bytes.find(std::string("TREE\0", 5));  // a group's B-tree node (type 0)
  const std::size_t heap = bytes.find("HEAP");
  ASSERT_NE(tree, std::string::npos);
  ASSERT_NE(heap, std::string::npos);
  auto write_variant = [&](const std::string& name, std::size_t pos) {
    std::string copy = bytes;
    copy.replace(pos, 8, 8, '\xff');  // an 8-byte address or length, all bits set
    std::ofstream(path(name), std::ios::binary) << copy;
    return path(name);
  };
  // the first child: after signature, type, level, entry count, two siblings and the first key
  const std::string child = write_variant("child.h5", tree + 32);
  expect_load_error(child,
                    {"corrupt HDF5 file", "B-tree node at address", "child 0 is at an undefined address"});
  const std::string heap_size = write_variant("heap.h5", heap + 8);
  expect_load_error(heap_size, {"corrupt HDF5 file", "data segment of 18446744073709551615 bytes"});
  for (const std::string& f : {child, heap_size}) {
    Model b = small_resnet();
    EXPECT_THROW(load_weights(b, f), FileError) << f;
  }
}

// HDF5 1.10.8 copies an attribute's name, datatype, dataspace and data out of its message by the
// sizes the message declares, never comparing them with the message's own size: a dataspace
// declared 4 bytes longer than it is moved the data past the message's end, and H5Aexists copied
// from past the object header (found by fuzzing). load_model and load_weights refuse such
// attributes before HDF5 reads them.
TEST_F(H5Test, CorruptAttributeSizesAreRefused) {
  Model a = small_resnet();
  save_model(a, path("m.h5"));
  std::ifstream in(path("m.h5"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  // The "weight_names" attributes of the layers with weights: a version 1 attribute message
  // (version, reserved, name size 13, datatype size, dataspace size, each 2 bytes), the name
  // padded to 16 bytes, the datatype (padded to 8), a version 1 dataspace of rank 1 and size > 0.
  const std::string name("weight_names\0", 13);
  auto u8 = [&](std::size_t p) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[p])); };
  std::vector<std::size_t> at;
  for (std::size_t p = bytes.find(name); p != std::string::npos; p = bytes.find(name, p + 1)) {
    if (p < 8 || u8(p - 8) != 1 || u8(p - 6) != 13 || u8(p - 5) != 0) continue;
    const std::size_t space = p + 16 + (u8(p - 4) + 7) / 8 * 8;
    if (space + 9 < bytes.size() && u8(space) == 1 && u8(space + 1) == 1 && u8(space + 8) > 0)
      at.push_back(p - 8);
  }
  ASSERT_GE(at.size(), 2u);
  auto write_variant = [&](const std::string& file, std::size_t field, std::uint16_t value, bool add) {
    std::string copy = bytes;
    for (std::size_t p : at) {
      const auto old = static_cast<std::uint16_t>(static_cast<unsigned char>(copy[p + field]) |
                                                  static_cast<unsigned char>(copy[p + field + 1]) << 8);
      const auto v = static_cast<std::uint16_t>(add ? old + value : value);
      copy[p + field] = static_cast<char>(v & 0xff);
      copy[p + field + 1] = static_cast<char>(v >> 8);
    }
    std::ofstream(path(file), std::ios::binary) << copy;
    return path(file);
  };
  // the dataspace 8 bytes longer: the data (fixed-length names) moves 8 bytes past the message
  const std::string space = write_variant("space.h5", 6, 8, true);
  expect_load_error(space, {"corrupt HDF5 file", "'s attribute 'weight_names' (message at address",
                            "bytes of data (", "after the name, datatype and dataspace"});
  const std::string name_size = write_variant("name.h5", 2, 0xffff, false);
  expect_load_error(name_size, {"corrupt HDF5 file", ": the attribute message at address",
                                "declares a name of 65535 bytes at byte 8, past the end of its"});
  const std::string type_size = write_variant("type.h5", 4, 0xffff, false);
  expect_load_error(type_size, {"corrupt HDF5 file", ": the attribute message at address",
                                "declares a datatype of 65535 bytes at byte 24, past the end of its"});
  for (const std::string& f : {space, name_size, type_size}) {
    Model b = small_resnet();
    EXPECT_THROW(load_weights(b, f), FileError) << f;
  }
}

// The fuzzer's input that crashed HDF5 this way (small_model.h5 of the fuzz corpus with conv1's
// weight_names dataspace declared 28 bytes instead of 24), kept in the fuzz corpus.
TEST_F(H5Test, FuzzRegressionAttributeDataPastItsMessage) {
  const std::string p =
      std::string(RESKIT_FUZZ_CORPUS_DIR) + "/h5_model/regress-hdf5-attribute-data-past-message.h5";
  ASSERT_TRUE(fs::exists(p)) << p;
  expect_load_error(p, {"'" + p +
                        "': corrupt HDF5 file: the root group's member 'model_weights''s member "
                        "'conv1''s attribute 'weight_names' (message at address 13008) declares "
                        "28 bytes of data (2 elements of 14 bytes); its 88-byte message holds 24"});
  Model b = small_resnet();
  EXPECT_THROW(load_weights(b, p), FileError);
}
