// kernels/image.h — image resampling kernels (part of the kernels.h surface, which includes it):
// tf.image.resize (Keras Resizing; the streaming pipeline's resize) and the crop box of Keras's
// crop_to_aspect_ratio. Reference loops only (kernels/ref/resize.cpp): there is nothing to choose,
// so dispatch.cpp does not route them.
//
// Shapes: x[N, H, W, C] (NHWC; N = 1 for one image (H, W, C)), y[N, P, Q, C].
// Coordinates are computed in float32 as TensorFlow computes them (so the sampled pixels and
// weights are TF's); values are accumulated in double and stored as T.
#pragma once

#include <cstdint>

namespace reskit::kernels {

// TF2's tf.image.resize methods with antialias=False:
//   bilinear  ResizeBilinear, half_pixel_centers: in = (out + 0.5)·(H/P) − 0.5, the two nearest rows
//             clamped to the image, weights 1 − frac and frac.
//   nearest   ResizeNearestNeighbor, half_pixel_centers: in = min(floor((out + 0.5)·(H/P)), H − 1).
//   bicubic   ResizeBicubic, half_pixel_centers: Keys' cubic with a = −0.5 at in = (out + 0.5)·(H/P)
//             − 0.5; TF reads the weights from a 1024-entry table (the fraction rounded to 1/1024);
//             taps outside the image get weight 0 and the others are renormalised to sum 1.
//   area      ResizeArea: the box [out·(H/P), (out + 1)·(H/P)) averaged with fractional cover.
enum class ResizeMethod { bilinear, nearest, bicubic, area };

struct ResizeParams {
  std::int64_t n = 1, h = 1, w = 1, c = 1;  // input N H W C
  std::int64_t p = 1, q = 1;                // output P x Q
  // The window of each image that is resized: rows [top, top + rows), columns [left, left + cols);
  // rows or cols 0 means the whole height or width. resize_crop_box gives crop_to_aspect_ratio's.
  std::int64_t top = 0, left = 0, rows = 0, cols = 0;
  ResizeMethod method = ResizeMethod::bilinear;
};

// y[N,P,Q,C] = x[N,H,W,C]'s window resized. Throws reskit::ShapeError for an empty output or a
// window outside the image.
template <class T>
void resize_forward(const ResizeParams& p, const T* x, T* y);
// The adjoint (resizing is linear in x): dx[N,H,W,C] from dy[N,P,Q,C]; 0 outside the window.
template <class T>
void resize_backward(const ResizeParams& p, const T* dy, T* dx);

// Keras's crop_to_aspect_ratio (keras.preprocessing.image.smart_resize): the largest centred window
// of an h x w image with the aspect ratio of target_h x target_w, computed as Keras does
// (float32 division truncated to int; the start (h − rows) / 2 truncated; at least 1 row/column).
struct CropBox {
  std::int64_t top = 0, left = 0, rows = 0, cols = 0;
};
CropBox resize_crop_box(std::int64_t h, std::int64_t w, std::int64_t target_h, std::int64_t target_w);

}  // namespace reskit::kernels
