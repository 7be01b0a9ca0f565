// GenARM's autoregressive reward (arm): the Bradley–Terry loss on summed response log-probs against a hand computation
// and its LoRA gradient against central finite differences, padded batches against one row at a time, a planted
// preference learned from a few dozen steps, one PEFT directory per dimension, and bad input as clear errors.
#include "palign/training/arm_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"
#include "palign/training/reward_trainer.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using nlohmann::json;
using palign::runtime::LinearKind;
using palign::runtime::LoraAdapter;
using palign::runtime::Model;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

using palign::test::fresh_dir;

void write_lines(const fs::path& path, const std::vector<json>& lines) {
  std::ofstream out(path);
  for (const auto& j : lines) out << j.dump() << "\n";
}

// An adapter on every attention linear with small random B (a fresh one has B = 0, which hides A's gradient).
LoraAdapter random_adapter(const Model& model, uint64_t seed) {
  LoraAdapter lora = LoraAdapter::init(model.config(),
                                       {.r = 4,
                                        .alpha = 8,
                                        .dropout = 0,
                                        .target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"},
                                        .use_rslora = false,
                                        .base_model = {}},
                                       seed);
  at::NoGradGuard no_grad;
  at::manual_seed(static_cast<int64_t>(seed));
  for (int64_t layer = 0; layer < model.config().n_layer; ++layer)
    for (LinearKind kind : {LinearKind::kQ, LinearKind::kK, LinearKind::kV, LinearKind::kO}) {
      at::Tensor b = lora.lora_b(layer, kind);
      b.copy_(at::randn(b.sizes()) * 0.05);
    }
  return lora;
}

// log π(ids[t] | ids[<t]) summed over t >= start, one sequence at a time, without padding, accumulated in double.
double naive_log_prob(const Model& model, const scoring::ResponseSequence& s, const runtime::LinearHook* hook) {
  at::NoGradGuard no_grad;
  runtime::ForwardOptions fo;
  fo.linear_hook = hook;
  const at::Tensor logits = model.forward_full(at::tensor(s.ids, at::kLong), fo).to(at::kDouble);
  const at::Tensor logp = at::log_softmax(logits, -1);
  double sum = 0;
  for (size_t t = static_cast<size_t>(std::max<int64_t>(s.response_start, 1)); t < s.ids.size(); ++t)
    sum += logp[static_cast<int64_t>(t) - 1][s.ids[t]].item<double>();
  return sum;
}

const char* kWords[] = {" cat", " dog", " sun", " rain", " code", " bread", " love", " vote", " tree", " blue"};

std::string words(Rng& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += kWords[rng.uniform_int(10)];
  return s;
}

// Chosen responses always contain " banana", rejected never; otherwise both are random words of similar length.
std::vector<json> planted_pairs(int n, uint64_t seed, const std::string& dimension = "") {
  Rng rng(seed);
  std::vector<json> out;
  for (int i = 0; i < n; ++i) {
    const std::string prompt = "Tell me about" + words(rng, 1) + ".";
    const int len = 2 + static_cast<int>(rng.uniform_int(3));
    const std::string chosen = words(rng, len / 2) + " banana" + words(rng, len - len / 2);
    const std::string rejected = words(rng, len + 1);
    json j = {{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}};
    if (!dimension.empty()) j["dimension"] = dimension;
    out.push_back(j);
  }
  return out;
}

std::vector<scoring::PreferenceRecord> records_of(const std::vector<json>& lines) {
  std::vector<scoring::PreferenceRecord> out;
  for (const auto& j : lines) {
    scoring::PreferenceRecord r;
    r.prompt = j["prompt"].get<std::string>();
    r.chosen = j["chosen"].get<std::string>();
    r.rejected = j["rejected"].get<std::string>();
    r.dimension = j.value("dimension", "");
    out.push_back(r);
  }
  return out;
}

}  // namespace

