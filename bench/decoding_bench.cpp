// Decoding strategies' cost per generated token on the shipped default model, as ratios to plain greedy decoding
// measured in the same run (issue goals: ARGS k = 10 at most 3x, fusion of 3 LoRA experts at most 1.6x, best-of-16
// at most 4x one sample, value-guided decoding k = 10 at most 2.5x, CARDS below best-of-N at the same reward), each
// beside its naive twin (the prefix recomputed every step; experts one after another)
// to show what batching and cache sharing buy. First checks that the fast paths give their naive twins' tokens.
// The fast strategies are timed in interleaved rounds (best of each), so a busy machine slows every ratio's two
// sides alike. Times include the scorers' prompt prefill, amortised over the generated tokens. The linears run on the
// CPU's best small-batch kernel; PALIGN_LINEAR_KERNEL=avx2 or =blas measures a lesser one (runtime/linear.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "bench_util.h"
#include "palign/decoding/rerank.h"
#include "palign/decoding/strategies.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/linear.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/runtime/sampler.h"

using namespace palign;
using namespace palign::runtime;
using namespace palign::bench_util;
namespace fs = std::filesystem;

namespace {

GenerateOptions greedy(int64_t n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.greedy = true;
  return o;
}

// A reward model on the policy's backbone: the same weights plus a random score head (what `palign train reward
// --method bt` writes).
std::unique_ptr<Model> reward_on(const Model& policy) {
  at::manual_seed(3);
  return runtime::classifier_on_backbone(policy, at::randn({1, policy.config().hidden_size}) * 0.05);
}

// The reward of continuations of prompt: the reward model on prompt + continuation, every continuation a row of one
// right-padded forward (each row's score at its own last token).
decoding::ContinuationScorer score_of(const Model& reward, const std::vector<int64_t>& prompt) {
  return [&reward, prompt](const std::vector<std::vector<int64_t>>& continuations) {
    int64_t longest = 0;
    for (const auto& c : continuations)
      longest = std::max<int64_t>(longest, static_cast<int64_t>(prompt.size() + c.size()));
    at::Tensor ids = at::zeros({static_cast<int64_t>(continuations.size()), longest}, at::kLong);
    std::vector<int64_t> n_tokens;
    for (size_t i = 0; i < continuations.size(); ++i) {
      std::vector<int64_t> row = prompt;
      row.insert(row.end(), continuations[i].begin(), continuations[i].end());
      ids[static_cast<int64_t>(i)].narrow(0, 0, static_cast<int64_t>(row.size())).copy_(at::tensor(row, at::kLong));
      n_tokens.push_back(static_cast<int64_t>(row.size()));
    }
    ForwardOptions fo;
    fo.logits = ForwardOptions::Logits::kLast;
    const at::Tensor scores = reward.forward_uncached(Batch{.ids = ids, .n_tokens = n_tokens}, fo).logits;
    std::vector<double> out;
    for (size_t i = 0; i < continuations.size(); ++i) out.push_back(scores[static_cast<int64_t>(i)][0].item<double>());
    return out;
  };
}

// The naive loop: next-token scores from a full recompute of the whole history.
std::vector<int64_t> naive_greedy(const std::function<at::Tensor(const std::vector<int64_t>&)>& scores,
                                  std::vector<int64_t> h, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = scores(h).argmax().item<int64_t>();
    out.push_back(t);
    h.push_back(t);
  }
  return out;
}

at::Tensor full_last(const Model& m, const std::vector<int64_t>& ids, const LinearHook* hook = nullptr) {
  ForwardOptions fo;
  fo.linear_hook = hook;
  return m.forward_full(at::tensor(ids, at::kLong), fo).select(0, static_cast<int64_t>(ids.size()) - 1);
}

