// LoRA adapters: the hooked forward against the merged weights (naive twin), the cached path against the uncached
// one, several adapters per batch against one row at a time, PEFT directory round trips and the load errors.
#include "palign/runtime/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include "palign/base/error.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kAllTargets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};

std::vector<int64_t> some_ids(int64_t n, int64_t vocab, int64_t seed) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back((seed * 7919 + i * 104729 + 13) % vocab);
  return out;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// An adapter over every linear whose B is random (a trained-looking adapter: non-zero delta).
LoraAdapter random_adapter(const ModelConfig& c, uint64_t seed, std::vector<std::string> targets = kAllTargets,
                           int64_t r = 4) {
  LoraAdapter lora = LoraAdapter::init(c, {.r = r, .alpha = 2.0 * r, .target_modules = std::move(targets)}, seed);
  torch::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& [name, t] : lora.named_parameters())
    if (name.find("lora_B") != std::string::npos) t.copy_(torch::randn_like(t) * 0.05);
  return lora;
}

using palign::test::TempDir;

void write_json(const fs::path& p, const nlohmann::json& j) {
  std::ofstream out(p);
  out << j.dump(2);
}

class LoraModels : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraModels, FreshAdapterLeavesLogitsUnchanged) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter lora = LoraAdapter::init(model->config(), {.target_modules = kAllTargets}, 7);
  EXPECT_GT(lora.lora_a(0, LinearKind::kQ).abs().max().item<double>(), 0);
  EXPECT_EQ(lora.lora_b(0, LinearKind::kQ).abs().max().item<double>(), 0);
  at::Tensor ids = at::tensor(some_ids(12, 1000, 1), at::kLong);
  // note: not bitwise. A hooked forward keeps autograd on and the small-batch kernel declines in grad mode, so the
  // two sides may run different kernels (BLAS vs palign's), whose float32 sums round differently.
  const double diff = max_diff(model->forward_full(ids, {.linear_hook = &lora}), model->forward_full(ids));
  std::printf("[%s] fresh adapter vs base: max-abs-diff = %.3g\n", GetParam().c_str(), diff);
  EXPECT_LE(diff, test::kF32Tol);
}

TEST_P(LoraModels, HookedForwardEqualsMergedWeights) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter lora = random_adapter(model->config(), 3);
  auto merged = merge_lora(*model, lora);
  at::Tensor ids = at::tensor(some_ids(12, 1000, 2), at::kLong);
  at::Tensor hooked = model->forward_full(ids, {.linear_hook = &lora});
  const double moved = max_diff(hooked, model->forward_full(ids));
  const double diff = max_diff(hooked, merged->forward_full(ids));
  std::printf("[%s] hooked vs merged: max-abs-diff = %.3g (adapter moves logits by %.3g)\n", GetParam().c_str(), diff,
              moved);
  EXPECT_GT(moved, 1e-3);
  EXPECT_LE(diff, test::kF32Tol);

  auto back = unmerge_lora(*merged, lora);
  auto base_w = model->named_weights(), back_w = back->named_weights();
  ASSERT_EQ(base_w.size(), back_w.size());
  double worst = 0;
  for (size_t i = 0; i < base_w.size(); ++i) {
    ASSERT_EQ(base_w[i].first, back_w[i].first);
    worst = std::max(worst, max_diff(base_w[i].second, back_w[i].second));
  }
  std::printf("[%s] unmerge(merge(W)) vs W: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
  EXPECT_LE(worst, 1e-6);
}

TEST_P(LoraModels, CachedIncrementalEqualsUncachedWithHook) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter lora = random_adapter(model->config(), 5);
  const auto ids = some_ids(16, 1000, 3);
  at::Tensor full = model->forward_full(at::tensor(ids, at::kLong), {.linear_hook = &lora});
  KvCache cache = model->make_cache(1, 4);
  at::Tensor prefill =
      model
          ->forward(
              Batch{.ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 6), at::kLong).unsqueeze(0)},
              cache, {.linear_hook = &lora})
          .logits[0];
  double worst = max_diff(prefill, full.narrow(0, 0, 6));
  for (size_t t = 6; t < ids.size(); ++t) {
    at::Tensor step = model
                          ->forward(Batch{.ids = at::tensor({ids[t]}, at::kLong).unsqueeze(0)}, cache,
                                    {.logits = ForwardOptions::Logits::kLast, .linear_hook = &lora})
                          .logits[0];
    worst = std::max(worst, max_diff(step, full[t]));
  }
  std::printf("[%s] hooked cached vs uncached: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
  EXPECT_LE(worst, test::kF32Tol);
}