// The loss of two pairs equals mean −log σ(β·(Σ log π(y_c) − Σ log π(y_r))) computed by hand from per-row
// log-softmaxes; its gradient with respect to LoRA B entries matches central differences (float32, loose tolerance).
TEST(ArmTrainer, BtLossMatchesHandComputationAndFiniteDifferences) {
  const auto model = Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  const scoring::ResponseSequence c0 = scoring::tokenize_response(tok, "Hello there.", " The cat sat.", 64),
                                  r0 = scoring::tokenize_response(tok, "Hello there.", " No.", 64),
                                  c1 = scoring::tokenize_response(tok, "Why?", " Because the sun is warm today", 64),
                                  r1 = scoring::tokenize_response(tok, "Why?", " Rain", 64);
  std::printf("prompt 'Hello there.' -> %lld tokens, + response -> %zu (first id %lld)\n",
              static_cast<long long>(c0.response_start), c0.ids.size(), static_cast<long long>(c0.ids[0]));
  ASSERT_GT(c0.ids.size(), static_cast<size_t>(c0.response_start));
  const double beta = 0.1;
  LoraAdapter lora = random_adapter(*model, 5);

  const at::Tensor lp = scoring::response_log_probs(*model, {c0, c1, r0, r1}, &lora);
  const at::Tensor loss = arm_bt_loss(lp.slice(0, 0, 2), lp.slice(0, 2, 4), beta);
  double hand = 0;
  const scoring::ResponseSequence* seqs[2][2] = {{&c0, &r0}, {&c1, &r1}};
  for (auto& pair : seqs) {
    const double m = beta * (naive_log_prob(*model, *pair[0], &lora) - naive_log_prob(*model, *pair[1], &lora));
    hand += std::log1p(std::exp(-m)) / 2;  // −log σ(m)
  }
  std::printf("BT loss %.7f, by hand %.7f\n", loss.item<double>(), hand);
  EXPECT_NEAR(loss.item<double>(), hand, 1e-5);

  // Gradient against central differences. The runtime runs float32 only (Model::from_weights takes float32), so
  // the check is in float with a loose tolerance.
  const Model& m = *model;
  LoraAdapter& a = lora;
  for (const at::Tensor& p : a.parameters()) p.requires_grad_(true);
  auto loss_of = [&] {
    const at::Tensor l = scoring::response_log_probs(m, {c0, c1, r0, r1}, &a);
    return arm_bt_loss(l.slice(0, 0, 2), l.slice(0, 2, 4), beta);
  };
  loss_of().backward();
  // Relative error per entry, |fd − g| / max(|g|, floor): floor 1e-5 is above the float32 rounding of the loss
  // differences (~1e-7 / 2ε), so tiny gradients are not judged by noise, and a gradient off by any factor fails.
  const double eps = 1e-2, floor = 1e-5, rel_tol = 0.05;
  double max_rel = 0, max_grad = 0;
  int64_t above_floor = 0, checked = 0;
  Rng rng(11);
  for (int64_t layer = 0; layer < m.config().n_layer; ++layer)
    for (LinearKind kind : {LinearKind::kQ, LinearKind::kV, LinearKind::kO}) {
      const at::Tensor b = a.lora_b(layer, kind);
      const at::Tensor grad = b.grad();
      ASSERT_TRUE(grad.defined());
      for (int k = 0; k < 3; ++k) {
        const int64_t i = static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(b.size(0))));
        const int64_t j = static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(b.size(1))));
        at::NoGradGuard no_grad;
        const double orig = b[i][j].item<double>();
        b[i][j].fill_(orig + eps);
        const double up = loss_of().item<double>();
        b[i][j].fill_(orig - eps);
        const double down = loss_of().item<double>();
        b[i][j].fill_(orig);
        const double fd = (up - down) / (2 * eps), g = grad[i][j].item<double>();
        max_rel = std::max(max_rel, std::abs(fd - g) / std::max(std::abs(g), floor));
        max_grad = std::max(max_grad, std::abs(g));
        above_floor += std::abs(g) > floor;
        ++checked;
      }
    }
  std::printf("float: max |dL/dB| %.4g, max relative |autograd - central difference| %.3g (tolerance %.2g), "
              "%lld of %lld entries above the %.0e floor\n",
              max_grad, max_rel, rel_tol, static_cast<long long>(above_floor), static_cast<long long>(checked),
              floor);
  EXPECT_GT(max_grad, 1e-4);
  EXPECT_GE(2 * above_floor, checked);
  EXPECT_LT(max_rel, rel_tol);
}

// Sequences of different lengths (so most rows are padded) give the same sums in one batch as one at a time.
TEST(ArmTrainer, PaddedBatchEqualsOneByOne) {
  const auto model = Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  const LoraAdapter lora = random_adapter(*model, 9);
  Rng rng(3);
  std::vector<scoring::ResponseSequence> seqs;
  for (int i = 0; i < 6; ++i)
    seqs.push_back(scoring::tokenize_response(tok, "Q:" + words(rng, 1 + i % 3), words(rng, 1 + (i * 5) % 11), 256));
  const at::Tensor batched = scoring::response_log_probs(*model, seqs, &lora);
  double max_diff = 0, max_naive = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const double one = scoring::response_log_probs(*model, {seqs[i]}, &lora)[0].item<double>();
    const double naive = naive_log_prob(*model, seqs[i], &lora);
    max_diff = std::max(max_diff, std::abs(batched[static_cast<int64_t>(i)].item<double>() - one));
    max_naive = std::max(max_naive, std::abs(one - naive));
  }
  std::printf("max |batched - alone| %.3g, max |alone - naive double sum| %.3g\n", max_diff, max_naive);
  EXPECT_LT(max_diff, 1e-5);
  EXPECT_LT(max_naive, 1e-4);
}

