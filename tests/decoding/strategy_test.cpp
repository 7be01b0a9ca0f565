// The strategy registry: every registered strategy against its naive twin (n outputs in one call vs one call per
// output with that output's seed), the options' membership check, prompts from text, and the profile's weights.
// A strategy is tested by being registered: the twin test fails for a registered strategy without a setup here.
#include "palign/decoding/strategy.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "palign/base/error.h"
#include "palign/decoding/steering.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

// Each registered strategy's options on the llama fixture (files go to dir).
std::map<std::string, std::function<decoding::StrategyOptions(const fs::path& dir)>> setups(
    const runtime::Model& model) {
  const std::string llama = test::hf_model("llama").string(), rm = test::hf_model("llama_rm").string();
  return {
      {"sample", [](const fs::path&) { return decoding::StrategyOptions{}; }},
      {"prompt", [](const fs::path&) { return decoding::StrategyOptions{.statement = "I like cats."}; }},
      {"best_of_n", [rm](const fs::path&) { return decoding::StrategyOptions{.best_of = 3, .reward = rm}; }},
      {"cd_block", [rm](const fs::path&) { return decoding::StrategyOptions{.reward = rm, .cd_k = 2, .cd_block = 3}; }},
      {"fusion",
       [llama](const fs::path&) {
         return decoding::StrategyOptions{.models = llama + "," + llama, .weights = "0.7,0.3"};
       }},
      {"proxy",
       [llama](const fs::path&) {
         return decoding::StrategyOptions{.expert = llama, .antiexpert = llama, .alpha = 0.5};
       }},
      {"steer",
       [&model](const fs::path& dir) {
         at::manual_seed(3);
         const int64_t d = model.config().hidden_size;
         decoding::save_steering_vectors(dir / "vectors.safetensors",
                                         {{.name = "humour", .layer = 0, .vector = at::randn({d})},
                                          {.name = "length", .layer = 1, .vector = at::randn({d})}});
         return decoding::StrategyOptions{.weights = "1,-0.5", .vectors = (dir / "vectors.safetensors").string()};
       }},
      {"contrast", [](const fs::path&) { return decoding::StrategyOptions{.context = "I like cats. "}; }},
      {"args", [rm](const fs::path&) { return decoding::StrategyOptions{.reward_model = rm, .args_k = 3}; }},
  };
}

}  // namespace

TEST(Strategy, EveryRegisteredStrategyEqualsItsOneByOneTwin) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  test::TempDir tmp("strategy_twin");
  const auto table = setups(*model);
  ASSERT_FALSE(decoding::strategies().empty());
  for (const auto& info : decoding::strategies()) {
    const auto it = table.find(info.name);
    ASSERT_NE(it, table.end()) << "strategy '" << info.name
                               << "' is registered but has no setup in strategy_test.cpp; add one";
    const decoding::StrategySetup setup{
        .model = model.get(), .model_dir = dir, .tokenizer = &tok, .options = it->second(tmp.path())};
    const auto strategy = decoding::make_strategy(info.name, setup);
    decoding::StrategyRequest request{
        .prompt = decoding::encode_prompt(tok, "The cat", false), .prompt_text = "The cat", .n = 3};
    request.options.max_new_tokens = 5;
    request.options.sampling.temperature = 0.9f;
    request.options.sampling.seed = 11;
    const auto batch = strategy->generate(request);
    ASSERT_EQ(batch.size(), 3u) << info.name;
    size_t differing = 0;
    for (int64_t i = 0; i < 3; ++i) {
      decoding::StrategyRequest one = request;
      one.n = 1;
      one.options.sampling.seed = strategy->sample_seed(request.options.sampling.seed, i);
      const auto single = decoding::make_strategy(info.name, setup)->generate(one);
      ASSERT_EQ(single.size(), 1u) << info.name;
      EXPECT_FALSE(single[0].ids.empty()) << info.name;
      differing += single[0].ids != batch[static_cast<size_t>(i)].ids;
    }
    std::printf("%-10s 3 outputs in one call vs one call each: %zu of 3 differ\n", info.name, differing);
    EXPECT_EQ(differing, 0u) << info.name;
  }
}

TEST(Strategy, RegistryNamesAreUniqueAndUnknownNamesListTheKnown) {
  std::map<std::string, int> seen;
  for (const auto& info : decoding::strategies()) EXPECT_EQ(++seen[info.name], 1) << info.name;
  EXPECT_EQ(&decoding::find_strategy("fusion"), &decoding::strategies()[4]);
  EXPECT_EQ(error_code_of([] { decoding::find_strategy("beam"); }), ErrorCode::kInvalidArgument);
}

TEST(Strategy, OptionsOfAnotherStrategyAndBadOptionsAreRefused) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  decoding::StrategySetup setup{.model = model.get(), .model_dir = dir, .tokenizer = &tok};
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("sample", setup, {"models"}); }), ErrorCode::kInvalidArgument);
  EXPECT_NO_THROW(decoding::make_strategy("sample", setup, {"user"}));  // --user belongs to sample too
  const decoding::Personalization profile{.user_id = "u1", .weights = {{"humour", 1.0}}};
  setup.profile = &profile;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("sample", setup); }), ErrorCode::kInvalidArgument);
  setup.profile = nullptr;
  for (const char* name : {"prompt", "best_of_n", "cd_block", "fusion", "proxy", "steer", "contrast", "args"})
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy(name, setup); }), ErrorCode::kInvalidArgument) << name;
  setup.options.models = dir.string();
  setup.options.weights = "1,2";
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup); }), ErrorCode::kInvalidArgument);
  setup.options.weights = "1";
  setup.adapter = dir;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup); }), ErrorCode::kInvalidArgument);
}

TEST(Strategy, PromptsFromTextChatAndNothing) {
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  const auto ids = tok.encode("The cat", /*add_special=*/true);
  EXPECT_EQ(decoding::encode_prompt(tok, "The cat", false), std::vector<int64_t>(ids.begin(), ids.end()));
  EXPECT_FALSE(decoding::encode_prompt(tok, std::nullopt, false).empty());
  EXPECT_EQ(error_code_of([&] { decoding::encode_prompt(tok, "", false); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::encode_prompt(tok, std::nullopt, true); }), ErrorCode::kInvalidArgument);
}

TEST(Strategy, ProfileWeightsByName) {
  const decoding::Personalization p{.user_id = "u1", .weights = {{"humour", 1.0}, {"length", -0.25}}};
  EXPECT_EQ(p.weights_for({"length", "humour"}), (std::vector<double>{-0.25, 1.0}));
  EXPECT_EQ(p.weights_for({"length", "topic"}, /*missing_zero=*/true), (std::vector<double>{-0.25, 0.0}));
  EXPECT_EQ(error_code_of([&] { p.weights_for({"length", "topic"}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { p.weights_for({"topic"}, true); }), ErrorCode::kInvalidArgument);
}