TEST_P(LoraModels, BatchHookEqualsEachRowAlone) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter a1 = random_adapter(model->config(), 11);
  LoraAdapter a2 = random_adapter(model->config(), 12, {"q_proj", "v_proj", "down_proj"});
  const std::vector<const LoraAdapter*> per_row = {&a1, nullptr, &a2};
  LoraBatchHook hook(per_row);
  const int64_t T = 9;
  at::Tensor ids = at::zeros({3, T}, at::kLong);
  for (int64_t b = 0; b < 3; ++b) ids[b].copy_(at::tensor(some_ids(T, 1000, 20 + b), at::kLong));
  at::Tensor batched = model->forward_full(ids, {.linear_hook = &hook});
  double worst = 0;
  for (int64_t b = 0; b < 3; ++b) {
    ForwardOptions o;
    o.linear_hook = per_row[b];
    worst = std::max(worst, max_diff(batched[b], model->forward_full(ids[b], o)));
  }
  // The same through the cache with ragged rows.
  KvCache cache = model->make_cache(3);
  at::Tensor cached = model->forward(Batch{.ids = ids, .n_tokens = {9, 4, 7}}, cache, {.linear_hook = &hook}).logits;
  const std::vector<int64_t> n = {9, 4, 7};
  for (int64_t b = 0; b < 3; ++b) {
    ForwardOptions o;
    o.linear_hook = per_row[b];
    at::Tensor alone = model->forward_full(ids[b].narrow(0, 0, n[b]), o);
    worst = std::max(worst, max_diff(cached[b].narrow(0, 0, n[b]), alone));
  }
  std::printf("[%s] LoraBatchHook {A1, base, A2} vs rows alone: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
  EXPECT_LE(worst, test::kF32Tol);
  EXPECT_EQ(test::error_code_of([&] { model->forward_full(ids.narrow(0, 0, 2), {.linear_hook = &hook}); }),
            ErrorCode::kInvalidArgument);
}

