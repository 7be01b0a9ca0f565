// steer, prompt, best_of_n, cd_block, cards and folded reward heads: each fast path against a naive twin
// (full recompute, samples drawn one at a time), hand-computed cases, file round trips and bad inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "palign/base/error.h"
#include "palign/decoding/prompting.h"
#include "palign/decoding/rerank.h"
#include "palign/decoding/steering.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/model.h"
#include "palign/runtime/sampler.h"
#include "palign/runtime/tokenizer.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Model> load(const std::string& name) { return Model::load(test::hf_model(name)); }

using palign::test::fresh_dir;

GenerateOptions options(int64_t n, bool greedy, uint64_t seed = 0) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.greedy = greedy;
  o.sampling.temperature = 0.9f;
  o.sampling.seed = seed;
  return o;
}

const std::vector<int64_t> kPrompt = {1, 17, 230, 5, 99};

std::vector<scoring::SteeringVector> random_vectors(const ModelConfig& c, int64_t seed) {
  at::manual_seed(seed);
  std::vector<scoring::SteeringVector> v;
  v.push_back({.name = "humour", .layer = 0, .vector = at::randn({c.hidden_size})});
  v.push_back({.name = "length", .layer = c.n_layer - 1, .vector = at::randn({c.hidden_size})});
  v.push_back({.name = "topic", .layer = 0, .vector = at::randn({c.hidden_size})});
  return v;
}

// ---- steer ----

TEST(Steer, ZeroVectorsLeaveTheLogitsUnchanged) {
  for (const char* name : {"llama", "qwen3", "gpt2"}) {
    auto m = load(name);
    auto vectors = random_vectors(m->config(), 1);
    for (auto& v : vectors) v.vector.zero_();
    ForwardOptions steered;
    steered.residual_hook = decoding::steering_hook(vectors, {0.5, -2.0, 1.0}, 3.0);
    const at::Tensor ids = at::tensor(kPrompt, at::kLong);
    // note: within float32 tolerance, not bitwise: the hooked forward may run another linear kernel (see
    // LoraModels.FreshAdapterLeavesLogitsUnchanged).
    const double diff = (m->forward_full(ids, steered) - m->forward_full(ids)).abs().max().item<double>();
    std::printf("[%s] zero steering vectors: max-abs-diff of the logits = %.3g\n", name, diff);
    EXPECT_LE(diff, test::kF32Tol);
    // Zero weights too.
    steered.residual_hook = decoding::steering_hook(random_vectors(m->config(), 2), {0, 0, 0}, 5.0);
    const double zero_w = (m->forward_full(ids, steered) - m->forward_full(ids)).abs().max().item<double>();
    std::printf("[%s] zero steering weights: max-abs-diff of the logits = %.3g\n", name, zero_w);
    EXPECT_LE(zero_w, test::kF32Tol);
  }
}

