// Tensor storage, dtype names and the floatx default.
#include "reskit/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "kernels/ref/bf16.h"
#include "reskit/error.h"

namespace reskit {

namespace {
std::atomic<DType> g_floatx{DType::float32};
std::atomic<bool> g_mixed_bfloat16{false};
std::atomic<std::uint64_t> g_version{0};
std::uint64_t next_version() { return g_version.fetch_add(1, std::memory_order_relaxed) + 1; }
constexpr std::size_t kAlignment = 64;

// Large blocks are kept for reuse once their tensor dies: a training step allocates the same
// sizes every time, and fresh pages from the kernel cost a page fault each (often more than the
// layer's own work). Blocks are reused only for an exact size; the cache holds at most
// kCacheLimit bytes and is shared by all threads.
constexpr std::size_t kCachedMin = std::size_t{1} << 16;
constexpr std::size_t kCacheLimit = std::size_t{1} << 31;

// Blocks of 2 MiB and more start on a 2 MiB boundary and ask for transparent huge pages (which
// Linux gives only on request in its `madvise` mode): each whole 2 MiB of the block is then one
// TLB entry instead of 512. Activations, gradients and Adam's slots are such blocks, and the
// kernels that stream through them run faster so (ResNet-50 float32 training step, 2 threads:
// 173.6 -> 165.6 ms). The tail past the last whole 2 MiB keeps small pages: no memory is added.
constexpr std::size_t kHugePage = std::size_t{1} << 21;
void* allocate_huge(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, bytes) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
  return p;
}

// A fresh block's pages are touched as it is handed out, so that a block the cache hands out
// later never faults. Without this, a block whose first owner never wrote it (the float32
// storage behind a bfloat16-only tensor, Tensor::bf16_shadow_only_written) faulted in whichever
// later step a writer drew it from the cache: ResNet-50's mixed steps faulted 4000, 2200, 1400,
// ... pages for eight steps after the first, the second step taking 0.30-0.34 s instead of 0.17
// (AMD EPYC family 25 model 17, 2 threads, right after a PyTorch run). Each page is written once
// here; the first page of a 2 MiB huge page brings in the whole of it.
void touch_pages(void* p, std::size_t bytes) {
  constexpr std::size_t kPage = 4096;
  auto* bytes_ = static_cast<volatile std::byte*>(p);
  for (std::size_t offset = 0; offset < bytes; offset += kPage) bytes_[offset] = std::byte{0};
}

// A request takes a cached block of its own size, or else the smallest one up to 1.5 times its
// size: a batch smaller than the rest (an epoch's last) then reuses the full batches' blocks
// instead of fresh pages (in a virtual machine a fresh page may cost the host a fault too: the
// default job's last batch of 96 took ~0.45 s more than a batch of 128). A block goes back under
// its own size.
struct BlockCache {
  std::mutex mutex;
  std::map<std::size_t, std::vector<void*>> free_blocks;  // by size; no empty lists
  std::size_t cached_bytes = 0;

  struct Block {
    void* p = nullptr;
    std::size_t bytes = 0;
  };
  Block take(std::size_t bytes) {
    std::lock_guard lock(mutex);
    auto it = free_blocks.lower_bound(bytes);
    if (it == free_blocks.end() || it->first > bytes + bytes / 2) return {};
    Block b{it->second.back(), it->first};
    it->second.pop_back();
    if (it->second.empty()) free_blocks.erase(it);
    cached_bytes -= b.bytes;
    return b;
  }
  void give(void* p, std::size_t bytes) {
    {
      std::lock_guard lock(mutex);
      if (cached_bytes + bytes <= kCacheLimit) {
        free_blocks[bytes].push_back(p);
        cached_bytes += bytes;
        return;
      }
    }
    std::free(p);
  }
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive statics
  return *cache;
}

std::shared_ptr<std::byte> allocate(std::size_t bytes) {
  std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded >= kCachedMin) {
    const BlockCache::Block cached = block_cache().take(rounded);
    void* p = cached.p;
    std::size_t size = cached.bytes;
    if (p == nullptr) {
      size = rounded;
      p = size >= kHugePage ? allocate_huge(size) : std::aligned_alloc(kAlignment, size);
      if (p == nullptr) throw std::bad_alloc();
      touch_pages(p, size);
    }
    return {static_cast<std::byte*>(p), [size](std::byte* q) { block_cache().give(q, size); }};
  }
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return {static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); }};
}
}  // namespace

std::string_view dtype_name(DType dtype) { return dtype == DType::float32 ? "float32" : "float64"; }

DType parse_dtype(std::string_view name) {
  if (name == "float32") return DType::float32;
  if (name == "float64") return DType::float64;
  throw ConfigError("dtype: expected float32 or float64, got '" + std::string(name) + "'");
}

std::size_t dtype_size(DType dtype) { return dtype == DType::float32 ? 4 : 8; }

void set_floatx(DType dtype) {
  g_floatx = dtype;
  g_mixed_bfloat16 = false;
}
DType floatx() { return g_floatx; }