// The stacked path (a hook built with grad mode off, applied with grad mode off) against the grouped path (the same
// hook while grad mode is on) and against each row alone, with base rows and adapters of different ranks and targets;
// then cached one-token steps through the stacked path against the full recompute.
TEST_P(LoraModels, StackedBatchHookEqualsGroupedAndEachRowAlone) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter a1 = random_adapter(model->config(), 11);
  // Padded ranks 8 (q, v, down: the decode step's fixed-rank loops) and 4 (the others: its any-rank loop).
  LoraAdapter a2 = random_adapter(model->config(), 12, {"q_proj", "v_proj", "down_proj"}, /*r=*/8);
  LoraAdapter a3 = random_adapter(model->config(), 13, {"q_proj", "o_proj", "up_proj"}, /*r=*/2);
  const std::vector<const LoraAdapter*> per_row = {&a1, nullptr, &a3, &a2};
  const int64_t rows = static_cast<int64_t>(per_row.size()), T = 7;
  std::unique_ptr<LoraBatchHook> hook;
  {
    c10::InferenceMode inference;
    hook = std::make_unique<LoraBatchHook>(per_row);
    EXPECT_FALSE(LoraBatchHook({&a1, &a1}).stacked());  // one adapter for every row: nothing to stack
  }
  ASSERT_TRUE(hook->stacked());
  EXPECT_FALSE(LoraBatchHook(per_row).stacked());  // built with grad mode on: grouped only
  at::Tensor ids = at::zeros({rows, T}, at::kLong);
  for (int64_t b = 0; b < rows; ++b) ids[b].copy_(at::tensor(some_ids(T, 1000, 30 + b), at::kLong));

  const at::Tensor grouped = model->forward_full(ids, {.linear_hook = hook.get()});  // grad mode on: grouped
  at::Tensor stacked;
  {
    c10::InferenceMode inference;
    stacked = model->forward_full(ids, {.linear_hook = hook.get()});
  }
  double vs_grouped = max_diff(stacked, grouped), vs_alone = 0, grouped_vs_alone = 0;
  for (int64_t b = 0; b < rows; ++b) {
    ForwardOptions o;
    o.linear_hook = per_row[b];
    const at::Tensor alone = model->forward_full(ids[b], o);
    vs_alone = std::max(vs_alone, max_diff(stacked[b], alone));
    grouped_vs_alone = std::max(grouped_vs_alone, max_diff(grouped[b], alone));
  }
  // Decoding: prefill 4 tokens, then one token per row per step, all through the stacked path (its decode-step form:
  // plain loops over each row's own rank).
  double steps_vs_full = 0;
  {
    c10::InferenceMode inference;
    KvCache cache = model->make_cache(rows);
    model->forward(Batch{.ids = ids.narrow(1, 0, 4)}, cache,
                   {.logits = ForwardOptions::Logits::kNone, .linear_hook = hook.get()});
    for (int64_t t = 4; t < T; ++t) {
      const at::Tensor step = model
                                  ->forward(Batch{.ids = ids.narrow(1, t, 1)}, cache,
                                            {.logits = ForwardOptions::Logits::kLast, .linear_hook = hook.get()})
                                  .logits;
      steps_vs_full = std::max(steps_vs_full, max_diff(step, stacked.select(1, t)));
    }
  }
  std::printf(
      "[%s] LoraBatchHook {A1, base, A3 (r=2), A2 (r=8)}: stacked vs grouped max-abs-diff = %.3g, stacked vs rows "
      "alone = "
      "%.3g, grouped vs rows alone = %.3g, stacked cached steps vs full = %.3g\n",
      GetParam().c_str(), vs_grouped, vs_alone, grouped_vs_alone, steps_vs_full);
  EXPECT_LE(vs_grouped, test::kF32Tol);
  EXPECT_LE(vs_alone, test::kF32Tol);
  EXPECT_LE(grouped_vs_alone, test::kF32Tol);
  EXPECT_LE(steps_vs_full, test::kF32Tol);
  // A base row's stacked delta is exactly zero: the same logits as the same batch without a hook. (Not compared with
  // the grouped path bitwise: grad mode multiplies the base linears through the BLAS, inference through
  // small_batch_linear where the CPU has it.)
  {
    c10::InferenceMode inference;
    EXPECT_TRUE(stacked[1].equal(model->forward_full(ids)[1]));
  }
}

// Generation with an attached adapter (the hook on every cached step) gives the merged model's greedy tokens.
TEST_P(LoraModels, GenerateWithAdapterEqualsMergedModel) {
  auto model = Model::load(test::hf_model(GetParam()));
  LoraAdapter lora = random_adapter(model->config(), 5);
  auto merged = merge_lora(*model, lora);
  GenerateOptions g;
  g.max_new_tokens = 12;
  g.sampling.greedy = true;
  const auto prompt = some_ids(5, 1000, 4);
  const auto plain = generate(*model, nullptr, prompt, g);
  g.linear_hook = &lora;
  const auto hooked = generate(*model, nullptr, prompt, g);
  g.linear_hook = nullptr;
  const auto reference = generate(*merged, nullptr, prompt, g);
  EXPECT_EQ(hooked[0].ids, reference[0].ids);
  std::printf("[%s] greedy with adapter == merged model: %s; differs from the base: %s\n", GetParam().c_str(),
              hooked[0].ids == reference[0].ids ? "yes" : "no", hooked[0].ids != plain[0].ids ? "yes" : "no");
}

INSTANTIATE_TEST_SUITE_P(Lora, LoraModels, ::testing::Values("llama", "qwen2", "qwen3", "mistral"));

