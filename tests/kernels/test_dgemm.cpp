// reskit's float64 gemm (kernels/cpu/dgemm.h) against a plain triple loop: all four transpose
// combinations, alpha and beta (beta = 0 over a NaN-filled C, which must not be read), leading
// dimensions wider than the operands, and sizes on every edge of the 8×24 micro-tile and of the
// cache blocks (192 rows, depth 192, 3072 columns), k = 0 included. The bound is the rounding
// error both sides may make, 2·(k+2)·eps·(|alpha|·Σ|a·b| + |beta·c|): an element that is computed
// from a wrong operand, or left unwritten, is off by far more. Also: the bits do not depend on the
// thread count, gemm.h's double overload runs this kernel where the CPU has AVX-512, op(A)
// given by rows (dgemm_avx512_rows) gives the bits of the stored matrix, and a bias added by the
// gemm gives the bits of a separate pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/dgemm.h"
#include "kernels/cpu/im2col_gemm.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/conv2d.h"
#include "reskit/runtime.h"

namespace {

namespace cpu = reskit::kernels::cpu;
using reskit::kernels::test_util::random_vector;
using std::int64_t;

struct Product {
  bool ta, tb;
  int64_t m, n, k;
  double alpha, beta;
  int64_t lda_extra = 0, ldb_extra = 0, ldc_extra = 0;

  int64_t lda() const { return (ta ? m : k) + lda_extra; }
  int64_t ldb() const { return (tb ? k : n) + ldb_extra; }
  int64_t ldc() const { return n + ldc_extra; }
  // Stored rows of A, B and C (at least one, so that data() is a valid pointer for k = 0).
  int64_t a_size() const { return std::max<int64_t>(1, (ta ? k : m) * lda()); }
  int64_t b_size() const { return std::max<int64_t>(1, (tb ? n : k) * ldb()); }
  int64_t c_size() const { return m * ldc(); }
  std::string name() const {
    return std::string(ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + std::to_string(m) +
           " n=" + std::to_string(n) + " k=" + std::to_string(k) + " alpha=" + std::to_string(alpha) +
           " beta=" + std::to_string(beta) + " ld+" + std::to_string(lda_extra) + "/" +
           std::to_string(ldb_extra) + "/" + std::to_string(ldc_extra);
  }
};

struct Operands {
  std::vector<double> a, b, c;
};

Operands operands(const Product& p, std::uint64_t seed) {
  Operands o{random_vector<double>(p.a_size(), seed), random_vector<double>(p.b_size(), seed + 1),
             random_vector<double>(p.c_size(), seed + 2)};
  if (p.beta == 0.0) std::fill(o.c.begin(), o.c.end(), std::numeric_limits<double>::quiet_NaN());
  return o;
}

// Runs reskit's kernel on a copy of C and compares every element with the triple loop, and checks
// that the padding columns of C (beyond n, inside ldc) are untouched.
::testing::AssertionResult matches_reference(const Product& p, std::uint64_t seed) {
  const Operands o = operands(p, seed);
  std::vector<double> c = o.c;
  cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                    c.data(), p.ldc());
  const double eps = std::numeric_limits<double>::epsilon();
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.ldc(); ++j) {
      const double got = c[i * p.ldc() + j], before = o.c[i * p.ldc() + j];
      if (j >= p.n) {
        if (std::memcmp(&got, &before, sizeof got) != 0)
          return ::testing::AssertionFailure()
                 << p.name() << ": C[" << i << "," << j << "] beyond n was written";
        continue;
      }
      double sum = 0, magnitude = 0;
      for (int64_t l = 0; l < p.k; ++l) {
        const double x = (p.ta ? o.a[l * p.lda() + i] : o.a[i * p.lda() + l]) *
                         (p.tb ? o.b[j * p.ldb() + l] : o.b[l * p.ldb() + j]);
        sum += x;
        magnitude += std::abs(x);
      }
      const double c_term = p.beta == 0.0 ? 0.0 : p.beta * before;
      const double want = p.alpha * sum + c_term;
      const double bound =
          2.0 * static_cast<double>(p.k + 2) * eps * (std::abs(p.alpha) * magnitude + std::abs(c_term));
      if (!(std::abs(got - want) <= bound)) {
        return ::testing::AssertionFailure()
               << p.name() << ": C[" << i << "," << j << "] = " << got << ", the triple loop gives " << want
               << " (bound " << bound << ")";
      }
    }
  }
  return ::testing::AssertionSuccess();
}

class DgemmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::dgemm_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU: float64 gemm is OpenBLAS's";
  }
};

TEST_F(DgemmTest, MatchesTripleLoopOnEveryEdge) {
  // Rows: 1, odd, around the micro-tile's 8 and the row block's 192; columns: around the
  // micro-tile's 24 (and its 8-wide vectors); depth: 0, around a vector's 8 and the depth block's
  // 192 (193 splits into two equal blocks).
  const int64_t ms[] = {1, 7, 8, 9, 23, 191, 193};
  const int64_t ns[] = {1, 5, 23, 24, 25, 49};
  const int64_t ks[] = {0, 1, 7, 8, 9, 191, 192, 193};
  const double alphas[] = {1.0, 0.75, -2.0};
  const double betas[] = {0.0, 1.0, -0.5};
  std::uint64_t seed = 1;
  int count = 0;
  for (int t = 0; t < 4; ++t)
    for (int64_t m : ms)
      for (int64_t n : ns)
        for (int64_t k : ks) {
          const Product p{
              t / 2 == 1,      t % 2 == 1,     m, n, k, alphas[count % 3], betas[(count / 3) % 3], count % 4,
              (count / 4) % 3, (count / 2) % 5};
          ASSERT_TRUE(matches_reference(p, seed += 3));
          ++count;
        }
}

TEST_F(DgemmTest, MatchesTripleLoopAcrossBlocks) {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t / 2 == 1, tb = t % 2 == 1;
    // Past the 3072-column block (and one column short of it), past two row blocks, small k.
    EXPECT_TRUE(matches_reference({ta, tb, 9, 3073, 5, 1.0, 0.0, 1, 2, 3}, 100 + t));
    EXPECT_TRUE(matches_reference({ta, tb, 3, 3071, 3, 0.5, 1.0}, 200 + t));
    EXPECT_TRUE(matches_reference({ta, tb, 385, 30, 20, 1.0, -1.0, 0, 1, 0}, 300 + t));
    // Depth in three blocks of 129.
    EXPECT_TRUE(matches_reference({ta, tb, 17, 26, 385, -0.5, 0.0, 3, 0, 2}, 350 + t));
    // Large enough to run on the thread pool, every block boundary inside.
    EXPECT_TRUE(matches_reference({ta, tb, 200, 100, 200, -1.5, 0.0, 2, 0, 1}, 400 + t));
  }
}

TEST_F(DgemmTest, AlphaZeroAndDepthZeroScaleC) {
  for (double alpha : {0.0, 1.0})
    for (double beta : {0.0, 2.0}) {
      const int64_t k = alpha == 0.0 ? 4 : 0;
      std::vector<double> a(40, std::numeric_limits<double>::quiet_NaN()), b = a;
      std::vector<double> c(3 * 5, beta == 0.0 ? std::numeric_limits<double>::quiet_NaN() : 1.5);
      cpu::dgemm_avx512(false, false, 3, 5, k, alpha, a.data(), 4, b.data(), 5, beta, c.data(), 5);
      for (double v : c) EXPECT_EQ(v, beta == 0.0 ? 0.0 : 3.0) << "alpha " << alpha << " beta " << beta;
    }
}

// The same bits with 1, 2 and 3 threads, and in a second run: threads split rows and columns of C,
// never the depth.
TEST_F(DgemmTest, BitsDoNotDependOnThreads) {
  const int threads_before = reskit::num_threads();
  const Product products[] = {
      {false, false, 700, 64, 500, 1.0, 0.0},  // many row blocks, three column panels
      {false, false, 32, 512, 300, 1.0, 1.0},  // one row block: the columns are split
      {true, false, 150, 70, 900, 1.0, 0.0},   // backward-weights' form, depth in five blocks
      {false, true, 300, 200, 64, 0.5, -1.0},  // backward-data's form
  };
  std::uint64_t seed = 500;
  for (const Product& p : products) {
    const Operands o = operands(p, seed += 3);
    std::vector<std::vector<double>> results;
    for (int threads : {1, 2, 3, 2}) {
      reskit::set_num_threads(threads);
      std::vector<double> c = o.c;
      cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                        c.data(), p.ldc());
      results.push_back(std::move(c));
    }
    for (std::size_t r = 1; r < results.size(); ++r)
      EXPECT_EQ(std::memcmp(results[0].data(), results[r].data(), results[0].size() * sizeof(double)), 0)
          << p.name() << ": run " << r << " differs from the one-thread run";
  }
  reskit::set_num_threads(threads_before);
}

