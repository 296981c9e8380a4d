// The one-process communicator and what every build shares (the launcher's environment).
#include "reskit/distributed/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "distributed/launch.h"
#include "kernels/ref/bf16.h"

namespace reskit::distributed {

namespace detail {
int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 1 << 24)
      throw DistributedError(std::string("the launcher's ") + var + " is '" + v + "', expected a count >= 1");
    return static_cast<int>(n);
  }
  return 0;
}
}  // namespace detail

std::uint16_t to_bfloat16(float v) { return kernels::ref::bf16_bits(v); }
float from_bfloat16(std::uint16_t b) { return kernels::ref::from_bf16_bits(b); }

namespace {
class DoneSum final : public PendingSum {
 public:
  bool progress() override { return true; }
  void wait() override {}
};

void round_to_bfloat16(std::span<float> values) {
  for (float& v : values) v = from_bfloat16(to_bfloat16(v));
}
}  // namespace

std::unique_ptr<PendingSum> Communicator::start_allreduce_sum(std::span<float> values, WireType wire) {
  if (wire == WireType::bfloat16) round_to_bfloat16(values);
  allreduce_sum(values);
  if (wire == WireType::bfloat16) round_to_bfloat16(values);
  return std::make_unique<DoneSum>();
}

std::unique_ptr<PendingSum> Communicator::start_allreduce_sum(std::span<double> values) {
  allreduce_sum(values);
  return std::make_unique<DoneSum>();
}

namespace {
// A private buffer (64-byte aligned, zero-filled) summed in place by the communicator's
// start_allreduce_sum.
template <class T>
class PrivateSumBuffer final : public SumBuffer<T> {
 public:
  PrivateSumBuffer(Communicator& comm, std::size_t n, WireType wire)
      : comm_(comm),
        wire_(wire),
        storage_(static_cast<T*>(std::aligned_alloc(
            kAlign, (std::max<std::size_t>(n, 1) * sizeof(T) + kAlign - 1) / kAlign * kAlign))),
        n_(n) {
    if (!storage_) throw std::bad_alloc();
    std::fill_n(storage_.get(), n_, T{0});
  }
  std::span<T> input() override { return {storage_.get(), n_}; }
  std::unique_ptr<PendingSum> start() override {
    if constexpr (std::is_same_v<T, float>) {
      return comm_.start_allreduce_sum(input(), wire_);
    } else {
      return comm_.start_allreduce_sum(input());
    }
  }
  std::span<const T> result() const override { return {storage_.get(), n_}; }

 private:
  static constexpr std::size_t kAlign = 64;
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  Communicator& comm_;
  WireType wire_;
  std::unique_ptr<T, Free> storage_;
  std::size_t n_;
};
}  // namespace

std::unique_ptr<SumBuffer<float>> Communicator::make_sum_buffer(std::size_t n, WireType wire, bool) {
  return std::make_unique<PrivateSumBuffer<float>>(*this, n, wire);
}

std::unique_ptr<SumBuffer<double>> Communicator::make_sum_buffer(std::size_t n, bool) {
  return std::make_unique<PrivateSumBuffer<double>>(*this, n, WireType::native);
}

namespace {
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::span<double>) override {}
  void allreduce_sum(std::span<float>) override {}
  void broadcast(std::span<std::byte>, int root) override {
    if (root != 0)
      throw DistributedError("broadcast: expected root 0 of 1 process, got " + std::to_string(root));
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};
}  // namespace

Communicator& single_process() {
  static SingleProcess one;
  return one;
}

namespace {
Communicator* replicas = nullptr;
}  // namespace

Communicator& replica_group() { return replicas ? *replicas : single_process(); }
void set_replica_group(Communicator* comm) { replicas = comm; }

std::string rank_name(const Communicator& comm) {
  return "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size());
}

}  // namespace reskit::distributed