// A soup's delta is Σ_k w_k Δ_k: attached, merged (θ_0 + Σ w_k Δθ_k) and reloaded, it equals the forward that adds
// each adapter's weighted delta (adapters of different ranks, targets and scalings; a negative weight).
TEST_P(LoraModels, SoupEqualsTheWeightedSumOfDeltas) {
  auto model = Model::load(test::hf_model(GetParam()));
  const ModelConfig& c = model->config();
  const LoraAdapter a = random_adapter(c, 1), b = random_adapter(c, 2, {"q_proj", "v_proj", "up_proj"}, 2);
  const LoraAdapter d = random_adapter(c, 3, {"o_proj", "down_proj"}, 8);
  const std::vector<double> w = {0.7, -0.4, 1.3};
  struct WeightedSum final : LinearHook {
    std::vector<const LoraAdapter*> parts;
    std::vector<double> w;
    void apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const override {
      for (size_t i = 0; i < parts.size(); ++i) {
        const at::Tensor delta = parts[i]->delta(layer, kind, x);
        if (delta.defined()) y = y + w[i] * delta;
      }
    }
  } naive;
  naive.parts = {&a, &b, &d};
  naive.w = w;
  const LoraAdapter soup = lora_soup({&a, &b, &d}, w);
  EXPECT_EQ(soup.config().r, 4 + 2 + 8);
  const at::Tensor ids = at::tensor(some_ids(9, c.vocab_size, 5), at::kLong);
  const at::Tensor want = model->forward_full(ids, {.linear_hook = &naive});
  const double hooked = max_diff(model->forward_full(ids, {.linear_hook = &soup}), want);
  const double merged = max_diff(merge_lora(*model, soup)->forward_full(ids), want);
  TempDir dir("soup");
  soup.save(dir.path());
  const LoraAdapter back = LoraAdapter::load(dir.path(), c);
  const double reloaded = max_diff(model->forward_full(ids, {.linear_hook = &back}), want);
  std::printf("[%s] soup of 3 adapters vs weighted deltas: attached %.3g, merged %.3g, reloaded %.3g\n",
              GetParam().c_str(), hooked, merged, reloaded);
  EXPECT_LT(hooked, 1e-5);
  EXPECT_LT(merged, 1e-5);
  EXPECT_LT(reloaded, 1e-5);
  EXPECT_THROW(lora_soup({}, {}), Error);
  EXPECT_THROW(lora_soup({&a, &b}, {1.0}), Error);
}

TEST(LoraConfig, ScalingAndValidate) {
  EXPECT_DOUBLE_EQ((LoraConfig{.r = 8, .alpha = 16}.scaling()), 2.0);
  EXPECT_DOUBLE_EQ((LoraConfig{.r = 16, .alpha = 16, .use_rslora = true}.scaling()), 4.0);
  EXPECT_EQ(LoraConfig{}.validate(), "");
  EXPECT_NE(LoraConfig{.r = 0}.validate(), "");
  EXPECT_NE(LoraConfig{.alpha = 0}.validate(), "");
  EXPECT_NE(LoraConfig{.dropout = 1}.validate(), "");
  EXPECT_NE(LoraConfig{.target_modules = {"c_attn"}}.validate(), "");
  EXPECT_NE((LoraConfig{.target_modules = {"q_proj", "q_proj"}}.validate()), "");
}

