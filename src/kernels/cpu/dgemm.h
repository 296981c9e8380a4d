// reskit's own float64 gemm for CPUs with AVX-512 (dgemm_avx512.cpp), which gemm.h's double
// overload runs in place of OpenBLAS's dgemm wherever dgemm_avx512_available(): OpenBLAS 0.3.21
// falls back to its SSE3 "Prescott" kernels on CPUs newer than its table (Sapphire Rapids: 9-12
// GFLOP/s on one core against a float64 peak of ~82, docs/cpu-rules.md). This one is the Goto/BLIS
// scheme written for reskit: op(B) packed in blocks of depth ≤ kc and width ≤ nc (read in place
// instead when not transposed and C has ≤ 32 rows), op(A) in blocks of ≤ mc rows, an 8×24
// register-blocked AVX-512 micro-kernel (edge tiles by smaller instances and masks, never by
// padding C). Each thread owns a range of C's rows (or columns), with its own packed blocks and
// no barrier; threads never split the depth: every element of C is the same chain of fused
// multiply-adds in k order (restarted at each depth block), so its bits do not depend on the thread
// count and are the same in every run on one machine. Not a general BLAS: no complex types, no
// column-major interface, no checks of the leading dimensions (the callers' are right by
// construction).
#pragma once

#include <cstdint>

namespace reskit::kernels::cpu {

// True where the CPU has AVX-512F, VL and DQ (checked once, at the first call).
bool dgemm_avx512_available();

// C[M,N] = alpha·op(A)·op(B) + beta·C, row-major (op(A) is M×K: A is M×K with lda ≥ K, or K×M
// with lda ≥ M when ta; op(B) likewise K×N). C is not read when beta == 0, nor A and B when
// k == 0 or alpha == 0. bias (N values), when given, is added to each row of that result as the
// last depth block's tiles store it: the bits of C computed first and the bias added after
// (add_bias in gemm.h), without a second pass over C. Call only where dgemm_avx512_available().
void dgemm_avx512(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                  const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
                  double* c, std::int64_t ldc, const double* bias = nullptr);

// A matrix S that is never stored whole: fill(context, i, j0, len, dst) writes S[i, j0 .. j0+len)
// to dst (len ≤ 192). The convolutions' column matrices (im2col_gemm.cpp): the patches are
// gathered straight into the gemm's packed blocks, in L1 and L2, instead of a column matrix
// written to memory and read back. Called from several threads at once.
struct DgemmRows {
  void (*fill)(const void* context, std::int64_t i, std::int64_t j0, std::int64_t len, double* dst);
  const void* context;
};

// dgemm_avx512 with op(A) = S (ta false: S is M×K) or Sᵀ (ta: S is K×M) given by rows: the same
// products in the same order as dgemm_avx512 on S stored, so the same bits.
void dgemm_avx512_rows(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                       const DgemmRows& a, const double* b, std::int64_t ldb, double beta, double* c,
                       std::int64_t ldc, const double* bias = nullptr);

}  // namespace reskit::kernels::cpu
