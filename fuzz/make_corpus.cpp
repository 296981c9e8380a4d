// Writes the seed corpora of the fuzz targets, small valid files, into DIR/<target>/:
//   reskit_fuzz_make_corpus DIR        (fuzz/README.md: how to regenerate fuzz/corpus)
// h5_model: the small model of fuzz_util.h, compiled (Adam) and trained one step, saved with
// save_model and save_weights; model_json: its JSON and a branchy one (Add, padding, pooling,
// dropout); signs_hdf5: SIGNS-layout train and test files; idx: image/label pairs in the
// fuzz_idx.cpp framing, plain and gzipped; cifar10: one record; png, jpeg: tiny pictures.
#include <hdf5.h>

#include <fstream>
#include <iostream>
#include <vector>

#include "fuzz_util.h"
#include "reskit/io/h5.h"
#include "support/file_writers.h"

namespace {

namespace fs = std::filesystem;
using namespace reskit_test;

// --- h5_model, model_json

void write_models(const fs::path& h5_dir, const fs::path& json_dir) {
  using namespace reskit;
  set_random_seed(1);
  clear_session();
  Model model = reskit_fuzz::small_model();
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  Tensor x({2, 6, 6, 2}), y({2, 3});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, static_cast<double>(i % 11) / 11.0);
  y.set(1, 1.0);
  y.set(3 + 2, 1.0);
  model.train_on_batch(x, y);
  save_model(model, (h5_dir / "small_model.h5").string());
  save_weights(model, (h5_dir / "small_weights.h5").string());
  std::ofstream(json_dir / "small_model.json") << model_to_json(model);

  clear_session();
  Tensor in = Input({8, 8, 3});
  Tensor a = ZeroPadding2D(std::array<int, 2>{1, 1})(in);
  a = Conv2D(4, {3, 3}, {.strides = {2, 2}, .name = "conv1"})(a);
  a = BatchNormalization({.axis = 3, .name = "bn1"})(a);
  a = Activation("relu")(a);
  Tensor b = Conv2D(4, {1, 1}, {.strides = {2, 2}, .padding = "same", .name = "shortcut"})(in);
  Tensor s = Add()({a, b});
  s = MaxPooling2D({2, 2})(s);
  s = AveragePooling2D({2, 2}, {.padding = "same"})(s);
  s = GlobalAveragePooling2D()(s);
  s = Dropout(0.25)(s);
  s = Dense(2, {.activation = "softmax", .name = "out"})(s);
  Model branchy(in, s, "fuzz_branchy");
  std::ofstream(json_dir / "branchy_model.json") << model_to_json(branchy);
}

// --- signs_hdf5

class H5File {
 public:
  explicit H5File(const fs::path& p) : id_(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    if (id_ < 0) throw std::runtime_error("cannot create " + p.string());
  }
  ~H5File() { H5Fclose(id_); }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  void write(const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(id_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(space);
  }

 private:
  hid_t id_;
};

void write_signs(const fs::path& dir) {
  {  // As the notebook's train_signs.h5: uint8 (m, H, W, 3), int64 labels (1, m), int64 classes.
    H5File f(dir / "train_signs.h5");
    const Bytes x = pattern(3 * 4 * 4 * 3);
    f.write("train_set_x", H5T_NATIVE_UINT8, {3, 4, 4, 3}, x.data());
    const std::int64_t y[] = {0, 2, 1};
    f.write("train_set_y", H5T_NATIVE_INT64, {1, 3}, y);
    const std::int64_t classes[] = {0, 1, 2};
    f.write("list_classes", H5T_NATIVE_INT64, {3}, classes);
  }
  {  // Gray (m, H, W) float32 pixels, int32 labels (m,), variable-length string classes.
    H5File f(dir / "test_signs.h5");
    std::vector<float> x(2 * 3 * 3);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 18.0f;
    f.write("test_set_x", H5T_NATIVE_FLOAT, {2, 3, 3}, x.data());
    const std::int32_t y[] = {1, 0};
    f.write("test_set_y", H5T_NATIVE_INT32, {2}, y);
    const char* names[] = {"zero", "one"};
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    H5Tset_cset(str, H5T_CSET_UTF8);
    f.write("list_classes", str, {2}, names);
    H5Tclose(str);
  }
}

// --- idx (framing of fuzz_idx.cpp: flags, little-endian images size, images, labels)

void write_idx(const fs::path& dir) {
  const Bytes images = idx_bytes(0x00000803, {2, 3, 3}, pattern(2 * 3 * 3));
  const Bytes labels = idx_bytes(0x00000801, {2}, {3, 9});
  for (std::uint8_t flags : {0, 3}) {
    const auto n = static_cast<std::uint32_t>(images.size());
    Bytes b{flags, static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8),
            static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 24)};
    b.insert(b.end(), images.begin(), images.end());
    b.insert(b.end(), labels.begin(), labels.end());
    write_bytes(dir / (flags ? "pair_gzipped" : "pair_plain"), b);
  }
}

