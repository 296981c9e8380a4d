// Dataset loaders: every format read from files this test writes itself (HDF5 in the SIGNS
// layout, IDX plain and gzipped, CIFAR-10 batches, folders of PNG and JPEG written with libpng and
// libjpeg), then every kind of bad data, checking that the error names the file or key, what was
// expected and what was found. Fashion-MNIST from Debian's package when it is installed.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "support/file_writers.h"

using namespace reskit;
using namespace reskit_test;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Writers

class H5Writer {
 public:
  explicit H5Writer(const fs::path& p, hid_t fcpl = H5P_DEFAULT)
      : id_(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)) {}
  ~H5Writer() { H5Fclose(id_); }

  template <class T>
  void write(const std::string& name, hid_t type, std::vector<hsize_t> dims, const std::vector<T>& data) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(id_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    H5Dclose(d);
    H5Sclose(space);
  }
  void write_vlen_strings(const std::string& name, const std::vector<std::string>& s) {
    std::vector<const char*> ptrs;
    for (const auto& x : s) ptrs.push_back(x.c_str());
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    write(name, type, {s.size()}, ptrs);
    H5Tclose(type);
  }
  void write_fixed_strings(const std::string& name, const std::vector<std::string>& s, std::size_t len) {
    std::vector<char> buf(s.size() * len, '\0');
    for (std::size_t i = 0; i < s.size(); ++i) std::copy(s[i].begin(), s[i].end(), buf.begin() + i * len);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, len);
    write(name, type, {s.size()}, buf);
    H5Tclose(type);
  }
  // Compact storage: the data kept inside the dataset's object header (its layout message).
  void write_compact(const std::string& name, std::vector<hsize_t> dims,
                     const std::vector<std::uint8_t>& data) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_COMPACT);
    hid_t d = H5Dcreate2(id_, name.c_str(), H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  // Declared but never written: the file stores none of its data.
  void declare(const std::string& name, hid_t type, std::vector<hsize_t> dims) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(id_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
  }
  // Chunked by sample, only the first sample written.
  void write_first_chunk(const std::string& name, std::vector<hsize_t> dims,
                         const std::vector<std::uint8_t>& first) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    hid_t d = H5Dcreate2(id_, name.c_str(), H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    std::vector<hsize_t> start(dims.size(), 0);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, chunk.data(), nullptr);
    hid_t mem = H5Screate_simple(static_cast<int>(chunk.size()), chunk.data(), nullptr);
    H5Dwrite(d, H5T_NATIVE_UINT8, mem, space, H5P_DEFAULT, first.data());
    H5Sclose(mem);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
  }
  void soft_link(const std::string& target, const std::string& name) {
    H5Lcreate_soft(target.c_str(), id_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  }

 private:
  hid_t id_;
};

std::vector<std::uint8_t> read_all_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Runs f, expecting an exception of type E whose message holds every one of `parts`.
template <class E = FileError>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception holding '" << parts.front() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& part : parts)
      EXPECT_NE(msg.find(part), std::string::npos) << "'" << part << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

class Loaders : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("reskit_loaders_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::vector<float> as_floats(const Tensor& t) {
  std::vector<float> v(t.values<float>().begin(), t.values<float>().end());
  return v;
}

// ---------------------------------------------------------------------------------------------
// HDF5, SIGNS layout

TEST_F(Loaders, SignsHdf5WithVectorLabelsAndIntegerClasses) {
  const fs::path p = dir_ / "train_signs.h5";
  const auto px = pattern(5 * 4 * 3 * 3);
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {5, 4, 3, 3}, px);
    w.write("train_set_y", H5T_NATIVE_INT64, {5}, std::vector<std::int64_t>{0, 1, 2, 5, 0});
    w.write("list_classes", H5T_NATIVE_INT64, {6}, std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  }
  for (const Dataset& d : {load_hdf5(p.string()), load_dataset(p.string())}) {
    ASSERT_EQ(d.size(), 5);
    EXPECT_EQ(d.sample_shape(), (Shape{4, 3, 3}));
    EXPECT_EQ(d.num_classes(), 6);
    EXPECT_EQ(d.class_names(), (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
    EXPECT_EQ(d.label(3), 5);
    EXPECT_EQ(d.source(), p.string());
    // uint8 kept: scaled by 1/255 when batched
    const Tensor x = d.images(DType::float32);
    ASSERT_EQ(x.shape(), (Shape{5, 4, 3, 3}));
    for (std::size_t i = 0; i < px.size(); ++i)
      ASSERT_FLOAT_EQ(x.at(static_cast<std::int64_t>(i)), px[i] / 255.0f);
  }
}

TEST_F(Loaders, SignsHdf5WithRowLabelsAndStringClassesFromTheTestFile) {
  const fs::path p = dir_ / "test_signs.h5";
  {
    H5Writer w(p);
    w.write("test_set_x", H5T_NATIVE_UINT8, {3, 2, 2, 3}, pattern(36));
    w.write("test_set_y", H5T_NATIVE_UINT8, {1, 3}, std::vector<std::uint8_t>{2, 0, 1});
    w.write_vlen_strings("list_classes", {"cat", "dog", "eel"});
  }
  // The one pair of the file is used whatever the split.
  const Dataset d = load_dataset(p.string());
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.class_names(), (std::vector<std::string>{"cat", "dog", "eel"}));
  EXPECT_EQ(d.num_classes(), 3);
  EXPECT_EQ(d.label(0), 2);
  EXPECT_EQ(d.label(2), 1);
  // fill_batch: scaled pixels and one-hot targets in the order asked for
  Tensor x(Shape{1}, DType::float32), y;
  const std::vector<std::int64_t> idx{2, 0};
  d.fill_batch(idx, x, y);
  ASSERT_EQ(x.shape(), (Shape{2, 2, 2, 3}));
  const auto px = pattern(36);
  EXPECT_FLOAT_EQ(x.at(0), px[24] / 255.0f);
  EXPECT_FLOAT_EQ(x.at(12 + 5), px[5] / 255.0f);
  EXPECT_EQ(y.to_vector(), (std::vector<double>{0, 1, 0, 0, 0, 1}));
}

TEST_F(Loaders, Hdf5FixedLengthStringClassesAndMoreLabelsThanNames) {
  const fs::path p = dir_ / "signs.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {4, 2, 2, 1}, pattern(16));
    w.write("train_set_y", H5T_NATIVE_INT32, {4, 1}, std::vector<std::int32_t>{0, 3, 1, 1});
    w.write_fixed_strings("list_classes", {"zero", "one"}, 8);
  }
  const Dataset d = load_hdf5(p.string());
  // num_classes = max(len(list_classes), max label + 1); missing names numbered
  EXPECT_EQ(d.num_classes(), 4);
  EXPECT_EQ(d.class_names(), (std::vector<std::string>{"zero", "one", "2", "3"}));
  // A model's class count given: more classes than the data shows
  LoadOptions o;
  o.num_classes = 6;
  EXPECT_EQ(load_hdf5(p.string(), "train", o).num_classes(), 6);
}