void set_global_policy(std::string_view name) {
  if (name == "mixed_bfloat16") {
    g_floatx = DType::float32;
    g_mixed_bfloat16 = true;
    return;
  }
  if (name != "float32" && name != "float64") {
    throw ConfigError("dtype policy: expected float32, float64 or mixed_bfloat16, got '" + std::string(name) +
                      "'");
  }
  set_floatx(parse_dtype(name));
}

std::string_view global_policy() { return g_mixed_bfloat16 ? "mixed_bfloat16" : dtype_name(g_floatx); }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += shape[i] < 0 ? "None" : std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) throw ShapeError("shape " + shape_str(shape) + ": expected known dimensions, got None");
    n *= d;
  }
  return n;
}

struct Tensor::StorageState {
  explicit StorageState(std::uint64_t v) : version(v) {}
  std::atomic<std::uint64_t> version;
  std::shared_ptr<std::byte> bf16;  // the bfloat16 shadow, numel() values (views share numel)
  std::uint64_t bf16_version = 0;   // the version it rounds; 0: none
  // bf16_shadow_only_written: the storage not yet written, the shadow the only copy.
  std::atomic<bool> shadow_only{false};
  std::mutex widening;  // one thread widens, the others wait for it
};

Tensor::Tensor(Shape shape, DType dtype) : Tensor(uninitialized(std::move(shape), dtype)) { zero(); }

Tensor Tensor::uninitialized(Shape shape, DType dtype) {
  Tensor t;
  std::int64_t n = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.defined_ = true;
  t.storage_ = allocate(static_cast<std::size_t>(n) * dtype_size(dtype));
  t.state_ = std::make_shared<StorageState>(next_version());
  return t;
}

Tensor Tensor::over(void* data, Shape shape, DType dtype) {
  if (data == nullptr || reinterpret_cast<std::uintptr_t>(data) % kAlignment != 0) {
    throw Error("Tensor::over: expected memory aligned to " + std::to_string(kAlignment) +
                " bytes, got address " + std::to_string(reinterpret_cast<std::uintptr_t>(data)));
  }
  Tensor t;
  t.shape_ = std::move(shape);
  shape_numel(t.shape_);
  t.dtype_ = dtype;
  t.defined_ = true;
  t.storage_ = std::shared_ptr<std::byte>(static_cast<std::byte*>(data), [](std::byte*) {});
  t.state_ = std::make_shared<StorageState>(next_version());
  return t;
}

Tensor Tensor::from_values(Shape shape, std::span<const double> values, DType dtype) {
  Tensor t = uninitialized(std::move(shape), dtype);
  if (static_cast<std::int64_t>(values.size()) != t.numel()) {
    throw ShapeError("Tensor::from_values: shape " + shape_str(t.shape_) + " expects " +
                     std::to_string(t.numel()) + " values, got " + std::to_string(values.size()));
  }
  for (std::size_t i = 0; i < values.size(); ++i) t.set(static_cast<std::int64_t>(i), values[i]);
  return t;
}

Tensor Tensor::from_values(Shape shape, std::initializer_list<double> values, DType dtype) {
  return from_values(std::move(shape), std::span<const double>(values.begin(), values.size()), dtype);
}

Tensor Tensor::symbolic(Shape shape, DType dtype, std::shared_ptr<graph::Node> node, int index) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.defined_ = true;
  t.node_ = std::move(node);
  t.index_ = index;
  return t;
}

std::int64_t Tensor::dim(int i) const {
  int r = rank();
  int j = i < 0 ? i + r : i;
  if (j < 0 || j >= r) {
    throw ShapeError("Tensor::dim: axis " + std::to_string(i) + " out of range for shape " +
                     shape_str(shape_));
  }
  return shape_[static_cast<std::size_t>(j)];
}

std::int64_t Tensor::numel() const { return shape_numel(shape_); }

void Tensor::require_concrete(const char* what) const {
  if (!defined_) throw Error(std::string(what) + ": the tensor is undefined");
  if (!storage_) {
    throw Error(std::string(what) + ": expected a concrete tensor, got a symbolic one of shape " +
                shape_str(shape_));
  }
}

void Tensor::touch() {
  if (state_) state_->version.store(next_version(), std::memory_order_relaxed);
}

std::uint64_t Tensor::version() const { return state_ ? state_->version.load(std::memory_order_relaxed) : 0; }

std::uint16_t* Tensor::bf16_shadow_buffer() const {
  require_concrete("Tensor::bf16_shadow_buffer");
  if (dtype_ != DType::float32) {
    throw Error("Tensor::bf16_shadow_buffer: expected a float32 tensor, got " +
                std::string(dtype_name(dtype_)));
  }
  widen_shadow_only();  // a new rounding is about to be written over the only copy
  // From the block cache, as storage is: a fresh zero-filled buffer each step cost more than it saved.
  if (!state_->bf16) state_->bf16 = allocate(static_cast<std::size_t>(numel()) * sizeof(std::uint16_t));
  state_->bf16_version = 0;
  return reinterpret_cast<std::uint16_t*>(state_->bf16.get());
}

