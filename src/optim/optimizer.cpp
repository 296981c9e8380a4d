// Adam and SGD over named parameters.
#include "reskit/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <type_traits>

#include "kernels/kernels.h"
#include "kernels/ref/bf16.h"
#include "reskit/error.h"
#include "util/dtype_visit.h"

namespace reskit {

using detail::visit_dtype;

Optimizer::Optimizer(double learning_rate) : learning_rate_(learning_rate) {
  set_learning_rate(learning_rate);
}

double Optimizer::learning_rate() const { return schedule_ ? (*schedule_)(iterations_) : learning_rate_; }

void Optimizer::set_learning_rate(double lr) {
  if (schedule_) throw ConfigError("optimizer: the learning rate follows a schedule and cannot be set");
  if (!(lr > 0.0) || !std::isfinite(lr)) {
    throw ConfigError("optimizer: expected a positive, finite learning rate, got " + std::to_string(lr));
  }
  learning_rate_ = lr;
}

Adam::Adam(AdamOptions options) : Optimizer(options.learning_rate), options_(options) {
  if (!(options_.beta_1 >= 0.0 && options_.beta_1 < 1.0) ||
      !(options_.beta_2 >= 0.0 && options_.beta_2 < 1.0)) {
    throw ConfigError("Adam: expected beta_1 and beta_2 in [0, 1), got " + std::to_string(options_.beta_1) +
                      " and " + std::to_string(options_.beta_2));
  }
  if (!(options_.weight_decay >= 0.0)) {
    throw ConfigError("AdamW: expected weight_decay >= 0, got " + std::to_string(options_.weight_decay));
  }
  if (!(options_.epsilon >= 0.0)) {
    throw ConfigError("Adam: expected epsilon >= 0, got " + std::to_string(options_.epsilon));
  }
}

namespace {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RESKIT_AVX512_CLONE __attribute__((target_clones("avx512f", "default")))
#else
#define RESKIT_AVX512_CLONE
#endif
// One Adam step over the weights [i0, i1); wb (when Bf16) receives the new weights rounded to
// bfloat16. Built for AVX-512 too, chosen at load time where the CPU has it: with the rounding,
// the generic build's 4-wide loop is no longer held by memory but by its arithmetic.
template <class T, bool Bf16>
RESKIT_AVX512_CLONE void adam_range(std::int64_t i0, std::int64_t i1, T* __restrict w, const T* __restrict g,
                                    T* __restrict m, T* __restrict v, std::uint16_t* __restrict wb, T b1,
                                    T b2, T a, T eps, T decay) {
  for (std::int64_t i = i0; i < i1; ++i) {
    // decay is exactly 1 without weight decay; one branch-free loop vectorises
    const T mi = m[i] + (g[i] - m[i]) * b1;
    const T vi = v[i] + (g[i] * g[i] - v[i]) * b2;
    m[i] = mi;
    v[i] = vi;
    const T wi = w[i] * decay - a * mi / (std::sqrt(vi) + eps);
    w[i] = wi;
    if constexpr (Bf16) wb[i] = kernels::ref::bf16_bits(static_cast<float>(wi));
  }
}

// One weight's arrays for a step; wb: its bfloat16 rounding to keep current, or null.
template <class T>
struct AdamWeight {
  T* w;
  const T* g;
  T* m;
  T* v;
  std::uint16_t* wb;
  std::int64_t n;
};

// One Adam step over all the weights of one dtype in one parallel region: every weight cut into
// chunks of kChunk values, the chunks of all of them in one list split statically over the
// threads (the same split for the same weights, so the same bits). A region per weight paid a fork
// and join for each of ResNet-50's 161 weights and ran the small ones on one thread.
template <class T>
void adam_step(const std::vector<AdamWeight<T>>& weights, T b1, T b2, T a, T eps, T decay) {
  constexpr std::int64_t kChunk = 1 << 14;
  std::vector<std::pair<std::size_t, std::int64_t>> chunks;  // (weight, first index)
  std::int64_t total = 0;
  for (std::size_t k = 0; k < weights.size(); ++k) {
    for (std::int64_t i0 = 0; i0 < weights[k].n; i0 += kChunk) chunks.emplace_back(k, i0);
    total += weights[k].n;
  }
  const auto count = static_cast<std::int64_t>(chunks.size());
#pragma omp parallel for schedule(static) if (total > kernels::kParallelGrain)
  for (std::int64_t c = 0; c < count; ++c) {
    const AdamWeight<T>& x = weights[chunks[c].first];
    const std::int64_t i0 = chunks[c].second, i1 = std::min(x.n, i0 + kChunk);
    if constexpr (std::is_same_v<T, float>) {
      if (x.wb != nullptr) {
        adam_range<T, true>(i0, i1, x.w, x.g, x.m, x.v, x.wb, b1, b2, a, eps, decay);
        continue;
      }
    }
    adam_range<T, false>(i0, i1, x.w, x.g, x.m, x.v, nullptr, b1, b2, a, eps, decay);
  }
}
}  // namespace

void Adam::apply(const std::vector<Param*>& params) {
  const double lr = learning_rate();
  ++iterations_;
  const double t = static_cast<double>(iterations_);
  const double alpha =
      lr * std::sqrt(1.0 - std::pow(options_.beta_2, t)) / (1.0 - std::pow(options_.beta_1, t));
  std::vector<AdamWeight<float>> f32;
  std::vector<AdamWeight<double>> f64;
  std::vector<const Tensor*> rounded;  // weights whose bfloat16 rounding the step writes
  std::set<const Param*> seen;         // a weight listed twice is updated once
  for (Param* p : params) {
    if (!p->trainable || !seen.insert(p).second) continue;
    // Not a structured binding: the lambda below uses `it`, and clang before 16 cannot capture
    // one (the fuzz build, fuzz/, compiles this with clang 14).
    const auto emplaced = slots_.try_emplace(p->name);
    const auto it = emplaced.first;
    if (emplaced.second) {
      it->second.m = Tensor(p->value.shape(), p->value.dtype());
      it->second.v = Tensor(p->value.shape(), p->value.dtype());
    }
    // A bfloat16 rounding kept with the weights (a mixed-precision Conv2D's) stays current: the
    // update writes it alongside, instead of the next forward converting the weights again. Asked
    // before data() below, whose write access retires the rounding.
    const bool keep_bf16 = p->value.bf16_shadow() != nullptr;
    visit_dtype(p->value.dtype(), [&]<class T>(T) {
      AdamWeight<T> x{p->value.data<T>(),     p->grad.data<T>(), it->second.m.data<T>(),
                      it->second.v.data<T>(), nullptr,           p->value.numel()};
      if constexpr (std::is_same_v<T, float>) {
        if (keep_bf16) {
          x.wb = p->value.bf16_shadow_buffer();
          rounded.push_back(&p->value);
        }
        f32.push_back(x);
      } else {
        f64.push_back(x);
      }
    });
  }
  const auto step = [&]<class T>(const std::vector<AdamWeight<T>>& weights) {
    if (weights.empty()) return;
    adam_step<T>(weights, static_cast<T>(1.0 - options_.beta_1), static_cast<T>(1.0 - options_.beta_2),
                 static_cast<T>(alpha), static_cast<T>(options_.epsilon),
                 static_cast<T>(1.0 - lr * options_.weight_decay));
  };
  step(f32);
  step(f64);
  for (const Tensor* w : rounded) w->bf16_shadow_written();
}

SGD::SGD(SGDOptions options) : Optimizer(options.learning_rate), options_(options) {
  if (!(options_.momentum >= 0.0 && options_.momentum <= 1.0)) {
    throw ConfigError("SGD: expected momentum in [0, 1], got " + std::to_string(options_.momentum));
  }
}

void SGD::apply(const std::vector<Param*>& params) {
  const double lr_now = learning_rate();
  ++iterations_;
  for (Param* p : params) {
    if (!p->trainable) continue;
    visit_dtype(p->value.dtype(), [&]<class T>(T) {
      T* w = p->value.data<T>();
      const T* g = p->grad.data<T>();
      const T lr = static_cast<T>(lr_now), mom = static_cast<T>(options_.momentum);
      const std::int64_t n = p->value.numel();
      if (options_.momentum == 0.0) {
        for (std::int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
        return;
      }
      auto [it, fresh] = velocity_.try_emplace(p->name);
      if (fresh) it->second = Tensor(p->value.shape(), p->value.dtype());
      T* v = it->second.data<T>();
      for (std::int64_t i = 0; i < n; ++i) {
        v[i] = mom * v[i] - lr * g[i];
        w[i] += options_.nesterov ? mom * v[i] - lr * g[i] : v[i];
      }
    });
  }
}

}  // namespace reskit
