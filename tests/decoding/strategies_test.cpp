// Decoding strategies against naive twins that recompute every model over the whole text at every step (no cache,
// experts one after another, ARGS candidates one at a time), on the Hugging Face fixture models; bad parameters.
#include "palign/decoding/strategies.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <map>

#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/sampler.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
using palign::test::error_code_of;

namespace {

std::unique_ptr<Model> load(const std::string& name) { return Model::load(test::hf_model(name)); }

// Last-position logits [V] of a full recompute.
at::Tensor full_last(const Model& m, const std::vector<int64_t>& ids) {
  return m.forward_full(at::tensor(ids, at::kLong)).select(0, static_cast<int64_t>(ids.size()) - 1);
}

// The naive loop: scores from a full recompute of the whole history, the same sampler.
std::vector<int64_t> naive_decode(const std::function<at::Tensor(const std::vector<int64_t>&)>& scores,
                                  std::vector<int64_t> history, int64_t n, SamplingOptions sampling) {
  Sampler sampler(sampling);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = sampler.sample(scores(history).to(at::kFloat), history);
    out.push_back(t);
    history.push_back(t);
  }
  return out;
}

GenerateOptions options(int64_t n, bool greedy, uint64_t seed = 0) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.greedy = greedy;
  o.sampling.temperature = 0.8f;
  o.sampling.seed = seed;
  return o;
}

const std::vector<int64_t> kPrompt = {1, 17, 230, 5, 99};

TEST(Fusion, EqualsTheNaiveTwinGreedyAndSampled) {
  auto a = load("llama"), b = load("llama_untied_noscale"), c = load("qwen3");
  const std::vector<const Model*> models = {a.get(), b.get(), c.get()};
  const std::vector<double> w = {0.6, 0.9, -0.5};  // a negative weight extrapolates away from c
  auto naive_scores = [&](const std::vector<int64_t>& h) {
    at::Tensor s = at::zeros({a->config().vocab_size});
    for (size_t i = 0; i < models.size(); ++i) s += w[i] * at::log_softmax(full_last(*models[i], h), -1);
    return s;
  };
  for (bool greedy : {true, false}) {
    auto scorer = decoding::make_fusion(models, w, kPrompt);
    const auto fast = decoding::decode(*scorer, kPrompt, options(16, greedy, 7), a->config().max_position).ids;
    const auto naive = naive_decode(naive_scores, kPrompt, 16, options(16, greedy, 7).sampling);
    EXPECT_EQ(fast, naive) << (greedy ? "greedy" : "sampled");
    std::printf("fusion (%s): %zu tokens identical to the naive twin: %s\n", greedy ? "greedy" : "sampled", fast.size(),
                fast == naive ? "yes" : "no");
  }
  // One model with weight 1 is plain greedy decoding.
  auto one = decoding::make_fusion({a.get()}, {1.0}, kPrompt);
  const auto plain = generate(*a, nullptr, kPrompt, options(12, true))[0].ids;
  EXPECT_EQ(decoding::decode(*one, kPrompt, options(12, true), a->config().max_position).ids, plain);
}

// K LoRA experts of one base as K rows of one batched pass equal K separate models with the adapters merged in.
TEST(Fusion, LoraExpertsInOneBatchEqualMergedModels) {
  auto base = load("llama");
  std::vector<LoraAdapter> adapters;
  for (uint64_t seed : {1, 2}) {
    adapters.push_back(LoraAdapter::init(
        base->config(), {.r = 4, .alpha = 8, .target_modules = {"q_proj", "v_proj", "down_proj"}}, seed));
    at::manual_seed(static_cast<int64_t>(seed));
    at::NoGradGuard no_grad;
    for (auto& [name, t] : adapters.back().named_parameters())
      if (name.find("lora_B") != std::string::npos) t.copy_(at::randn_like(t) * 0.2);
  }
  const std::vector<const LoraAdapter*> experts = {&adapters[0], nullptr, &adapters[1]};
  const std::vector<double> w = {0.5, 0.3, 0.8};
  auto m0 = merge_lora(*base, adapters[0]), m2 = merge_lora(*base, adapters[1]);
  auto batched = decoding::make_lora_fusion(*base, experts, w, kPrompt);
  auto separate = decoding::make_fusion({m0.get(), base.get(), m2.get()}, w, kPrompt);
  const auto a = decoding::decode(*batched, kPrompt, options(16, true), base->config().max_position).ids;
  const auto b = decoding::decode(*separate, kPrompt, options(16, true), base->config().max_position).ids;
  EXPECT_EQ(a, b);
  std::printf("LoRA fusion, 3 experts in one batch vs 3 merged models: %zu tokens identical: %s\n", a.size(),
              a == b ? "yes" : "no");
  EXPECT_EQ(error_code_of([&] { decoding::make_lora_fusion(*base, experts, {1.0}, kPrompt); }),
            ErrorCode::kInvalidArgument);
}