// Hand-computed: the residual stream after the hook is the unsteered one plus Σ w·λ·v at each vector's layer.
TEST(Steer, AddsTheWeightedVectorsAtTheirLayers) {
  auto m = load("llama");
  const auto vectors = random_vectors(m->config(), 3);
  const std::vector<double> w = {0.5, -1.5, 2.0};
  const double lambda = 0.8;
  std::map<int64_t, at::Tensor> plain, steered;
  ForwardOptions fo;
  fo.trace = [&](int64_t layer, std::string_view name, const at::Tensor& x) {
    if (name == "layer_out") plain[layer] = x.clone();
  };
  const at::Tensor ids = at::tensor(kPrompt, at::kLong);
  // Layer 0's output alone (later layers see the steered stream, so compare the first steered layer only).
  m->forward_full(ids, fo);
  fo.trace = [&](int64_t layer, std::string_view name, const at::Tensor& x) {
    if (name == "layer_out") steered[layer] = x.clone();
  };
  fo.residual_hook = decoding::steering_hook(vectors, w, lambda);
  m->forward_full(ids, fo);
  const at::Tensor expect = plain[0] + (w[0] * lambda) * vectors[0].vector + (w[2] * lambda) * vectors[2].vector;
  const double diff = (steered[0] - expect).abs().max().item<double>();
  std::printf("steered layer-0 residual vs plain + w*lambda*v by hand: max-abs-diff = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
}

// The cached, batched sampler with the hook equals a full recompute with the hook at every step.
TEST(Steer, EqualsTheNaiveTwinGreedyAndSampled) {
  for (const char* name : {"llama", "mistral", "gpt2"}) {
    auto m = load(name);
    const auto vectors = random_vectors(m->config(), 4);
    auto hook = decoding::steering_hook(vectors, {1.0, -0.5, 0.7}, 0.6);
    for (bool greedy : {true, false}) {
      GenerateOptions o = options(14, greedy, 11);
      o.residual_hook = hook;
      const auto fast = generate(*m, nullptr, kPrompt, o, 3);
      for (int64_t i = 0; i < 3; ++i) {
        SamplingOptions so = o.sampling;
        so.seed += static_cast<uint64_t>(i);
        Sampler sampler(so);
        std::vector<int64_t> h = kPrompt, naive;
        ForwardOptions fo;
        fo.residual_hook = hook;
        for (int64_t t = 0; t < 14; ++t) {
          const at::Tensor logits = m->forward_full(at::tensor(h, at::kLong), fo);
          const int64_t next = sampler.sample(logits[static_cast<int64_t>(h.size()) - 1], h);
          naive.push_back(next), h.push_back(next);
        }
        EXPECT_EQ(fast[i].ids, naive) << name << (greedy ? " greedy" : " sampled") << " sample " << i;
      }
      std::printf("[%s] steer (%s): 3 batched samples identical to the naive twin: %s\n", name,
                  greedy ? "greedy" : "sampled", testing::Test::HasFailure() ? "no" : "yes");
    }
  }
}

TEST(Steer, FilesRoundTripAndBadFilesFail) {
  auto m = load("llama");
  const fs::path dir = fresh_dir("steer");
  const auto vectors = random_vectors(m->config(), 5);
  scoring::save_steering_vectors(dir / "v.safetensors", vectors);
  const auto back = scoring::load_steering_vectors(dir / "v.safetensors", m->config());
  ASSERT_EQ(back.size(), 3u);
  for (const auto& v : vectors) {
    const auto it = std::find_if(back.begin(), back.end(), [&](const auto& b) { return b.name == v.name; });
    ASSERT_NE(it, back.end());
    EXPECT_EQ(it->layer, v.layer);
    EXPECT_TRUE(at::equal(it->vector, v.vector)) << v.name;
  }
  // Another model: another hidden size / too few layers.
  ModelConfig wider = m->config();
  wider.hidden_size *= 2;
  EXPECT_EQ(error_code_of([&] { scoring::load_steering_vectors(dir / "v.safetensors", wider); }),
            ErrorCode::kInvalidArgument);
  ModelConfig shallow = m->config();
  shallow.n_layer = 1;
  EXPECT_EQ(error_code_of([&] { scoring::load_steering_vectors(dir / "v.safetensors", shallow); }),
            ErrorCode::kInvalidArgument);
  // A model's weights are not a steering file; a missing file is kNotFound.
  EXPECT_EQ(error_code_of(
                [&] { scoring::load_steering_vectors(test::hf_model("llama") / "model.safetensors", m->config()); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { scoring::load_steering_vectors(dir / "none.safetensors", m->config()); }),
            ErrorCode::kNotFound);
  // Repeated names, wrong shapes, no vectors, weights of the wrong count.
  auto twice = vectors;
  twice[1].name = "humour";
  EXPECT_EQ(error_code_of([&] { scoring::save_steering_vectors(dir / "x.safetensors", twice); }),
            ErrorCode::kInvalidArgument);
  auto bad = vectors;
  bad[2].vector = at::zeros({3});
  EXPECT_EQ(error_code_of([&] { scoring::save_steering_vectors(dir / "x.safetensors", bad); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { scoring::save_steering_vectors(dir / "x.safetensors", {}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::steering_hook(vectors, {1.0}, 1.0); }), ErrorCode::kInvalidArgument);
  fs::remove_all(dir);
}

// Batched, right-padded mean differences equal each sequence recomputed on its own.
TEST(Steer, MeanDifferenceEqualsPerSequenceMeans) {
  auto m = load("llama");
  const int64_t layer = 1;
  std::vector<scoring::TokenPair> pairs = {
      {{1, 5, 9}, {40, 41, 42, 43}, {50}},
      {{1, 7}, {60, 61}, {70, 71, 72, 73, 74, 75}},
      {{1, 2, 3, 4, 5, 6}, {80}, {90, 91}},
  };
  auto mean_of = [&](const std::vector<int64_t>& prompt, const std::vector<int64_t>& response) {
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), response.begin(), response.end());
    at::Tensor out;
    ForwardOptions fo;
    fo.trace = [&](int64_t l, std::string_view name, const at::Tensor& x) {
      if (l == layer && name == "layer_out") out = x.clone();
    };
    m->forward_full(at::tensor(ids, at::kLong), fo);
    return out.reshape({-1, m->config().hidden_size})
        .narrow(0, static_cast<int64_t>(prompt.size()), static_cast<int64_t>(response.size()))
        .mean(0);
  };
  at::Tensor chosen = at::zeros({m->config().hidden_size}), rejected = at::zeros({m->config().hidden_size});
  for (const auto& p : pairs)
    chosen += mean_of(p.prompt, p.chosen) / 3.0, rejected += mean_of(p.prompt, p.rejected) / 3.0;
  const at::Tensor fast = scoring::mean_difference_vector(*m, pairs, layer);
  const double diff = (fast - (chosen - rejected)).abs().max().item<double>();
  std::printf("mean-difference vector, batched vs one by one: max-abs-diff = %.3g\n", diff);
  EXPECT_LT(diff, test::kF32Tol);
  EXPECT_EQ(error_code_of([&] { scoring::mean_difference_vector(*m, {}, layer); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { scoring::mean_difference_vector(*m, pairs, 99); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] {
              scoring::mean_difference_vector(*m, {{{1}, {}, {2}}}, 0);
            }),
            ErrorCode::kInvalidArgument);
}

// ---- best_of_n, cd_block ----

// A reward over continuations: how many of its tokens are even (any deterministic function will do).
std::vector<double> even_tokens(const std::vector<std::vector<int64_t>>& cs) {
  std::vector<double> out;
  for (const auto& c : cs)
    out.push_back(static_cast<double>(std::count_if(c.begin(), c.end(), [](int64_t t) { return t % 2 == 0; })));
  return out;
}

TEST(Rerank, BestOfNEqualsSamplesDrawnOneAtATime) {
  auto m = load("llama");
  for (uint64_t seed : {3u, 40u}) {
    decoding::RerankCost cost;
    const auto fast = decoding::best_of_n(*m, nullptr, kPrompt, options(10, false, seed), 6, even_tokens, &cost);
    std::vector<std::vector<int64_t>> one_by_one;
    for (int64_t i = 0; i < 6; ++i)
      one_by_one.push_back(generate(*m, nullptr, kPrompt, options(10, false, seed + i), 1)[0].ids);
    const auto scores = even_tokens(one_by_one);
    const auto best = std::max_element(scores.begin(), scores.end()) - scores.begin();
    EXPECT_EQ(fast.ids, one_by_one[best]);
    EXPECT_EQ(cost.scored, 6);
    EXPECT_EQ(cost.batches, 1);
    std::printf("best-of-6 (seed %llu): batched pick = one-by-one pick (sample %lld, score %.0f): %s\n",
                static_cast<unsigned long long>(seed), static_cast<long long>(best), scores[best],
                fast.ids == one_by_one[best] ? "yes" : "no");
  }
  // n = 1 is the plain sampler.
  EXPECT_EQ(decoding::best_of_n(*m, nullptr, kPrompt, options(10, false, 9), 1, even_tokens).ids,
            generate(*m, nullptr, kPrompt, options(10, false, 9), 1)[0].ids);
  EXPECT_EQ(error_code_of([&] { decoding::best_of_n(*m, nullptr, kPrompt, options(5, false), 0, even_tokens); }),
            ErrorCode::kInvalidArgument);
  auto short_scorer = [](const std::vector<std::vector<int64_t>>&) { return std::vector<double>{1.0}; };
  EXPECT_EQ(error_code_of([&] { decoding::best_of_n(*m, nullptr, kPrompt, options(5, false), 3, short_scorer); }),
            ErrorCode::kInvalidArgument);
}

TEST(Rerank, CdBlockEqualsItsNaiveTwin) {
  auto m = load("qwen2");
  const int64_t k = 4, block = 3, budget = 11;
  for (uint64_t seed : {0u, 21u}) {
    const auto fast = decoding::cd_block(*m, nullptr, kPrompt, options(budget, false, seed), k, block, even_tokens);
    // Naive: every candidate sampled on its own from the whole text so far, the first best kept.
    std::vector<int64_t> kept;
    for (int64_t b = 0; static_cast<int64_t>(kept.size()) < budget; ++b) {
      std::vector<int64_t> context = kPrompt;
      context.insert(context.end(), kept.begin(), kept.end());
      std::vector<std::vector<int64_t>> cands;
      const int64_t n = std::min<int64_t>(block, budget - static_cast<int64_t>(kept.size()));
      for (int64_t i = 0; i < k; ++i) {
        auto ids = generate(*m, nullptr, context, options(n, false, seed + b * k + i), 1)[0].ids;
        cands.push_back(kept);
        cands.back().insert(cands.back().end(), ids.begin(), ids.end());
      }
      const auto scores = even_tokens(cands);
      kept = cands[std::max_element(scores.begin(), scores.end()) - scores.begin()];
    }
    EXPECT_EQ(fast.ids, kept);
    std::printf("cd_block k=%lld B=%lld (seed %llu): %zu tokens identical to the naive twin: %s\n",
                static_cast<long long>(k), static_cast<long long>(block), static_cast<unsigned long long>(seed),
                fast.ids.size(), fast.ids == kept ? "yes" : "no");
  }
  EXPECT_EQ(error_code_of([&] { decoding::cd_block(*m, nullptr, kPrompt, options(5, false), 0, 2, even_tokens); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { decoding::cd_block(*m, nullptr, kPrompt, options(5, false), 2, 0, even_tokens); }),
            ErrorCode::kInvalidArgument);
}

// ---- cards ----

// softmax entropy in nats, the plain way.
double naive_entropy(const at::Tensor& logits) {
  const auto l = logits.to(at::kDouble).contiguous();
  const double* x = l.data_ptr<double>();
  double m = -INFINITY, z = 0, h = 0;
  for (int64_t v = 0; v < l.numel(); ++v) m = std::max(m, x[v]);
  for (int64_t v = 0; v < l.numel(); ++v) z += std::exp(x[v] - m);
  for (int64_t v = 0; v < l.numel(); ++v) {
    const double p = std::exp(x[v] - m) / z;
    if (p > 0) h -= p * std::log(p);
  }
  return h;
}

TEST(Rerank, NextTokenEntropyHandComputed) {
  const double uniform = decoding::next_token_entropy(at::zeros({8}));
  EXPECT_NEAR(uniform, std::log(8.0), 1e-12);
  const double certain = decoding::next_token_entropy(at::tensor({0.0f, -INFINITY, -INFINITY}));
  EXPECT_NEAR(certain, 0.0, 1e-12);
  const double quarter = decoding::next_token_entropy(at::tensor({0.0, std::log(3.0)}));  // p = (1/4, 3/4)
  const double expected = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  EXPECT_NEAR(quarter, expected, 1e-12);
  std::printf("entropy: uniform over 8 %.12f (log 8 %.12f), (1/4, 3/4) %.12f vs %.12f\n", uniform, std::log(8.0),
              quarter, expected);
}

// CARDS against a naive twin: every candidate sampled on its own by full recompute of the whole text at each step,
// its segment cut by a plainly computed entropy, the first candidate clearing the threshold kept (else the best seen).
TEST(Rerank, CardsEqualsItsNaiveTwin) {
  auto m = load("llama");
  // A threshold inside the entropies this model gives, so that some segments end by uncertainty and some by length.
  std::vector<double> seen;
  {
    std::vector<int64_t> ids = kPrompt;
    for (int t = 0; t < 12; ++t) {
      const at::Tensor last = m->forward_full(at::tensor(ids, at::kLong))[-1];
      seen.push_back(naive_entropy(last));
      ids.push_back(last.argmax().item<int64_t>());
    }
    std::sort(seen.begin(), seen.end());
  }
  decoding::CardsOptions c;
  c.k = 3;
  c.rounds = 2;
  c.max_segment = 4;
  c.margin = 2;  // a segment needs 2 more even tokens: some rounds reject every candidate
  c.entropy = seen[seen.size() / 2];
  const int64_t budget = 14;
  int64_t cut_by_entropy = 0, rejected_rounds = 0, fallbacks = 0;
  for (uint64_t seed : {0u, 5u, 77u}) {
    decoding::RerankCost cost;
    const auto fast = decoding::cards(*m, nullptr, kPrompt, options(budget, false, seed), c, even_tokens, &cost);
    std::vector<int64_t> kept;
    double current = even_tokens({{}})[0];
    int64_t tokens = 0;
    for (int64_t s = 0; static_cast<int64_t>(kept.size()) < budget; ++s) {
      const int64_t n = std::min<int64_t>(c.max_segment, budget - static_cast<int64_t>(kept.size()));
      std::optional<std::vector<int64_t>> chosen;
      double chosen_score = -INFINITY;
      for (int64_t r = 0; r < c.rounds; ++r) {
        std::vector<std::vector<int64_t>> cands;
        for (int64_t i = 0; i < c.k; ++i) {
          Sampler sampler(options(n, false, seed + static_cast<uint64_t>((s * c.rounds + r) * c.k + i)).sampling);
          std::vector<int64_t> ids = kPrompt, segment;
          ids.insert(ids.end(), kept.begin(), kept.end());
          while (static_cast<int64_t>(segment.size()) < n) {
            const at::Tensor last = m->forward_full(at::tensor(ids, at::kLong))[-1];
            if (!segment.empty() && naive_entropy(last) > c.entropy) {
              ++cut_by_entropy;
              break;
            }
            const int64_t t = sampler.sample(last, ids);
            ids.push_back(t);
            segment.push_back(t);
          }
          tokens += static_cast<int64_t>(segment.size());
          cands.push_back(kept);
          cands.back().insert(cands.back().end(), segment.begin(), segment.end());
        }
        const auto scores = even_tokens(cands);
        size_t accepted = cands.size();
        for (size_t i = 0; i < cands.size() && accepted == cands.size(); ++i)
          if (scores[i] >= current + c.margin) accepted = i;
        if (accepted < cands.size()) {
          chosen = cands[accepted], chosen_score = scores[accepted];
          break;
        }
        ++rejected_rounds;
        for (size_t i = 0; i < cands.size(); ++i)
          if (!chosen || scores[i] > chosen_score) chosen = cands[i], chosen_score = scores[i];
        fallbacks += r == c.rounds - 1;
      }
      kept = *chosen;
      current = chosen_score;
    }
    EXPECT_EQ(fast.ids, kept) << "seed " << seed;
    EXPECT_EQ(cost.tokens, tokens) << "seed " << seed;
    std::printf("cards k=%lld rounds=%lld entropy>%.3f (seed %llu): %zu tokens identical to the naive twin: %s\n",
                static_cast<long long>(c.k), static_cast<long long>(c.rounds), c.entropy,
                static_cast<unsigned long long>(seed), fast.ids.size(), fast.ids == kept ? "yes" : "no");
  }
  std::printf("cards twin: %lld segments cut by entropy, %lld rounds rejected, %lld segments kept as the best seen\n",
              static_cast<long long>(cut_by_entropy), static_cast<long long>(rejected_rounds),
              static_cast<long long>(fallbacks));
  EXPECT_GT(cut_by_entropy, 0);
  EXPECT_GT(rejected_rounds, 0);
  EXPECT_GT(fallbacks, 0);
  // An infinite threshold never cuts: every segment is max_segment long but the last.
  decoding::CardsOptions never = c;
  never.entropy = 1e9;
  never.margin = -1e9;  // the first candidate is always accepted: the plain sampler's first sample, segment by segment
  const auto plain = decoding::cards(*m, nullptr, kPrompt, options(8, false, 3), never, even_tokens);
  EXPECT_EQ(plain.ids.size(), 8u);
  for (auto bad : std::vector<std::function<void(decoding::CardsOptions&)>>{
           [](auto& o) { o.k = 0; }, [](auto& o) { o.rounds = 0; }, [](auto& o) { o.max_segment = 0; },
           [](auto& o) { o.entropy = -1; }, [](auto& o) { o.entropy = NAN; }, [](auto& o) { o.margin = INFINITY; }}) {
    decoding::CardsOptions o = c;
    bad(o);
    EXPECT_EQ(error_code_of([&] { decoding::cards(*m, nullptr, kPrompt, options(5, false), o, even_tokens); }),
              ErrorCode::kInvalidArgument);
  }
  auto short_scorer = [](const std::vector<std::vector<int64_t>>&) { return std::vector<double>{}; };
  EXPECT_EQ(error_code_of([&] { decoding::cards(*m, nullptr, kPrompt, options(5, false), c, short_scorer); }),
            ErrorCode::kInvalidArgument);
}

// The reward's KV cache of the accepted text (each round forwards only its segments) against the same reward
// recomputed on the whole text for every candidate: the same tokens, with rounds accepted at once (margin -inf), by
// the threshold (margin 0) and never (every segment the best seen over its rounds, often an earlier round's).
TEST(Rerank, CardsCachedRewardEqualsTheRecomputedReward) {
  auto m = load("llama");
  at::manual_seed(11);
  const auto rm = runtime::classifier_on_backbone(*m, at::randn({1, m->config().hidden_size}));
  const decoding::ContinuationScorer full = [&](const std::vector<std::vector<int64_t>>& cs) {
    std::vector<double> out;
    for (const auto& c : cs) {
      std::vector<int64_t> ids = kPrompt;
      ids.insert(ids.end(), c.begin(), c.end());
      out.push_back(rm->forward_full(at::tensor(ids, at::kLong))[-1][0].item<double>());
    }
    return out;
  };
  for (double margin : {-1e9, 0.0, 1e9})
    for (uint64_t seed : {1u, 9u}) {
      const decoding::CardsOptions c{.k = 3, .entropy = 5.0, .margin = margin, .rounds = 2, .max_segment = 4};
      decoding::RerankCost cached_cost, full_cost;
      const auto cached = decoding::cards(*m, nullptr, kPrompt, options(13, false, seed), c, *rm, &cached_cost);
      const auto recomputed = decoding::cards(*m, nullptr, kPrompt, options(13, false, seed), c, full, &full_cost);
      EXPECT_EQ(cached.ids, recomputed.ids) << "margin " << margin << " seed " << seed;
      EXPECT_EQ(cached_cost.tokens, full_cost.tokens);
      EXPECT_EQ(cached_cost.scored, full_cost.scored);
      EXPECT_EQ(cached.ids.size(), 13u);
      std::printf("cards, cached reward, margin %g seed %llu: %zu tokens identical to the recomputed reward's: %s\n",
                  margin, static_cast<unsigned long long>(seed), cached.ids.size(),
                  cached.ids == recomputed.ids ? "yes" : "no");
    }
  const auto multi = runtime::classifier_on_backbone(*m, at::randn({2, m->config().hidden_size}));
  EXPECT_EQ(error_code_of([&] { decoding::cards(*m, nullptr, kPrompt, options(5, false), {}, *multi); }),
            ErrorCode::kInvalidArgument);
}

// ---- prompt ----

TEST(Prompt, RanksByWordOverlap) {
  const std::vector<std::string> docs = {"the cat sat", "Dogs bark at the CAT!", "nothing here", "cat dogs bark"};
  // Jaccard with {dogs, bark, cat}: 1/5, 3/5, 0, 3/3.
  EXPECT_EQ(decoding::rank_by_overlap("cat, dogs bark", docs), (std::vector<size_t>{3, 1, 0, 2}));
  EXPECT_EQ(decoding::rank_by_overlap("", docs), (std::vector<size_t>{0, 1, 2, 3}));  // ties keep the order
}

TEST(Prompt, BuildsStatementThenDocumentsNearestLastThenPrompt) {
  const auto tok = Tokenizer::from_dir(test::hf_model("llama"));
  auto enc = [&](const std::string& s) {
    auto ids = tok.encode(s, true);
    std::vector<int64_t> out(ids.begin(), ids.end());
    if (tok.eos_id()) out.push_back(*tok.eos_id());
    return out;
  };
  const std::vector<int64_t> prompt = {1, 300, 301};
  const auto s = enc("I like puns."), d1 = enc("best doc"), d2 = enc("second doc");
  std::vector<int64_t> expect = s;
  for (const auto* part : {&d2, &d1, &prompt}) expect.insert(expect.end(), part->begin(), part->end());
  EXPECT_EQ(decoding::personalized_prompt(tok, "I like puns.", {"best doc", "second doc", "third"}, prompt, 1000, 2),
            expect);
  // Room for the statement, one document and the prompt only: the second document is skipped.
  const auto room = static_cast<int64_t>(s.size() + d1.size() + prompt.size());
  expect = s;
  for (const auto* part : {&d1, &prompt}) expect.insert(expect.end(), part->begin(), part->end());
  EXPECT_EQ(decoding::personalized_prompt(tok, "I like puns.", {"best doc", "second doc"}, prompt, room, 3), expect);
  // No statement, no documents: the prompt itself.
  EXPECT_EQ(decoding::personalized_prompt(tok, "", {}, prompt, 10), prompt);
  EXPECT_EQ(error_code_of([&] { decoding::personalized_prompt(tok, "I like puns.", {}, prompt, 3); }),
            ErrorCode::kInvalidArgument);
}

// ---- a multi-objective reward folded into one head ----

TEST(WeightedReward, EqualsTheWeightedSumOfTheLabels) {
  auto rm = load("llama_rm_multi");
  const int64_t k = rm->config().num_labels;
  ASSERT_GT(k, 1);
  std::vector<double> w;
  for (int64_t i = 0; i < k; ++i) w.push_back(0.5 - 0.75 * static_cast<double>(i));
  const auto folded = runtime::weighted_classifier(*rm, w);
  EXPECT_EQ(folded->config().num_labels, 1);
  const std::vector<int64_t> ids = {1, 44, 9, 300, 12};
  const at::Tensor scores = rm->score(ids);
  double expect = 0;
  for (int64_t i = 0; i < k; ++i) expect += w[i] * scores[i].item<double>();
  const double diff = std::abs(folded->score(ids)[0].item<double>() - expect);
  std::printf("folded multi-objective head vs the weighted sum of its %lld labels: abs diff = %.3g\n",
              static_cast<long long>(k), diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_EQ(error_code_of([&] { runtime::weighted_classifier(*rm, {1.0}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { runtime::weighted_classifier(*load("llama"), {1.0}); }), ErrorCode::kInvalidArgument);
}

}  // namespace
