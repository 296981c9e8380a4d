// kernels/image.h — image kernels (part of the kernels.h surface, which includes it):
// tf.image.resize (Keras Resizing; the streaming pipeline's resize) and the crop box of Keras's
// crop_to_aspect_ratio (kernels/ref/resize.cpp); TF's ImageProjectiveTransformV3 (RandomRotation,
// RandomZoom, RandomTranslation), flips, crops and contrast (kernels/ref/image_transform.cpp).
// Reference loops only, but for resize_u8, whose bilinear case has a fast twin
// (cpu/resize_u8.cpp) that dispatch.cpp chooses.
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

// 8-bit pictures (the streaming pipeline's resize): y = resize_forward<float> of x's pixels as
// float, each rounded to the nearest integer (ties to even) and clamped to [0, 255]. Bilinear runs
// a fast path with the same arithmetic (the same bits); Backend::reference and the other methods
// run the reference (ref/resize.h).
void resize_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y);

// Keras's crop_to_aspect_ratio (keras.preprocessing.image.smart_resize): the largest centred window
// of an h x w image with the aspect ratio of target_h x target_w, computed as Keras does
// (float32 division truncated to int; the start (h − rows) / 2 truncated; at least 1 row/column).
struct CropBox {
  std::int64_t top = 0, left = 0, rows = 0, cols = 0;
};
CropBox resize_crop_box(std::int64_t h, std::int64_t w, std::int64_t target_h, std::int64_t target_w);

// ---- Projective transforms (tf.raw_ops.ImageProjectiveTransformV3, as Keras's transform() calls it)
//
// Each image n has a transform t[n·8 .. n·8 + 8) = (a0, a1, a2, b0, b1, b2, c0, c1) mapping an
// *output* pixel (x = column, y = row) to the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2)
// / k), k = c0 x + c1 y + 1 (k = 0: fill_value), in float32. Each coordinate is then mapped by the
// fill mode (TF's MapCoordinate; len = the image's size along it):
//   reflect   (d c b a | a b c d | d c b a), then clamped to [0, len − 1]
//   wrap      (a b c d | a b c d | a b c d), then clamped to [0, len − 1]
//   constant  unchanged (pixels outside read fill_value)
//   nearest   clamped to [0, len − 1]
// and read with the interpolation: nearest reads the pixel at round(y), round(x) (half away from
// zero); bilinear weights the four pixels (floor, floor + 1) by (1 − frac, frac). A pixel outside
// the image reads fill_value.
enum class FillMode { reflect, wrap, constant, nearest };
enum class Interpolation { nearest, bilinear };

struct TransformParams {
  std::int64_t n = 1, h = 1, w = 1, c = 1;  // x and y N H W C (the output keeps the input's size)
  FillMode fill_mode = FillMode::reflect;
  Interpolation interpolation = Interpolation::bilinear;
  double fill_value = 0.0;
};

// y[N,H,W,C] = x[N,H,W,C] sampled through transforms[N, 8].
template <class T>
void projective_transform_forward(const TransformParams& p, const float* transforms, const T* x, T* y);
// The adjoint in x (fill_value contributes nothing): dx[N,H,W,C] from dy[N,H,W,C].
template <class T>
void projective_transform_backward(const TransformParams& p, const float* transforms, const T* dy, T* dx);

// ---- Flips, crops, contrast

// y[n] = x[n] with its rows reversed where flip_rows[n] and its columns where flip_cols[n]
// (its own adjoint: the backward is the same call on dy).
template <class T>
void flip_images(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                 const std::uint8_t* flip_rows, const std::uint8_t* flip_cols, const T* x, T* y);

// y[N, box.rows, box.cols, C] = x[N, H, W, C]'s window box.
template <class T>
void crop_forward(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const CropBox& box,
                  const T* x, T* y);
// dx[N,H,W,C]: dy in the window, 0 elsewhere.
template <class T>
void crop_backward(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const CropBox& box,
                   const T* dy, T* dx);

// tf.image.adjust_contrast per image with factor[n], then clipped to [lo, hi] (Keras's
// RandomContrast): y = clip((x − mean) · f + mean), mean over the image's H·W pixels per channel.
struct ContrastParams {
  std::int64_t n = 1, h = 1, w = 1, c = 1;
  double lo = 0.0, hi = 255.0;
};
template <class T>
void contrast_forward(const ContrastParams& p, const double* factor, const T* x, T* y);
// dx from dy through the clip's mask (the value before the clip inside [lo, hi]) and the linear
// map: dx = f·g + (1 − f)·mean(g) per image and channel, g = dy·mask.
template <class T>
void contrast_backward(const ContrastParams& p, const double* factor, const T* x, const T* dy, T* dx);

}  // namespace reskit::kernels
