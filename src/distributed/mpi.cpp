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
//
// start_allreduce_sum does the same with MPI_Ialltoallv and MPI_Iallgatherv, each on a duplicate
// of the world communicator of its own: the blocking collectives (SyncBatchNormalization's sums
// during backward) may run between them, and each rank starts the gathers in the order the sums
// were started whatever the timing, as MPI requires of collectives on one communicator. A sum
// moves from its exchange to its rank-order addition to its gather when progress() or wait()
// finds the step before it done (Open MPI moves non-blocking collectives on only inside MPI
// calls; no progress thread).
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "distributed/launch.h"
#include "kernels/ref/bf16.h"
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
template <>
MPI_Datatype mpi_type<std::uint16_t>() {
  return MPI_UINT16_T;
}

// Slice r of n values over `size` ranks: [n·r/size, n·(r+1)/size).
std::int64_t slice_of(std::size_t n, int r, int size) { return static_cast<std::int64_t>(n) * r / size; }

// A non-blocking rank-order sum of V values sent as W (W = V, or bfloat16's bits for float):
// exchange (Ialltoallv), add this rank's slice in rank order, gather (Iallgatherv).
class Flight {
 public:
  enum class Phase { exchange, added, gather, done };
  virtual ~Flight() = default;
  virtual void start_exchange(MPI_Comm comm) = 0;
  virtual void add() = 0;
  virtual void start_gather(MPI_Comm comm) = 0;
  virtual void finish() = 0;
  Phase phase = Phase::exchange;
  MPI_Request request = MPI_REQUEST_NULL;
};

template <class V, class W>
class FlightOf final : public Flight {
 public:
  FlightOf(std::span<V> values, int rank, int size) : values_(values), rank_(rank), size_(size) {
    if (values.size() / static_cast<std::size_t>(size) >= static_cast<std::size_t>(INT_MAX) / 2)
      throw DistributedError("start_allreduce_sum: " + std::to_string(values.size()) +
                             " values are too many for one call");
    counts_.resize(static_cast<std::size_t>(size));
    displs_.resize(counts_.size());
    for (int r = 0; r < size; ++r) {
      displs_[static_cast<std::size_t>(r)] = static_cast<int>(slice_of(values.size(), r, size));
      counts_[static_cast<std::size_t>(r)] =
          static_cast<int>(slice_of(values.size(), r + 1, size) - slice_of(values.size(), r, size));
    }
    mine_ = counts_[static_cast<std::size_t>(rank)];
    recv_counts_.assign(counts_.size(), mine_);
    recv_displs_.resize(counts_.size());
    for (int r = 0; r < size; ++r) recv_displs_[static_cast<std::size_t>(r)] = r * mine_;
    pieces_.resize(static_cast<std::size_t>(mine_) * static_cast<std::size_t>(size));
    if constexpr (!std::is_same_v<V, W>) {
      wire_.resize(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) wire_[i] = kernels::ref::bf16_bits(values[i]);
    }
  }
  void start_exchange(MPI_Comm comm) override {
    check(MPI_Ialltoallv(wire(), counts_.data(), displs_.data(), mpi_type<W>(), pieces_.data(),
                         recv_counts_.data(), recv_displs_.data(), mpi_type<W>(), comm, &request),
          "MPI_Ialltoallv");
  }
  // Rank by rank over the whole slice: each element gets ((v0 + v1) + v2) + …, as rank_order_sum.
  void add() override {
    const auto n = static_cast<std::size_t>(mine_);
    if constexpr (std::is_same_v<V, W>) {
      V* out = values_.data() + displs_[static_cast<std::size_t>(rank_)];
      std::copy(pieces_.begin(), pieces_.begin() + mine_, out);
      for (int r = 1; r < size_; ++r) {
        const V* piece = pieces_.data() + static_cast<std::size_t>(r) * n;
        for (std::size_t i = 0; i < n; ++i) out[i] += piece[i];
      }
    } else {
      std::vector<float> sum(n);
      for (std::size_t i = 0; i < n; ++i) sum[i] = kernels::ref::from_bf16_bits(pieces_[i]);
      for (int r = 1; r < size_; ++r) {
        const W* piece = pieces_.data() + static_cast<std::size_t>(r) * n;
        for (std::size_t i = 0; i < n; ++i) sum[i] += kernels::ref::from_bf16_bits(piece[i]);
      }
      W* out = wire_.data() + displs_[static_cast<std::size_t>(rank_)];
      for (std::size_t i = 0; i < n; ++i) out[i] = kernels::ref::bf16_bits(sum[i]);
    }
  }
  void start_gather(MPI_Comm comm) override {
    check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, wire(), counts_.data(), displs_.data(),
                          mpi_type<W>(), comm, &request),
          "MPI_Iallgatherv");
  }
  void finish() override {
    if constexpr (!std::is_same_v<V, W>)
      for (std::size_t i = 0; i < values_.size(); ++i) values_[i] = kernels::ref::from_bf16_bits(wire_[i]);
  }

 private:
  W* wire() {
    if constexpr (std::is_same_v<V, W>) {
      return values_.data();
    } else {
      return wire_.data();
    }
  }

  std::span<V> values_;
  int rank_, size_, mine_ = 0;
  std::vector<int> counts_, displs_, recv_counts_, recv_displs_;
  std::vector<W> pieces_, wire_;
};