// dgemm_avx512_rows (op(A) from rows a function writes: the convolutions' patches) gives the bits
// of dgemm_avx512 on the same matrix stored, in both of A's orientations, with 1 and 2 threads, on
// sizes around the micro-tile (8 rows) and the blocks (192 rows, depth 192); each row is asked for
// in pieces of at most 192 columns.
struct StoredRows {
  const double* s;
  int64_t lds, rows, cols;
  mutable bool out_of_range = false;
};
void fill_stored(const void* context, int64_t i, int64_t j0, int64_t len, double* dst) {
  const auto& st = *static_cast<const StoredRows*>(context);
  if (i < 0 || i >= st.rows || j0 < 0 || len < 1 || len > 192 || j0 + len > st.cols) {
    st.out_of_range = true;
    return;
  }
  std::memcpy(dst, st.s + i * st.lds + j0, static_cast<std::size_t>(len) * sizeof(double));
}

TEST_F(DgemmTest, RowsGiveTheBitsOfTheStoredMatrix) {
  const int threads_before = reskit::num_threads();
  const Product products[] = {
      {false, false, 7, 5, 9, 1.0, 0.0, 2},      {true, false, 9, 23, 7, 1.0, 0.0, 1},
      {false, false, 193, 64, 577, 1.0, 0.0},    {true, false, 577, 64, 385, 1.0, 1.0},
      {false, true, 200, 49, 193, 0.5, -1.0, 3}, {true, true, 31, 300, 191, -1.0, 0.0},
      {false, false, 32, 512, 150, 1.0, 1.0},
  };
  std::uint64_t seed = 700;
  for (const Product& p : products)
    for (int threads : {1, 2}) {
      reskit::set_num_threads(threads);
      const Operands o = operands(p, seed += 3);
      std::vector<double> stored = o.c, rows = o.c;
      cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                        stored.data(), p.ldc());
      const StoredRows source{o.a.data(), p.lda(), p.ta ? p.k : p.m, p.ta ? p.m : p.k};
      cpu::dgemm_avx512_rows(p.ta, p.tb, p.m, p.n, p.k, p.alpha, cpu::DgemmRows{fill_stored, &source},
                             o.b.data(), p.ldb(), p.beta, rows.data(), p.ldc());
      EXPECT_FALSE(source.out_of_range) << p.name();
      EXPECT_EQ(std::memcmp(stored.data(), rows.data(), stored.size() * sizeof(double)), 0)
          << p.name() << ", " << threads << " threads";
    }
  reskit::set_num_threads(threads_before);
}

// The bias given to the gemm (added as its last depth block stores C) gives the bits of the gemm
// followed by a separate pass C[i, j] + bias[j], for both entry points, 1 and 2 threads, one and
// several depth blocks, C read (beta) or not, direct B (≤ 32 rows), columns off the 24-wide
// micro-tile and beyond one 3072-column block, k = 0; the padding columns of C stay untouched.
TEST_F(DgemmTest, BiasGivesTheBitsOfASeparatePass) {
  const int threads_before = reskit::num_threads();
  const Product products[] = {
      {false, false, 7, 5, 9, 1.0, 0.0, 2, 0, 3}, {false, false, 193, 64, 577, 1.0, 0.0},
      {false, false, 32, 70, 150, 1.0, 1.0},      {true, false, 300, 49, 193, 0.5, -1.0, 0, 0, 2},
      {false, true, 40, 3100, 30, 1.0, 0.0},      {false, false, 9, 11, 0, 1.0, 1.0},
  };
  std::uint64_t seed = 800;
  for (const Product& p : products)
    for (int threads : {1, 2}) {
      reskit::set_num_threads(threads);
      const Operands o = operands(p, seed += 3);
      const std::vector<double> bias = random_vector<double>(p.n, seed + 7);
      std::vector<double> separate = o.c, fused = o.c, fused_rows = o.c;
      cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                        separate.data(), p.ldc());
      for (int64_t i = 0; i < p.m; ++i)
        for (int64_t j = 0; j < p.n; ++j) separate[i * p.ldc() + j] += bias[j];
      cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                        fused.data(), p.ldc(), bias.data());
      const StoredRows source{o.a.data(), p.lda(), p.ta ? p.k : p.m, p.ta ? p.m : p.k};
      cpu::dgemm_avx512_rows(p.ta, p.tb, p.m, p.n, p.k, p.alpha, cpu::DgemmRows{fill_stored, &source},
                             o.b.data(), p.ldb(), p.beta, fused_rows.data(), p.ldc(), bias.data());
      EXPECT_EQ(std::memcmp(separate.data(), fused.data(), separate.size() * sizeof(double)), 0)
          << p.name() << ", " << threads << " threads";
      EXPECT_EQ(std::memcmp(separate.data(), fused_rows.data(), separate.size() * sizeof(double)), 0)
          << p.name() << ", " << threads << " threads, rows";
    }
  reskit::set_num_threads(threads_before);
}