TEST(LoraAdapter, InitIsPeftKaimingUniformAndSeeded) {
  const ModelConfig c = ModelConfig::load(test::hf_model("qwen3") / "config.json");
  LoraAdapter a = LoraAdapter::init(c, {.r = 8, .target_modules = kAllTargets}, 1);
  LoraAdapter b = LoraAdapter::init(c, {.r = 8, .target_modules = kAllTargets}, 1);
  LoraAdapter other = LoraAdapter::init(c, {.r = 8, .target_modules = kAllTargets}, 2);
  EXPECT_EQ(a.parameters().size(), 2u * 7u * static_cast<size_t>(c.n_layer));
  EXPECT_TRUE(a.lora_a(1, LinearKind::kO).equal(b.lora_a(1, LinearKind::kO)));
  EXPECT_FALSE(a.lora_a(1, LinearKind::kO).equal(other.lora_a(1, LinearKind::kO)));
  // o_proj's input is n_head * head_dim = 128, down_proj's the intermediate size.
  EXPECT_EQ(a.lora_a(0, LinearKind::kO).sizes().vec(), (std::vector<int64_t>{8, 128}));
  EXPECT_EQ(a.lora_b(0, LinearKind::kO).sizes().vec(), (std::vector<int64_t>{64, 8}));
  const double bound_o = a.lora_a(0, LinearKind::kO).abs().max().item<double>();
  const double bound_down = a.lora_a(0, LinearKind::kDown).abs().max().item<double>();
  EXPECT_LE(bound_o, 1 / std::sqrt(128.0));
  EXPECT_GT(bound_o, 0.9 / std::sqrt(128.0));
  EXPECT_LE(bound_down, 1 / std::sqrt(static_cast<double>(c.intermediate_size)));
  EXPECT_FALSE(a.lora_a(0, LinearKind::kQ).equal(a.lora_a(1, LinearKind::kQ)));
  LoraAdapter qv = LoraAdapter::init(c, {}, 1);  // PEFT's default targets
  EXPECT_TRUE(qv.targets(LinearKind::kQ) && qv.targets(LinearKind::kV) && !qv.targets(LinearKind::kK));
  EXPECT_FALSE(qv.lora_a(0, LinearKind::kK).defined());
  EXPECT_EQ(qv.parameters().size(), 2u * 2u * static_cast<size_t>(c.n_layer));
}

TEST(LoraAdapter, GradientsReachAAndBWithAFrozenBase) {
  auto model = Model::load(test::hf_model("llama"));
  LoraAdapter lora = LoraAdapter::init(model->config(), {.target_modules = kAllTargets}, 3);
  for (at::Tensor& p : lora.parameters()) p.requires_grad_(true);
  at::Tensor logits = model->forward_full(at::tensor(some_ids(8, 1000, 4), at::kLong), {.linear_hook = &lora});
  ASSERT_TRUE(logits.requires_grad()) << "the forward ran without autograd; the LoRA parameters get no gradient";
  logits.logsumexp(-1).sum().backward();
  at::Tensor gb = lora.lora_b(1, LinearKind::kDown).grad();
  ASSERT_TRUE(gb.defined());
  std::printf("[llama] |dL/dB_down| max = %.3g\n", gb.abs().max().item<double>());
  EXPECT_GT(gb.abs().max().item<double>(), 0);
  // B = 0, so A's gradient is exactly zero on the first step (as in PEFT), but it is recorded.
  EXPECT_TRUE(lora.lora_a(1, LinearKind::kDown).grad().defined());

  // Decoding: a cache filled under inference mode (no hook) takes hooked steps (grad mode on) and back.
  KvCache cache = model->make_cache(1);
  const auto ids = some_ids(6, 1000, 6);
  auto step = [&](int64_t t, const LinearHook* hook) {
    ForwardOptions o;
    o.linear_hook = hook;
    return model->forward(Batch{.ids = at::tensor({ids[t]}, at::kLong).unsqueeze(0)}, cache, o).logits;
  };
  EXPECT_NO_THROW(step(0, nullptr));
  EXPECT_NO_THROW(step(1, &lora));
  EXPECT_NO_THROW(step(2, nullptr));
  {
    at::NoGradGuard no_grad;
    EXPECT_FALSE(step(3, &lora).requires_grad());
  }
  EXPECT_EQ(cache.length(0), 4);
}

