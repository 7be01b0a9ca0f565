// Golden-fixture tier: every HF fixture model's logits (max-abs <= 1e-4), greedy continuations (exact), and
// reward-model scores (<= 1e-4), computed by a full recompute without cache.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;

namespace {

class CausalFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CausalFixture, LogitsMatchTransformers) {
  const auto dir = test::hf_model(GetParam());
  auto model = Model::load(dir);
  auto ref = test::read_json(dir / "reference.json");
  auto tensors = SafetensorsFile::open(dir / "reference.safetensors");
  double worst = 0;
  for (const auto& s : ref["sequences"]) {
    auto ids = at::tensor(test::ids_of(s["input_ids"]), at::kLong);
    at::Tensor logits = model->forward_full(ids);
    at::Tensor expected = tensors.get_f32(s["tensor"].get<std::string>());
    ASSERT_EQ(logits.sizes(), expected.sizes());
    const double diff = (logits - expected).abs().max().item<double>();
    worst = std::max(worst, diff);
    EXPECT_LE(diff, test::kLogitsTol) << GetParam() << " sequence of " << ids.numel() << " tokens";
  }
  std::printf("[%s] logits max-abs-diff = %.3g over %zu sequences (dtype %s)\n", GetParam().c_str(), worst,
              ref["sequences"].size(), model->stored_dtype().c_str());
}

TEST_P(CausalFixture, GreedyMatchesTransformersFullRecompute) {
  const auto dir = test::hf_model(GetParam());
  auto model = Model::load(dir);
  auto ref = test::read_json(dir / "reference.json");
  for (const auto& g : ref["greedy"]) {
    std::vector<int64_t> ids = test::ids_of(g["prompt_ids"]);
    const auto expected = test::ids_of(g["output_ids"]);
    std::vector<int64_t> out;
    for (size_t step = 0; step < expected.size(); ++step) {
      at::Tensor logits = model->forward_full(at::tensor(ids, at::kLong));
      const int64_t next = logits[-1].argmax().item<int64_t>();
      out.push_back(next);
      ids.push_back(next);
    }
    EXPECT_EQ(out, expected) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, CausalFixture,
                         ::testing::Values("llama", "llama_untied_noscale", "qwen2", "qwen3", "mistral", "gpt2"));

class RewardFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(RewardFixture, ScoresMatchTransformers) {
  const auto dir = test::hf_model(GetParam());
  auto model = Model::load(dir);
  auto ref = test::read_json(dir / "reference.json");
  double worst = 0;
  for (const auto& cs : ref["cases"]) {
    at::Tensor scores = model->score(test::ids_of(cs["input_ids"]));
    at::Tensor expected = at::tensor(cs["scores"].get<std::vector<float>>());
    ASSERT_EQ(scores.sizes(), expected.sizes());
    const double diff = (scores - expected).abs().max().item<double>();
    worst = std::max(worst, diff);
    EXPECT_LE(diff, test::kLogitsTol);
  }
  std::printf("[%s] scores max-abs-diff = %.3g\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Hf, RewardFixture, ::testing::Values("llama_rm", "llama_rm_multi"));

TEST(RewardFixture, PadTokenRuleMatchesTransformers) {
  // transformers scores at the last token that is not pad_token_id (4 here), or position 0 if all are padding.
  auto model = Model::load(test::hf_model("llama_rm"));
  at::Tensor per_pos = at::arange(5, at::kFloat).unsqueeze(1);
  auto pick = [&](std::vector<int64_t> ids) {
    return model->pick_sequence_score(at::tensor(ids, at::kLong), per_pos).item<float>();
  };
  EXPECT_EQ(pick({7, 8, 9}), 2);
  EXPECT_EQ(pick({7, 8, 4}), 1);
  EXPECT_EQ(pick({7, 4, 9}), 2);
  EXPECT_EQ(pick({4, 4, 4}), 0);
}

}  // namespace
