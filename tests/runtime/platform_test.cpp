#include "palign/runtime/platform.h"

#include <gtest/gtest.h>

#include "palign/base/error.h"

TEST(Platform, BlasDescriptionIsNonEmpty) {
  std::printf("blas: %s\n", palign::runtime::blas_description().c_str());
  EXPECT_FALSE(palign::runtime::blas_description().empty());
}

TEST(Error, CodesMapToDistinctExitStatuses) {
  using palign::ErrorCode;
  EXPECT_EQ(palign::exit_code(ErrorCode::kInvalidArgument), 2);
  EXPECT_EQ(palign::http_status(ErrorCode::kNotFound), 404);
  EXPECT_NE(palign::exit_code(ErrorCode::kNotFound), palign::exit_code(ErrorCode::kIo));
  try {
    PALIGN_CHECK(1 == 2, ErrorCode::kInvalidArgument, "[test] expected ", 1, " got ", 2);
    FAIL() << "no throw";
  } catch (const palign::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "[test] expected 1 got 2");
  }
}