TEST(LoraAdapter, DropoutOnlyWhileTrainingAndSeeded) {
  auto model = Model::load(test::hf_model("llama"));
  auto make = [&] {
    LoraAdapter l = LoraAdapter::init(model->config(), {.dropout = 0.5, .target_modules = kAllTargets}, 9);
    at::NoGradGuard g;
    for (auto& [name, t] : l.named_parameters())
      if (name.find("lora_B") != std::string::npos) t.fill_(0.05);
    return l;
  };
  LoraAdapter a = make(), b = make();
  at::Tensor ids = at::tensor(some_ids(8, 1000, 5), at::kLong);
  at::Tensor eval = model->forward_full(ids, {.linear_hook = &a});
  a.set_training(true);
  b.set_training(true);
  at::Tensor train_a = model->forward_full(ids, {.linear_hook = &a});
  at::Tensor train_b = model->forward_full(ids, {.linear_hook = &b});
  std::printf("[llama] dropout: train vs eval max-abs-diff = %.3g, same seed = %.3g\n", max_diff(train_a, eval),
              max_diff(train_a, train_b));
  EXPECT_GT(max_diff(train_a, eval), 1e-4);
  EXPECT_EQ(max_diff(train_a, train_b), 0);
  a.set_training(false);
  EXPECT_EQ(max_diff(model->forward_full(ids, {.linear_hook = &a}), eval), 0);
}

TEST(LoraAdapter, SaveLoadRoundTripInPeftFormat) {
  const ModelConfig c = ModelConfig::load(test::hf_model("qwen2") / "config.json");
  LoraAdapter lora = random_adapter(c, 4, {"q_proj", "v_proj", "gate_proj"});
  TempDir tmp("roundtrip");
  lora.save(tmp.path());
  auto j = test::read_json(tmp.path() / "adapter_config.json");
  std::printf("adapter_config.json: %s\n", j.dump().c_str());
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["r"], 4);
  EXPECT_EQ(j["lora_alpha"], 8);
  EXPECT_EQ(j["lora_dropout"], 0.0);
  EXPECT_EQ(j["target_modules"], nlohmann::json({"q_proj", "v_proj", "gate_proj"}));
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["inference_mode"], true);
  EXPECT_EQ(j["init_lora_weights"], true);
  EXPECT_EQ(j["use_rslora"], false);
  for (const char* k : {"modules_to_save", "base_model_name_or_path", "layers_to_transform", "revision"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    EXPECT_TRUE(j[k].is_null()) << k;
  }
  auto file = SafetensorsFile::open(tmp.path() / "adapter_model.safetensors");
  EXPECT_EQ(file.tensors().size(), 2u * 3u * static_cast<size_t>(c.n_layer));
  const int64_t q_out = c.n_head * c.head_dim;
  ASSERT_TRUE(file.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_EQ(file.tensors().at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape,
            (std::vector<int64_t>{4, c.hidden_size}));
  EXPECT_EQ(file.tensors().at("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight").shape,
            (std::vector<int64_t>{q_out, 4}));
  EXPECT_EQ(file.tensors().at("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight").shape,
            (std::vector<int64_t>{c.intermediate_size, 4}));
  EXPECT_EQ(file.metadata().at("format"), "pt");

  LoraAdapter back = LoraAdapter::load(tmp.path(), c);
  EXPECT_EQ(back.config().r, 4);
  EXPECT_DOUBLE_EQ(back.scaling(), lora.scaling());
  auto want = lora.named_parameters(), got = back.named_parameters();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].first, got[i].first);
    EXPECT_TRUE(want[i].second.equal(got[i].second)) << want[i].first;
  }

  // Names with the adapter name left in (state_dict of a live PeftModel) load too.
  std::vector<std::pair<std::string, at::Tensor>> renamed;
  for (auto& [name, t] : want) {
    std::string n = name;
    n.replace(n.find(".weight"), 7, ".default.weight");
    renamed.emplace_back(n, t.detach());
  }
  save_safetensors(tmp.path() / "adapter_model.safetensors", renamed);
  LoraAdapter again = LoraAdapter::load(tmp.path(), c);
  EXPECT_TRUE(again.lora_b(1, LinearKind::kGate).equal(lora.lora_b(1, LinearKind::kGate)));
}