TEST(Proxy, EqualsTheNaiveTwin) {
  auto base = load("llama"), expert = load("qwen3"), anti = load("llama_untied_noscale");
  const double alpha = 0.7;
  auto naive_scores = [&](const std::vector<int64_t>& h) {
    return full_last(*base, h) + alpha * (full_last(*expert, h) - full_last(*anti, h));
  };
  auto scorer = decoding::make_proxy(*base, *expert, *anti, alpha, kPrompt);
  const auto fast = decoding::decode(*scorer, kPrompt, options(16, true), base->config().max_position).ids;
  const auto naive = naive_decode(naive_scores, kPrompt, 16, options(16, true).sampling);
  EXPECT_EQ(fast, naive);
  std::printf("proxy: %zu tokens identical to the naive twin: %s\n", fast.size(), fast == naive ? "yes" : "no");
}

TEST(Contrast, EqualsTheNaiveTwin) {
  auto m = load("llama");
  const std::vector<int64_t> context = {1, 400, 401, 402};
  std::vector<int64_t> with = context;
  with.insert(with.end(), kPrompt.begin() + 1, kPrompt.end());
  const double lambda = 1.5;
  // The naive twin keeps both histories and recomputes each every step.
  Sampler sampler(options(14, true).sampling);
  std::vector<int64_t> hw = with, ho(kPrompt.begin(), kPrompt.end()), naive;
  for (int i = 0; i < 14; ++i) {
    const at::Tensor lw = full_last(*m, hw), lo = full_last(*m, ho);
    const int64_t t = sampler.sample(lw + lambda * (lw - lo), hw);
    naive.push_back(t);
    hw.push_back(t);
    ho.push_back(t);
  }
  auto scorer = decoding::make_contrast(*m, with, kPrompt, lambda);
  const auto fast = decoding::decode(*scorer, with, options(14, true), m->config().max_position).ids;
  EXPECT_EQ(fast, naive);
  std::printf("contrast: %zu tokens identical to the naive twin: %s\n", fast.size(), fast == naive ? "yes" : "no");
}

TEST(Args, EqualsTheNaiveTwin) {
  auto policy = load("llama"), reward = load("llama_rm");
  for (auto [k, w] : std::vector<std::pair<int64_t, double>>{{10, 1.5}, {3, -2.0}, {1, 5.0}}) {
    auto naive_scores = [&, k = k, w = w](const std::vector<int64_t>& h) {
      const at::Tensor lp = at::log_softmax(full_last(*policy, h), -1);
      const auto [top, idx] = at::topk(lp, k);
      at::Tensor s = at::full_like(lp, -std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < k; ++j) {
        std::vector<int64_t> ext = h;
        ext.push_back(idx[j].item<int64_t>());
        const at::Tensor ids = at::tensor(ext, at::kLong);
        const double r = reward->pick_sequence_score(ids, reward->forward_full(ids))[0].item<double>();
        s[idx[j].item<int64_t>()] = top[j].item<float>() + static_cast<float>(w * r);
      }
      return s;
    };
    auto scorer = decoding::make_args(*policy, *reward, k, w, kPrompt);
    const auto fast = decoding::decode(*scorer, kPrompt, options(12, true), policy->config().max_position).ids;
    const auto naive = naive_decode(naive_scores, kPrompt, 12, options(12, true).sampling);
    EXPECT_EQ(fast, naive) << "k=" << k << " w=" << w;
    std::printf("args k=%ld w=%.1f: %zu tokens identical to the naive twin: %s\n", static_cast<long>(k), w, fast.size(),
                fast == naive ? "yes" : "no");
  }
  // k = 1 is the policy's greedy path whatever the reward says.
  auto k1 = decoding::make_args(*policy, *reward, 1, 100.0, kPrompt);
  EXPECT_EQ(decoding::decode(*k1, kPrompt, options(12, true), policy->config().max_position).ids,
            generate(*policy, nullptr, kPrompt, options(12, true))[0].ids);
}

// A reward model on the policy's backbone: its weights (the same tensors) plus a random score head, as
// `palign train reward --method bt` writes.
std::unique_ptr<Model> reward_on(const Model& policy) {
  return runtime::classifier_on_backbone(
      policy, at::randn({1, policy.config().hidden_size}, at::TensorOptions().dtype(at::kFloat)) * 0.5);
}

