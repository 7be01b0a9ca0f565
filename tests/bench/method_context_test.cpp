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

// Interactive elicitation: a method may ask the simulated user only about the training prompts the runner set up,
// never before it set them up, and the question reaches the runner's answerer unchanged.
TEST(MethodContextAsk, OnlyTrainingPromptsAndOnlyOnceSetUp) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  MethodContext ctx(*model, tok, {}, /*seed=*/0);
  auto before = [&] { ctx.ask("u0", "p", "a", "b", "k"); };
  EXPECT_EQ(test::error_code_of(before), ErrorCode::kInternal);
  std::vector<std::string> asked;
  ctx.set_elicitation({{"train prompt", {"a", "b", "c"}}},
                      [&](const std::string& user, const std::string& prompt, const std::string& a,
                          const std::string& b, const std::string& key) {
                        asked.push_back(user + "|" + prompt + "|" + a + "|" + b + "|" + key);
                        return a < b;
                      });
  ASSERT_EQ(ctx.elicitation_prompts().size(), 1u);
  EXPECT_EQ(ctx.elicitation_prompts()[0].candidates.size(), 3u);
  EXPECT_TRUE(ctx.ask("u0", "train prompt", "a", "c", "q1"));
  EXPECT_FALSE(ctx.ask("u0", "train prompt", "c", "a", "q2"));
  EXPECT_EQ(asked, (std::vector<std::string>{"u0|train prompt|a|c|q1", "u0|train prompt|c|a|q2"}));
  auto test_prompt = [&] { ctx.ask("u0", "a test prompt", "a", "c", "q3"); };
  EXPECT_EQ(test::error_code_of(test_prompt), ErrorCode::kInvalidArgument);
  EXPECT_EQ(asked.size(), 2u);
}