// Chosen responses contain " banana" and rejected ones never: a few dozen steps make the held-out accuracy high, and
// the trained reward raises β·Σ log π_r of banana responses over the base model's.
TEST(ArmTrainer, LearnsAPlantedPreference) {
  const fs::path dir = fresh_dir("planted");
  write_lines(dir / "pairs.jsonl", planted_pairs(60, 1));
  RewardTrainOptions o;
  o.method = "arm";
  o.data = dir / "pairs.jsonl";
  o.backbone = test::hf_model("llama");
  o.out = dir / "arm";
  o.progress = false;
  o.fit.valid_share = 0.25;
  o.arm.lr = 1e-2;
  o.arm.batch = 8;
  o.arm.steps = 60;
  o.arm.eval_every = 10;
  o.arm.patience = 100;
  o.arm.beta = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  const RewardTrainReport r = train_reward(o);
  std::printf("arm: %lld pairs, train %.3f valid %.3f, %.2f s, %.1f pairs/s (forward + backward)\n",
              static_cast<long long>(r.n_pairs), r.train_accuracy, r.valid_accuracy,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), r.pairs_per_second);
  EXPECT_EQ(r.method, "arm");
  EXPECT_TRUE(r.dimensions.empty());
  EXPECT_GT(r.valid_accuracy, 0.8);
  EXPECT_GT(r.pairs_per_second, 0);
  const json manifest = test::read_json(o.out / "palign_reward.json");
  EXPECT_EQ(manifest["method"], "arm");
  EXPECT_EQ(manifest["beta"], 0.5);
  EXPECT_EQ(test::read_json(o.out / "arm.json")["format"], "palign.arm");

  // Fresh pairs: the reward (through RewardModel, as `palign score` loads it) against the base model.
  const auto reward = scoring::RewardModel::load(o.out);
  EXPECT_EQ(reward->method(), "arm");
  EXPECT_EQ(reward->labels(), std::vector<std::string>{"reward"});
  const auto base = Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  double lift_banana = 0, lift_other = 0, correct = 0;
  const auto fresh = planted_pairs(20, 99);
  for (const auto& j : fresh) {
    double s[2];
    for (int k = 0; k < 2; ++k) {
      const std::string prompt = j["prompt"].get<std::string>();
      const std::string response = j[k == 0 ? "chosen" : "rejected"].get<std::string>();
      s[k] = reward->score(prompt, response)[0];
      const double b =
          o.arm.beta * naive_log_prob(*base, scoring::tokenize_response(tok, prompt, response, 1024), nullptr);
      (k == 0 ? lift_banana : lift_other) += (s[k] - b) / static_cast<double>(fresh.size());
    }
    correct += s[0] > s[1];
  }
  std::printf("fresh pairs: accuracy %.3f; mean reward lift over the base: banana %+.3f, other %+.3f\n",
              correct / static_cast<double>(fresh.size()), lift_banana, lift_other);
  EXPECT_GT(correct / static_cast<double>(fresh.size()), 0.8);
  EXPECT_GT(lift_banana, lift_other);
  EXPECT_GT(lift_banana, 0);
  EXPECT_EQ(error_code_of([&] { reward->score_ids({1, 2, 3}); }), ErrorCode::kUnsupported);
}

