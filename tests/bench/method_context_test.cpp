// MethodContext's shared objects: made once per key and handed to every later caller; asking for a key with another
// type is a bug that fails loudly instead of a silent reinterpretation.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "palign/base/error.h"
#include "palign/bench/method.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"

using namespace palign;
using namespace palign::bench;

TEST(MethodContextShared, MakesEachKeyOnceAndChecksItsType) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  MethodContext ctx(*model, tok, {}, /*seed=*/0);
  int made = 0;
  auto make = [&] {
    ++made;
    return std::make_shared<std::vector<int>>(std::vector<int>{1, 2, 3});
  };
  const auto first = ctx.shared<std::vector<int>>("numbers", make);
  const auto again = ctx.shared<std::vector<int>>("numbers", make);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(first.get(), again.get());
  EXPECT_EQ(*again, (std::vector<int>{1, 2, 3}));
  ctx.shared<std::string>("text", [] { return std::make_shared<std::string>("x"); });
  EXPECT_EQ(ctx.shared_made(), (std::vector<std::string>{"numbers", "text"}));
  auto wrong_type = [&] { ctx.shared<std::string>("numbers", [] { return std::make_shared<std::string>(); }); };
  EXPECT_EQ(test::error_code_of(wrong_type), ErrorCode::kInternal);
}
