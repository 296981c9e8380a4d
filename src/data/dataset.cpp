// In-memory datasets and batch assembly (scaling, one-hot, augmentation).
#include "reskit/data/dataset.h"

#include <algorithm>
#include <numeric>

#include "reskit/error.h"
#include "util/dtype_visit.h"

namespace reskit {

namespace {
void check_labels(const std::string& source, const std::vector<std::int32_t>& labels, int num_classes) {
  if (num_classes <= 0) {
    throw Error(source + ": expected at least one class, got " + std::to_string(num_classes));
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      throw Error(source + ": label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                  "; expected a class in [0, " + std::to_string(num_classes) + ")");
    }
  }
}

Shape check_shape(const std::string& source, const Shape& shape, std::size_t values, std::size_t labels) {
  if (shape.size() != 4 || std::any_of(shape.begin(), shape.end(), [](auto d) { return d <= 0; })) {
    throw Error(source + ": expected images of shape (N, H, W, C) with positive sizes, got " +
                shape_str(shape));
  }
  if (static_cast<std::size_t>(shape_numel(shape)) != values) {
    throw Error(source + ": shape " + shape_str(shape) + " needs " + std::to_string(shape_numel(shape)) +
                " values, got " + std::to_string(values));
  }
  if (static_cast<std::size_t>(shape[0]) != labels) {
    throw Error(source + ": expected " + std::to_string(shape[0]) + " labels (one per image), got " +
                std::to_string(labels));
  }
  return {shape[1], shape[2], shape[3]};
}
}  // namespace

Dataset Dataset::make(std::string source, const Shape& shape, std::shared_ptr<Storage> storage,
                      int num_classes, std::vector<std::string> class_names) {
  const std::size_t values = storage->pixels.empty() ? storage->values.size() : storage->pixels.size();
  Dataset d;
  d.sample_shape_ = check_shape(source, shape, values, storage->labels.size());
  check_labels(source, storage->labels, num_classes);
  d.index_.resize(static_cast<std::size_t>(shape[0]));
  std::iota(d.index_.begin(), d.index_.end(), 0);
  d.storage_ = std::move(storage);
  d.num_classes_ = num_classes;
  d.class_names_ = std::move(class_names);
  d.source_ = std::move(source);
  return d;
}

Dataset Dataset::from_uint8(std::string source, Shape shape, std::vector<std::uint8_t> pixels,
                            std::vector<std::int32_t> labels, int num_classes,
                            std::vector<std::string> class_names) {
  auto s = std::make_shared<Storage>();
  s->pixels = std::move(pixels);
  s->labels = std::move(labels);
  return make(std::move(source), shape, std::move(s), num_classes, std::move(class_names));
}

Dataset Dataset::from_float(std::string source, Shape shape, std::vector<float> values,
                            std::vector<std::int32_t> labels, int num_classes,
                            std::vector<std::string> class_names) {
  auto s = std::make_shared<Storage>();
  s->values = std::move(values);
  s->labels = std::move(labels);
  return make(std::move(source), shape, std::move(s), num_classes, std::move(class_names));
}

Dataset Dataset::from_tensors(const Tensor& x, const Tensor& y, int num_classes) {
  const std::string source = "Dataset::from_tensors";
  if (x.rank() != 4)
    throw ShapeError(source + ": expected x of shape (N, H, W, C), got " + shape_str(x.shape()));
  const std::int64_t n = x.dim(0);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  if (y.rank() == 2 && y.dim(1) > 1) {
    if (y.dim(0) != n)
      throw ShapeError(source + ": expected " + std::to_string(n) + " targets, got " + shape_str(y.shape()));
    const std::int64_t k = y.dim(1);
    num_classes = std::max<int>(num_classes, static_cast<int>(k));
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t best = 0;
      for (std::int64_t j = 1; j < k; ++j)
        if (y.at(i * k + j) > y.at(i * k + best)) best = j;
      labels[i] = static_cast<std::int32_t>(best);
    }
  } else {
    if (y.numel() != n)
      throw ShapeError(source + ": expected " + std::to_string(n) + " labels, got " + shape_str(y.shape()));
    int mx = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<std::int32_t>(y.at(i));
      mx = std::max(mx, labels[i] + 1);
    }
    if (num_classes == 0) num_classes = mx;
  }
  Tensor xf = x.to(DType::float32);
  std::vector<float> values(xf.data<float>(), xf.data<float>() + xf.numel());
  return from_float(source, x.shape(), std::move(values), std::move(labels), num_classes);
}