class MpiWorld;

class MpiPendingSum final : public PendingSum {
 public:
  MpiPendingSum(MpiWorld& world, std::shared_ptr<Flight> flight)
      : world_(world), flight_(std::move(flight)) {}
  bool progress() override;
  void wait() override;

 private:
  MpiWorld& world_;
  std::shared_ptr<Flight> flight_;
};

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
    check(MPI_Comm_dup(MPI_COMM_WORLD, &exchange_comm_), "MPI_Comm_dup");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &gather_comm_), "MPI_Comm_dup");
  }
  ~MpiWorld() override {
    int done = 0;
    MPI_Finalized(&done);
    if (done) return;
    if (in_flight_.empty()) {
      MPI_Comm_free(&exchange_comm_);
      MPI_Comm_free(&gather_comm_);
    }
    if (owns_) MPI_Finalize();
  }
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(std::span<double> v) override { rank_order_sum(v); }
  void allreduce_sum(std::span<float> v) override { rank_order_sum(v); }
  std::unique_ptr<PendingSum> start_allreduce_sum(std::span<float> v, WireType wire) override {
    if (size_ == 1 || v.empty()) return Communicator::start_allreduce_sum(v, wire);
    if (wire == WireType::bfloat16)
      return start(std::make_shared<FlightOf<float, std::uint16_t>>(v, rank_, size_));
    return start(std::make_shared<FlightOf<float, float>>(v, rank_, size_));
  }
  std::unique_ptr<PendingSum> start_allreduce_sum(std::span<double> v) override {
    if (size_ == 1 || v.empty()) return Communicator::start_allreduce_sum(v);
    return start(std::make_shared<FlightOf<double, double>>(v, rank_, size_));
  }

  // Moves every sum in flight on as far as it goes without blocking; gathers start in the order
  // the sums were started.
  void advance() {
    bool gathers_may_start = true;
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      Flight& f = **it;
      int finished = 0;
      if (f.phase == Flight::Phase::exchange) {
        check(MPI_Test(&f.request, &finished, MPI_STATUS_IGNORE), "MPI_Test");
        if (finished) {
          f.add();
          f.phase = Flight::Phase::added;
        }
      }
      if (f.phase == Flight::Phase::added && gathers_may_start) {
        f.start_gather(gather_comm_);
        f.phase = Flight::Phase::gather;
      }
      if (f.phase == Flight::Phase::gather) {
        check(MPI_Test(&f.request, &finished, MPI_STATUS_IGNORE), "MPI_Test");
        if (finished) {
          f.finish();
          f.phase = Flight::Phase::done;
        }
      }
      if (f.phase == Flight::Phase::exchange || f.phase == Flight::Phase::added) gathers_may_start = false;
      it = f.phase == Flight::Phase::done ? in_flight_.erase(it) : it + 1;
    }
  }
  // Blocks on the oldest sum's current step until this one is done.
  void wait_for(const Flight& flight) {
    for (advance(); flight.phase != Flight::Phase::done; advance())
      check(MPI_Wait(&in_flight_.front()->request, MPI_STATUS_IGNORE), "MPI_Wait");
  }

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

  std::unique_ptr<PendingSum> start(std::shared_ptr<Flight> flight) {
    flight->start_exchange(exchange_comm_);
    in_flight_.push_back(flight);
    advance();
    return std::make_unique<MpiPendingSum>(*this, std::move(flight));
  }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  MPI_Comm exchange_comm_ = MPI_COMM_NULL, gather_comm_ = MPI_COMM_NULL;
  std::deque<std::shared_ptr<Flight>> in_flight_;
};

bool MpiPendingSum::progress() {
  if (flight_->phase != Flight::Phase::done) world_.advance();
  return flight_->phase == Flight::Phase::done;
}

void MpiPendingSum::wait() {
  if (flight_->phase != Flight::Phase::done) world_.wait_for(*flight_);
}

}  // namespace

bool built_with_mpi() { return true; }

Communicator& world() {
  if (detail::launcher_world_size() == 0) return single_process();
  static MpiWorld mpi;
  return mpi;
}

}  // namespace reskit::distributed
