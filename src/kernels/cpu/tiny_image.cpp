// The tiny-image row products (tiny_image.h) as paths: float32 and bfloat16 through oneDNN, float
// and double through BLAS.
//
// Measured on one thread, batch 32, against oneDNN's float32 convolution plus its weight reorder:
// 2×2×512 forward 1.1 against 4.4 ms, backward-data 1.9 against 4.1, backward-weights 1.3 against
// 4.7; 4×4×256 forward 1.7 against 2.5, backward-weights 2.1 against 2.6, but backward-data 2.3
// against 2.0. From 8×8 on oneDNN is faster. (kernels/dispatch.cpp holds the rules these give.)
#include "kernels/cpu/tiny_image.h"

#include <omp.h>

#include <exception>
#include <optional>
#include <type_traits>

#include "kernels/cpu/channel_sums.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::cpu {

namespace {

// f(i) for i in [0, count), each on a thread of its own whose pool is that one thread: oneDNN runs
// a primitive or sgemm called there on that thread alone (inside a parallel region it never
// starts threads of its own), and primitives made there are made for one thread. An exception is
// rethrown once every f has returned.
template <class F>
void on_own_threads(int count, F&& f) {
  std::exception_ptr error;
#pragma omp parallel for num_threads(count) schedule(static, 1)
  for (int i = 0; i < count; ++i) {
    omp_set_num_threads(1);  // this implicit task's own setting; the caller's is unchanged
    try {
      f(i);
    } catch (...) {
#pragma omp critical(reskit_on_own_threads)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// How many bands `units` split into: one per thread of the pool, at most `units`, and one inside
// a parallel region.
inline std::int64_t band_count(std::int64_t units) {
  const std::int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return std::clamp<std::int64_t>(units, 1, threads);
}

// f(b) for b in [0, bands), each on a thread of its own (on_own_threads), or here when there is
// one band. True when every f returned true.
template <class F>
bool in_bands(std::int64_t bands, F&& f) {
  if (bands == 1) return f(0);
  std::vector<char> ok(bands, 0);
  on_own_threads(static_cast<int>(bands), [&](int b) { ok[b] = f(b); });
  return std::all_of(ok.begin(), ok.end(), [](char v) { return v != 0; });
}

// f(band) for disjoint bands of [0, columns), one per thread of the pool, each thread running its
// band's products alone (oneDNN runs a primitive or sgemm called inside a parallel region on the
// calling thread only): the many short products of a tiny image scale better so than each split
// across the threads. ResNet-50 at batch 32 on 2 threads (bench_kernels, ms, one product split
// over both threads -> bands): 4×4×256 forward 1.21 -> 1.09, backward 2.64 -> 2.03; 2×2×512
// forward 0.66 -> 0.61, backward 2.85 -> 1.73; in bfloat16 4×4 forward 1.29 -> 0.69, backward
// 2.32 -> 1.62, 2×2 forward 1.42 -> 0.61, backward 2.66 -> 1.36. Bands are multiples of 16
// columns, fixed by the thread count, so a run is reproducible. True when every band returned
// true; an exception from a band is rethrown once all have finished.
template <class F>
bool in_column_bands(std::int64_t columns, F&& f) {
  const std::int64_t bands = band_count(columns / 16);
  const auto edge = [&](std::int64_t b) { return b == bands ? columns : columns / 16 * b / bands * 16; };
  return in_bands(bands, [&](std::int64_t b) { return f(tiny_image::Band{edge(b), edge(b + 1)}); });
}

// f(q, n0) for disjoint ranges of the batch, one per thread of the pool (as in_column_bands), q
// being p over the images [n0, n0 + q.n). True when every range returned true.
template <class F>
bool in_image_bands(const Conv2DParams& p, F&& f) {
  const std::int64_t bands = band_count(p.n);
  const auto first = [&](std::int64_t b) { return p.n * b / bands; };
  return in_bands(bands, [&](std::int64_t b) {
    Conv2DParams q = p;
    q.n = first(b + 1) - first(b);
    return f(q, first(b));
  });
}

}  // namespace

}  // namespace reskit::kernels::cpu

namespace reskit::kernels::onednn {

namespace {

using cpu::in_column_bands;
using cpu::tiny_image::Band;

// A bfloat16 matmul over strided memory, float32 c; one per shape and thread count (see product).
// Its scratchpad is the calling thread's: the column bands run one primitive on several threads
// at once, and a primitive's own scratchpad would be shared by all of its runs (oneDNN 2.6 is
// built without concurrent execution; a brgemm kernel over a transposed a uses one).
struct StridedProductBf16 {
  dnnl::matmul prim;
  memory::desc a, b, c, scratchpad;
};

// c[m,n] = op(a)·op(b), or (Accumulate) c[m,n] += op(a)·op(b), over row-major operands with
// leading dimensions (ta/tb 'T': transposed). float32 through oneDNN's sgemm; bfloat16 (float32
// c) through a matmul primitive: over dense operands oneDNN's brgemm kernel, else its gemm:jit,
// which packs b again on every call (about 1.6× the float32 rate). False when there is no such
// primitive (nothing written by this call).
template <bool InBf16, bool Accumulate>
bool product(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, const Operand<InBf16>* a,
             std::int64_t lda, const Operand<InBf16>* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  if constexpr (!InBf16) {
    if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, Accumulate ? 1.0f : 0.0f, c, ldc) != dnnl_success) {
      throw dnnl::error(dnnl_runtime_error, "dnnl_sgemm failed");
    }
    return true;
  } else {
    const bool at = ta == 'T', bt = tb == 'T';
    const auto* e = cached<StridedProductBf16>(
        std::array<std::int64_t, 10>{m, n, k, lda, ldb, ldc, at, bt, Accumulate, omp_get_max_threads()},
        [&]() -> std::optional<StridedProductBf16> {
          StridedProductBf16 t;
          t.a = memory::desc({m, k}, bf16, at ? memory::dims{1, lda} : memory::dims{lda, 1});
          t.b = memory::desc({k, n}, bf16, bt ? memory::dims{1, ldb} : memory::dims{ldb, 1});
          t.c = memory::desc({m, n}, f32, memory::dims{ldc, 1});
          dnnl::post_ops ops;
          if (Accumulate) ops.append_sum(1.0f);
          dnnl::primitive_attr attr;
          attr.set_post_ops(ops);
          attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
          const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(t.a, t.b, t.c), attr, engine());
          if (is_reference_impl(pd)) return std::nullopt;
          t.scratchpad = pd.scratchpad_desc();
          t.prim = dnnl::matmul(pd);
          return t;
        });
    if (!e) return false;
    thread_local Scratch scratchpad;
    e->prim.execute(stream(), {{DNNL_ARG_SRC, memory(e->a, engine(), const_cast<std::uint16_t*>(a))},
                               {DNNL_ARG_WEIGHTS, memory(e->b, engine(), const_cast<std::uint16_t*>(b))},
                               {DNNL_ARG_DST, memory(e->c, engine(), c)},
                               {DNNL_ARG_SCRATCHPAD,
                                memory(e->scratchpad, engine(), scratchpad.get(e->scratchpad.get_size()))}});
    stream().wait();
    return true;
  }
}

// bfloat16's forward by taps (tiny_image.h), one range of images per thread: each tap's product
// reads that tap's weights [C, K] whole where they lie, dense, so oneDNN runs its brgemm matmul
// (a band of K is strided: its gemm:jit, packing the band on every call). 2 threads, batch 32:
// 4×4×256 1.33 -> 1.06 ms, 2×2×512 0.78 either way, against the row products below.
bool forward_by_taps_bf16(const Conv2DParams& p, const std::uint16_t* x, const std::uint16_t* w,
                          const float* b, float* y) {
  return cpu::in_image_bands(p, [&](const Conv2DParams& q, std::int64_t n0) {
    return cpu::tiny_image::forward_by_taps(
        q, x + n0 * p.h * p.w * p.c, b, y + n0 * p.p * p.q * p.k, Band::whole(p.k),
        [&](std::int64_t r, std::int64_t s, std::int64_t rows, const std::uint16_t* a, float* c) {
          return product<true, false>('N', 'N', rows, p.k, p.c, a, p.c, w + (r * p.s + s) * p.c * p.k, p.k, c,
                                      p.k);
        });
  });
}

// float32's forward: one product per output pixel and kernel row over the batch, in place
// (tiny_image.h's forward), one band of K per thread. sgemm gains nothing by taps (2 threads,
// batch 32: 4×4×256 1.95 against 1.98 ms by taps over images, 2×2×512 1.30 against 1.25; by taps
// in bands of K, bfloat16, 6-10% slower).
bool forward_in_bands(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  return in_column_bands(
      p.k, [&](Band band) { return cpu::tiny_image::forward(p, x, w, b, y, band, product<false, true>); });
}

// Backward-data by taps (tiny_image.h), one band of C per thread: per tap, the gathered rows of
// dy times w[r, s][band, :]ᵀ, read where it lies.
template <bool InBf16>
bool backward_data_in_bands(const Conv2DParams& p, const Operand<InBf16>* dy, const Operand<InBf16>* w,
                            float* dx) {
  return in_column_bands(p.c, [&](Band band) {
    return cpu::tiny_image::backward_data_by_taps(
        p, dy, dx, band,
        [&](std::int64_t r, std::int64_t s, std::int64_t rows, const Operand<InBf16>* a, float* c) {
          return product<InBf16, false>('N', 'T', rows, band.width(), p.k, a, p.k,
                                        w + ((r * p.s + s) * p.c + band.c0) * p.k, p.k, c, band.width());
        });
  });
}

// Backward-weights by taps (tiny_image.h), one band of C per thread, each tap's block of dw written
// in place; then db.
template <bool InBf16>
bool backward_weights_in_bands(const Conv2DParams& p, const Operand<InBf16>* x, const Operand<InBf16>* dy,
                               float* dw, float* db) {
  if (!in_column_bands(p.c, [&](Band band) {
        return cpu::tiny_image::backward_weights_by_taps(
            p, x, dy, dw, band,
            [&](std::int64_t rows, const Operand<InBf16>* a, const Operand<InBf16>* b, float* c) {
              return product<InBf16, false>('T', 'N', band.width(), p.k, rows, a, band.width(), b, p.k, c,
                                            p.k);
            });
      })) {
    return false;
  }
  if (db != nullptr) column_sums_f32(p.n * p.p * p.q, p.k, dy, db);
  return true;
}

}  // namespace

