// Tensor basics: shapes, dtypes, copies, errors.
#include <gtest/gtest.h>

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
