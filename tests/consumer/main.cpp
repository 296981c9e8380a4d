// A program built against the installed reskit package: builds ResNet-50 for 64x64x3 inputs and
// 6 classes and prints its parameter count (23600006, as Keras reports).
#include <reskit/reskit.h>

#include <exception>
#include <iostream>

int main() {
  try {
    reskit::Model model = reskit::resnet50({64, 64, 3}, 6);
    std::cout << model.count_params() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
