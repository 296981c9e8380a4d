// Writes small files in the notebook's SIGNS layout (train_signs.h5 / test_signs.h5: uint8
// images (m, 64, 64, 3), labels (1, m), list_classes) and one PNG picture, so the notebook example
// can run where the real SIGNS files are not at hand (they are not redistributable).
//   make_signs DIR [TRAIN_COUNT] [TEST_COUNT]     (defaults 120 and 30)
// DIR is created if missing. Class c is a bright square in one of six places; the picture shows
// class 2. A failure prints one line and exits with 1 (HDF5's own error stack is turned off); a bad
// command line exits with 2.
#include <hdf5.h>
#include <png.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace {
constexpr int kSide = 64, kClasses = 6;

std::vector<std::uint8_t> draw(int label, std::mt19937& gen) {
  std::vector<std::uint8_t> img(kSide * kSide * 3);
  std::uniform_int_distribution<int> noise(0, 60);
  for (auto& p : img) p = static_cast<std::uint8_t>(noise(gen));
  const int r0 = (label / 3) * 32 + 6, c0 = (label % 3) * 21 + 2;
  for (int r = r0; r < r0 + 20; ++r)
    for (int c = c0; c < c0 + 18; ++c)
      for (int k = 0; k < 3; ++k)
        img[(r * kSide + c) * 3 + k] = static_cast<std::uint8_t>(200 + noise(gen) / 2);
  return img;
}

bool write_h5(const std::string& path, const std::string& split, int m, std::mt19937& gen) {
  std::vector<std::uint8_t> x;
  std::vector<std::int64_t> y;
  for (int i = 0; i < m; ++i) {
    const int label = i % kClasses;
    auto img = draw(label, gen);
    x.insert(x.end(), img.begin(), img.end());
    y.push_back(label);
  }
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return false;
  bool ok = true;
  hsize_t xd[4] = {static_cast<hsize_t>(m), kSide, kSide, 3}, yd[2] = {1, static_cast<hsize_t>(m)},
          cd[1] = {kClasses};
  auto write = [&](const std::string& name, int rank, const hsize_t* dims, hid_t type, const void* data) {
    hid_t s = H5Screate_simple(rank, dims, nullptr);
    hid_t d = s < 0 ? -1 : H5Dcreate2(f, name.c_str(), type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && d >= 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
  };
  std::vector<std::int64_t> classes{0, 1, 2, 3, 4, 5};
  write(split + "_set_x", 4, xd, H5T_NATIVE_UINT8, x.data());
  write(split + "_set_y", 2, yd, H5T_NATIVE_INT64, y.data());
  write("list_classes", 1, cd, H5T_NATIVE_INT64, classes.data());
  return H5Fclose(f) >= 0 && ok;
}

bool write_png(const std::string& path, const std::vector<std::uint8_t>& img) {
  FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(fp);
    return false;
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, kSide, kSide, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int r = 0; r < kSide; ++r) png_write_row(png, img.data() + r * kSide * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::fclose(fp) == 0;
}

// A sample count from 1 to 100000, or 0 when the text is not one.
int count(const char* text) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  return *text != '\0' && *end == '\0' && n >= 1 && n <= 100000 ? static_cast<int>(n) : 0;
}
}  // namespace

int main(int argc, char** argv) {
  const int train = argc > 2 ? count(argv[2]) : 120, test = argc > 3 ? count(argv[3]) : 30;
  if (argc < 2 || argc > 4 || train == 0 || test == 0) {
    std::fprintf(stderr, "usage: make_signs DIR [TRAIN_COUNT] [TEST_COUNT] (counts from 1 to 100000)\n");
    return 2;
  }
  const std::string dir = argv[1];
  // Failures are reported here, in one line each, not as HDF5's error stack.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "make_signs: cannot create folder '%s': %s\n", dir.c_str(),
                 (ec ? ec : std::make_error_code(std::errc::not_a_directory)).message().c_str());
    return 1;
  }
  std::mt19937 gen(1);
  for (const auto& [file, split, m] :
       {std::tuple{"train_signs.h5", "train", train}, {"test_signs.h5", "test", test}}) {
    const std::string path = dir + "/" + file;
    if (!write_h5(path, split, m, gen)) {
      std::fprintf(stderr, "make_signs: cannot write '%s'\n", path.c_str());
      return 1;
    }
  }
  if (!write_png(dir + "/sign.png", draw(2, gen))) {
    std::fprintf(stderr, "make_signs: cannot write '%s/sign.png'\n", dir.c_str());
    return 1;
  }
  std::printf("Wrote %s/train_signs.h5 (%d samples), %s/test_signs.h5 (%d) and %s/sign.png\n", dir.c_str(),
              train, dir.c_str(), test, dir.c_str());
  return 0;
}
