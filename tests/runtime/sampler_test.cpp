// Hand-computed tier for sampling: each processing step on tiny distributions with answers worked out by hand,
// plus seeded reproducibility and the generation loop's batched path against one-by-one greedy recompute.
#include "palign/runtime/sampler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "palign/base/error.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;

namespace {

at::Tensor log_of(std::vector<float> p) { return at::tensor(p).log(); }

void expect_probs(const at::Tensor& got, std::vector<float> want, const char* what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  const double diff = (got - at::tensor(want)).abs().max().item<double>();
  std::printf("%s: max-abs-diff = %.3g\n", what, diff);
  EXPECT_LE(diff, 1e-6) << what;
}

TEST(Sampling, TopPKeepsTheHeadAsLlamaCppExample) {
  // llama.cpp's test: top_p(0.7) on {0.1, 0.2, 0.3, 0.4} keeps {0.3, 0.4} -> {0.428571, 0.571429}.
  auto p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.top_p = 0.7f}, {});
  expect_probs(p, {0.0f, 0.0f, 0.428571f, 0.571429f}, "top_p 0.7");
  p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.top_p = 1.0f}, {});
  expect_probs(p, {0.1f, 0.2f, 0.3f, 0.4f}, "top_p 1.0");
  p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.top_p = 0.01f}, {});
  expect_probs(p, {0.0f, 0.0f, 0.0f, 1.0f}, "top_p 0.01 keeps the best");
}

TEST(Sampling, TopKTemperatureMinP) {
  auto p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.top_k = 2}, {});
  expect_probs(p, {0.0f, 0.0f, 0.3f / 0.7f, 0.4f / 0.7f}, "top_k 2");
  // Temperature 0.5 squares the probabilities before normalising: {1, 4, 9, 16} / 30.
  p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.temperature = 0.5f}, {});
  expect_probs(p, {1 / 30.f, 4 / 30.f, 9 / 30.f, 16 / 30.f}, "temperature 0.5");
  // min_p 0.6: threshold 0.6 * 0.4 = 0.24 keeps {0.3, 0.4}.
  p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.min_p = 0.6f}, {});
  expect_probs(p, {0.0f, 0.0f, 0.3f / 0.7f, 0.4f / 0.7f}, "min_p 0.6");
  p = next_token_probs(log_of({0.1f, 0.2f, 0.3f, 0.4f}), {.greedy = true}, {});
  expect_probs(p, {0, 0, 0, 1}, "greedy");
}

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  // logits {2, -1, 1}; penalty 2 on tokens 0 and 1 -> {1, -2, 1}.
  auto p = next_token_probs(at::tensor({2.0f, -1.0f, 1.0f}), {.repetition_penalty = 2.0f}, std::vector<int64_t>{0, 1, 0});
  const float e1 = std::exp(1.0f), em2 = std::exp(-2.0f), z = 2 * e1 + em2;
  expect_probs(p, {e1 / z, em2 / z, e1 / z}, "repetition penalty 2");
}