TEST(LoraAdapter, LoadErrors) {
  const ModelConfig c = ModelConfig::load(test::hf_model("llama") / "config.json");
  const ModelConfig gpt2 = ModelConfig::load(test::hf_model("gpt2") / "config.json");
  const ModelConfig qwen3 = ModelConfig::load(test::hf_model("qwen3") / "config.json");
  TempDir tmp("errors");
  LoraAdapter lora = random_adapter(c, 1, {"q_proj", "v_proj"});
  lora.save(tmp.path());
  const fs::path cfg = tmp.path() / "adapter_config.json";
  const nlohmann::json good = test::read_json(cfg);
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[key] = value;
    write_json(cfg, j);
    return [&] { LoraAdapter::load(tmp.path(), c); };
  };

  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path() / "nope", c); }), ErrorCode::kNotFound);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), gpt2); }), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::init(gpt2, {}, 0); }), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::init(c, {.r = 0}, 0); }), ErrorCode::kInvalidArgument);
  // Shapes that do not fit the model: another model's sizes, or r in the config not matching the tensors.
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), qwen3); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("r", 8)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("r", 0)), ErrorCode::kInvalidArgument);
  // r as a number beyond int64 (undefined behaviour when converted, found by fuzzing), a fraction or a string.
  EXPECT_EQ(test::error_message_of(with("r", 1e300)),
            "[runtime.LoraAdapter.load] " + cfg.string() + ": r must be an integer, got 1e+300");
  EXPECT_EQ(test::error_code_of(with("r", 2.5)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("r", "4")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("lora_alpha", -1)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("peft_type", "PREFIX_TUNING")), ErrorCode::kUnsupported);
  // peft_type of the wrong JSON type (a JSON type_error escaped, found by fuzzing), and a mistyped use_rslora.
  EXPECT_EQ(test::error_message_of(with("peft_type", nlohmann::json::object())),
            "[runtime.LoraAdapter.load] " + cfg.string() + ": peft_type is {}; only LORA adapters are supported");
  EXPECT_EQ(test::error_code_of(with("peft_type", 5)), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("use_rslora", "yes")), ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of(with("fan_in_fan_out", true)), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("bias", "all")), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("layers_to_transform", {0})), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("modules_to_save", {"lm_head"})), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("use_dora", true)), ErrorCode::kUnsupported);
  EXPECT_EQ(test::error_code_of(with("target_modules", {"q_proj", "c_attn"})), ErrorCode::kUnsupported);
  // A target listed in the config but without tensors in the file.
  EXPECT_EQ(test::error_code_of(with("target_modules", {"q_proj", "v_proj", "k_proj"})), ErrorCode::kInvalidArgument);
  {
    std::ofstream out(cfg);
    out << "{ not json";
  }
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), c); }), ErrorCode::kInvalidArgument);
  write_json(cfg, good);
  EXPECT_NO_THROW(LoraAdapter::load(tmp.path(), c));

  // A tensor of the wrong shape.
  auto named = lora.named_parameters();
  std::vector<std::pair<std::string, at::Tensor>> bad;
  for (auto& [name, t] : named)
    bad.emplace_back(
        name, name.ends_with("layers.1.self_attn.v_proj.lora_B.weight") ? at::zeros({c.hidden_size, 4}) : t.detach());
  save_safetensors(tmp.path() / "adapter_model.safetensors", bad);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), c); }), ErrorCode::kInvalidArgument);
  // A tensor palign does not know.
  bad = {{"base_model.model.lm_head.weight", at::zeros({2, 2})}};
  save_safetensors(tmp.path() / "adapter_model.safetensors", bad);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), c); }), ErrorCode::kUnsupported);

  fs::remove(tmp.path() / "adapter_model.safetensors");
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), c); }), ErrorCode::kNotFound);
  fs::remove(cfg);
  EXPECT_EQ(test::error_code_of([&] { LoraAdapter::load(tmp.path(), c); }), ErrorCode::kNotFound);

  // Merging into a model of another shape.
  auto other = Model::load(test::hf_model("qwen3"));
  EXPECT_EQ(test::error_code_of([&] { merge_lora(*other, lora); }), ErrorCode::kInvalidArgument);
}

}  // namespace
