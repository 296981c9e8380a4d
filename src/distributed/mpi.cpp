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
//
// make_sum_buffer, when every rank runs on one node (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)
// holds the whole world), sums through an MPI-3 shared-memory window instead (SharedSumBuffer):
// each rank writes its values into the window once, adds its slice of every rank's copy in rank
// order (the same additions, so the same bits) and reads every summed slice back, with no message
// and no copy through MPI's buffers. Across nodes, the exchange above.
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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

// out[i] = ((piece(0)[i] + piece(1)[i]) + piece(2)[i]) + … for i < n: the one order of every sum in
// this file, so that they all give the same bits. bfloat16 pieces (W = std::uint16_t) are added in
// float32 and the sum rounded once.
template <class W, class PieceOf>
void add_in_rank_order(int size, std::size_t n, const PieceOf& piece, W* out) {
  if constexpr (std::is_same_v<W, std::uint16_t>) {
    for (std::size_t i = 0; i < n; ++i) {
      float sum = kernels::ref::from_bf16_bits(piece(0)[i]);
      for (int r = 1; r < size; ++r) sum += kernels::ref::from_bf16_bits(piece(r)[i]);
      out[i] = kernels::ref::bf16_bits(sum);
    }
  } else {
    // A block at a time, so that the partial sums stay in the cache: one pass over memory.
    constexpr std::size_t kBlock = 4096;
    for (std::size_t at = 0; at < n; at += kBlock) {
      const std::size_t m = std::min(kBlock, n - at);
      W* __restrict o = out + at;
      std::copy_n(piece(0) + at, m, o);
      for (int r = 1; r < size; ++r) {
        const W* __restrict p = piece(r) + at;
        for (std::size_t i = 0; i < m; ++i) o[i] += p[i];
      }
    }
  }
}

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
  // This rank's slice: every rank's piece added in rank order, into the values (or the wire).
  void add() override {
    const auto n = static_cast<std::size_t>(mine_);
    add_in_rank_order(
        size_, n, [&](int r) { return pieces_.data() + static_cast<std::size_t>(r) * n; },
        wire() + displs_[static_cast<std::size_t>(rank_)]);
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

// Sums through one shared-memory window when every rank runs on one node (MPI-3's
// MPI_Win_allocate_shared): no messages, so no copies through MPI's own buffers. The window holds
// a line of flags per rank, every rank's input (W values) and the result:
//   rank q writes its values into its input, then flags written = s (s: the sum's number, the same
//   on every rank);
//   once every rank has written s, rank q adds its slice [n·q/N, n·(q+1)/N) of every rank's input
//   in rank order, ((v0 + v1) + v2) + … (the bits of FlightOf's sums), into the result, and flags
//   reduced = s;
//   once every rank has reduced s, the whole result is there to read; after reading it, rank q
//   flags released = s, and the next sum's input waits for every rank's release.
// The flags are std::atomic_ref stores (release) and loads (acquire) on the window, each after
// (before) an MPI_Win_sync inside a lock_all epoch: MPI-3's shared-memory synchronisation for the
// unified model. Waiting yields the core (ranks may outnumber cores).
template <class V, class W>
class SharedSumBuffer final : public SumBuffer<V> {
 public:
  SharedSumBuffer(MPI_Comm node, int rank, int size, std::size_t n)
      : rank_(rank),
        size_(size),
        n_(n),
        stride_((n + kLine / sizeof(W) - 1) / (kLine / sizeof(W)) * (kLine / sizeof(W))),
        lo_(static_cast<std::size_t>(slice_of(n, rank, size))),
        hi_(static_cast<std::size_t>(slice_of(n, rank + 1, size))) {
    const std::size_t bytes = kLine + kLine * static_cast<std::size_t>(size) +
                              (static_cast<std::size_t>(size) + 1) * stride_ * sizeof(W);
    void* mine = nullptr;
    check(MPI_Win_allocate_shared(static_cast<MPI_Aint>(rank == 0 ? bytes : 0), 1, MPI_INFO_NULL, node, &mine,
                                  &win_),
          "MPI_Win_allocate_shared");
    MPI_Aint got = 0;
    int unit = 0;
    void* base = nullptr;
    check(MPI_Win_shared_query(win_, 0, &got, &unit, &base), "MPI_Win_shared_query");
    // The layout starts on a 64-byte boundary (MPI may place the segment anywhere), at the same
    // offset on every rank (rank 0's).
    int pad = static_cast<int>((kLine - reinterpret_cast<std::uintptr_t>(base) % kLine) % kLine);
    check(MPI_Bcast(&pad, 1, MPI_INT, 0, node), "MPI_Bcast");
    base_ = static_cast<std::byte*>(base) + pad;
    check(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_), "MPI_Win_lock_all");
    if (rank == 0) std::memset(base_, 0, kLine * static_cast<std::size_t>(size));
    check(MPI_Win_sync(win_), "MPI_Win_sync");
    check(MPI_Barrier(node), "MPI_Barrier");
    check(MPI_Win_sync(win_), "MPI_Win_sync");
    if constexpr (!std::is_same_v<V, W>) staging_.resize(n);
  }
  ~SharedSumBuffer() override {
    int done = 0;
    MPI_Finalized(&done);
    if (done) return;
    MPI_Win_unlock_all(win_);
    MPI_Win_free(&win_);
  }
  SharedSumBuffer(const SharedSumBuffer&) = delete;
  SharedSumBuffer& operator=(const SharedSumBuffer&) = delete;

  std::span<V> input() override {
    if constexpr (std::is_same_v<V, W>) {
      wait_until(Flag::released, seq_);
      return {input_of(rank_), n_};
    } else {
      return staging_;
    }
  }
  std::unique_ptr<PendingSum> start() override;
  std::span<const V> result() const override {
    if constexpr (std::is_same_v<V, W>) {
      return {result_data(), n_};
    } else {
      return staging_;
    }
  }
  void release() override {
    if constexpr (std::is_same_v<V, W>) set(Flag::released);
  }

  // Moves sum seq_ on without blocking; true once its result is there.
  bool advance() {
    if (phase_ == Phase::written && all_reached(Flag::written, seq_)) {
      reduce();
      set(Flag::reduced);
      phase_ = Phase::reduced;
    }
    if (phase_ == Phase::reduced && all_reached(Flag::reduced, seq_)) {
      if constexpr (!std::is_same_v<V, W>) {
        const W* r = result_data();
        for (std::size_t i = 0; i < n_; ++i) staging_[i] = kernels::ref::from_bf16_bits(r[i]);
        set(Flag::released);
      }
      phase_ = Phase::done;
    }
    return phase_ == Phase::done;
  }
  void wait() {
    while (!advance()) sched_yield();
  }

 private:
  static constexpr std::size_t kLine = 64;
  enum class Flag { written = 0, reduced = 1, released = 2 };
  enum class Phase { written, reduced, done };

  std::atomic_ref<std::uint64_t> flag(int r, Flag f) const {
    auto* line = reinterpret_cast<std::uint64_t*>(base_ + kLine * static_cast<std::size_t>(r));
    return std::atomic_ref<std::uint64_t>(line[static_cast<int>(f)]);
  }
  void set(Flag f) {
    check(MPI_Win_sync(win_), "MPI_Win_sync");
    flag(rank_, f).store(seq_, std::memory_order_release);
  }
  bool all_reached(Flag f, std::uint64_t s) {
    for (int r = 0; r < size_; ++r)
      if (flag(r, f).load(std::memory_order_acquire) < s) return false;
    check(MPI_Win_sync(win_), "MPI_Win_sync");
    return true;
  }
  void wait_until(Flag f, std::uint64_t s) {
    while (!all_reached(f, s)) sched_yield();
  }
  W* input_of(int r) const {
    return reinterpret_cast<W*>(base_ + kLine * static_cast<std::size_t>(size_)) +
           static_cast<std::size_t>(r) * stride_;
  }
  W* result_data() const { return input_of(size_); }

  // This rank's slice of the result: every rank's input added in rank order.
  void reduce() {
    add_in_rank_order(
        size_, hi_ - lo_, [&](int r) -> const W* { return input_of(r) + lo_; }, result_data() + lo_);
  }

  int rank_, size_;
  std::size_t n_, stride_, lo_, hi_;
  MPI_Win win_ = MPI_WIN_NULL;
  std::byte* base_ = nullptr;
  std::uint64_t seq_ = 0;  // the sums started
  Phase phase_ = Phase::done;
  std::vector<V> staging_;  // bfloat16 on the wire: the float values and sums
};

