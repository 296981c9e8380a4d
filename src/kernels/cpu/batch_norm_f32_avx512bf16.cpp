// batch_norm_f32_impl.h for AVX-512 with AVX512-BF16 (this file is compiled with the AVX-512 flags
// and -mavx512bf16; batch_norm_f32.cpp calls it only where the CPU has them): the same kernels,
// their bfloat16 roundings written by the CPU's conversion instruction.
#define RESKIT_BN_ISA avx512_bf16
#include "kernels/cpu/batch_norm_f32_impl.h"