// --- cifar10

void write_cifar(const fs::path& dir) {
  Bytes rec = pattern(1 + 3 * 32 * 32, 13, 5);
  rec[0] = 7;
  write_bytes(dir / "one_record.bin", rec);
}

// Every seed must load: a seed the parser refuses would only test the error paths.
void check_seeds(const fs::path& root) {
  using namespace reskit;
  clear_session();
  (void)load_model((root / "h5_model" / "small_model.h5").string());
  for (const char* f : {"small_model.h5", "small_weights.h5"}) {
    clear_session();
    Model m = reskit_fuzz::small_model();
    load_weights(m, (root / "h5_model" / f).string());
  }
  for (const char* f : {"small_model.json", "branchy_model.json"}) {
    std::ifstream in(root / "model_json" / f);
    clear_session();
    (void)model_from_json({std::istreambuf_iterator<char>(in), {}});
  }
  (void)load_hdf5((root / "signs_hdf5" / "train_signs.h5").string(), "train");
  (void)load_hdf5((root / "signs_hdf5" / "test_signs.h5").string(), "test");
  (void)load_cifar10((root / "cifar10" / "one_record.bin").string());
  for (const auto& dir : {root / "png", root / "jpeg"})
    for (const auto& e : fs::directory_iterator(dir)) (void)read_image(e.path().string(), 3);
}

// --- png, jpeg

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: reskit_fuzz_make_corpus DIR   (writes DIR/<target>/ seed files)\n";
    return 2;
  }
  try {
    const fs::path root = argv[1];
    for (const char* t : {"h5_model", "model_json", "signs_hdf5", "idx", "cifar10", "png", "jpeg", "stream"})
      fs::create_directories(root / t);
    write_models(root / "h5_model", root / "model_json");
    write_signs(root / "signs_hdf5");
    write_idx(root / "idx");
    write_cifar(root / "cifar10");
    // Pictures of 29 * i + 1 pixel values (fuzz/corpus holds them; the same bytes as before).
    const auto px = [](int rows, int cols, int channels) {
      return pattern(static_cast<std::size_t>(rows * cols * channels), 29, 1);
    };
    write_png(root / "png" / "gray_3x2.png", 3, 2, 1, px(3, 2, 1));
    write_png(root / "png" / "gray_alpha_2x2.png", 2, 2, 2, px(2, 2, 2));
    write_png(root / "png" / "rgb_4x5.png", 4, 5, 3, px(4, 5, 3));
    write_png(root / "png" / "rgba_3x3.png", 3, 3, 4, px(3, 3, 4));
    write_jpeg(root / "jpeg" / "rgb_8x8.jpg", 8, 8, 3, px(8, 8, 3));
    write_jpeg(root / "jpeg" / "gray_5x7.jpg", 5, 7, 1, px(5, 7, 1));
    write_jpeg(root / "jpeg" / "rgb_progressive_9x6.jpg", 9, 6, 3, px(9, 6, 3), {.progressive = true});
    // stream: a picture the target sizes shrink (a JPEG big enough for DCT scaling) and a PNG
    write_png(root / "stream" / "rgb_4x5.png", 4, 5, 3, px(4, 5, 3));
    write_jpeg(root / "stream" / "rgb_40x32.jpg", 40, 32, 3, px(40, 32, 3));
    check_seeds(root);
  } catch (const std::exception& e) {
    std::cerr << "reskit_fuzz_make_corpus: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