TEST_F(Loaders, Hdf5WithBothSplitsPicksBySplit) {
  const fs::path p = dir_ / "both.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {3, 2, 2, 3}, pattern(36));
    w.write("train_set_y", H5T_NATIVE_INT64, {3}, std::vector<std::int64_t>{0, 1, 0});
    w.write("test_set_x", H5T_NATIVE_UINT8, {2, 2, 2, 3}, pattern(24, 5));
    w.write("test_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{1, 1});
  }
  EXPECT_EQ(load_hdf5(p.string(), "train").size(), 3);
  EXPECT_EQ(load_hdf5(p.string(), "test").size(), 2);
  EXPECT_EQ(load_dataset(p.string() + ":test").size(), 2);
  EXPECT_EQ(load_dataset(p.string(), "test").class_names(), (std::vector<std::string>{"0", "1"}));
  expect_error([&] { load_hdf5(p.string(), "valid"); },
               {p.string(), "expected split 'valid'", "test, train"});
}

TEST_F(Loaders, Hdf5ExplicitKeysAndFloatPixelsTakenAsTheyAre) {
  const fs::path p = dir_ / "custom.h5";
  const std::vector<double> v{0.5, -1.25, 3.0, 2.0, 0.0, 7.5, 1.0, 1.0};
  {
    H5Writer w(p);
    w.write("images", H5T_NATIVE_DOUBLE, {2, 2, 2}, v);  // (m, H, W): one channel
    w.write("labels", H5T_NATIVE_DOUBLE, {2}, std::vector<double>{1, 0});
  }
  expect_error(
      [&] { load_hdf5(p.string()); },
      {p.string(), "expected datasets <split>_set_x and <split>_set_y", "found images, labels", "x_key"});
  LoadOptions o;
  o.x_key = "images";
  o.y_key = "labels";
  const Dataset d = load_hdf5(p.string(), "train", o);
  EXPECT_EQ(d.sample_shape(), (Shape{2, 2, 1}));
  EXPECT_EQ(d.label(0), 1);
  const Tensor x = d.images(DType::float64);
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(x.at(static_cast<std::int64_t>(i)), v[i]);
}

TEST_F(Loaders, Hdf5WideIntegerPixelsBecomeBytesWhenInRange) {
  const fs::path p = dir_ / "wide.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_INT64, {1, 1, 2, 1}, std::vector<std::int64_t>{255, 300});
    w.write("train_set_y", H5T_NATIVE_INT64, {1}, std::vector<std::int64_t>{0});
  }
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "'train_set_x'", "expected 8-bit pixel values in [0, 255]", "found 300"});
}

TEST_F(Loaders, Hdf5BadData) {
  // missing key
  const fs::path missing = dir_ / "missing.h5";
  {
    H5Writer w(missing);
    w.write("train_set_x", H5T_NATIVE_UINT8, {1, 1, 1, 1}, std::vector<std::uint8_t>{1});
  }
  expect_error([&] { load_hdf5(missing.string()); }, {missing.string(), "train_set_y", "found train_set_x"});
  LoadOptions keys;
  keys.x_key = "train_set_x";
  expect_error([&] { load_hdf5(missing.string(), "train", keys); },
               {missing.string(), "expected a dataset 'train_set_y'", "no such key"});
  // string pixels
  const fs::path strings = dir_ / "strings.h5";
  {
    H5Writer w(strings);
    w.write_fixed_strings("train_set_x", {"ab", "cd"}, 4);
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
  }
  expect_error([&] { load_hdf5(strings.string()); },
               {strings.string(), "dataset 'train_set_x'", "expected images of shape (m, H, W, C)", "(2,)"});
  const fs::path strings4 = dir_ / "strings4.h5";
  {
    H5Writer w(strings4);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 1);
    w.write("train_set_x", t, {1, 1, 2, 1}, std::vector<char>{'a', 'b'});
    H5Tclose(t);
    w.write("train_set_y", H5T_NATIVE_INT64, {1}, std::vector<std::int64_t>{0});
  }
  expect_error([&] { load_hdf5(strings4.string()); },
               {strings4.string(), "'train_set_x'", "expected uint8 or float pixels", "found string"});
  // labels: count, dtype, shape
  const fs::path labels = dir_ / "labels.h5";
  {
    H5Writer w(labels);
    w.write("train_set_x", H5T_NATIVE_UINT8, {3, 1, 1, 1}, std::vector<std::uint8_t>{1, 2, 3});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
    w.write("test_set_x", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("test_set_y", H5T_NATIVE_DOUBLE, {2}, std::vector<double>{0.5, 1});
    w.write("list_classes", H5T_NATIVE_INT64, {2, 2}, std::vector<std::int64_t>{0, 1, 2, 3});
  }
  expect_error([&] { load_hdf5(labels.string(), "train"); },
               {labels.string(), "'train_set_y'", "expected 3 labels", "int64 of shape (2,)"});
  expect_error([&] { load_hdf5(labels.string(), "test"); },
               {labels.string(), "'test_set_y'", "label 0 is 0.5", "whole class index"});
  LoadOptions test_keys;
  test_keys.x_key = "test_set_x";
  test_keys.y_key = "labels_missing";
  expect_error([&] { load_hdf5(labels.string(), "test", test_keys); }, {"'labels_missing'", "no such key"});
}

TEST_F(Loaders, Hdf5ClassesOfTheWrongShapeOrType) {
  const fs::path p = dir_ / "classes.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
    w.write("list_classes", H5T_NATIVE_INT64, {2, 2}, std::vector<std::int64_t>{0, 1, 2, 3});
  }
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "'list_classes'", "expected a list of class names of shape (K,)", "(2, 2)"});
}

TEST_F(Loaders, Hdf5LabelsOutOfRangeAreCaughtByDataset) {
  const fs::path p = dir_ / "range.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {3, 1, 1, 1}, std::vector<std::uint8_t>{1, 2, 3});
    w.write("train_set_y", H5T_NATIVE_INT64, {3}, std::vector<std::int64_t>{0, -1, 1});
  }
  expect_error<Error>([&] { load_hdf5(p.string()); },
                      {p.string(), "label 1 is -1", "expected a class in [0, 2)"});
  const fs::path q = dir_ / "range2.h5";
  {
    H5Writer w(q);
    w.write("train_set_x", H5T_NATIVE_UINT8, {3, 1, 1, 1}, std::vector<std::uint8_t>{1, 2, 3});
    w.write("train_set_y", H5T_NATIVE_INT64, {3}, std::vector<std::int64_t>{0, 5, 1});
  }
  LoadOptions o;
  o.num_classes = 3;  // a model with 3 outputs
  expect_error<Error>([&] { load_hdf5(q.string(), "train", o); }, {q.string(), "label 1 is 5", "[0, 3)"});
  const fs::path huge = dir_ / "huge_label.h5";
  {
    H5Writer w(huge);
    w.write("train_set_x", H5T_NATIVE_UINT8, {1, 1, 1, 1}, std::vector<std::uint8_t>{1});
    w.write("train_set_y", H5T_NATIVE_INT64, {1}, std::vector<std::int64_t>{std::int64_t{1} << 40});
  }
  expect_error([&] { load_hdf5(huge.string()); }, {huge.string(), "label 0 is 1099511627776", "class index"});
}

