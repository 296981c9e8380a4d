// Allreduce bandwidth under mpirun, for one gradient-sized float32 buffer (default ResNet-50's,
// 23.5 M values, 94 MB): reskit's rank-order sum (blocking; in 25 MB buckets started together;
// bfloat16 on the wire; through a shared-memory window, copied in and out or in place) next to a plain
// MPI_Allreduce loop (Open MPI's own algorithm choice).
//   mpirun --bind-to none -np 2 build/bench/reskit_bench_allreduce [values] [repeats]
// Rank 0 prints one line per method: the median seconds, the algorithm bandwidth S/t and the
// bus bandwidth 2(N−1)/N · S/t (the bytes each rank sends, as a ring allreduce's, per second).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "reskit/distributed/communicator.h"

namespace {

using reskit::distributed::Communicator;
using reskit::distributed::PendingSum;
using reskit::distributed::WireType;

// `prepare` (untimed), then `run` (timed), `repeats` times after a warm-up.
double median_seconds(int repeats, const std::function<void()>& prepare, const std::function<void()>& run) {
  std::vector<double> s;
  prepare();
  run();  // warm-up
  for (int i = 0; i < repeats; ++i) {
    prepare();
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    run();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // The slowest rank's time of each repeat, then the median.
  std::vector<double> slowest(s.size());
  MPI_Allreduce(s.data(), slowest.data(), static_cast<int>(s.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  std::sort(slowest.begin(), slowest.end());
  return slowest[slowest.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 23'500'000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  Communicator& comm = reskit::distributed::world();
  const int size = comm.size();
  std::vector<float> v(n), out(n);
  std::vector<float> pristine(n);
  for (std::size_t i = 0; i < n; ++i) pristine[i] = static_cast<float>((i % 1000) * 1e-3 + comm.rank());
  auto refill = [&] { std::copy(pristine.begin(), pristine.end(), v.begin()); };
  const std::size_t bucket = (std::size_t{25} << 20) / sizeof(float);
  auto buckets = [&](WireType wire) {
    std::vector<std::unique_ptr<PendingSum>> sums;
    for (std::size_t at = 0; at < n; at += bucket)
      sums.push_back(
          comm.start_allreduce_sum(std::span<float>(v).subspan(at, std::min(bucket, n - at)), wire));
    for (auto& s : sums) s->wait();
  };
  // The same buckets through Communicator::make_sum_buffer: the values copied in, summed (through a
  // shared-memory window when every rank is on this node) and copied back.
  std::vector<std::unique_ptr<reskit::distributed::SumBuffer<float>>> shared;
  for (std::size_t at = 0; at < n; at += bucket)
    shared.push_back(comm.make_sum_buffer(std::min(bucket, n - at), WireType::native, true));
  auto shared_buckets = [&] {
    std::vector<std::unique_ptr<PendingSum>> sums;
    for (std::size_t b = 0, at = 0; at < n; ++b, at += bucket) {
      const auto in = shared[b]->input();
      std::copy(v.begin() + static_cast<std::ptrdiff_t>(at),
                v.begin() + static_cast<std::ptrdiff_t>(at + in.size()), in.begin());
      sums.push_back(shared[b]->start());
    }
    for (std::size_t b = 0, at = 0; at < n; ++b, at += bucket) {
      sums[b]->wait();
      const auto out = shared[b]->result();
      std::copy(out.begin(), out.end(), v.begin() + static_cast<std::ptrdiff_t>(at));
      shared[b]->release();
    }
  };
  // In place, as DataParallel sums its gradients: the values written into the buffers' inputs
  // beforehand (backward's own writes; untimed), summed, and read from the results where they are.
  auto fill_shared = [&] {
    for (std::size_t b = 0, at = 0; at < n; ++b, at += bucket) {
      const auto in = shared[b]->input();
      std::copy(pristine.begin() + static_cast<std::ptrdiff_t>(at),
                pristine.begin() + static_cast<std::ptrdiff_t>(at + in.size()), in.begin());
    }
  };
  auto shared_in_place = [&] {
    std::vector<std::unique_ptr<PendingSum>> sums;
    for (auto& b : shared) sums.push_back(b->start());
    for (auto& s : sums) s->wait();
    for (auto& b : shared) b->release();
  };
  struct Row {
    const char* name;
    std::function<void()> run;
    std::function<void()> prepare;
  };
  const std::vector<Row> rows{
      {"MPI_Allreduce (Open MPI's choice)",
       [&] { MPI_Allreduce(v.data(), out.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }},
      {"reskit allreduce_sum (rank order)", [&] { comm.allreduce_sum(std::span<float>(v)); }},
      {"reskit 25 MB buckets, non-blocking", [&] { buckets(WireType::native); }},
      {"reskit 25 MB buckets, bfloat16 wire", [&] { buckets(WireType::bfloat16); }},
      {"reskit 25 MB buckets, shared memory", shared_buckets},
      {"reskit 25 MB buckets, shared, in place", shared_in_place, fill_shared},
  };
  const double bytes = static_cast<double>(n) * sizeof(float);
  if (comm.rank() == 0)
    std::printf("processes=%d values=%zu (%.1f MB float32) repeats=%d\n", size, n, bytes / 1e6, repeats);
  for (const Row& row : rows) {
    // The same finite values every time (the sums would grow otherwise).
    const double t = median_seconds(repeats, row.prepare ? row.prepare : refill, row.run);
    if (comm.rank() == 0) {
      std::printf("%-38s %8.1f ms  algbw %6.2f GB/s  busbw %6.2f GB/s\n", row.name, t * 1e3, bytes / t / 1e9,
                  2.0 * (size - 1) / size * bytes / t / 1e9);
    }
  }
  return 0;
}