TEST(Sampling, SeededDrawsAreReproducibleAndFollowTheDistribution) {
  at::Tensor logits = log_of({0.1f, 0.2f, 0.3f, 0.4f});
  Sampler a({.seed = 42}), b({.seed = 42}), c({.seed = 43});
  std::vector<int64_t> xa, xb, xc;
  std::vector<int> counts(4, 0);
  for (int i = 0; i < 4000; ++i) {
    xa.push_back(a.sample(logits, {}));
    xb.push_back(b.sample(logits, {}));
    xc.push_back(c.sample(logits, {}));
    counts[xa.back()]++;
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
  for (int i = 0; i < 4; ++i) {
    const double freq = counts[i] / 4000.0, want = 0.1 * (i + 1);
    std::printf("token %d: frequency %.3f, probability %.1f\n", i, freq, want);
    EXPECT_NEAR(freq, want, 0.03);  // > 4 standard errors
  }
}

TEST(Sampling, BadOptionsAreRejected) {
  EXPECT_THROW(Sampler({.temperature = 0.0f}), Error);
  EXPECT_THROW(Sampler({.top_p = 0.0f}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
  EXPECT_THROW(Sampler({.top_k = -1}), Error);
  EXPECT_THROW(Sampler({.min_p = 1.0f}), Error);
  EXPECT_THROW(Sampler({.repetition_penalty = 0.0f}), Error);
  EXPECT_NO_THROW(Sampler({.greedy = true, .temperature = 0.0f}));
}

TEST(Generate, BatchedSamplesEqualSeparateRuns) {
  auto model = Model::load(test::hf_model("qwen2"));
  std::vector<int64_t> prompt = {5, 17, 99, 3};
  GenerateOptions opts{.max_new_tokens = 12, .sampling = {.temperature = 0.8f, .top_k = 50, .seed = 7}};
  auto batched = generate(*model, nullptr, prompt, opts, /*n_samples=*/4);
  ASSERT_EQ(batched.size(), 4u);
  for (int64_t i = 0; i < 4; ++i) {
    GenerateOptions one = opts;
    one.sampling.seed = 7 + i;
    auto single = generate(*model, nullptr, prompt, one, 1);
    EXPECT_EQ(batched[i].ids, single[0].ids) << "sample " << i;
    EXPECT_EQ(batched[i].ids.size(), 12u);
  }
  EXPECT_NE(batched[0].ids, batched[1].ids);
}

// Rows with their own prompts (right-padded prefill, per-row budgets at the context's edge, stop ids) give what each
// prompt gives alone with the row's seed.
TEST(Generate, EachPromptInOneBatchEqualsSeparateRuns) {
  for (const char* name : {"llama", "gpt2"}) {
    auto model = Model::load(test::hf_model(name));
    const int64_t max_pos = model->config().max_position;
    // The last row ends 3 tokens before the context's edge (gpt2's 256; the others' are far away).
    const int64_t edge = std::min<int64_t>(max_pos, 256);
    const std::vector<std::vector<int64_t>> prompts = {
        {5, 17, 99, 3}, {8}, {40, 41, 42, 43, 44, 45, 46, 47, 48}, std::vector<int64_t>(edge - 3, 7)};
    for (bool greedy : {true, false}) {
      GenerateOptions opts{.max_new_tokens = 10, .sampling = {.greedy = greedy, .temperature = 0.9f, .seed = 11}};
      opts.stop_ids = {2};
      const auto batched = generate_each(*model, nullptr, prompts, opts);
      ASSERT_EQ(batched.size(), prompts.size());
      int same = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        GenerateOptions one = opts;
        one.sampling.seed = 11 + i;
        const auto single = generate(*model, nullptr, prompts[i], one, 1)[0];
        EXPECT_EQ(batched[i].ids, single.ids) << name << " row " << i;
        EXPECT_EQ(batched[i].finish_reason, single.finish_reason) << name << " row " << i;
        same += batched[i].ids == single.ids;
      }
      if (edge == max_pos) EXPECT_EQ(batched[3].ids.size(), 3u) << "the last row's budget ends at the context";
      std::printf("[%s] generate_each (%s): %d of %zu rows identical to separate runs\n", name,
                  greedy ? "greedy" : "sampled", same, prompts.size());
    }
    EXPECT_THROW(generate_each(*model, nullptr, {}, {}), Error);
    EXPECT_THROW(generate_each(*model, nullptr, {{1, 2}, {}}, {}), Error);
  }
}

// Rows given seeds of their own (separate requests batched together) sample what each request alone samples.
TEST(Generate, EachRowWithItsOwnSeedEqualsSeparateRuns) {
  auto model = Model::load(test::hf_model("llama"));
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 99}, {5, 17, 99}, {40, 41}};
  GenerateOptions opts;
  opts.max_new_tokens = 8;
  opts.row_seeds = {901, 17, 4242};
  const auto batched = generate_each(*model, nullptr, prompts, opts);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions one = opts;
    one.row_seeds.clear();
    one.sampling.seed = opts.row_seeds[i];
    EXPECT_EQ(batched[i].ids, generate(*model, nullptr, prompts[i], one, 1)[0].ids) << "row " << i;
  }
  EXPECT_NE(batched[0].ids, batched[1].ids) << "one prompt, two seeds";
  opts.row_seeds = {1, 2};
  EXPECT_THROW(generate_each(*model, nullptr, prompts, opts), Error) << "two seeds for three rows";
  EXPECT_THROW(generate(*model, nullptr, prompts[0], opts, 2), Error) << "row seeds belong to generate_each";
}