TEST_F(Loaders, Hdf5DeclaringMoreThanItHolds) {
  const fs::path p = dir_ / "hollow.h5";
  {
    H5Writer w(p);
    w.declare("train_set_x", H5T_NATIVE_UINT8, {100000, 64, 64, 3});  // 1.2 GB declared, nothing stored
    w.write("train_set_y", H5T_NATIVE_INT64, {1}, std::vector<std::int64_t>{0});
  }
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "'train_set_x'", "declares uint8 of shape (100000, 64, 64, 3) = 1228800000 bytes",
                "the file holds 0"});
  const fs::path c = dir_ / "chunks.h5";
  {
    H5Writer w(c);
    w.write_first_chunk("train_set_x", {5, 2, 2, 3}, pattern(12));
    w.write("train_set_y", H5T_NATIVE_INT64, {5}, std::vector<std::int64_t>{0, 0, 0, 0, 0});
  }
  expect_error([&] { load_hdf5(c.string()); },
               {c.string(), "'train_set_x'", "in 5 chunks", "holds 1 of them"});
}

// h5py's compression="gzip", shuffle=True: every chunk checked (then read) through deflate + shuffle.
TEST_F(Loaders, Hdf5CompressedChunksLoad) {
  const fs::path p = dir_ / "gzip.h5";
  const auto px = pattern(7 * 3 * 2 * 3);
  {
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {7, 3, 2, 3}, chunk[4] = {2, 3, 2, 3};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 4);
    H5Pset_fletcher32(dcpl);
    hid_t space = H5Screate_simple(4, dims, nullptr);
    hid_t d = H5Dcreate2(f, "train_set_x", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, px.data());
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Fclose(f);
  }
  {
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t n = 7;
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t d = H5Dcreate2(f, "train_set_y", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<std::int64_t> y{0, 1, 2, 0, 1, 2, 0};
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, y.data());
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
  }
  const Dataset ds = load_hdf5(p.string());
  ASSERT_EQ(ds.size(), 7);
  const Tensor x = ds.images(DType::float32);
  for (std::size_t i = 0; i < px.size(); ++i)
    ASSERT_FLOAT_EQ(x.at(static_cast<std::int64_t>(i)), px[i] / 255.0f);
}

// A deflate chunk that decodes to fewer bytes than the chunk holds: HDF5 1.10 would copy past
// its buffer; the loader refuses it first.
TEST_F(Loaders, Hdf5ChunkThatDecodesShortIsRefused) {
  const fs::path p = dir_ / "short_chunk.h5";
  {
    hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {2, 2, 2, 3}, chunk[4] = {1, 2, 2, 3};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_deflate(dcpl, 6);
    hid_t space = H5Screate_simple(4, dims, nullptr);
    hid_t d = H5Dcreate2(f, "train_set_x", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    for (hsize_t i = 0; i < 2; ++i) {
      const std::vector<std::uint8_t> half = pattern(i == 0 ? 12 : 6);  // the second chunk is short
      std::vector<std::uint8_t> z(64);
      uLongf zn = z.size();
      compress2(z.data(), &zn, half.data(), half.size(), 6);
      hsize_t off[4] = {i, 0, 0, 0};
      H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, zn, z.data());
    }
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(dcpl);
    hsize_t n = 2;
    space = H5Screate_simple(1, &n, nullptr);
    d = H5Dcreate2(f, "train_set_y", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<std::int64_t> y{0, 1};
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, y.data());
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
  }
  expect_error([&] { load_hdf5(p.string()); }, {p.string(), "'train_set_x'", "chunk at (1, 0, 0, 0)",
                                                "expected 12 bytes once decoded, found 6"});
}

// A variable-length string whose global heap object claims another size: HDF5 1.10 would copy
// out of bounds; the loader refuses it first.
TEST_F(Loaders, Hdf5CorruptGlobalHeapIsRefused) {
  const fs::path p = dir_ / "heap.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
    w.write_vlen_strings("list_classes", {"cat", "dog"});
  }
  EXPECT_EQ(load_hdf5(p.string()).class_names(), (std::vector<std::string>{"cat", "dog"}));
  auto bytes = read_all_bytes(p);
  const std::string gcol = "GCOL";
  auto at = std::search(bytes.begin(), bytes.end(), gcol.begin(), gcol.end());
  ASSERT_NE(at, bytes.end());
  // the first object's size (8 bytes after its index, ref count and reserved bytes) made huge
  const auto obj = static_cast<std::size_t>(at - bytes.begin()) + 16;
  bytes[obj + 8 + 4] = 0x7f;
  write_bytes(p, bytes);
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "'list_classes'", "global heap collection", "past its end"});
}

// Datasets are reached through hard links only, as in .h5 model files: a soft link (and an
// external one, which would read another file) is refused, not followed.
TEST_F(Loaders, Hdf5SoftLinkIsRefused) {
  const fs::path p = dir_ / "soft.h5";
  {
    H5Writer w(p);
    w.write("pixels", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
    w.soft_link("/pixels", "train_set_x");
  }
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "dataset 'train_set_x'", "soft or external link", "only hard links"});
}

// HDF5 pads a global heap collection's header and each object's header to multiples of 8 bytes
// (H5HGpkg.h: H5HG_ALIGN; the spec's tables leave it implicit). With 4-byte lengths both are 16
// bytes, not the 12 their fields take: a check that took them unpadded refused this valid file.
TEST_F(Loaders, Hdf5VlenStringsWithFourByteLengths) {
  const fs::path p = dir_ / "lengths4.h5";
  {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_sizes(fcpl, 8, 4);
    H5Writer w(p, fcpl);
    H5Pclose(fcpl);
    w.write("train_set_x", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
    w.write_vlen_strings("list_classes", {"cat", "dog"});
  }
  auto bytes = read_all_bytes(p);
  ASSERT_EQ(bytes[8], 0);   // superblock version 0 ...
  ASSERT_EQ(bytes[14], 4);  // ... with 4-byte lengths
  EXPECT_EQ(load_hdf5(p.string()).class_names(), (std::vector<std::string>{"cat", "dog"}));
  const std::string gcol = "GCOL";
  auto at = std::search(bytes.begin(), bytes.end(), gcol.begin(), gcol.end());
  ASSERT_NE(at, bytes.end());
  // object 1 starts 16 bytes in; its size (4 bytes, 8 bytes after its index) made huge
  const auto obj = static_cast<std::size_t>(at - bytes.begin()) + 16;
  ASSERT_EQ(bytes[obj], 1);
  bytes[obj + 8 + 3] = 0x7f;
  write_bytes(p, bytes);
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "'list_classes'", "global heap collection", "corrupt object 1", "past its end"});
}

