// The Keras ResNet-50 notebook that reskit follows (tf.keras 2.x: an identity block and a
// convolutional block, then ResNet-50 for 64x64x3 pictures and 6 classes) as a C++ program:
//   notebook TRAIN.h5 TEST.h5 [IMAGE] [--epochs N] [--batch-size B]
// 1. builds an identity block and a convolutional block on a random (3, 4, 4, 6) array and
//    checks their output shapes, as the notebook does;
// 2. builds ResNet-50 for 64x64x3 inputs and 6 classes and prints its summary;
// 3. compiles it with Adam and categorical cross-entropy, trains it on the SIGNS-layout files,
//    evaluates it on the test file and saves it as a Keras .h5 file;
// 4. loads the file back and classifies a picture (resized as image.load_img, scaled by 1/255).
#include <reskit/reskit.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

using namespace reskit;

namespace {
Tensor random_array(const Shape& shape) {
  Tensor x(shape, DType::float64);
  std::mt19937_64 gen(0);
  std::normal_distribution<double> normal;
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, normal(gen));
  return x;
}

int run(int argc, char** argv) {
  std::vector<std::string> files;
  int epochs = 2, batch_size = 32;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--epochs" || a == "--batch-size") && i + 1 < argc) {
      (a == "--epochs" ? epochs : batch_size) = std::atoi(argv[++i]);
    } else {
      files.push_back(a);
    }
  }
  if (files.size() < 2) {
    std::cerr << "usage: notebook TRAIN.h5 TEST.h5 [IMAGE] [--epochs N] [--batch-size B]\n";
    return 2;
  }

  // In [3] and In [5]: the blocks run at once on concrete arrays (the notebook sets float64).
  set_floatx(DType::float64);
  Tensor x = random_array({3, 4, 4, 6});
  Tensor y = identity_block(x, 2, {2, 4, 6}, "1", "a");
  std::cout << "identity block output shape " << shape_str(y.shape()) << "\n";
  Tensor z = convolutional_block(x, 2, {2, 4, 6}, 2, "1", "a");
  std::cout << "convolutional block output shape " << shape_str(z.shape()) << "\n";
  if (y.shape() != Shape{3, 4, 4, 6} || z.shape() != Shape{3, 2, 2, 6}) return 1;

  // In [7] and In [9]: ResNet-50, compiled and summarised (in float32 for speed here).
  set_floatx(DType::float32);
  clear_session();
  Model model = resnet50({64, 64, 3}, 6);
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  model.summary();

  // Training and evaluation on the SIGNS files (pixels scaled by 1/255, labels one-hot).
  Dataset train = load_dataset(files[0], "train");
  Dataset test = load_dataset(files[1], "test");
  model.set_class_names(train.class_names());
  fit(model, train, {.epochs = epochs, .batch_size = batch_size});
  Scores scores = evaluate(model, test);
  std::cout << "Loss = " << scores["loss"] << "\nTest Accuracy = " << scores["accuracy"] << "\n";

  // Save, load back, and classify a picture.
  save_model(model, "signs_resnet50.h5");
  Model again = load_model("signs_resnet50.h5");
  if (files.size() > 2) {
    Tensor image = load_image(files[2], 64, 64, 3);
    Tensor p = again(image);
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < p.numel(); ++k)
      if (p.at(k) > p.at(best)) best = k;
    const auto& names = again.class_names();
    std::cout << files[2] << ": class " << (names.empty() ? std::to_string(best) : names[best])
              << " (p = " << p.at(best) << ")\n";
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "notebook: error: " << e.what() << "\n";
    return 1;
  }
}