void Tensor::bf16_shadow_written() const {
  require_concrete("Tensor::bf16_shadow_written");
  if (!state_->bf16) {
    throw Error("Tensor::bf16_shadow_written: expected a shadow buffer (bf16_shadow_buffer), got none");
  }
  state_->bf16_version = version();
}

void Tensor::bf16_shadow_only_written() {
  require_concrete("Tensor::bf16_shadow_only_written");
  if (!state_->bf16) {
    throw Error("Tensor::bf16_shadow_only_written: expected a shadow buffer (bf16_shadow_buffer), got none");
  }
  touch();
  state_->bf16_version = version();
  state_->shadow_only.store(true, std::memory_order_release);
}

const float* Tensor::storage_behind_shadow() const {
  require_concrete("Tensor::storage_behind_shadow");
  if (dtype_ != DType::float32) {
    throw Error("Tensor::storage_behind_shadow: expected a float32 tensor, got " +
                std::string(dtype_name(dtype_)));
  }
  return reinterpret_cast<const float*>(storage_.get());
}

bool Tensor::float32_current() const {
  return !state_ || !state_->shadow_only.load(std::memory_order_acquire);
}

void Tensor::widen_shadow_only() const {
  if (float32_current()) return;
  std::lock_guard lock(state_->widening);
  if (!state_->shadow_only.load(std::memory_order_acquire)) return;
  const auto* bits = reinterpret_cast<const std::uint16_t*>(state_->bf16.get());
  auto* out = reinterpret_cast<float*>(storage_.get());
  const std::int64_t n = numel();
#pragma omp parallel for schedule(static) if (n > (std::int64_t{1} << 15))
  for (std::int64_t i = 0; i < n; ++i) out[i] = kernels::ref::from_bf16_bits(bits[i]);
  state_->shadow_only.store(false, std::memory_order_release);
}

const std::uint16_t* Tensor::bf16_shadow() const {
  if (!state_ || state_->bf16_version == 0 || state_->bf16_version != version()) return nullptr;
  return reinterpret_cast<const std::uint16_t*>(state_->bf16.get());
}

template <class T>
T* Tensor::data() {
  require_concrete("Tensor::data");
  widen_shadow_only();
  touch();
  if (dtype_ != dtype_of<T>()) {
    throw Error("Tensor::data: expected dtype " + std::string(dtype_name(dtype_of<T>())) +
                ", the tensor holds " + std::string(dtype_name(dtype_)));
  }
  return reinterpret_cast<T*>(storage_.get());
}

template <class T>
const T* Tensor::data() const {
  require_concrete("Tensor::data");
  widen_shadow_only();
  if (dtype_ != dtype_of<T>()) {
    throw Error("Tensor::data: expected dtype " + std::string(dtype_name(dtype_of<T>())) +
                ", the tensor holds " + std::string(dtype_name(dtype_)));
  }
  return reinterpret_cast<const T*>(storage_.get());
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

void* Tensor::raw_data() {
  require_concrete("Tensor::raw_data");
  widen_shadow_only();
  touch();
  return storage_.get();
}
const void* Tensor::raw_data() const {
  require_concrete("Tensor::raw_data");
  widen_shadow_only();
  return storage_.get();
}

double Tensor::at(std::int64_t i) const {
  return dtype_ == DType::float32 ? static_cast<double>(data<float>()[i]) : data<double>()[i];
}

void Tensor::set(std::int64_t i, double v) {
  if (dtype_ == DType::float32) {
    data<float>()[i] = static_cast<float>(v);
  } else {
    data<double>()[i] = v;
  }
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out(static_cast<std::size_t>(numel()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = at(static_cast<std::int64_t>(i));
  return out;
}

Tensor Tensor::clone() const {
  require_concrete("Tensor::clone");
  Tensor t = uninitialized(shape_, dtype_);
  widen_shadow_only();
  std::memcpy(t.storage_.get(), storage_.get(), static_cast<std::size_t>(numel()) * dtype_size(dtype_));
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel()) {
    throw ShapeError("Tensor::reshape: cannot view shape " + shape_str(shape_) + " as " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  require_concrete("Tensor::to");
  Tensor t = uninitialized(shape_, dtype);
  std::int64_t n = numel();
  if (dtype == DType::float64) {
    const float* s = data<float>();
    double* d = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i) d[i] = s[i];
  } else {
    const double* s = data<double>();
    float* d = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
  }
  return t;
}

void Tensor::fill(double value) {
  require_concrete("Tensor::fill");
  std::int64_t n = numel();
  if (dtype_ == DType::float32) {
    std::fill_n(data<float>(), n, static_cast<float>(value));
  } else {
    std::fill_n(data<double>(), n, value);
  }
}

void Tensor::zero() {
  require_concrete("Tensor::zero");
  if (state_) state_->shadow_only.store(false, std::memory_order_release);  // all of it written below
  touch();
  std::memset(storage_.get(), 0, static_cast<std::size_t>(numel()) * dtype_size(dtype_));
}

}  // namespace reskit