// HDF5 1.10.8 follows a group's addresses unchecked: an undefined address (all bits set) where
// the root group's B-tree, a B-tree child or its local heap should be, or a local heap whose data
// segment declares 2^64-1 bytes, crashed it inside H5Gget_info (a null read, then a negative
// memcpy size; found by fuzzing). The loader refuses such files before HDF5 walks the group.
TEST_F(Loaders, Hdf5CorruptGroupStructureIsRefused) {
  const fs::path p = dir_ / "group.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {2, 1, 1, 1}, std::vector<std::uint8_t>{1, 2});
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
  }
  ASSERT_EQ(load_hdf5(p.string()).size(), 2);
  const auto bytes = read_all_bytes(p);
  auto find = [&](const std::string& s) {
    const auto it = std::search(bytes.begin(), bytes.end(), s.begin(), s.end());
    return it == bytes.end() ? std::string::npos : static_cast<std::size_t>(it - bytes.begin());
  };
  // 8-byte addresses and lengths (HDF5's defaults): the root's symbol table message (type 0x11,
  // 16 bytes) holds its B-tree and heap addresses; a group B-tree node (TREE, type 0) holds its
  // first child after the signature, type, level, entry count, two siblings and the first key;
  // a local heap (HEAP) holds its data segment's size, then after the free list, its address.
  const std::size_t stab = find(std::string("\x11\0\x10\0\0\0\0\0", 8));
  const std::size_t tree = find("TREE"), heap = find("HEAP");
  ASSERT_NE(stab, std::string::npos);
  ASSERT_NE(tree, std::string::npos);
  ASSERT_NE(heap, std::string::npos);
  ASSERT_EQ(bytes[tree + 4], 0);  // a group node
  struct Case {
    const char* name;
    std::size_t at;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases = {
      {"btree", stab + 8, {"the root group's B-tree node is at an undefined address"}},
      {"heap", stab + 16, {"the root group's local heap is at an undefined address"}},
      {"child", tree + 32, {"the root group's B-tree node at address", "child 0 is at an undefined address"}},
      {"heap_size", heap + 8, {"data segment of 18446744073709551615 bytes", "past the end of the"}},
      {"heap_data", heap + 24, {"the root group's local heap's data segment", "undefined address"}},
  };
  for (const Case& c : cases) {
    auto corrupt = bytes;
    std::fill_n(corrupt.begin() + static_cast<std::ptrdiff_t>(c.at), 8, std::uint8_t{0xff});
    const fs::path q = dir_ / (std::string(c.name) + ".h5");
    write_bytes(q, corrupt);
    std::vector<std::string> parts = {q.string() + ": corrupt HDF5 file: "};
    parts.insert(parts.end(), c.message.begin(), c.message.end());
    SCOPED_TRACE(c.name);
    expect_error([&] { load_hdf5(q.string()); }, parts);
    expect_error([&] { load_dataset(q.string()); }, parts);
  }
}

// Data kept in another file (HDF5 external storage) is refused before HDF5 opens the dataset.
TEST_F(Loaders, Hdf5ExternalStorageIsRefused) {
  const fs::path p = dir_ / "external.h5";
  {
    H5Writer w(p);
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
  }
  write_bytes(dir_ / "pixels.bin", {1, 2});
  hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_external(dcpl, "pixels.bin", 0, 2);
  hsize_t dims[4] = {2, 1, 1, 1};
  hid_t space = H5Screate_simple(4, dims, nullptr);
  hid_t d = H5Dcreate2(f, "train_set_x", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Fclose(f);
  expect_error(
      [&] { load_hdf5(p.string()); },
      {p.string(), "the root group's member 'train_set_x' keeps its data in other files (external storage)"});
}

// HDF5 1.10.8 reads a compact dataset's data from its layout message by the size the dataspace
// and datatype declare, without comparing it with the size the message stores: a compact layout
// storing no data made H5Dread copy from a null pointer (found by fuzzing), one storing less than
// declared copies past its buffer, and a stored size past the message's end makes HDF5 copy past
// the object header when it decodes the layout. The loader refuses all three before H5Fopen.
TEST_F(Loaders, Hdf5CompactDataOfTheWrongSizeIsRefused) {
  const fs::path p = dir_ / "compact.h5";
  const auto px = pattern(2 * 1 * 2 * 3);
  {
    H5Writer w(p);
    w.write_compact("train_set_x", {2, 1, 2, 3}, px);
    w.write("train_set_y", H5T_NATIVE_INT64, {2}, std::vector<std::int64_t>{0, 1});
  }
  const Dataset ds = load_hdf5(p.string());  // compact storage itself loads
  ASSERT_EQ(ds.size(), 2);
  EXPECT_FLOAT_EQ(ds.images(DType::float32).at(11), px[11] / 255.0f);
  const auto bytes = read_all_bytes(p);
  // A version 1 object header message: type 0x0008 (data layout), size 16, flags, 3 reserved;
  // then the layout: version 3, class 0 (compact), the data's size (2 bytes: 12), the 12 bytes.
  const std::string layout("\x08\0\x10\0\0\0\0\0\x03\0\x0c\0", 12);
  const auto it = std::search(bytes.begin(), bytes.end(), layout.begin(), layout.end());
  ASSERT_NE(it, bytes.end());
  const auto size_at = static_cast<std::size_t>(it - bytes.begin()) + 10;
  struct Case {
    const char* name;
    std::uint16_t size;
    std::vector<std::string> message;
  };
  const std::vector<Case> cases = {
      {"none",
       0,
       {"the root group's member 'train_set_x' declares 12 bytes (12 elements of 1 byte)",
        "and stores 0 bytes of compact data"}},
      {"short", 4, {"'train_set_x' declares 12 bytes (12 elements of 1 byte) and stores 4 bytes"}},
      {"past",
       0xffff,
       {"'train_set_x': the data layout message at address",
        "declares 65535 bytes of compact data, past the end of its 16 bytes"}},
  };
  for (const Case& c : cases) {
    auto corrupt = bytes;
    corrupt[size_at] = static_cast<std::uint8_t>(c.size & 0xff);
    corrupt[size_at + 1] = static_cast<std::uint8_t>(c.size >> 8);
    const fs::path q = dir_ / (std::string(c.name) + ".h5");
    write_bytes(q, corrupt);
    std::vector<std::string> parts = {q.string() + ": corrupt HDF5 file: "};
    parts.insert(parts.end(), c.message.begin(), c.message.end());
    SCOPED_TRACE(c.name);
    expect_error([&] { load_hdf5(q.string()); }, parts);
  }
}

// The same for contiguous and chunked storage: contiguous data whose layout stores fewer bytes
// than declared or lies past the file's end, chunks of size 0 (HDF5 divides by chunk sizes).
TEST_F(Loaders, Hdf5StorageLayoutsAgainstTheDataspace) {
  const fs::path p = dir_ / "layouts.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {2, 1, 2, 3}, pattern(12));
    w.write_first_chunk("train_set_y", {2}, {0});
  }
  const auto bytes = read_all_bytes(p);
  // The contiguous layout (version 3, class 1): address, then size (12); the chunked one
  // (version 3, class 2): rank + 1 (2), B-tree address, chunk size (1), element size (1).
  const std::string contiguous("\x08\0\x18\0\0\0\0\0\x03\x01", 10);
  const std::string chunked("\x08\0\x18\0\0\0\0\0\x03\x02\x02", 11);
  const auto c = std::search(bytes.begin(), bytes.end(), contiguous.begin(), contiguous.end());
  const auto k = std::search(bytes.begin(), bytes.end(), chunked.begin(), chunked.end());
  ASSERT_NE(c, bytes.end());
  ASSERT_NE(k, bytes.end());
  const auto contiguous_at = static_cast<std::size_t>(c - bytes.begin()) + 10;
  const auto chunked_at = static_cast<std::size_t>(k - bytes.begin()) + 11;
  auto variant = [&](const char* name, std::size_t at, std::vector<std::uint8_t> with) {
    auto corrupt = bytes;
    std::copy(with.begin(), with.end(), corrupt.begin() + static_cast<std::ptrdiff_t>(at));
    const fs::path q = dir_ / name;
    write_bytes(q, corrupt);
    return q.string();
  };
  const std::string small = variant("small.h5", contiguous_at + 8, {4});
  expect_error([&] { load_hdf5(small); },
               {small + ": corrupt HDF5 file: the root group's member 'train_set_x' declares 12 bytes",
                "its contiguous storage holds 4"});
  const std::string far = variant("far.h5", contiguous_at + 5, {0x7f});
  expect_error(
      [&] { load_hdf5(far); },
      {far + ": corrupt HDF5 file: the root group's member 'train_set_x''s contiguous data at address",
       "(12 bytes) lies past the end of the"});
  const std::string zero = variant("zero.h5", chunked_at + 8, {0, 0, 0, 0});
  expect_error([&] { load_hdf5(zero); },
               {zero + ": corrupt HDF5 file: the root group's member 'train_set_y': the data layout message",
                "declares chunk dimension 0 of size 0, expected at least 1"});
}

