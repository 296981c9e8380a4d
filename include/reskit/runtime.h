// reskit/runtime.h — threads and memory. reskit has one thread pool (OpenMP), shared by oneDNN,
// OpenBLAS (its OpenMP build) and reskit's own loops; by default it uses every core. Large
// allocations (a layer's weights, a training run's activations; see reskit/training/memory.h)
// are checked against the memory available first, so that too large a model fails with a
// ResourceError naming it instead of being killed by the kernel halfway.
#pragma once

#include <cstdint>
#include <string>

namespace reskit {

// Limits the pool to n threads (n >= 1); throws ConfigError otherwise.
void set_num_threads(int n);
int num_threads();
// The instruction set reskit's oneDNN kernels use on this CPU, as oneDNN names it
// ("avx512_core_bf16", "avx512_core_amx", "avx2", ...): what the kernel rules that differ per CPU
// read (docs/cpu-rules.md).
std::string cpu_isa();
// The kernels OpenBLAS (float64's convolutions and gemms) chose for this CPU when it loaded
// ("SkylakeX", "Haswell"; "Prescott", its SSE3 fallback, on CPUs newer than it knows), as set by
// OPENBLAS_CORETYPE where that is set.
std::string blas_kernels();
// What runs float64's matrix products (its convolutions and Dense layers): "reskit avx512", reskit's
// own kernel, where the CPU has AVX-512 (the choice is by that feature alone); else OpenBLAS, named
// with its kernels ("OpenBLAS Haswell"). float32 is unaffected (oneDNN, OpenBLAS where it declines).
std::string float64_gemm();

// Bytes available to new allocations: the least of MemAvailable (/proc/meminfo), what the
// cgroup's memory.max leaves, the address-space limit (RLIMIT_AS) and the limit below.
std::int64_t available_memory();
// Caps available_memory() at `bytes` (0: no cap). The environment variable RESKIT_MEMORY_LIMIT
// (bytes, or with a K, M or G suffix: "512M") sets it at start-up.
void set_memory_limit(std::int64_t bytes);
// "1.5 GiB", "512 bytes".
std::string format_bytes(std::int64_t bytes);
// Throws ResourceError("<what> needs <bytes>, more than the <available> of memory available")
// when bytes > available_memory().
void check_memory(const std::string& what, std::int64_t bytes);

}  // namespace reskit
