// Tensor basics: shapes, dtypes, copies, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "reskit/error.h"
#include "reskit/tensor.h"

using namespace reskit;

TEST(Tensor, ZeroFilledWithShapeAndDtype) {
  Tensor t({2, 3}, DType::float64);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_EQ(t.dtype(), DType::float64);
  for (double v : t.to_vector()) EXPECT_EQ(v, 0.0);
}

TEST(Tensor, ReshapeSharesStorageAndCloneCopies) {
  Tensor t = Tensor::from_values({2, 2}, {1, 2, 3, 4}, DType::float32);
  Tensor r = t.reshape({4});
  r.set(0, 9);
  EXPECT_EQ(t.at(0), 9);
  Tensor c = t.clone();
  c.set(1, 7);
  EXPECT_EQ(t.at(1), 2);
  EXPECT_THROW(t.reshape({3}), ShapeError);
}

// A tensor over memory kept elsewhere reads and writes that memory, its copies share it, clone()
// copies it into storage of its own, and memory off a 64-byte boundary is refused.
TEST(Tensor, OverForeignMemoryWritesThere) {
  alignas(64) float memory[20] = {};
  Tensor t = Tensor::over(memory + 16, {2, 2}, DType::float32);
  EXPECT_EQ(t.numel(), 4);
  t.set(3, 5);
  EXPECT_EQ(memory[19], 5.0f);
  memory[16] = 2;
  Tensor view = t;
  EXPECT_EQ(view.at(0), 2.0);
  Tensor own = t.clone();
  own.set(0, 8);
  EXPECT_EQ(memory[16], 2.0f);
  EXPECT_EQ(own.at(3), 5.0);
  EXPECT_THROW(Tensor::over(memory + 1, {2}, DType::float32), Error);
  EXPECT_THROW(Tensor::over(nullptr, {2}, DType::float32), Error);
}

// The bfloat16 shadow holds for the contents it was written for: views share it, a write access
// (even one that leaves the values as they were) retires it, and reading never does.
TEST(Tensor, Bf16ShadowLastsUntilTheNextWriteAccess) {
  Tensor t = Tensor::from_values({2, 2}, {1, 2, 3, 4}, DType::float32);
  EXPECT_EQ(t.bf16_shadow(), nullptr);
  std::uint16_t* bits = t.bf16_shadow_buffer();
  EXPECT_EQ(t.bf16_shadow(), nullptr) << "not yet written";
  for (int i = 0; i < 4; ++i) bits[i] = static_cast<std::uint16_t>(0x3F80 + i);
  t.bf16_shadow_written();
  ASSERT_NE(t.bf16_shadow(), nullptr);
  EXPECT_EQ(t.bf16_shadow()[3], 0x3F83);
  const Tensor view = t.reshape({4});
  EXPECT_EQ(view.bf16_shadow(), t.bf16_shadow());
  EXPECT_EQ(std::as_const(view).data<float>()[0], 1.0f);
  EXPECT_NE(t.bf16_shadow(), nullptr) << "a read keeps it";
  Tensor alias = view;
  alias.data<float>();
  EXPECT_EQ(t.bf16_shadow(), nullptr) << "a write access through a view retires it";
  EXPECT_EQ(t.clone().bf16_shadow(), nullptr) << "a copy has none";
  Tensor d({2}, DType::float64);
  EXPECT_THROW(d.bf16_shadow_buffer(), Error);
  Tensor other({3}, DType::float32);
  EXPECT_THROW(other.bf16_shadow_written(), Error) << "written without a buffer";
}