// The builder names the policy's own classifier architecture, scores with the head, and rejects bad heads.
TEST(RewardOnBackbone, IsThePolicysClassifierWithTheHead) {
  auto policy = load("qwen3");
  const int64_t D = policy->config().hidden_size;
  const at::Tensor head = at::randn({2, D});
  const auto reward = runtime::classifier_on_backbone(*policy, head, {"a", "b"});
  EXPECT_EQ(reward->config().architecture, "Qwen3ForSequenceClassification");
  EXPECT_EQ(reward->config().num_labels, 2);
  const std::vector<int64_t> ids = {1, 5, 9, 14};
  runtime::ForwardOptions fo;
  fo.logits = runtime::ForwardOptions::Logits::kNone;
  fo.return_hidden = true;
  const at::Tensor last = policy->forward_uncached({.ids = at::tensor(ids, at::kLong).unsqueeze(0)}, fo).hidden[0][3];
  const double diff = (reward->score(ids) - at::matmul(head, last)).abs().max().item<double>();
  std::printf("reward_on_backbone score vs head x last hidden state: max-abs-diff %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_EQ(test::error_code_of([&] {
              runtime::classifier_on_backbone(*policy, at::randn({1, D + 1}));
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { runtime::classifier_on_backbone(*policy, head, {"only one"}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([&] { runtime::classifier_on_backbone(*reward, head); }), ErrorCode::kInvalidArgument);
}

// The shared-backbone path (one k-row policy forward per token gives the rewards and the next policy logits) against
// the naive twin and against the two-model path, greedy and sampled, tied and untied LM heads.
TEST(Args, SharedBackboneEqualsTheNaiveTwinAndTheTwoModelPath) {
  for (const char* name : {"llama", "llama_untied_noscale", "qwen3"}) {
    auto policy = load(name);
    at::manual_seed(5);
    auto shared = reward_on(*policy);
    // Equal values in other storage are still a shared backbone; a longer context is not (the two-model path).
    std::map<std::string, at::Tensor> copies;
    for (auto& [n, t] : shared->named_weights()) copies[n] = t.clone();
    auto shared_copy = Model::from_weights(shared->config(), copies);
    ModelConfig longer = shared->config();
    longer.max_position += 1;
    auto two_model_reward = Model::from_weights(longer, copies);
    const int64_t k = 6;
    const double weight = 2.0;
    auto naive_scores = [&](const std::vector<int64_t>& h) {
      const at::Tensor lp = at::log_softmax(full_last(*policy, h), -1);
      const auto [top, idx] = at::topk(lp, k);
      at::Tensor s = at::full_like(lp, -std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < k; ++j) {
        std::vector<int64_t> ext = h;
        ext.push_back(idx[j].item<int64_t>());
        const at::Tensor ids = at::tensor(ext, at::kLong);
        const double r = shared->pick_sequence_score(ids, shared->forward_full(ids))[0].item<double>();
        s[idx[j].item<int64_t>()] = top[j].item<float>() + static_cast<float>(weight * r);
      }
      return s;
    };
    for (bool greedy : {true, false}) {
      const GenerateOptions o = options(14, greedy, 3);
      const int64_t max_pos = policy->config().max_position;
      auto run = [&](const Model& reward) {
        auto scorer = decoding::make_args(*policy, reward, k, weight, kPrompt);
        return decoding::decode(*scorer, kPrompt, o, max_pos).ids;
      };
      const auto fast = run(*shared), by_value = run(*shared_copy), two_models = run(*two_model_reward);
      const auto naive = naive_decode(naive_scores, kPrompt, 14, o.sampling);
      EXPECT_EQ(fast, naive) << name << (greedy ? " greedy" : " sampled");
      EXPECT_EQ(fast, by_value) << name;
      EXPECT_EQ(fast, two_models) << name;
      std::printf(
          "args shared backbone, %s %s: %zu tokens identical to the naive twin: %s, to equal weights in other "
          "storage: %s, to the two-model path: %s\n",
          name, greedy ? "greedy" : "sampled", fast.size(), fast == naive ? "yes" : "no",
          fast == by_value ? "yes" : "no", fast == two_models ? "yes" : "no");
    }
  }
}

TEST(Strategies, BadParametersAreClearErrors) {
  auto llama = load("llama"), mistral = load("mistral"), rm = load("llama_rm");
  EXPECT_EQ(error_code_of([&] { decoding::make_args(*llama, *rm, 0, 1.0, kPrompt); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::make_args(*llama, *llama, 3, 1.0, kPrompt); }),
            ErrorCode::kInvalidArgument);  // not a reward model
  EXPECT_EQ(error_code_of([&] {
              decoding::make_fusion({llama.get(), llama.get()}, {1.0}, kPrompt);
            }),
            ErrorCode::kInvalidArgument);  // weights of the wrong count
  EXPECT_EQ(error_code_of([&] {
              decoding::make_fusion({llama.get(), mistral.get()}, {1.0, 1.0}, kPrompt);
            }),
            ErrorCode::kInvalidArgument);  // different vocabularies
  EXPECT_EQ(error_code_of([&] { decoding::make_proxy(*llama, *mistral, *llama, 1.0, kPrompt); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::make_fusion({}, {}, kPrompt); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::make_fusion({llama.get()}, {1.0}, std::vector<int64_t>{}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::make_fusion({llama.get()}, {1.0}, std::vector<int64_t>{5000}); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