// A per-row residual hook (each row its own vector, rows leaving the batch as they stop) equals each prompt alone
// with a plain hook adding that row's vector.
TEST(Generate, RowResidualHookSeesEachRowsOwnIndex) {
  auto model = Model::load(test::hf_model("llama"));
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 99}, {8, 9}, {40, 41, 42, 43}};
  at::manual_seed(0);
  const at::Tensor deltas = at::randn({3, 1, model->config().hidden_size}) * 2.0;
  GenerateOptions opts{.max_new_tokens = 9, .sampling = {.temperature = 0.9f, .seed = 5}};
  opts.stop_ids = {3, 7, 11};  // rows stop at different steps
  opts.row_residual_hook = [&](int64_t layer, at::Tensor& x, const std::vector<int64_t>& rows) {
    if (layer == 0) x = x + deltas.index_select(0, at::tensor(rows, at::kLong));
  };
  const auto batched = generate_each(*model, nullptr, prompts, opts);
  for (int64_t i = 0; i < 3; ++i) {
    GenerateOptions one = opts;
    one.row_residual_hook = nullptr;
    one.sampling.seed = 5 + i;
    one.residual_hook = [&, i](int64_t layer, at::Tensor& x) {
      if (layer == 0) x = x + deltas[i];
    };
    EXPECT_EQ(batched[i].ids, generate(*model, nullptr, prompts[i], one, 1)[0].ids) << "row " << i;
  }
  opts.residual_hook = [](int64_t, at::Tensor&) {};
  EXPECT_THROW(generate_each(*model, nullptr, prompts, opts), Error) << "both hooks";
}

TEST(Generate, GreedyWithCacheEqualsFixtureFullRecompute) {
  for (const std::string name : {"llama", "mistral", "gpt2", "qwen3"}) {
    auto model = Model::load(test::hf_model(name));
    auto ref = test::read_json(test::hf_model(name) / "reference.json");
    for (const auto& g : ref["greedy"]) {
      GenerateOptions opts{.max_new_tokens = 24, .sampling = {.greedy = true}};
      auto out = generate(*model, nullptr, test::ids_of(g["prompt_ids"]), opts);
      EXPECT_EQ(out[0].ids, test::ids_of(g["output_ids"])) << name;
      EXPECT_EQ(out[0].finish_reason, "length");
    }
  }
}

TEST(Generate, StopIdsAndBudgetAndErrors) {
  auto model = Model::load(test::hf_model("llama"));
  auto ref = test::read_json(test::hf_model("llama") / "reference.json");
  const auto expected = test::ids_of(ref["greedy"][0]["output_ids"]);
  GenerateOptions opts{.max_new_tokens = 24, .sampling = {.greedy = true}, .stop_ids = {expected[5]}};
  auto out = generate(*model, nullptr, test::ids_of(ref["greedy"][0]["prompt_ids"]), opts);
  EXPECT_EQ(out[0].ids, std::vector<int64_t>(expected.begin(), expected.begin() + 6));
  EXPECT_EQ(out[0].finish_reason, "stop");
  EXPECT_THROW(generate(*model, nullptr, std::vector<int64_t>{}, opts), Error);
  opts.max_new_tokens = -1;
  EXPECT_THROW(generate(*model, nullptr, std::vector<int64_t>{1}, opts), Error);
  // gpt2 has 256 positions: a 250-token prompt gets at most 6 new tokens; a 300-token prompt is an error.
  auto gpt2 = Model::load(test::hf_model("gpt2"));
  GenerateOptions g{.max_new_tokens = 50, .sampling = {.greedy = true}};
  EXPECT_EQ(generate(*gpt2, nullptr, std::vector<int64_t>(250, 3), g)[0].ids.size(), 6u);
  EXPECT_THROW(generate(*gpt2, nullptr, std::vector<int64_t>(300, 3), g), Error);
}

}  // namespace

