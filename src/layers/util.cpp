// Initializers, activation functions and element loops shared by the layers.
#include "layers/util.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/kernels.h"
#include "reskit/random.h"

namespace reskit::detail {

void check_initializer_name(const std::string& where, const std::string& init) {
  static const char* known[] = {"zeros",      "ones",      "glorot_uniform", "glorot_normal",
                                "he_uniform", "he_normal", "random_uniform", "random_normal"};
  for (const char* k : known)
    if (init == k) return;
  throw ConfigError(where + ": unknown initializer '" + init +
                    "'; expected one of zeros, ones, glorot_uniform, glorot_normal, he_uniform, "
                    "he_normal, random_uniform, random_normal");
}

void initialize(Tensor& t, const std::string& where, const std::string& init, std::int64_t fan_in,
                std::int64_t fan_out, std::optional<std::uint64_t> seed) {
  check_initializer_name(where, init);
  if (init == "zeros") return t.fill(0.0);
  if (init == "ones") return t.fill(1.0);
  std::mt19937_64 gen(seed ? *seed : next_random_seed());
  const std::int64_t n = t.numel();
  const double fi = static_cast<double>(std::max<std::int64_t>(fan_in, 1));
  const double fo = static_cast<double>(std::max<std::int64_t>(fan_out, 1));
  auto uniform = [&](double limit) {
    std::uniform_real_distribution<double> d(-limit, limit);
    for (std::int64_t i = 0; i < n; ++i) t.set(i, d(gen));
  };
  // Keras's normal initializers draw from a normal truncated at two standard deviations;
  // the variance-scaling ones divide by 0.8796 so the truncated variance is the intended one.
  auto truncated = [&](double stddev) {
    std::normal_distribution<double> d(0.0, stddev);
    for (std::int64_t i = 0; i < n; ++i) {
      double v;
      do v = d(gen);
      while (std::abs(v) > 2.0 * stddev);
      t.set(i, v);
    }
  };
  constexpr double kTruncatedStd = 0.87962566103423978;
  if (init == "glorot_uniform") return uniform(std::sqrt(6.0 / (fi + fo)));
  if (init == "he_uniform") return uniform(std::sqrt(6.0 / fi));
  if (init == "random_uniform") return uniform(0.05);
  if (init == "glorot_normal") return truncated(std::sqrt(2.0 / (fi + fo)) / kTruncatedStd);
  if (init == "he_normal") return truncated(std::sqrt(2.0 / fi) / kTruncatedStd);
  std::normal_distribution<double> d(0.0, 0.05);  // random_normal
  for (std::int64_t i = 0; i < n; ++i) t.set(i, d(gen));
}

Act parse_activation(const std::string& where, const std::string& name) {
  if (name == "linear" || name.empty()) return Act::linear;
  if (name == "relu") return Act::relu;
  if (name == "softmax") return Act::softmax;
  if (name == "sigmoid") return Act::sigmoid;
  if (name == "tanh") return Act::tanh;
  if (name == "elu") return Act::elu;
  if (name == "selu") return Act::selu;
  if (name == "softplus") return Act::softplus;
  if (name == "softsign") return Act::softsign;
  if (name == "swish" || name == "silu") return Act::swish;
  if (name == "exponential") return Act::exponential;
  throw ConfigError(where + ": unknown activation '" + name + "'; expected one of " + kActivationNames);
}

namespace {

// Keras's SELU constants (keras/activations.py; Klambauer et al. 2017).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// The elementwise activations without a kink worth a vectorised loop: y = f(z) as Keras 2.x
// defines them (elu with alpha 1, swish z·sigmoid(z); Keras 3's silu is swish).
template <class T>
T smooth_forward(Act act, T z) {
  switch (act) {
    case Act::elu:
      return z > T(0) ? z : std::expm1(z);
    case Act::selu:
      return z > T(0) ? static_cast<T>(kSeluScale) * z
                      : static_cast<T>(kSeluScale * kSeluAlpha) * std::expm1(z);
    case Act::softplus:  // log(1 + e^z) without overflow
      return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
    case Act::softsign:
      return z / (std::abs(z) + T(1));
    case Act::swish:
      return z / (T(1) + std::exp(-z));
    case Act::exponential:
      return std::exp(z);
    default:
      return z;
  }
}

// dy/dz at z (y = f(z)).
template <class T>
T smooth_derivative(Act act, T z, T y) {
  switch (act) {
    case Act::elu:
      return z > T(0) ? T(1) : y + T(1);
    case Act::selu:
      return z > T(0) ? static_cast<T>(kSeluScale) : y + static_cast<T>(kSeluScale * kSeluAlpha);
    case Act::softplus:
      return T(1) / (T(1) + std::exp(-z));
    case Act::softsign:
      return T(1) / ((std::abs(z) + T(1)) * (std::abs(z) + T(1)));
    case Act::swish: {
      const T s = T(1) / (T(1) + std::exp(-z));
      return s + z * s * (T(1) - s);
    }
    case Act::exponential:
      return y;
    default:
      return T(1);
  }
}

}  // namespace

Tensor activated(Act act, const Tensor& z) {
  if (act == Act::linear) return z;
  Tensor y = Tensor::uninitialized(z.shape(), z.dtype());
  activation_forward(act, z, y);
  return y;
}

void activation_forward(Act act, const Tensor& z, Tensor& y) {
  visit_dtype(z.dtype(), [&]<class T>(T) {
    const T* in = z.data<T>();
    T* out = y.data<T>();
    const std::int64_t n = z.numel();
    switch (act) {
      case Act::linear:
        if (in != out) std::copy_n(in, n, out);
        break;
      case Act::relu:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i) out[i] = std::max(in[i], T(0));
        break;
      case Act::sigmoid:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i) out[i] = T(1) / (T(1) + std::exp(-in[i]));
        break;
      case Act::tanh:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
        break;
      case Act::elu:
      case Act::selu:
      case Act::softplus:
      case Act::softsign:
      case Act::swish:
      case Act::exponential:
        for (std::int64_t i = 0; i < n; ++i) out[i] = smooth_forward(act, in[i]);
        break;
      case Act::softmax: {
        const std::int64_t k = z.dim(-1), rows = n / k;
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t r = 0; r < rows; ++r) {
          const T* a = in + r * k;
          T* b = out + r * k;
          T mx = *std::max_element(a, a + k);
          double sum = 0.0;
          for (std::int64_t j = 0; j < k; ++j) {
            b[j] = std::exp(a[j] - mx);
            sum += static_cast<double>(b[j]);
          }
          for (std::int64_t j = 0; j < k; ++j) b[j] = static_cast<T>(static_cast<double>(b[j]) / sum);
        }
        break;
      }
    }
  });
}