template <class V, class W>
class SharedPendingSum final : public PendingSum {
 public:
  explicit SharedPendingSum(SharedSumBuffer<V, W>& buffer) : buffer_(buffer) {}
  bool progress() override { return buffer_.advance(); }
  void wait() override { buffer_.wait(); }

 private:
  SharedSumBuffer<V, W>& buffer_;
};

template <class V, class W>
std::unique_ptr<PendingSum> SharedSumBuffer<V, W>::start() {
  if (phase_ != Phase::done)
    throw DistributedError("SumBuffer::start: the previous sum of this buffer is still in flight");
  if constexpr (!std::is_same_v<V, W>) {
    wait_until(Flag::released, seq_);
    W* in = input_of(rank_);
    for (std::size_t i = 0; i < n_; ++i) in[i] = kernels::ref::bf16_bits(staging_[i]);
  }
  ++seq_;
  set(Flag::written);
  phase_ = Phase::written;
  advance();
  return std::make_unique<SharedPendingSum<V, W>>(*this);
}

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
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_comm_),
          "MPI_Comm_split_type");
    int node_size = 0;
    check(MPI_Comm_size(node_comm_, &node_size), "MPI_Comm_size");
    one_node_ = node_size == size_;
  }
  ~MpiWorld() override {
    int done = 0;
    MPI_Finalized(&done);
    if (done) return;
    if (in_flight_.empty()) {
      MPI_Comm_free(&exchange_comm_);
      MPI_Comm_free(&gather_comm_);
      MPI_Comm_free(&node_comm_);
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

  // Through a shared-memory window when every rank is on this node (node_comm_ orders its ranks
  // as the world's); otherwise (several nodes) the message exchange.
  std::unique_ptr<SumBuffer<float>> make_sum_buffer(std::size_t n, WireType wire,
                                                    bool shared_memory) override {
    if (size_ == 1 || n == 0 || !shared_memory || !one_node_)
      return Communicator::make_sum_buffer(n, wire, shared_memory);
    if (wire == WireType::bfloat16)
      return std::make_unique<SharedSumBuffer<float, std::uint16_t>>(node_comm_, rank_, size_, n);
    return std::make_unique<SharedSumBuffer<float, float>>(node_comm_, rank_, size_, n);
  }
  std::unique_ptr<SumBuffer<double>> make_sum_buffer(std::size_t n, bool shared_memory) override {
    if (size_ == 1 || n == 0 || !shared_memory || !one_node_)
      return Communicator::make_sum_buffer(n, shared_memory);
    return std::make_unique<SharedSumBuffer<double, double>>(node_comm_, rank_, size_, n);
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
  template <class T>
  void rank_order_sum(std::span<T> v) {
    if (size_ == 1 || v.empty()) return;
    if (v.size() / static_cast<std::size_t>(size_) >= static_cast<std::size_t>(INT_MAX) / 2)
      throw DistributedError("allreduce_sum: " + std::to_string(v.size()) +
                             " values are too many for one call");
    std::vector<int> counts(static_cast<std::size_t>(size_)), displs(counts.size());
    for (int r = 0; r < size_; ++r) {
      displs[static_cast<std::size_t>(r)] = static_cast<int>(slice_of(v.size(), r, size_));
      counts[static_cast<std::size_t>(r)] =
          static_cast<int>(slice_of(v.size(), r + 1, size_) - slice_of(v.size(), r, size_));
    }
    const int mine = counts[static_cast<std::size_t>(rank_)];
    std::vector<int> recv_counts(counts.size(), mine), recv_displs(counts.size());
    for (int r = 0; r < size_; ++r) recv_displs[static_cast<std::size_t>(r)] = r * mine;
    std::vector<T> pieces(static_cast<std::size_t>(mine) * static_cast<std::size_t>(size_));
    check(MPI_Alltoallv(v.data(), counts.data(), displs.data(), mpi_type<T>(), pieces.data(),
                        recv_counts.data(), recv_displs.data(), mpi_type<T>(), MPI_COMM_WORLD),
          "MPI_Alltoallv");
    const auto n = static_cast<std::size_t>(mine);
    add_in_rank_order(
        size_, n, [&](int r) -> const T* { return pieces.data() + static_cast<std::size_t>(r) * n; },
        v.data() + displs[static_cast<std::size_t>(rank_)]);
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
  bool owns_ = false, one_node_ = false;
  MPI_Comm exchange_comm_ = MPI_COMM_NULL, gather_comm_ = MPI_COMM_NULL, node_comm_ = MPI_COMM_NULL;
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
