// reskit bench --report: what makes figures from different machines comparable. The CPU's model
// name, the instruction set oneDNN's kernels use on it, the FMA peak measured here (float32,
// float64 and bfloat16 dot products, summed over the threads used), and a model's nominal
// FLOPs, so that a workload's images/s reads as a fraction of that peak.
//
// Not here: any decision of the library (kernels choose by shape and CPU features, never by
// these measurements).
#pragma once

#include <cstdint>
#include <string>

#include "reskit/graph/model.h"

namespace reskit::cli {

struct FmaPeak {
  // GFLOP/s over `threads` threads (2 FLOPs per multiply-add); 0 where the CPU lacks the ISA.
  double float32 = 0, float64 = 0, bf16 = 0;
  std::string vector_isa;  // what the loops ran: "avx512", "avx2+fma" or "none"
};

// "model name" of /proc/cpuinfo with its family and model numbers, or "unknown".
std::string cpu_model_name();
// The peak of independent FMAs (vfmadd, vdpbf16ps), each thread its own loop: per thread the best
// of nine short runs of about `seconds` each (its FLOPs over its own CPU time), summed.
FmaPeak measure_fma_peak(int threads, double seconds = 0.05);

// The round trip of one cache line between two threads pinned to the first two CPUs this
// process may run on, in nanoseconds (the median of five timed stretches after a warm-up), or 0
// with fewer than two CPUs, where pinning is refused, or past a second (a busy machine). Measure it before
// any OpenMP region: the pool's idle threads spin for a while after one, on those same CPUs. On a virtual
// machine whose two vCPUs the host may place on one die (one shared L3) or on two, it tells which (here: ~50
// ns on one, ~340 across), and with it why memory-bound passes that hand data from thread to thread vary by
// ~10% between runs.
double core_to_core_round_trip_ns();

// Nominal FLOPs of one image through the model's Conv2D and Dense layers (2 per multiply-add,
// every tap counted, padding included). A training step counts three times the forward (forward,
// backward-data, backward-weights), as PyTorch's and oneDNN's own counts do.
double forward_flops_per_image(const Model& model);

// The report's lines, for a workload of `model` (training or inference in `dtype`) that ran at
// `images_per_s` on `threads` threads: the CPU, the peaks, the core-to-core round trip measured
// before the run (round_trip_ns; 0: none), and the achieved FLOP/s as a fraction of the dtype's
// peak (mixed_bfloat16: the bfloat16 dot-product peak where the CPU has one).
void print_report(const Model& model, bool training, const std::string& dtype, int threads,
                  double images_per_s, double round_trip_ns);

}  // namespace reskit::cli
