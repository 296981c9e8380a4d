// reskit/tensor.h — dense N-d arrays in float32 or float64, NHWC like Keras.
//
// A Tensor is either concrete (it owns, shared, 64-byte aligned storage) or symbolic (it has a
// shape whose batch dimension may be unknown, -1, and remembers the graph node that produces it;
// see graph/model.h). Copies share storage; clone() copies the data. The element type is chosen
// at run time (Keras set_floatx); data<T>() checks it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace reskit {

enum class DType { float32, float64 };

std::string_view dtype_name(DType dtype);
// Parses "float32" or "float64"; throws ConfigError naming what it received.
DType parse_dtype(std::string_view name);
std::size_t dtype_size(DType dtype);

// The default element type of new layers and tensors (Keras backend.set_floatx / floatx).
// Setting it also sets the global policy to that dtype's name.
void set_floatx(DType dtype);
DType floatx();

// The dtype policy of layers created from now on (Keras mixed_precision.set_global_policy):
// "float32" and "float64" are set_floatx; "mixed_bfloat16" keeps float32 weights, tensors and
// BatchNormalization statistics, and makes Conv2D compute in bfloat16 (inputs and kernel rounded
// to bfloat16, float32 accumulation and output). Throws ConfigError naming what it received.
void set_global_policy(std::string_view name);
// "float32", "float64" or "mixed_bfloat16".
std::string_view global_policy();

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::float64;
}

// A shape; -1 stands for an unknown (None) batch dimension in symbolic tensors.
using Shape = std::vector<std::int64_t>;

// Python tuple text as Keras prints it: (None, 64, 64, 3).
std::string shape_str(const Shape& shape);
// Number of elements; throws ShapeError if a dimension is unknown or negative.
std::int64_t shape_numel(const Shape& shape);

namespace graph {
class Node;
}

class Tensor {
 public:
  Tensor() = default;
  // A concrete, zero-filled tensor.
  Tensor(Shape shape, DType dtype = floatx());
  // A concrete tensor holding values (converted to dtype).
  static Tensor from_values(Shape shape, std::span<const double> values, DType dtype = floatx());
  static Tensor from_values(Shape shape, std::initializer_list<double> values, DType dtype = floatx());
  // A concrete tensor without initialised contents (for outputs that a kernel overwrites).
  static Tensor uninitialized(Shape shape, DType dtype = floatx());
  // A concrete tensor over memory that someone else keeps (data: 64-byte aligned, room for the
  // shape's values), valid while they keep it; its copies share it, clone() copies the values
  // into storage of its own. distributed::DataParallel points gradients into a shared-memory
  // window with it, so backward writes them where the ranks sum them.
  static Tensor over(void* data, Shape shape, DType dtype);
  // A symbolic tensor: output `index` of graph node `node`.
  static Tensor symbolic(Shape shape, DType dtype, std::shared_ptr<graph::Node> node, int index);

  bool defined() const { return defined_; }
  bool is_symbolic() const { return defined_ && !storage_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Dimension i; negative i counts from the end.
  std::int64_t dim(int i) const;
  std::int64_t numel() const;
  DType dtype() const { return dtype_; }

  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  template <class T>
  std::span<T> values() {
    return {data<T>(), static_cast<std::size_t>(numel())};
  }
  template <class T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<std::size_t>(numel())};
  }
  void* raw_data();
  const void* raw_data() const;

  // Element i of the flattened tensor as double, whatever the dtype.
  double at(std::int64_t flat_index) const;
  void set(std::int64_t flat_index, double value);
  std::vector<double> to_vector() const;

  Tensor clone() const;
  // Same storage, another shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // A copy in another dtype (or *this when already of that dtype).
  Tensor to(DType dtype) const;
  void fill(double value);
  void zero();

  // A stamp of the contents, unique across all tensors and times: it changes on every write
  // access (non-const data(), values(), raw_data(), set(), fill(), zero()), so a kernel may keep a
  // derived form of read-only data (reordered weights) keyed by (address, version). 0 for tensors
  // without storage.
  std::uint64_t version() const;

  // Mixed precision: an optional bfloat16 rounding of a float32 tensor's contents, kept with its
  // storage (its views share it) and valid while the contents are unchanged. A producer writing
  // float32 may write the rounding alongside (BatchNormalization does under mixed_bfloat16), so
  // a consumer wanting bfloat16 operands (Conv2D) need not convert again. bf16_shadow_buffer():
  // numel() values to fill; bf16_shadow_written(): they now hold the rounding (to nearest even)
  // of the current contents; bf16_shadow(): that rounding, or null when there is none for the
  // current contents. None of them changes the contents or their version.
  std::uint16_t* bf16_shadow_buffer() const;
  void bf16_shadow_written() const;
  const std::uint16_t* bf16_shadow() const;
  // The rounding written as the only copy of new contents (a mixed-precision producer whose
  // readers all take bf16_shadow(): the values are then those of Keras's bfloat16 activations).
  // The float32 storage is left unwritten: the first float32 access (data(), values(),
  // raw_data(), at(), clone(), to()) widens the rounding into it, exactly, so every reader still
  // sees the same values. A new version, as a write access gives.
  void bf16_shadow_only_written();
  // The float32 storage without that widening, for a reader that takes bf16_shadow() (non-null)
  // in place of the float32 values: they may be unwritten (bf16_shadow_only_written).
  const float* storage_behind_shadow() const;
  // Whether the float32 storage holds the contents (false after bf16_shadow_only_written, until
  // a float32 access widens them).
  bool float32_current() const;

  // Graph bookkeeping of a symbolic tensor.
  const std::shared_ptr<graph::Node>& node() const { return node_; }
  int output_index() const { return index_; }

 private:
  void require_concrete(const char* what) const;
  void touch();
  void widen_shadow_only() const;  // bf16_shadow_only_written's widening, when still due

  Shape shape_;
  DType dtype_ = DType::float32;
  bool defined_ = false;
  std::shared_ptr<std::byte> storage_;
  struct StorageState;                   // the version and the bfloat16 shadow (tensor.cpp)
  std::shared_ptr<StorageState> state_;  // shared by the views of one storage
  std::shared_ptr<graph::Node> node_;
  int index_ = 0;
};

}  // namespace reskit
