// world() over MPI: the one file in reskit that calls MPI (Open MPI from Debian; any MPI-3 works).
//
// MPI starts on the first world() call when a launcher started the process (mpirun: its
// environment says so), with MPI_THREAD_FUNNELED (only the thread that called world() talks to
// MPI; OpenMP's threads never do), and ends when the program exits. A process not started by a
// launcher runs alone without starting MPI, so the same binary needs no mpirun.
//
// allreduce_sum is not MPI_Allreduce: MPI lets the implementation choose an algorithm, and so an
// order of additions, by message size and process count (Open MPI's "tuned" rules), and floating
// point sums depend on the order. Here each rank owns one contiguous slice of the buffer; an
// MPI_Alltoallv hands it every rank's values of that slice, it adds them in rank order
// ((v0 + v1) + v2) + …, and an MPI_Allgatherv gives every rank every summed slice. Each rank sends
// and receives 2(N−1)/N of the buffer, as a ring allreduce does; the result is fixed by N alone.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "distributed/launch.h"
#include "reskit/distributed/communicator.h"

namespace reskit::distributed {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw DistributedError(std::string(what) + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    }
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  ~MpiWorld() override {
    int done = 0;
    MPI_Finalized(&done);
    if (owns_ && !done) MPI_Finalize();
  }
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(std::span<double> v) override { rank_order_sum(v); }
  void allreduce_sum(std::span<float> v) override { rank_order_sum(v); }

  void broadcast(std::span<std::byte> bytes, int root) override {
    constexpr std::size_t kChunk = std::size_t{1} << 30;
    for (std::size_t at = 0; at < bytes.size(); at += kChunk) {
      const auto n = static_cast<int>(std::min(kChunk, bytes.size() - at));
      check(MPI_Bcast(bytes.data() + at, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  // Slice r of n values: [n·r/N, n·(r+1)/N).
  std::int64_t slice_begin(std::size_t n, int r) const { return static_cast<std::int64_t>(n) * r / size_; }

  template <class T>
  void rank_order_sum(std::span<T> v) {
    if (size_ == 1 || v.empty()) return;
    if (v.size() / static_cast<std::size_t>(size_) >= static_cast<std::size_t>(INT_MAX) / 2)
      throw DistributedError("allreduce_sum: " + std::to_string(v.size()) +
                             " values are too many for one call");
    std::vector<int> counts(static_cast<std::size_t>(size_)), displs(counts.size());
    for (int r = 0; r < size_; ++r) {
      displs[static_cast<std::size_t>(r)] = static_cast<int>(slice_begin(v.size(), r));
      counts[static_cast<std::size_t>(r)] =
          static_cast<int>(slice_begin(v.size(), r + 1) - slice_begin(v.size(), r));
    }
    const int mine = counts[static_cast<std::size_t>(rank_)];
    std::vector<int> recv_counts(counts.size(), mine), recv_displs(counts.size());
    for (int r = 0; r < size_; ++r) recv_displs[static_cast<std::size_t>(r)] = r * mine;
    std::vector<T> pieces(static_cast<std::size_t>(mine) * static_cast<std::size_t>(size_));
    check(MPI_Alltoallv(v.data(), counts.data(), displs.data(), mpi_type<T>(), pieces.data(),
                        recv_counts.data(), recv_displs.data(), mpi_type<T>(), MPI_COMM_WORLD),
          "MPI_Alltoallv");
    // Rank by rank over the whole slice: each element still gets ((v0 + v1) + v2) + ….
    T* out = v.data() + displs[static_cast<std::size_t>(rank_)];
    std::copy(pieces.begin(), pieces.begin() + mine, out);
    for (int r = 1; r < size_; ++r) {
      const T* piece = pieces.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(mine);
      for (int i = 0; i < mine; ++i) out[i] += piece[i];
    }
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v.data(), counts.data(), displs.data(),
                         mpi_type<T>(), MPI_COMM_WORLD),
          "MPI_Allgatherv");
  }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

}  // namespace

bool built_with_mpi() { return true; }

Communicator& world() {
  if (detail::launcher_world_size() == 0) return single_process();
  static MpiWorld mpi;
  return mpi;
}

}  // namespace reskit::distributed