// Two dimensions: two PEFT directories under OUT that LoraAdapter::load reads back tensor for tensor, trained
// deterministically from the seed.
TEST(ArmTrainer, OneAdapterPerDimension) {
  const fs::path dir = fresh_dir("dims");
  auto lines = planted_pairs(8, 2, "safe");
  for (auto& j : planted_pairs(8, 3, "helpful")) lines.push_back(j);
  write_lines(dir / "pairs.jsonl", lines);
  RewardTrainOptions o;
  o.method = "arm";
  o.data = dir / "pairs.jsonl";
  o.backbone = test::hf_model("llama");
  o.out = dir / "arm";
  o.progress = false;
  o.arm.steps = 3;
  o.arm.batch = 4;
  o.arm.lora = {
      .r = 2, .alpha = 4, .dropout = 0, .target_modules = {"q_proj", "v_proj"}, .use_rslora = false, .base_model = {}};
  const RewardTrainReport r = train_reward(o);
  EXPECT_EQ(r.dimensions, (std::vector<std::string>{"helpful", "safe"}));
  const json manifest = test::read_json(o.out / "palign_reward.json");
  EXPECT_EQ(manifest["dimensions"], json({"helpful", "safe"}));
  EXPECT_EQ(manifest["backbone"], fs::absolute(test::hf_model("llama")).lexically_normal().string());
  const auto model = Model::load(test::hf_model("llama"));
  std::vector<LoraAdapter> loaded;
  for (const std::string d : {"helpful", "safe"}) {
    const fs::path sub = o.out / d;
    ASSERT_TRUE(fs::exists(sub / "adapter_config.json") && fs::exists(sub / "adapter_model.safetensors"));
    const json arm = test::read_json(sub / "arm.json");
    EXPECT_EQ(arm["dimension"], d);
    EXPECT_EQ(arm["version"], 1);
    const LoraAdapter a = LoraAdapter::load(sub, model->config());
    EXPECT_EQ(a.config().r, 2);
    const auto file = runtime::SafetensorsFile::open(sub / "adapter_model.safetensors");
    for (const auto& [name, t] : a.named_parameters()) EXPECT_TRUE(at::equal(t, file.get_f32(name))) << name;
    EXPECT_GT(a.lora_b(0, LinearKind::kQ).abs().max().item<double>(), 0) << "B was not trained";
    loaded.push_back(a);
  }
  EXPECT_FALSE(at::equal(loaded[0].lora_b(1, LinearKind::kV), loaded[1].lora_b(1, LinearKind::kV)));
  const auto reward = scoring::RewardModel::load(o.out);
  EXPECT_EQ(reward->labels(), (std::vector<std::string>{"helpful", "safe"}));
  EXPECT_EQ(reward->score("Tell me about cats.", " banana").size(), 2u);

  // The same seed trains the same adapters.
  o.out = dir / "again";
  train_reward(o);
  for (const std::string d : {"helpful", "safe"}) {
    const LoraAdapter a = LoraAdapter::load(dir / "arm" / d, model->config());
    const LoraAdapter b = LoraAdapter::load(o.out / d, model->config());
    const auto pa = a.parameters(), pb = b.parameters();
    for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i], pb[i])) << d << " tensor " << i;
  }
}

TEST(ArmTrainer, BadInputIsAClearError) {
  const fs::path dir = fresh_dir("bad");
  const fs::path llama = test::hf_model("llama");
  PairTrainOptions o;
  o.steps = 1;
  EXPECT_EQ(error_code_of([&] { train_arm({}, llama, dir / "o1", o); }), ErrorCode::kInvalidArgument);
  std::ofstream(dir / "empty.jsonl") << "\n";
  RewardTrainOptions ro;
  ro.method = "arm";
  ro.data = dir / "empty.jsonl";
  ro.backbone = llama;
  ro.out = dir / "o2";
  ro.progress = false;
  EXPECT_EQ(error_code_of([&] { train_reward(ro); }), ErrorCode::kInvalidArgument);
  write_lines(dir / "same.jsonl", {{{"prompt", "p"}, {"chosen", "a"}, {"rejected", "a"}}});
  ro.data = dir / "same.jsonl";
  EXPECT_EQ(error_code_of([&] { train_reward(ro); }), ErrorCode::kInvalidArgument);
  const auto records = records_of(planted_pairs(4, 5));
  EXPECT_EQ(error_code_of([&] { train_arm(records, test::hf_model("gpt2"), dir / "o3", o); }), ErrorCode::kUnsupported);
  EXPECT_EQ(error_code_of([&] { train_arm(records, dir / "nowhere", dir / "o4", o); }), ErrorCode::kNotFound);
  auto mixed = records;
  mixed[0].dimension = "safe";
  EXPECT_EQ(error_code_of([&] { train_arm(mixed, llama, dir / "o5", o); }), ErrorCode::kInvalidArgument);
  auto escaping = records;
  for (auto& r : escaping) r.dimension = "../up";
  EXPECT_EQ(error_code_of([&] { train_arm(escaping, llama, dir / "o6", o); }), ErrorCode::kInvalidArgument);
  PairTrainOptions bad = o;
  bad.beta = 0;
  EXPECT_EQ(error_code_of([&] { train_arm(records, llama, dir / "o7", bad); }), ErrorCode::kInvalidArgument);
  bad = o;
  bad.lora.target_modules = {"c_attn"};
  EXPECT_EQ(error_code_of([&] { train_arm(records, llama, dir / "o8", bad); }), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir / "o3" / "palign_reward.json"));
}