bool tiny_image_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  return forward_in_bands(p, x, w, b, y);
}

bool tiny_image_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  return backward_data_in_bands<false>(p, dy, w, dx);
}

bool tiny_image_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                 float* db) {
  return backward_weights_in_bands<false>(p, x, dy, dw, db);
}

bool tiny_image_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b,
                             float* y) {
  return forward_by_taps_bf16(p, x_in_bf16(p, x), bf16_weights(p, w), b, y);
}

bool tiny_image_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w,
                              float* dx, float* dw, float* db) {
  const auto* dy_b = dy_in_bf16(p, dy);
  if (dw != nullptr && !backward_weights_in_bands<true>(p, x_in_bf16(p, x), dy_b, dw, db)) return false;
  if (dx != nullptr && !backward_data_in_bands<true>(p, dy_b, bf16_weights(p, w), dx)) return false;
  return true;
}

}  // namespace reskit::kernels::onednn

namespace reskit::kernels::cpu {

namespace {

// c[m,n] += op(a)·op(b) through BLAS (the row products' product).
template <class T>
bool accumulate(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
                std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc) {
  gemm(ta == 'T', tb == 'T', m, n, k, T(1), a, lda, b, ldb, T(1), c, ldc);
  return true;
}

}  // namespace

// double with reskit's gemm: one band of columns per thread, each running its products alone (as
// float32's oneDNN paths above), instead of each short product split over the threads with a
// fork and join of its own. Bands never split a product's depth: the same bits on any thread count.
// 2 threads, batch 32, ResNet-50's 4×4×256 (ms, one product split -> bands): see docs/cpu-rules.md.
template <class T>
bool in_bands_f64(std::int64_t columns) {
  return std::is_same_v<T, double> && float64_gemm_is_reskit() && !omp_in_parallel() &&
         omp_get_max_threads() > 1 && columns >= 32;
}

template <class T>
void tiny_image_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  if (in_bands_f64<T>(p.k)) {
    in_column_bands(
        p.k, [&](tiny_image::Band band) { return tiny_image::forward(p, x, w, b, y, band, accumulate<T>); });
    return;
  }
  tiny_image::forward(p, x, w, b, y, tiny_image::Band::whole(p.k), accumulate<T>);
}