// float64 im2col backward-data on 2 and 3 threads (each thread its own images, in chunks, its
// products on one thread) gives the one-thread bits, batches not divisible by the thread count
// included, and stays close to the reference.
TEST_F(DgemmTest, Im2colBackwardDataBitsDoNotDependOnThreads) {
  namespace tu = reskit::kernels::test_util;
  const int threads_before = reskit::num_threads();
  const std::vector<tu::ConvCase> cases{
      {"3x3 same on 15x15 24->40 batch 7", 7, 15, 15, 24, 40, tu::same(15, 3, 1), tu::same(15, 3, 1)},
      {"1x1 stride 2 on 9x9 16->24 batch 5", 5, 9, 9, 16, 24, tu::valid(9, 1, 2), tu::valid(9, 1, 2)},
  };
  for (const auto& cc : cases) {
    const reskit::kernels::Conv2DParams p = tu::conv_params(cc);
    const auto dy = random_vector<double>(p.n * p.p * p.q * p.k, 71);
    const auto w = random_vector<double>(p.r * p.s * p.c * p.k, 72);
    std::vector<std::vector<double>> dx;
    for (int threads : {1, 2, 3}) {
      reskit::set_num_threads(threads);
      dx.push_back(tu::nan_vector<double>(p.n * p.h * p.w * p.c));
      cpu::im2col_backward_data<double>(p, dy.data(), w.data(), dx.back().data());
    }
    reskit::set_num_threads(threads_before);
    for (std::size_t t = 1; t < dx.size(); ++t) {
      std::size_t differ = 0;
      for (std::size_t i = 0; i < dx[0].size(); ++i)
        differ += std::memcmp(&dx[0][i], &dx[t][i], sizeof(double)) != 0;
      EXPECT_EQ(differ, 0u) << cc.name << ": " << t + 1 << " threads";
    }
    auto ref = tu::nan_vector<double>(dx[0].size());
    reskit::kernels::ref::conv2d_backward_data<double>(p, dy.data(), w.data(), ref.data());
    EXPECT_TRUE(tu::close(dx[1], ref, cc.name.c_str()));
  }
}

// gemm.h's double overload is the one place that chooses: reskit's kernel where the CPU has
// AVX-512 (a float64 Dense layer's product gives its bits), and it says so.
TEST(DgemmDispatch, Float64GemmRunsReskitsKernelWithAvx512) {
  reskit::kernels::set_backend(reskit::kernels::Backend::fast);
  const reskit::kernels::DenseParams dense{.n = 40, .c = 50, .k = 30};
  const Product p{false, false, dense.n, dense.k, dense.c, 1.0, 0.0};
  const Operands o = operands(p, 900);
  std::vector<double> via_dense = o.c;
  reskit::kernels::dense_forward<double>(dense, o.a.data(), o.b.data(), nullptr, via_dense.data());
  const std::string name = reskit::float64_gemm();
  if (!cpu::dgemm_avx512_available()) {
    EXPECT_EQ(name.rfind("OpenBLAS ", 0), 0u) << name;
    return;
  }
  EXPECT_EQ(name, "reskit avx512");
  std::vector<double> direct = o.c;
  cpu::dgemm_avx512(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
                    direct.data(), p.ldc());
  EXPECT_EQ(std::memcmp(via_dense.data(), direct.data(), direct.size() * sizeof(double)), 0);
}

}  // namespace