// A regression input kept in the signs_hdf5 fuzz corpus.
std::string corpus_input(const std::string& name) {
  return std::string(RESKIT_FUZZ_CORPUS_DIR) + "/signs_hdf5/" + name;
}

// The fuzzer's input that crashed HDF5 with a compact layout storing no data (train_signs.h5 with
// its train_set_x layout's version and class bytes swapped: version 1, compact, 0 bytes stored),
// kept in the fuzz corpus.
TEST_F(Loaders, Hdf5FuzzRegressionCompactDataMissing) {
  const std::string p = corpus_input("regress-hdf5-compact-data-missing.h5");
  ASSERT_TRUE(fs::exists(p)) << p;
  expect_error([&] { load_hdf5(p, "train"); },
               {p + ": corrupt HDF5 file: the root group's member 'train_set_x' declares 144 bytes (144 "
                    "elements of 1 byte) and stores 0 bytes of compact data"});
}

// An input the fuzzer found against the walk itself: list_classes's datatype message holds bytes
// the fuzzer inserted ("N6reskit5ErrorE"), which read as a compound datatype (version 3) of 25970
// members, whose first member's offset lies past the 16-byte message. The walk read that offset
// before checking it fitted (AddressSanitizer: heap-buffer-overflow in hdf5_check.cpp).
TEST_F(Loaders, Hdf5FuzzRegressionCompoundMemberPastItsDatatype) {
  const std::string p = corpus_input("regress-hdf5-compound-member-past-datatype.h5");
  ASSERT_TRUE(fs::exists(p)) << p;
  expect_error([&] { load_hdf5(p, "train"); },
               {p + ": corrupt HDF5 file: the root group's member 'list_classes''s datatype: its compound "
                    "member offset (4 bytes at byte 15) runs past its 16 bytes"});
}

// The fuzzer's input that crashed HDF5 this way (its root B-tree's child overwritten with 0xff
// bytes), kept in the fuzz corpus.
TEST_F(Loaders, Hdf5FuzzRegressionUndefinedBtreeChild) {
  const std::string p = corpus_input("regress-hdf5-undefined-btree-child.h5");
  ASSERT_TRUE(fs::exists(p)) << p;
  expect_error([&] { load_hdf5(p, "train"); }, {p, "corrupt HDF5 file", "the root group's"});
  expect_error([&] { load_hdf5(p, "test"); }, {p, "corrupt HDF5 file"});
}

TEST_F(Loaders, Hdf5TruncatedOrNotHdf5) {
  const fs::path p = dir_ / "cut.h5";
  {
    H5Writer w(p);
    w.write("train_set_x", H5T_NATIVE_UINT8, {50, 8, 8, 3}, pattern(50 * 8 * 8 * 3));
    w.write("train_set_y", H5T_NATIVE_INT64, {50}, std::vector<std::int64_t>(50, 1));
  }
  const auto size = fs::file_size(p);
  fs::resize_file(p, size / 2);
  expect_error([&] { load_hdf5(p.string()); },
               {p.string(), "corrupt HDF5 file: the file is truncated: its superblock declares " +
                                std::to_string(size) + " bytes, the file has " + std::to_string(size / 2)});
  const fs::path t = dir_ / "text.h5";
  write_bytes(t, {'h', 'e', 'l', 'l', 'o'});
  expect_error([&] { load_dataset(t.string()); }, {t.string(), "expected an HDF5 file", "no HDF5 signature"});
  expect_error([&] { load_hdf5((dir_ / "absent.h5").string()); }, {"absent.h5", "no such file", "HDF5"});
}

// ---------------------------------------------------------------------------------------------
// IDX (MNIST / Fashion-MNIST)

struct IdxFiles {
  std::vector<std::uint8_t> pixels, labels;
};

IdxFiles write_idx_pair(const fs::path& dir, const std::string& prefix, bool gz, std::uint32_t n = 3) {
  IdxFiles f{pattern(n * 4 * 5, 11, 1), {}};
  for (std::uint32_t i = 0; i < n; ++i) f.labels.push_back(static_cast<std::uint8_t>((i * 4) % 10));
  const auto images = idx_bytes(0x00000803, {n, 4, 5}, f.pixels);
  const auto labels = idx_bytes(0x00000801, {n}, f.labels);
  const std::string ext = gz ? ".gz" : "";
  if (gz) {
    write_gz(dir / (prefix + "-images-idx3-ubyte" + ext), images);
    write_gz(dir / (prefix + "-labels-idx1-ubyte" + ext), labels);
  } else {
    write_bytes(dir / (prefix + "-images-idx3-ubyte"), images);
    write_bytes(dir / (prefix + "-labels-idx1-ubyte"), labels);
  }
  return f;
}

TEST_F(Loaders, IdxPlainAndGzipped) {
  for (bool gz : {false, true}) {
    const fs::path d = dir_ / (gz ? "gz" : "plain");
    fs::create_directories(d);
    const IdxFiles f = write_idx_pair(d, "train", gz);
    const std::string ext = gz ? ".gz" : "";
    const Dataset a = load_idx((d / ("train-images-idx3-ubyte" + ext)).string(),
                               (d / ("train-labels-idx1-ubyte" + ext)).string());
    ASSERT_EQ(a.size(), 3);
    EXPECT_EQ(a.sample_shape(), (Shape{4, 5, 1}));
    EXPECT_EQ(a.num_classes(), 10);
    EXPECT_EQ(a.class_names().front(), "0");
    EXPECT_EQ(a.label(2), 8);
    const Tensor x = a.images(DType::float32);
    for (std::size_t i = 0; i < f.pixels.size(); ++i)
      ASSERT_FLOAT_EQ(x.at(static_cast<std::int64_t>(i)), f.pixels[i] / 255.0f);
    // the folder and the images file resolve too
    EXPECT_EQ(load_dataset(d.string()).size(), 3);
    EXPECT_EQ(load_dataset((d / ("train-images-idx3-ubyte" + ext)).string()).label(1), 4);
  }
}

TEST_F(Loaders, IdxFolderSplitsAndFashionNames) {
  const fs::path d = dir_ / "my-fashion";
  fs::create_directories(d);
  write_idx_pair(d, "train", true, 4);
  write_idx_pair(d, "t10k", false, 2);
  const Dataset train = load_idx_folder(d.string(), "train");
  const Dataset test = load_dataset(d.string() + ":test");
  EXPECT_EQ(train.size(), 4);
  EXPECT_EQ(test.size(), 2);
  EXPECT_EQ(test.class_names(), fashion_mnist_class_names());
  EXPECT_EQ(test.class_names()[9], "Ankle boot");
  expect_error<ConfigError>([&] { load_idx_folder(d.string(), "valid"); },
                            {"expected split 'train' or 'test'"});
  const fs::path empty = dir_ / "empty_idx";
  fs::create_directories(empty);
  expect_error([&] { load_idx_folder(empty.string(), "test"); },
               {empty.string(), "expected t10k-images-idx3-ubyte[.gz]", "split 'test'"});
}