std::int32_t Dataset::label(std::int64_t i) const {
  return storage_->labels[static_cast<std::size_t>(index_.at(i))];
}

Dataset Dataset::subset(std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || end > size() || begin > end) {
    throw Error(source_ + ": subset [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") out of range for " + std::to_string(size()) + " samples");
  }
  Dataset d = *this;
  d.index_.assign(index_.begin() + begin, index_.begin() + end);
  return d;
}

void Dataset::fill_batch(std::span<const std::int64_t> indices, Tensor& x, Tensor& y,
                         const AugmentOptions& augment, std::mt19937_64* gen) const {
  const std::int64_t b = static_cast<std::int64_t>(indices.size());
  const std::int64_t h = sample_shape_[0], w = sample_shape_[1], c = sample_shape_[2], per = h * w * c;
  Shape xs{b, h, w, c};
  if (!x.defined() || x.shape() != xs) x = Tensor::uninitialized(xs, x.defined() ? x.dtype() : floatx());
  if (!y.defined() || y.shape() != Shape{b, num_classes_}) y = Tensor(Shape{b, num_classes_}, x.dtype());
  y.zero();
  // Augmentation draws happen here, in sample order, so results do not depend on threads.
  std::vector<int> dr(b, 0), dc(b, 0), flip(b, 0);
  if (augment.any()) {
    if (!gen) throw Error(source_ + ": augmentation needs a random generator");
    if (augment.random_resized_crop) {
      throw ConfigError(source_ +
                        ": random resized crop needs the decoded pictures, expected a stream "
                        "(open_image_folder), got an in-memory dataset");
    }
    for (std::int64_t i = 0; i < b; ++i) {
      if (augment.pad_crop > 0) {
        dr[i] = static_cast<int>((*gen)() % (2 * augment.pad_crop + 1)) - augment.pad_crop;
        dc[i] = static_cast<int>((*gen)() % (2 * augment.pad_crop + 1)) - augment.pad_crop;
      }
      if (augment.horizontal_flip) flip[i] = static_cast<int>((*gen)() % 2);
    }
  }
  detail::visit_dtype(x.dtype(), [&]<class T>(T) {
    T* out = x.data<T>();
    T* oy = y.data<T>();
    const bool bytes = !storage_->pixels.empty();
#pragma omp parallel for schedule(static) if (b * per > (1 << 16))
    for (std::int64_t i = 0; i < b; ++i) {
      const std::int64_t src = index_.at(static_cast<std::size_t>(indices[i]));
      const std::uint8_t* pb = bytes ? storage_->pixels.data() + src * per : nullptr;
      const float* pf = bytes ? nullptr : storage_->values.data() + src * per;
      T* dst = out + i * per;
      for (std::int64_t r = 0; r < h; ++r)
        for (std::int64_t q = 0; q < w; ++q) {
          // output (r, q) reads input (r + dr, q' + dc) where q' is q or its mirror
          const std::int64_t sr = r + dr[i], sq = (flip[i] ? w - 1 - q : q) + dc[i];
          T* o = dst + (r * w + q) * c;
          if (sr < 0 || sr >= h || sq < 0 || sq >= w) {
            std::fill_n(o, c, T(0));
          } else if (bytes) {
            for (std::int64_t k = 0; k < c; ++k) o[k] = static_cast<T>(pb[(sr * w + sq) * c + k]) / T(255);
          } else {
            for (std::int64_t k = 0; k < c; ++k) o[k] = static_cast<T>(pf[(sr * w + sq) * c + k]);
          }
        }
      oy[i * num_classes_ + storage_->labels[src]] = T(1);
    }
  });
}

Tensor Dataset::images(DType dtype) const {
  std::vector<std::int64_t> all(static_cast<std::size_t>(size()));
  std::iota(all.begin(), all.end(), 0);
  Tensor x = Tensor::uninitialized({1}, dtype), y;
  fill_batch(all, x, y);
  return x;
}

Tensor Dataset::one_hot(DType dtype) const {
  Tensor y({size(), num_classes_}, dtype);
  for (std::int64_t i = 0; i < size(); ++i) y.set(i * num_classes_ + label(i), 1.0);
  return y;
}

}  // namespace reskit