TEST(Generate, StopStringsCutTheTextAndEndGeneration) {
  auto model = Model::load(test::hf_model("llama"));
  auto tok = Tokenizer::from_dir(test::hf_model("llama"));
  const std::vector<int64_t> prompt = {360, 456, 274, 283, 294, 805, 308};
  GenerateOptions opts{.max_new_tokens = 24, .sampling = {.greedy = true}};
  auto full = generate(*model, &tok, prompt, opts)[0];
  // A stop string taken from the middle of the full greedy text: "an" plus its neighbours would be fragile, so use
  // the decoded text of tokens 10..11 and find where it first occurs.
  const std::string stop = tok.decode(std::vector<int32_t>(full.ids.begin() + 10, full.ids.begin() + 12));
  ASSERT_FALSE(stop.empty());
  const size_t cut = full.text.find(stop);
  ASSERT_NE(cut, std::string::npos);
  opts.stop_strings = {stop};
  auto stopped = generate(*model, &tok, prompt, opts)[0];
  std::printf("stop string '%s': %zu tokens instead of %zu, text '%s'\n", stop.c_str(), stopped.ids.size(),
              full.ids.size(), stopped.text.c_str());
  EXPECT_EQ(stopped.finish_reason, "stop");
  EXPECT_EQ(stopped.text, full.text.substr(0, cut));
  EXPECT_LE(stopped.ids.size(), 12u);
  EXPECT_TRUE(std::equal(stopped.ids.begin(), stopped.ids.end(), full.ids.begin()));
  opts.stop_strings = {""};
  EXPECT_THROW(generate(*model, &tok, prompt, opts), Error);
  opts.stop_strings = {"x"};
  EXPECT_THROW(generate(*model, nullptr, prompt, opts), Error) << "stop strings need a tokenizer";
}

// A model whose weights' vocabulary is padded past its tokenizer's (as Qwen2's is) can sample an id the tokenizer
// lacks: generation goes on and such ids decode to nothing (HF tokenizers skips them too), instead of aborting.
TEST(Generate, IdsPastTheTokenizersVocabularyDecodeToNothing) {
  const auto dir = test::hf_model("llama");
  const auto base = Model::load(dir);
  const auto tok = Tokenizer::from_dir(dir);
  ModelConfig c = base->config();
  ASSERT_LE(tok.vocab_size(), c.vocab_size);
  const int64_t pad = c.vocab_size - tok.vocab_size() + 2;  // two ids past the tokenizer
  c.vocab_size += pad;
  std::map<std::string, at::Tensor> named;
  for (const auto& [name, t] : base->named_weights()) named[name] = t.detach().clone();
  // The padded rows of the output head dominate every logit: greedy picks one of the padded ids.
  at::manual_seed(5);
  const at::Tensor w = at::randn({c.hidden_size}) * 1000;
  const at::Tensor extra = at::cat({w.unsqueeze(0), -w.unsqueeze(0), at::zeros({pad - 2, c.hidden_size})});
  for (auto& [name, t] : named)
    if (name == "lm_head.weight" || name.ends_with("embed_tokens.weight")) t = at::cat({t, extra});
  const auto padded = Model::from_weights(c, std::move(named));
  GenerateOptions o;
  o.max_new_tokens = 3;
  o.sampling.greedy = true;
  std::vector<GenerateResult> out;
  ASSERT_NO_THROW(out = generate(*padded, &tok, std::vector<int64_t>{1, 17, 230}, o));
  int64_t past = 0;
  for (int64_t id : out[0].ids) past += id >= tok.vocab_size();
  std::printf("generated ids past the tokenizer's %d: %lld of %zu; text \"%s\"\n", tok.vocab_size(),
              static_cast<long long>(past), out[0].ids.size(), out[0].text.c_str());
  EXPECT_GT(past, 0);
  EXPECT_EQ(out[0].text, decode_generated(tok, out[0].ids));
  EXPECT_EQ(decode_generated(tok, std::vector<int64_t>{1, tok.vocab_size() + 1, 2}),
            tok.decode(std::vector<int32_t>{1, 2}, /*skip_special=*/true));
}