template <class T>
void tiny_image_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  if (in_bands_f64<T>(p.c)) {
    in_column_bands(p.c, [&](tiny_image::Band band) {
      return tiny_image::backward_data(p, dy, w, dx, band, accumulate<T>);
    });
    return;
  }
  tiny_image::backward_data(p, dy, w, dx, tiny_image::Band::whole(p.c), accumulate<T>);
}

template <class T>
void tiny_image_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  if constexpr (std::is_same_v<T, double>) {
    if (float64_gemm_is_reskit()) {
      // Each tap's product assigns its block of dw (beta 0) instead of adding to zeros written
      // first: reskit's gemm gives the same bits (its sums start from +0 and never reach -0, so
      // adding +0 changes none), with neither the zeroing pass nor the read of those zeros.
      const auto assign = [](char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k,
                             const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double* c,
                             std::int64_t ldc) {
        gemm(ta == 'T', tb == 'T', m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc);
        return true;
      };
      const auto band_of = [&](tiny_image::Band band) {
        return tiny_image::backward_weights(p, x, dy, dw, band, assign, true);
      };
      if (in_bands_f64<T>(p.k)) {
        in_column_bands(p.k, band_of);
      } else {
        band_of(tiny_image::Band::whole(p.k));
      }
      if (db) column_sums_f64(p.n * p.p * p.q, p.k, dy, db);
      return;
    }
  }
  tiny_image::backward_weights(p, x, dy, dw, tiny_image::Band::whole(p.k), accumulate<T>);
  if (db) column_sums_f64(p.n * p.p * p.q, p.k, dy, db);
}

#define RESKIT_INSTANTIATE(T)                                                                 \
  template void tiny_image_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*); \
  template void tiny_image_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);     \
  template void tiny_image_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels::cpu