// --strategy value (k = 10, a value head on the policy's backbone: ARGS's one k-row pass per token) per token against
// plain greedy decoding, and CARDS against best-of-N on the same reward (the random reward head scoring the whole
// text so far): mean reward and time per response over prompts and seeds, sampled at temperature 1.
bool value_and_cards(const Model& policy, const Model& reward, const std::vector<int64_t>& base_prompt, int64_t n) {
  const int64_t V = policy.config().vocab_size;
  decoding::StrategySetup setup;
  setup.model = &policy;
  setup.inputs.reward_classifier = &reward;
  setup.options.value_k = 10;
  decoding::StrategyRequest request;
  request.prompt = base_prompt;
  request.options = greedy(n);
  auto value = decoding::make_strategy("value", setup);
  setup.options.value_k = 1;
  const bool value_ok = decoding::make_strategy("value", setup)->generate(request)[0].ids ==
                        generate(policy, nullptr, base_prompt, greedy(n))[0].ids;
  std::printf("check: value k=1 gives plain greedy tokens: %s\n", value_ok ? "yes" : "NO");
  if (!value_ok) return false;
  const std::vector<double> t = best_interleaved(
      5, {[&] { generate(policy, nullptr, base_prompt, greedy(n)); }, [&] { value->generate(request); }});
  std::printf(
      "| value k=10 (--strategy value: the policy's pass and one 10-row pass of the value head per token) | "
      "%.2f | %.2fx | <= 2.5x | | |\n\n",
      1e3 * t[1] / n, t[1] / t[0]);

  // The policy's next-token entropy along sampled text: where CARDS' threshold sits among its values.
  GenerateOptions sampled;
  sampled.max_new_tokens = n;
  sampled.sampling.temperature = 1.0f;
  std::vector<double> entropies;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    GenerateOptions o = sampled;
    o.sampling.seed = seed;
    std::vector<int64_t> ids = base_prompt;
    const auto out = generate(policy, nullptr, base_prompt, o)[0].ids;
    ids.insert(ids.end(), out.begin(), out.end());
    const at::Tensor logits = policy.forward_full(at::tensor(ids, at::kLong));
    for (int64_t j = static_cast<int64_t>(base_prompt.size()); j < static_cast<int64_t>(ids.size()); ++j)
      entropies.push_back(decoding::next_token_entropy(logits[j]));
  }
  std::sort(entropies.begin(), entropies.end());
  const auto q = [&](double p) {
    return entropies[static_cast<size_t>(p * static_cast<double>(entropies.size() - 1))];
  };
  std::printf("next-token entropy of sampled text (nats; log V = %.2f): p10 %.2f, p50 %.2f, p75 %.2f, p90 %.2f\n",
              std::log(static_cast<double>(V)), q(0.1), q(0.5), q(0.75), q(0.9));

  // The batched reward against each sequence scored alone.
  {
    const std::vector<std::vector<int64_t>> cs = {{5}, {7, 8, 9, 10}, {}};
    const auto batched = score_of(reward, base_prompt)(cs);
    double worst = 0;
    for (size_t i = 0; i < cs.size(); ++i) {
      std::vector<int64_t> ids = base_prompt;
      ids.insert(ids.end(), cs[i].begin(), cs[i].end());
      worst = std::max(worst, std::abs(batched[i] - reward.score(ids)[0].item<double>()));
    }
    std::printf("check: the batched reward of 3 right-padded continuations vs each alone: max |diff| %.2g: %s\n", worst,
                worst < 1e-4 ? "yes" : "NO");
    if (worst >= 1e-4) return false;
  }

  // Prompts: the bench prompt with one token changed, each with 2 seeds.
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t i = 0; i < 6; ++i) {
    std::vector<int64_t> p = base_prompt;
    p[1] = 100 + 37 * i;
    prompts.push_back(p);
  }
  struct Row {
    std::string name;
    std::function<GenerateResult(const std::vector<int64_t>&, uint64_t, decoding::RerankCost*)> run;
    std::vector<double> rewards;  // per output, in the same (prompt, seed) order for every row
    double seconds = 0, tokens = 0, scored = 0, steps = 0;
  };
  std::vector<Row> rows;
  const std::vector<int64_t> best_of = {2, 4, 8, 12, 16};
  for (int64_t bo : best_of)
    rows.push_back({"best-of-" + std::to_string(bo),
                    [&, bo](const std::vector<int64_t>& p, uint64_t seed, decoding::RerankCost* cost) {
                      GenerateOptions o = sampled;
                      o.sampling.seed = seed;
                      return decoding::best_of_n(policy, nullptr, p, o, bo, score_of(reward, p), cost);
                    }});
  // CARDS with the reward's KV cache (each round forwards only its segments), and one row with the reward
  // recomputed on the whole text for every candidate (any ContinuationScorer) to show what the cache buys. k=4
  // rounds=2 samples the same candidates in the same order as k=8 rounds=1, so it gives the same outputs.
  for (const auto& [k, rounds, entropy, cached] :
       std::vector<std::tuple<int64_t, int64_t, double, bool>>{{4, 2, 5.5, false},
                                                               {4, 1, 4.5, true},
                                                               {4, 1, 5.5, true},
                                                               {4, 2, 5.5, true},
                                                               {4, 3, 5.5, true},
                                                               {4, 2, 1e9, true}}) {
    decoding::CardsOptions c{.k = k, .entropy = entropy, .margin = 0, .rounds = rounds, .max_segment = 16};
    char name[128];
    std::snprintf(name, sizeof name, "cards k=%lld rounds=%lld entropy>%s%s", static_cast<long long>(k),
                  static_cast<long long>(rounds),
                  entropy > 100 ? "never (16-token segments)" : (entropy < 5 ? "4.5" : "5.5"),
                  cached ? "" : " (reward recomputed per candidate)");
    rows.push_back({name, [&, c, cached](const std::vector<int64_t>& p, uint64_t seed, decoding::RerankCost* cost) {
                      GenerateOptions o = sampled;
                      o.sampling.seed = seed;
                      return cached ? decoding::cards(policy, nullptr, p, o, c, reward, cost)
                                    : decoding::cards(policy, nullptr, p, o, c, score_of(reward, p), cost);
                    }});
  }
  {
    const decoding::CardsOptions c{.k = 4, .entropy = 5.5, .margin = 0, .rounds = 2, .max_segment = 16};
    GenerateOptions o = sampled;
    o.sampling.seed = 7;
    const bool same = decoding::cards(policy, nullptr, base_prompt, o, c, reward).ids ==
                      decoding::cards(policy, nullptr, base_prompt, o, c, score_of(reward, base_prompt)).ids;
    std::printf("check: cards with the reward's KV cache gives the recomputed reward's tokens: %s\n",
                same ? "yes" : "NO");
    if (!same) return false;
  }
  const std::vector<uint64_t> seeds = {0, 1000, 2000, 3000};
  const auto outputs = static_cast<double>(prompts.size() * seeds.size());
  for (auto& row : rows) row.run(prompts[0], 99, nullptr);  // warm-up
  for (auto& row : rows)
    for (const auto& p : prompts)
      for (uint64_t seed : seeds) {
        decoding::RerankCost cost;
        GenerateResult r;
        row.seconds += best_seconds(1, [&] { r = row.run(p, seed, &cost); });
        std::vector<int64_t> ids = p;
        ids.insert(ids.end(), r.ids.begin(), r.ids.end());
        row.rewards.push_back(reward.score(ids)[0].item<double>());
        row.tokens += static_cast<double>(cost.tokens);
        row.scored += static_cast<double>(cost.scored);
        row.steps += static_cast<double>(cost.steps ? cost.steps : std::ssize(r.ids));  // best-of-N: its length
      }
  // Mean and standard error of per-output values.
  const auto mean_se = [](const std::vector<double>& v) {
    double m = 0, ss = 0;
    for (double x : v) m += x;
    m /= static_cast<double>(v.size());
    for (double x : v) ss += (x - m) * (x - m);
    return std::pair<double, double>{m,
                                     std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()))};
  };
  std::printf(
      "\nCARDS and best-of-N on one reward (%.0f outputs of up to %lld tokens each: %zu prompts x %zu seeds, "
      "sampled at temperature 1; reward ± its standard error over outputs):\n",
      outputs, static_cast<long long>(n), prompts.size(), seeds.size());
  std::printf(
      "| method | mean reward | ms per response | tokens sampled | reward calls | batched decode steps |\n"
      "|---|---|---|---|---|---|\n");
  for (const auto& row : rows) {
    const auto [m, se] = mean_se(row.rewards);
    std::printf("| %s | %.3f ± %.3f | %.1f | %.0f | %.1f | %.0f |\n", row.name.c_str(), m, se,
                1e3 * row.seconds / outputs, row.tokens / outputs, row.scored / outputs, row.steps / outputs);
  }
  // The cheapest best-of-N whose mean reward reaches each CARDS row's, with the paired difference (same prompts and
  // seeds) and its 95% interval.
  for (size_t c = best_of.size(); c < rows.size(); ++c) {
    const double target = mean_se(rows[c].rewards).first;
    size_t match = best_of.size() - 1;
    for (size_t b = 0; b < best_of.size(); ++b)
      if (mean_se(rows[b].rewards).first >= target) {
        match = b;
        break;
      }
    std::vector<double> diff;
    for (size_t i = 0; i < rows[c].rewards.size(); ++i) diff.push_back(rows[c].rewards[i] - rows[match].rewards[i]);
    const auto [d, se] = mean_se(diff);
    std::printf("%s: reward %+.3f [%+.3f, %+.3f] vs %s (%s), which takes %.2fx the time of cards\n",
                rows[c].name.c_str(), d, d - 1.96 * se, d + 1.96 * se, rows[match].name.c_str(),
                std::abs(d) < 1.96 * se ? "inside the noise" : (d > 0 ? "cards higher" : "cards lower"),
                rows[match].seconds / rows[c].seconds);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path model_dir = argc > 1 ? fs::path(argv[1]) : fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
  std::printf("palign decoding bench: libtorch %s, %d torch threads, %s, linear kernel %s\n", TORCH_VERSION,
              at::get_num_threads(), blas_description().c_str(),
              std::string(linear_kernel_name(default_linear_kernel())).c_str());
  c10::InferenceMode guard;
  const auto policy = Model::load(model_dir);
  const auto reward = reward_on(*policy);
  const ModelConfig& c = policy->config();
  const std::vector<int64_t> prompt = {0, 112, 430, 57, 1021, 88, 9, 311};
  const int64_t n = 48, n_naive = 12;
  std::vector<LoraAdapter> experts;
  for (uint64_t s : {1, 2, 3}) experts.push_back(random_expert(c, s));
  const std::vector<const LoraAdapter*> expert_ptrs = {&experts[0], &experts[1], &experts[2]};
  const std::vector<double> w = {0.5, 0.3, 0.2};

  std::vector<std::unique_ptr<Model>> merged;
  for (const auto& e : experts) merged.push_back(merge_lora(*policy, e));
  const std::vector<const Model*> merged_ptrs = {merged[0].get(), merged[1].get(), merged[2].get()};

  // The naive twins: every step recomputes the whole history; ARGS scores its candidates one by one, fusion runs
  // the experts one after another.
  const auto args_naive_scores = [&](const std::vector<int64_t>& h) {
    const at::Tensor lp = at::log_softmax(full_last(*policy, h), -1);
    const auto [top, idx] = at::topk(lp, 10);
    at::Tensor s = at::full_like(lp, -std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < 10; ++j) {
      std::vector<int64_t> ext = h;
      ext.push_back(idx[j].item<int64_t>());
      const at::Tensor ids = at::tensor(ext, at::kLong);
      s[idx[j].item<int64_t>()] = top[j] + reward->pick_sequence_score(ids, reward->forward_full(ids))[0];
    }
    return s;
  };
  const auto fusion_naive_scores = [&](const std::vector<int64_t>& h) {
    at::Tensor s = at::zeros({c.vocab_size});
    for (size_t i = 0; i < experts.size(); ++i) s += w[i] * at::log_softmax(full_last(*policy, h, &experts[i]), -1);
    return s;
  };
  const auto run_args = [&](int64_t k, double weight) {
    auto s = decoding::make_args(*policy, *reward, k, weight, prompt);
    return decoding::decode(*s, prompt, greedy(n), c.max_position).ids;
  };
  const auto run_fusion = [&](const std::vector<const LoraAdapter*>& e, const std::vector<double>& weights) {
    auto s = decoding::make_lora_fusion(*policy, e, weights, prompt);
    return decoding::decode(*s, prompt, greedy(n), c.max_position).ids;
  };

  // Checks: ARGS with k = 1 and a one-expert base fusion are plain greedy decoding; ARGS k = 10 and the 3-expert
  // fusion begin with their naive twins' tokens.
  const auto plain_ids = generate(*policy, nullptr, prompt, greedy(n))[0].ids;
  std::vector<int64_t> args_naive_ids, fusion_naive_ids;
  const auto starts_with = [&](const std::vector<int64_t>& ids, const std::vector<int64_t>& head) {
    return ids.size() >= head.size() && std::equal(head.begin(), head.end(), ids.begin());
  };
  const bool ok = run_args(1, 5.0) == plain_ids && run_fusion({nullptr}, {1.0}) == plain_ids;
  const double args_naive =
      best_seconds(1, [&] { args_naive_ids = naive_greedy(args_naive_scores, prompt, n_naive); }) / n_naive;
  const double fusion_naive =
      best_seconds(1, [&] { fusion_naive_ids = naive_greedy(fusion_naive_scores, prompt, n_naive); }) / n_naive;
  const bool twins_ok =
      starts_with(run_args(10, 1.0), args_naive_ids) && starts_with(run_fusion(expert_ptrs, w), fusion_naive_ids);
  std::printf("check: ARGS k=1 and base-only fusion give plain greedy tokens: %s\n", ok ? "yes" : "NO");
  std::printf("check: ARGS k=10 and 3-expert fusion give their naive twins' first %ld tokens: %s\n",
              static_cast<long>(n_naive), twins_ok ? "yes" : "NO");
  if (!ok || !twins_ok) return 1;

  GenerateOptions sampled;
  sampled.max_new_tokens = n;
  sampled.sampling.temperature = 1.0f;
  const std::vector<std::function<void()>> cases = {
      [&] { generate(*policy, nullptr, prompt, greedy(n)); },
      [&] { run_args(10, 1.0); },
      [&] { run_fusion(expert_ptrs, w); },
      [&] {
        auto s = decoding::make_fusion(merged_ptrs, w, prompt);
        decoding::decode(*s, prompt, greedy(n), c.max_position);
      },
      [&] { generate(*policy, nullptr, prompt, sampled, 1); },
      [&] { generate(*policy, nullptr, prompt, sampled, 16); },
  };
  const std::vector<double> best = best_interleaved(/*rounds=*/5, cases);
  const double plain = best[0] / n, args = best[1] / n, fusion = best[2] / n, fusion_separate = best[3] / n;
  const double one = best[4], bon = best[5];
  const double bon_separate = best_seconds(1, [&] {
    for (uint64_t i = 0; i < 16; ++i) {
      GenerateOptions o = sampled;
      o.sampling.seed = i;
      generate(*policy, nullptr, prompt, o, 1);
    }
  });

  std::printf(
      "| strategy | ms per token (per response for best-of) | ratio to plain | goal | naive twin | naive / fast |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::printf("| plain greedy | %.2f | 1.00x | | | |\n", 1e3 * plain);
  std::printf(
      "| ARGS k=10 (reward on the policy's backbone: one pass of 10 candidate rows per token) | %.2f | %.2fx | <= 3x | "
      "%.2f (recompute, candidates one by one) | %.1fx |\n",
      1e3 * args, args / plain, 1e3 * args_naive, args_naive / args);
  std::printf(
      "| fusion of 3 LoRA experts (one batched pass) | %.2f | %.2fx | <= 1.6x | %.2f (3 merged models one "
      "after another) / %.2f (recompute) | %.1fx / %.1fx |\n",
      1e3 * fusion, fusion / plain, 1e3 * fusion_separate, 1e3 * fusion_naive, fusion_separate / fusion,
      fusion_naive / fusion);
  std::printf(
      "| best-of-16 samples (one batch, shared prompt prefix) vs one sample | %.1f vs %.1f | %.2fx | <= 4x | "
      "%.1f (16 separate runs) | %.1fx |\n",
      1e3 * bon, 1e3 * one, bon / one, 1e3 * bon_separate, bon_separate / bon);
  return value_and_cards(*policy, *reward, prompt, n) ? 0 : 1;
}