// A rounding written as the only copy (bf16_shadow_only_written): the float32 storage stays as it
// was until a float32 access widens the rounding into it, exactly; storage_behind_shadow does not
// widen; the rounding stays valid through reads and retires on a write access, as before.
TEST(Tensor, Bf16ShadowOnlyWidensOnTheFirstFloat32Access) {
  const std::uint16_t bits[4] = {0x3F80, 0xC040, 0x7F80, 0x3EAB};  // 1, -3, inf, 0.333984375
  const float widened[4] = {1.0f, -3.0f, std::numeric_limits<float>::infinity(), 0.333984375f};
  const auto shadow_only = [&] {
    Tensor t = Tensor::from_values({2, 2}, {9, 9, 9, 9}, DType::float32);
    std::copy(bits, bits + 4, t.bf16_shadow_buffer());
    const std::uint64_t before = t.version();
    t.bf16_shadow_only_written();
    EXPECT_NE(t.version(), before) << "new contents, a new version";
    return t;
  };
  Tensor t = shadow_only();
  EXPECT_FALSE(t.float32_current());
  ASSERT_NE(t.bf16_shadow(), nullptr);
  EXPECT_EQ(t.storage_behind_shadow()[0], 9.0f) << "not widened for a reader of the rounding";
  EXPECT_FALSE(t.reshape({4}).float32_current()) << "views share the state";
  const float* values = std::as_const(t).data<float>();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(values[i], widened[i]) << i;
  EXPECT_TRUE(t.float32_current());
  EXPECT_NE(t.bf16_shadow(), nullptr) << "a read keeps the rounding";
  EXPECT_EQ(t.bf16_shadow()[1], 0xC040);

  // Every float32 access widens first: at(), clone(), to(), raw_data(), a write access.
  EXPECT_EQ(shadow_only().at(1), -3.0);
  EXPECT_EQ(shadow_only().clone().at(3), double(widened[3]));
  EXPECT_EQ(shadow_only().to(DType::float64).at(0), 1.0);
  const Tensor raw = shadow_only();
  EXPECT_EQ(static_cast<const float*>(raw.raw_data())[1], -3.0f);
  Tensor w = shadow_only();
  w.data<float>()[0] += 1.0f;
  EXPECT_EQ(w.at(0), 2.0) << "widened before the write";
  EXPECT_EQ(w.bf16_shadow(), nullptr) << "a write access retires the rounding";
  // A new rounding about to be written over the only copy: the values are widened first.
  Tensor r = shadow_only();
  r.bf16_shadow_buffer()[0] = 0x4000;
  EXPECT_TRUE(r.float32_current());
  EXPECT_EQ(r.at(0), 1.0);
  // zero() writes every value: nothing left to widen.
  Tensor z = shadow_only();
  z.zero();
  EXPECT_TRUE(z.float32_current());
  EXPECT_EQ(z.at(2), 0.0);
  Tensor none({3}, DType::float32);
  EXPECT_THROW(none.bf16_shadow_only_written(), Error) << "written without a buffer";
  EXPECT_THROW(Tensor({2}, DType::float64).storage_behind_shadow(), Error);
}

// Storage of 2 MiB and more starts on a 2 MiB boundary (so it can take transparent huge pages);
// smaller storage is 64-byte aligned.
TEST(Tensor, LargeStorageIsHugePageAligned) {
  const auto address = [](const Tensor& t) { return reinterpret_cast<std::uintptr_t>(t.raw_data()); };
  for (std::int64_t n : {std::int64_t{1} << 19, (std::int64_t{3} << 19) + 5, std::int64_t{7} << 20}) {
    const Tensor big = Tensor::uninitialized({n}, DType::float32);  // 2 MiB, ~6 MiB, 28 MiB
    EXPECT_EQ(address(big) % (std::uintptr_t{1} << 21), 0u) << n << " floats";
  }
  const Tensor small = Tensor::uninitialized({1000}, DType::float32);
  EXPECT_EQ(address(small) % 64, 0u);
}

TEST(Tensor, DtypeConversionAndChecks) {
  Tensor t = Tensor::from_values({3}, {1.5, -2.25, 3}, DType::float32);
  Tensor d = t.to(DType::float64);
  EXPECT_EQ(d.dtype(), DType::float64);
  EXPECT_EQ(d.at(1), -2.25);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(parse_dtype("float16"), ConfigError);
  EXPECT_EQ(parse_dtype("float64"), DType::float64);
}

TEST(Tensor, ShapeText) {
  EXPECT_EQ(shape_str({-1, 64, 64, 3}), "(None, 64, 64, 3)");
  EXPECT_EQ(shape_str({-1}), "(None,)");
  EXPECT_THROW(shape_numel({-1, 3}), ShapeError);
}

TEST(Tensor, FromValuesChecksCount) {
  try {
    Tensor::from_values({2, 2}, {1, 2, 3});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("expects 4 values, got 3"), std::string::npos);
  }
}