TEST_F(Loaders, IdxBadData) {
  const auto pixels = pattern(3 * 4 * 5);
  const auto good_labels = idx_bytes(0x00000801, {3}, {1, 2, 3});
  const fs::path labels = dir_ / "labels-idx1-ubyte";
  write_bytes(labels, good_labels);
  // wrong magic: a labels file given as images
  expect_error([&] { load_idx(labels.string(), labels.string()); },
               {labels.string(), "expected IDX magic 0x00000803", "found 0x00000801"});
  // truncated plain file
  const fs::path cut = dir_ / "cut-images-idx3-ubyte";
  auto bytes = idx_bytes(0x00000803, {3, 4, 5}, pixels);
  bytes.resize(bytes.size() - 30);
  write_bytes(cut, bytes);
  expect_error(
      [&] { load_idx(cut.string(), labels.string()); },
      {cut.string(), "header declares (3, 4, 5) = 60 bytes of data", "the file holds 30 (truncated)"});
  // truncated gzip stream
  const fs::path cutgz = dir_ / "cut-images-idx3-ubyte.gz";
  write_gz(cutgz, bytes);
  expect_error([&] { load_idx(cutgz.string(), labels.string()); },
               {cutgz.string(), "truncated", "60 bytes of data", "holds 30"});
  // a hostile header: 2^31 images of 2^16 x 2^16 pixels, in a few bytes; nothing allocated
  const fs::path huge = dir_ / "huge-images-idx3-ubyte";
  write_bytes(huge, idx_bytes(0x00000803, {0x7fffffff, 0xffff, 0xffff}, pixels));
  expect_error([&] { load_idx(huge.string(), labels.string()); },
               {huge.string(), "header declares", "the file holds 60"});
  const fs::path hugegz = dir_ / "huge-images-idx3-ubyte.gz";
  write_gz(hugegz, idx_bytes(0x00000803, {60000, 0xffff, 0xffff}, pixels));
  expect_error([&] { load_idx(hugegz.string(), labels.string()); },
               {hugegz.string(), "header declares", "more than a gzip file of"});
  // a zero size, a file too short for its header, an empty file
  const fs::path zero = dir_ / "zero-images-idx3-ubyte";
  write_bytes(zero, idx_bytes(0x00000803, {0, 4, 5}, {}));
  expect_error([&] { load_idx(zero.string(), labels.string()); },
               {zero.string(), "size 0 of the header is 0"});
  const fs::path shorthead = dir_ / "short-images-idx3-ubyte";
  write_bytes(shorthead, {0, 0, 8, 3, 0, 0});
  expect_error([&] { load_idx(shorthead.string(), labels.string()); },
               {shorthead.string(), "truncated header", "got 2 bytes"});
  const fs::path empty = dir_ / "empty-images-idx3-ubyte";
  write_bytes(empty, {});
  expect_error([&] { load_idx(empty.string(), labels.string()); },
               {empty.string(), "expected a 4-byte IDX magic 0x00000803", "got 0 bytes"});
  // label count
  const fs::path images = dir_ / "ok-images-idx3-ubyte";
  write_bytes(images, idx_bytes(0x00000803, {2, 4, 5}, pattern(40)));
  expect_error([&] { load_idx(images.string(), labels.string()); },
               {labels.string(), "expected 2 labels (one per image in", "found 3"});
  // trailing data
  const fs::path longer = dir_ / "long-images-idx3-ubyte";
  auto more = idx_bytes(0x00000803, {3, 4, 5}, pixels);
  more.push_back(0);
  write_bytes(longer, more);
  expect_error([&] { load_idx(longer.string(), labels.string()); }, {longer.string(), "the file holds 61"});
  // missing labels file beside an images file
  expect_error([&] { load_dataset(images.string()); },
               {images.string(), "ok-labels-idx1-ubyte", "no such file"});
}

TEST_F(Loaders, FashionMnistFromDebian) {
  // scripts/setup.sh installs Debian's dataset-fashion-mnist: its absence is a missing install step.
  ASSERT_TRUE(fs::exists(fs::path(kFashionMnistDir) / "t10k-images-idx3-ubyte.gz"))
      << kFashionMnistDir << " not installed (Debian package dataset-fashion-mnist; scripts/setup.sh)";
  const Dataset d = load_dataset("fashion-mnist:test");
  EXPECT_EQ(d.size(), 10000);
  EXPECT_EQ(d.sample_shape(), (Shape{28, 28, 1}));
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(d.class_names(), fashion_mnist_class_names());
  std::vector<int> counts(10, 0);
  for (std::int64_t i = 0; i < d.size(); ++i) ++counts[d.label(i)];
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test split is balanced
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10

// n records; pixel p of channel c in record i is (i * 31 + c * 97 + p) % 256
std::vector<std::uint8_t> cifar_records(int n, int label0 = 0) {
  std::vector<std::uint8_t> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(static_cast<std::uint8_t>((label0 + i) % 10));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) v.push_back(static_cast<std::uint8_t>((i * 31 + c * 97 + p) % 256));
  }
  return v;
}

TEST_F(Loaders, CifarBatchToNhwc) {
  const fs::path p = dir_ / "data_batch_1.bin";
  write_bytes(p, cifar_records(3, 4));
  const Dataset d = load_dataset(p.string());
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.sample_shape(), (Shape{32, 32, 3}));
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(d.label(2), 6);
  EXPECT_EQ(d.class_names()[3], "3");
  const Tensor x = d.images(DType::float32);
  for (int i = 0; i < 3; ++i)
    for (int r : {0, 5, 31})
      for (int q : {0, 17, 31})
        for (int c = 0; c < 3; ++c) {
          const int p_ = r * 32 + q;
          const float want = static_cast<float>((i * 31 + c * 97 + p_) % 256) / 255.0f;
          ASSERT_FLOAT_EQ(x.at(((i * 32 + r) * 32 + q) * 3 + c), want)
              << i << " " << r << " " << q << " " << c;
        }
}

