// reskit/distributed/communicator.h — the processes of a data-parallel run as the library sees
// them: a rank, a size and the few collectives training needs. MPI itself stays in one source
// file (src/distributed/mpi.cpp, built when CMake finds MPI); nothing else in reskit names it.
//
// world() is MPI's world when the program was started by mpirun (Open MPI's or another launcher's
// environment says so) and reskit was built with MPI; otherwise one process (rank 0 of 1), so the
// same binary runs alone without mpirun. A build without MPI started by mpirun as one of N > 1
// processes refuses (DistributedError) instead of training N independent copies.
//
// Reductions are deterministic: allreduce_sum adds the ranks' values element by element in rank
// order, ((v0 + v1) + v2) + …, each slice of the buffer on one rank, and hands every rank the same
// bits; the order depends neither on timing nor on the message size nor on MPI's choice of
// algorithm, so two runs with the same number of processes give the same bits.
//
// start_allreduce_sum starts the same sum without waiting (MPI's non-blocking collectives on
// communicators of their own, so they may run while the blocking ones above are called) and hands
// back a PendingSum that progress() advances and wait() finishes: the gradient buckets of
// DataParallel, summed while backward goes on. Sums started earlier finish first. Only the thread
// that called world() calls these (MPI_THREAD_FUNNELED); MPI moves the data on when they are
// called, so callers call progress() often (after each layer's backward). make_sum_buffer gives
// a buffer summed again and again (a gradient bucket): when every rank runs on one machine, MPI
// sums it through shared memory (the same bits, fewer copies).
//
// Not here: launching processes (mpirun does), fault tolerance (a rank that dies ends the job:
// mpirun stops the others; a rank that fails calls abort()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "reskit/error.h"

namespace reskit::distributed {

// A launch or communication problem (a build without MPI under mpirun, a failed collective).
class DistributedError : public Error {
 public:
  using Error::Error;
};

// What an allreduce sends: the values' own type, or bfloat16 (float32 values only: half the
// bytes; each value rounded to bfloat16 (to nearest, ties to even), the ranks' values added in
// float32 in rank order, the sum rounded to bfloat16 again, so every rank gets the same bits).
enum class WireType { native, bfloat16 };

// A sum in flight (Communicator::start_allreduce_sum). The values must stay alive and untouched
// until it is done; destroying it unfinished leaves the values to MPI (only on an error path).
class PendingSum {
 public:
  virtual ~PendingSum() = default;
  // Moves the sum on without blocking; true once the values hold the sums.
  virtual bool progress() = 0;
  // Blocks until the values hold the sums.
  virtual void wait() = 0;
};

// bfloat16's 16 bits of a float (round to nearest, ties to even; NaN stays NaN) and back.
std::uint16_t to_bfloat16(float v);
float from_bfloat16(std::uint16_t b);

// A buffer of a fixed count that is summed over the ranks again and again (a gradient bucket,
// every step): write the values into input(), start(), and once the PendingSum is done read the
// sums from result(), then release() (until then the other ranks may still read this rank's
// copy). input() may wait until every rank has released the previous sum. Every rank makes the
// same buffers in the same order (Communicator::make_sum_buffer is collective) and starts each as
// often; a buffer is started again only after this rank's previous sum was waited for.
// input() and result() are the same memory at every call, 64-byte aligned, so a caller may keep
// tensors over them (Tensor::over): DataParallel's gradients are written into input() by
// backward and read from result() by the optimizer, without a copy either way.
template <class T>
class SumBuffer {
 public:
  virtual ~SumBuffer() = default;
  virtual std::span<T> input() = 0;
  virtual std::unique_ptr<PendingSum> start() = 0;
  virtual std::span<const T> result() const = 0;
  virtual void release() {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank's values summed element by element in rank order; every rank gets the same bits.
  // All ranks pass the same count.
  virtual void allreduce_sum(std::span<double> values) = 0;
  virtual void allreduce_sum(std::span<float> values) = 0;
  // The same sums, started now (see the header comment). This default sums at once (blocking).
  virtual std::unique_ptr<PendingSum> start_allreduce_sum(std::span<float> values, WireType wire);
  virtual std::unique_ptr<PendingSum> start_allreduce_sum(std::span<double> values);
  // A SumBuffer of n values (collective: every rank, in the same order, with the same n). Its sums
  // have the bits of start_allreduce_sum's. shared_memory: when every rank runs on one node, MPI
  // sums through a shared-memory window (fewer copies); false keeps the message exchange. This
  // default is a private buffer summed by start_allreduce_sum.
  virtual std::unique_ptr<SumBuffer<float>> make_sum_buffer(std::size_t n, WireType wire, bool shared_memory);
  virtual std::unique_ptr<SumBuffer<double>> make_sum_buffer(std::size_t n, bool shared_memory);
  // root's bytes to every rank (all ranks pass the same count).
  virtual void broadcast(std::span<std::byte> bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job with this exit status (MPI_Abort); alone, std::exit.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The job's processes (see the header comment). The first call may start MPI.
Communicator& world();
// One process: rank 0 of 1.
Communicator& single_process();
// Whether this build has MPI (CMake's RESKIT_MPI found it).
bool built_with_mpi();
// The processes a SyncBatchNormalization layer reduces its statistics over in a training pass:
// the communicator of the running data-parallel fit (distributed::DataParallel sets it for its
// life), otherwise one process.
Communicator& replica_group();
void set_replica_group(Communicator* comm);  // null: one process
// "rank R of N" for messages.
std::string rank_name(const Communicator& comm);

}  // namespace reskit::distributed
