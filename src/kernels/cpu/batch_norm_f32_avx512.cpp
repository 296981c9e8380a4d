// batch_norm_f32_impl.h for AVX-512 (this file is compiled with -mavx512f -mavx512vl -mavx512bw
// -mavx512dq -mfma; batch_norm_f32.cpp calls it only where the CPU has them).
#define RESKIT_BN_ISA avx512
#include "kernels/cpu/batch_norm_f32_impl.h"