TEST_F(Loaders, CifarFolderSplitsAndMetaNames) {
  const fs::path d = dir_ / "cifar-10-batches-bin";
  fs::create_directories(d);
  write_bytes(d / "data_batch_1.bin", cifar_records(2, 0));
  write_bytes(d / "data_batch_2.bin", cifar_records(3, 5));
  write_bytes(d / "test_batch.bin", cifar_records(1, 9));
  std::ofstream(d / "batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  const Dataset train = load_dataset(d.string(), "train");
  EXPECT_EQ(train.size(), 5);
  EXPECT_EQ(train.label(2), 5);  // first record of batch 2
  EXPECT_EQ(train.class_names()[9], "truck");
  const Dataset test = load_cifar10(d.string(), "test");
  EXPECT_EQ(test.size(), 1);
  EXPECT_EQ(test.label(0), 9);
  EXPECT_EQ(test.num_classes(), 10);
}

TEST_F(Loaders, CifarBadData) {
  const fs::path p = dir_ / "bad.bin";
  auto rec = cifar_records(2);
  rec.pop_back();
  write_bytes(p, rec);
  expect_error([&] { load_cifar10(p.string()); },
               {p.string(), "expected CIFAR-10 records of 3073 bytes", "file of 6145 bytes"});
  auto labelled = cifar_records(2);
  labelled[3073] = 12;
  write_bytes(p, labelled);
  expect_error([&] { load_cifar10(p.string()); }, {p.string(), "record 1 has label 12", "[0, 10)"});
  write_bytes(p, {});
  expect_error([&] { load_cifar10(p.string()); }, {p.string(), "file of 0 bytes"});
  const fs::path empty = dir_ / "no_batches";
  fs::create_directories(empty);
  expect_error([&] { load_cifar10(empty.string(), "test"); },
               {empty.string(), "test_batch.bin", "found none"});
}

// ---------------------------------------------------------------------------------------------
// Images

// A 4 x 6 RGB picture whose pixel (r, q) is (10 r + q, 100 + q, 200 - r)
std::vector<std::uint8_t> picture(int rows = 4, int cols = 6) {
  std::vector<std::uint8_t> v;
  for (int r = 0; r < rows; ++r)
    for (int q = 0; q < cols; ++q) {
      v.push_back(static_cast<std::uint8_t>(10 * r + q));
      v.push_back(static_cast<std::uint8_t>(100 + q));
      v.push_back(static_cast<std::uint8_t>(200 - r));
    }
  return v;
}

// Keras load_img's nearest neighbour (PIL NEAREST): floor((d + 0.5) * src / dst), in exact integers.
std::int64_t nearest(std::int64_t d, std::int64_t src, std::int64_t dst) {
  return std::min<std::int64_t>((2 * d + 1) * src / (2 * dst), src - 1);
}
// Whether (d + 0.5) * src / dst is a whole number: there Pillow's double arithmetic (a position
// advanced by src / dst) may land just below it.
bool tie(std::int64_t d, std::int64_t src, std::int64_t dst) { return (2 * d + 1) * src % (2 * dst) == 0; }

TEST_F(Loaders, LoadImageResizesNearestAndScales) {
  const fs::path p = dir_ / "pic.png";
  write_png(p, 4, 6, 3, picture());
  const auto px = picture();
  for (auto [rows, cols] : {std::pair<int, int>{4, 6}, {3, 4}, {7, 9}, {2, 11}, {1, 1}}) {
    const Tensor x = load_image(p.string(), rows, cols, 3);
    ASSERT_EQ(x.shape(), (Shape{1, rows, cols, 3}));
    ASSERT_EQ(x.dtype(), DType::float32);
    for (int r = 0; r < rows; ++r)
      for (int q = 0; q < cols; ++q)
        for (int c = 0; c < 3; ++c) {
          if (tie(r, 4, rows) || tie(q, 6, cols)) continue;
          const std::int64_t sr = nearest(r, 4, rows), sq = nearest(q, 6, cols);
          ASSERT_FLOAT_EQ(x.at((r * cols + q) * 3 + c), px[(sr * 6 + sq) * 3 + c] / 255.0f)
              << rows << "x" << cols << " at " << r << "," << q;
        }
  }
  // A tie, 6 -> 9 columns at q = 4: (4.5) * 6 / 9 = 3 exactly, but Pillow's position 1/3 + 4 * (2/3)
  // sums to 2.9999999999999996 in double, so column 2 is read, as Keras load_img does.
  EXPECT_TRUE(tie(4, 6, 9));
  EXPECT_FLOAT_EQ(load_image(p.string(), 4, 9, 3).at(4 * 3), px[2 * 3] / 255.0f);
  // PIL's convert: RGB -> L luma, RGBA alpha 255
  const Tensor g = load_image(p.string(), 4, 6, 1);
  ASSERT_EQ(g.shape(), (Shape{1, 4, 6, 1}));
  const int luma = (19595 * px[3] + 38470 * px[4] + 7471 * px[5] + 0x8000) >> 16;
  EXPECT_FLOAT_EQ(g.at(1), luma / 255.0f);
  const Tensor a = load_image(p.string(), 4, 6, 4);
  EXPECT_FLOAT_EQ(a.at(3), 1.0f);
  EXPECT_FLOAT_EQ(a.at(4), px[3] / 255.0f);
  expect_error<ConfigError>([&] { load_image(p.string(), 4, 6, 2); },
                            {p.string(), "expected 1 (grayscale), 3 (RGB)", "got 2"});
}

TEST_F(Loaders, GrayscaleAndRgbaPngAndJpegDecode) {
  const fs::path gray = dir_ / "gray.png";
  std::vector<std::uint8_t> g{0, 50, 100, 150, 200, 250};
  write_png(gray, 2, 3, 1, g);
  const Image im = read_image(gray.string(), 3);
  EXPECT_EQ(im.rows, 2);
  EXPECT_EQ(im.cols, 3);
  EXPECT_EQ(im.channels, 3);
  EXPECT_EQ(im.pixels[3 * 4 + 0], 200);
  EXPECT_EQ(im.pixels[3 * 4 + 2], 200);
  const fs::path rgba = dir_ / "rgba.png";
  write_png(rgba, 1, 2, 4, {10, 20, 30, 0, 40, 50, 60, 128});
  const Image dropped = read_image(rgba.string(), 3);  // alpha dropped, not composited
  EXPECT_EQ(dropped.pixels, (std::vector<std::uint8_t>{10, 20, 30, 40, 50, 60}));
  // JPEG, quality 100, flat colours: within a couple of levels
  const fs::path jpg = dir_ / "flat.jpg";
  std::vector<std::uint8_t> flat;
  for (int i = 0; i < 16 * 16; ++i) flat.insert(flat.end(), {200, 100, 50});
  write_jpeg(jpg, 16, 16, 3, flat, {.quality = 100});
  const Image j = read_image(jpg.string(), 3);
  ASSERT_EQ(j.pixels.size(), flat.size());
  for (std::size_t i = 0; i < flat.size(); ++i) ASSERT_NEAR(j.pixels[i], flat[i], 2);
  const fs::path gjpg = dir_ / "gray.jpeg";
  write_jpeg(gjpg, 8, 8, 1, std::vector<std::uint8_t>(64, 77), {.quality = 100});
  const Image gj = read_image(gjpg.string(), 3);
  EXPECT_EQ(gj.channels, 3);
  EXPECT_NEAR(gj.pixels[0], 77, 1);
  EXPECT_EQ(gj.pixels[0], gj.pixels[1]);
}

TEST_F(Loaders, ImageFolderOneSubFolderPerClass) {
  const fs::path d = dir_ / "pictures";
  fs::create_directories(d / "b_dogs");
  fs::create_directories(d / "a_cats");
  fs::create_directories(d / "c_empty");
  write_png(d / "a_cats" / "2.png", 4, 6, 3, picture());
  write_png(d / "a_cats" / "1.png", 2, 3, 1, {0, 50, 100, 150, 200, 250});
  std::vector<std::uint8_t> flat;
  for (int i = 0; i < 8 * 8; ++i) flat.insert(flat.end(), {10, 240, 120});
  write_jpeg(d / "b_dogs" / "x.JPG", 8, 8, 3, flat, {.quality = 100});
  std::ofstream(d / "b_dogs" / "notes.txt") << "not an image";
  LoadOptions o;
  o.rows = 3;
  o.cols = 4;
  const Dataset ds = load_dataset(d.string(), "train", o);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"a_cats", "b_dogs", "c_empty"}));
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.label(0), 0);
  EXPECT_EQ(ds.label(2), 1);
  EXPECT_EQ(ds.sample_shape(), (Shape{3, 4, 3}));
  const Tensor x = ds.images(DType::float32);
  // sample 0 is 1.png (gray 2x3 expanded), sample 1 is 2.png (4x6), both resized to 3x4
  const std::vector<std::uint8_t> g{0, 50, 100, 150, 200, 250};
  const auto px = picture();
  for (int r = 0; r < 3; ++r)
    for (int q = 0; q < 4; ++q) {
      const float gv = g[nearest(r, 2, 3) * 3 + nearest(q, 3, 4)] / 255.0f;
      for (int c = 0; c < 3; ++c) ASSERT_FLOAT_EQ(x.at((r * 4 + q) * 3 + c), gv);
      for (int c = 0; c < 3; ++c) {
        const float pv = px[(nearest(r, 4, 3) * 6 + nearest(q, 6, 4)) * 3 + c] / 255.0f;
        ASSERT_FLOAT_EQ(x.at(36 + (r * 4 + q) * 3 + c), pv);
      }
      for (int c = 0; c < 3; ++c) ASSERT_NEAR(x.at(72 + (r * 4 + q) * 3 + c), flat[c] / 255.0, 2.5 / 255);
    }
  // grayscale
  o.channels = 1;
  EXPECT_EQ(load_image_folder(d.string(), o).sample_shape(), (Shape{3, 4, 1}));
}