Tensor activation_backward(Act act, const Tensor& z, const Tensor& y, const Tensor& dy) {
  if (act == Act::linear) return dy;
  Tensor dz = Tensor::uninitialized(z.shape(), z.dtype());
  visit_dtype(z.dtype(), [&]<class T>(T) {
    const T* __restrict zi = z.data<T>();
    const T* __restrict yi = y.data<T>();
    const T* __restrict g = dy.data<T>();
    T* __restrict o = dz.data<T>();
    const std::int64_t n = z.numel();
    switch (act) {
      case Act::linear:
        break;
      case Act::relu:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i)
          o[i] = (zi[i] > T(0)) * g[i];  // this form vectorises; a select branches
        break;
      case Act::sigmoid:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i) o[i] = g[i] * yi[i] * (T(1) - yi[i]);
        break;
      case Act::tanh:
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t i = 0; i < n; ++i) o[i] = g[i] * (T(1) - yi[i] * yi[i]);
        break;
      case Act::elu:
      case Act::selu:
      case Act::softplus:
      case Act::softsign:
      case Act::swish:
      case Act::exponential:
        for (std::int64_t i = 0; i < n; ++i) o[i] = g[i] * smooth_derivative(act, zi[i], yi[i]);
        break;
      case Act::softmax: {
        // dz = y ⊙ (dy − Σ_j dy_j y_j) per row
        const std::int64_t k = z.dim(-1), rows = n / k;
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
        for (std::int64_t r = 0; r < rows; ++r) {
          double dot = 0.0;
          for (std::int64_t j = 0; j < k; ++j)
            dot += static_cast<double>(g[r * k + j]) * static_cast<double>(yi[r * k + j]);
          for (std::int64_t j = 0; j < k; ++j)
            o[r * k + j] = static_cast<T>(static_cast<double>(yi[r * k + j]) *
                                          (static_cast<double>(g[r * k + j]) - dot));
        }
        break;
      }
    }
  });
  return dz;
}

Tensor relu_backward_sum(const Tensor& z, const Tensor& a, const Tensor& b) {
  if (a.shape() != z.shape() || b.shape() != z.shape() || a.dtype() != z.dtype() || b.dtype() != z.dtype()) {
    throw ShapeError("relu_backward_sum: expected gradients of shape " + shape_str(z.shape()) + ", got " +
                     shape_str(a.shape()) + " and " + shape_str(b.shape()));
  }
  Tensor dz = Tensor::uninitialized(z.shape(), z.dtype());
  visit_dtype(z.dtype(), [&]<class T>(T) {
    const T* __restrict zi = z.data<T>();
    const T* __restrict ga = a.data<T>();
    const T* __restrict gb = b.data<T>();
    T* __restrict o = dz.data<T>();
    const std::int64_t n = z.numel();
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) o[i] = (zi[i] > T(0)) * (ga[i] + gb[i]);  // as activation_backward
  });
  return dz;
}

Tensor relu_backward_f32(const Tensor& z, const Tensor& a, const Tensor* b, bool bf16_out) {
  for (const Tensor* t : {&z, &a, b}) {
    if (t != nullptr && (t->shape() != z.shape() || t->dtype() != DType::float32)) {
      throw ShapeError("relu_backward_f32: expected float32 tensors of shape " + shape_str(z.shape()) +
                       ", got " + std::string(dtype_name(t->dtype())) + " " + shape_str(t->shape()));
    }
  }
  Tensor dz = Tensor::uninitialized(z.shape(), DType::float32);
  float* out = bf16_out ? nullptr : dz.data<float>();
  std::uint16_t* out_bits = bf16_out ? dz.bf16_shadow_buffer() : nullptr;
  // Each operand as the kernel reads it: its rounding's bits where that is all it holds.
  const auto operand = [](const Tensor* t, const float*& values, const std::uint16_t*& bits) {
    if (t == nullptr) return;
    bits = only_rounding(*t);
    if (bits == nullptr) values = t->data<float>();
  };
  kernels::ReluBackwardParams p{.n = z.numel(), .dz = out, .dz_bits = out_bits};
  operand(&z, p.z, p.z_bits);
  operand(&a, p.a, p.a_bits);
  operand(b, p.b, p.b_bits);
  kernels::relu_backward_f32(p);
  if (bf16_out) dz.bf16_shadow_only_written();
  return dz;
}

void set_weight_rules(Param& p, const std::optional<Regularizer>& regularizer,
                      const std::optional<Constraint>& constraint, const std::string& where) {
  const std::string weight = where + " weight '" + p.name + "'";
  if (regularizer) check_regularizer(*regularizer, weight);
  if (constraint) check_constraint(*constraint, weight, p.value.rank());
  p.regularizer = regularizer;
  p.constraint = constraint;
}

}  // namespace reskit::detail