TEST_F(Loaders, ImageFolderBadData) {
  const fs::path d = dir_ / "sizes";
  fs::create_directories(d / "a");
  fs::create_directories(d / "b");
  write_png(d / "a" / "one.png", 4, 6, 3, picture());
  write_png(d / "b" / "two.png", 5, 6, 3, picture(5, 6));
  // no target size: sizes must agree
  expect_error([&] { load_image_folder(d.string()); },
               {d.string(), "expected images of one size", "one.png (4x6)", "two.png (5x6)"});
  LoadOptions o;
  o.rows = 4;
  o.cols = 6;
  EXPECT_EQ(load_image_folder(d.string(), o).size(), 2);
  // empty folder, loose images, sub-folders without images
  const fs::path empty = dir_ / "empty";
  fs::create_directories(empty);
  expect_error([&] { load_image_folder(empty.string()); },
               {empty.string(), "one sub-folder", "found no sub-folders"});
  expect_error([&] { load_dataset(empty.string()); },
               {empty.string(), "found an empty folder", "expected one of"});
  const fs::path loose = dir_ / "loose";
  fs::create_directories(loose);
  write_png(loose / "pic.png", 4, 6, 3, picture());
  expect_error([&] { load_image_folder(loose.string()); },
               {loose.string(), "images directly in the folder (e.g. pic.png)"});
  const fs::path hollow = dir_ / "hollow";
  fs::create_directories(hollow / "cats");
  expect_error([&] { load_image_folder(hollow.string()); }, {hollow.string(), "found none in cats"});
  // corrupt pictures
  const fs::path bad = dir_ / "bad";
  fs::create_directories(bad / "x");
  const fs::path cut = bad / "x" / "cut.png";
  write_png(cut, 4, 6, 3, picture());
  auto bytes = read_all_bytes(cut);
  bytes.resize(bytes.size() / 2);
  write_bytes(cut, bytes);
  expect_error([&] { load_image_folder(bad.string()); }, {cut.string(), "expected a valid PNG image"});
  expect_error([&] { read_image(cut.string()); }, {cut.string(), "expected a valid PNG image"});
  // a header declaring 9000 x 9000 RGB pixels (243 MB; under the pixel limit) in a file of a few
  // dozen bytes: refused before the pixels are allocated, since deflate expands at most 1032:1
  const fs::path liar = dir_ / "liar.png";
  write_png(liar, 4, 6, 3, picture());
  auto lb = read_all_bytes(liar);
  ASSERT_EQ(std::string(lb.begin() + 12, lb.begin() + 16), "IHDR");
  for (int at : {16, 20}) {  // width, height (big-endian), then the chunk's CRC again
    lb[at] = 0, lb[at + 1] = 0, lb[at + 2] = 0x23, lb[at + 3] = 0x28;
  }
  const uLong crc = crc32(0, lb.data() + 12, 17);
  for (int i = 0; i < 4; ++i) lb[29 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  write_bytes(liar, lb);
  expect_error([&] { read_image(liar.string()); },
               {liar.string(), "9000x9000 pixels (243009000 bytes of image data)", "more than a",
                "-byte file can hold"});
  const fs::path txt = dir_ / "text.png";
  std::ofstream(txt) << "GIF89a";
  expect_error([&] { read_image(txt.string()); },
               {txt.string(), "expected a PNG or JPEG image", "starting with bytes 47 49 46 38 39 61"});
  const fs::path jcut = dir_ / "cut.jpg";
  write_jpeg(jcut, 16, 16, 3, std::vector<std::uint8_t>(16 * 16 * 3, 9), {.quality = 100});
  auto jb = read_all_bytes(jcut);
  jb.resize(jb.size() - 40);
  write_bytes(jcut, jb);
  expect_error([&] { read_image(jcut.string()); },
               {jcut.string(), "expected a valid JPEG image", "Premature end"});
  expect_error([&] { read_image((dir_ / "none.png").string()); }, {"none.png", "no such file"});
  expect_error<ConfigError>(
      [&] {
        LoadOptions half;
        half.rows = 4;
        load_image_folder(d.string(), half);
      },
      {"expected a target size with both rows and cols positive"});
}

// ---------------------------------------------------------------------------------------------
// load_dataset

TEST_F(Loaders, LoadDatasetSaysWhatItAccepts) {
  expect_error(
      [&] { load_dataset((dir_ / "nothing").string()); },
      {"nothing", "no such file or folder", "expected one of", "fashion-mnist", "CIFAR-10", "PNG/JPEG"});
  const fs::path odd = dir_ / "data.csv";
  std::ofstream(odd) << "1,2,3\n";
  expect_error([&] { load_dataset(odd.string()); },
               {odd.string(), "cannot tell what data this file holds", ".h5"});
  const fs::path pic = dir_ / "pic.png";
  write_png(pic, 4, 6, 3, picture());
  expect_error([&] { load_dataset(pic.string()); }, {pic.string(), "found a single image"});
  const fs::path labels = dir_ / "train-labels-idx1-ubyte";
  write_bytes(labels, idx_bytes(0x00000801, {1}, {1}));
  expect_error([&] { load_dataset(labels.string()); }, {labels.string(), "found the labels file"});
  const fs::path files = dir_ / "files";
  fs::create_directories(files);
  std::ofstream(files / "readme.txt") << "x";
  expect_error([&] { load_dataset(files.string()); },
               {files.string(), "found readme.txt", "expected one of"});
}

TEST_F(Loaders, LoadDatasetFolderOfSignsFiles) {
  const fs::path d = dir_ / "signs";
  fs::create_directories(d);
  for (const std::string split : {"train", "test"}) {
    H5Writer w(d / (split + "_signs.h5"));
    const hsize_t m = split == "train" ? 4 : 2;
    w.write(split + "_set_x", H5T_NATIVE_UINT8, {m, 2, 2, 3}, pattern(m * 12));
    w.write(split + "_set_y", H5T_NATIVE_INT64, {m}, std::vector<std::int64_t>(m, 1));
  }
  EXPECT_EQ(load_dataset(d.string()).size(), 4);
  EXPECT_EQ(load_dataset(d.string(), "test").size(), 2);
}

}  // namespace
