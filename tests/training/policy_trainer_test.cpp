// The DPO family: losses against values worked out by hand on 2×2 log-prob tables, gradients against finite
// differences, reference log-probs batched vs one pair at a time, and a planted toy preference (prefer one token) that
// a few LoRA steps must learn; bad options.
#include "palign/training/policy_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;

namespace {

struct Table {
  at::Tensor c = at::tensor({-1.0, -2.0}, at::kDouble), r = at::tensor({-3.0, -1.0}, at::kDouble);
  at::Tensor ref_c = at::tensor({-1.5, -2.0}, at::kDouble), ref_r = at::tensor({-2.5, -1.5}, at::kDouble);
  at::Tensor len_c = at::tensor({2.0, 4.0}, at::kDouble), len_r = at::tensor({3.0, 1.0}, at::kDouble);
};
constexpr double kBeta = 0.5, kGamma = 0.3;

double neg_log_sigmoid(double x) { return std::log1p(std::exp(-x)); }

at::Tensor loss_of(PolicyLoss kind, const Table& t) {
  return policy_pair_loss(kind, policy_difference(kind, t.c, t.r, t.ref_c, t.ref_r, t.len_c, t.len_r, kBeta), kBeta,
                          kGamma);
}

// By hand: dpo d = β·((c − ref_c) − (r − ref_r)) = 0.5·(0.5 + 0.5) = 0.5 and 0.5·(0 − 0.5) = −0.25;
// ipo h = 1 and −0.5, loss (h − 1/(2β))² = (h − 1)² = 0 and 2.25; simpo d = 0.5·(−1/2 + 3/3) = 0.25 and
// 0.5·(−2/4 + 1/1) = 0.25, loss −log σ(0.25 − 0.3).
TEST(PolicyLosses, MatchHandComputedTables) {
  const Table t;
  const std::vector<std::pair<PolicyLoss, std::vector<double>>> expected = {
      {PolicyLoss::kDpo, {neg_log_sigmoid(0.5), neg_log_sigmoid(-0.25)}},
      {PolicyLoss::kIpo, {0.0, 2.25}},
      {PolicyLoss::kSimpo, {neg_log_sigmoid(-0.05), neg_log_sigmoid(-0.05)}},
  };
  for (const auto& [kind, want] : expected) {
    const at::Tensor got = loss_of(kind, t);
    double diff = 0;
    for (int64_t i = 0; i < 2; ++i) diff = std::max(diff, std::abs(got[i].item<double>() - want[i]));
    std::printf("%s on the 2x2 table: max-abs-diff vs hand = %.3g\n", policy_loss_name(kind).c_str(), diff);
    EXPECT_LT(diff, 1e-12) << policy_loss_name(kind);
  }
  // simpo ignores the reference.
  Table other = t;
  other.ref_c = at::zeros({2}, at::kDouble);
  EXPECT_TRUE(at::equal(loss_of(PolicyLoss::kSimpo, other), loss_of(PolicyLoss::kSimpo, t)));
}

TEST(PolicyLosses, GradientsMatchFiniteDifferences) {
  for (PolicyLoss kind : {PolicyLoss::kDpo, PolicyLoss::kIpo, PolicyLoss::kSimpo}) {
    Table t;
    t.c.requires_grad_(true);
    t.r.requires_grad_(true);
    loss_of(kind, t).mean().backward();
    double worst = 0;
    for (at::Tensor* x : {&t.c, &t.r})
      for (int64_t i = 0; i < 2; ++i) {
        const double eps = 1e-6;
        Table plus, minus;
        at::Tensor& xp = x == &t.c ? plus.c : plus.r;
        at::Tensor& xm = x == &t.c ? minus.c : minus.r;
        xp[i] += eps;
        xm[i] -= eps;
        const double fd =
            (loss_of(kind, plus).mean().item<double>() - loss_of(kind, minus).mean().item<double>()) / (2 * eps);
        worst = std::max(worst, std::abs(fd - x->grad()[i].item<double>()));
      }
    std::printf("%s gradient vs central differences: max-abs-diff = %.3g\n", policy_loss_name(kind).c_str(), worst);
    EXPECT_LT(worst, 1e-8) << policy_loss_name(kind);
  }
}

// A planted preference: after the prompt, token A is chosen over token B every time. A few steps of each loss must
// raise log π(A) − log π(B) above the reference's, and the trained adapter must win every training pair.
TEST(PolicyTraining, LearnsAPlantedTokenPreference) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const int64_t A = 301, B = 302;
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < 12; ++i) {
    std::vector<int64_t> prompt = {1, 10 + i, 50 + i};
    scoring::ResponseSequence c{prompt, 3}, r{prompt, 3};
    c.ids.push_back(A);
    r.ids.push_back(B);
    pairs.push_back({c, r});
  }
  auto gap = [&](const runtime::LinearHook* hook) {
    at::NoGradGuard no_grad;
    std::vector<scoring::ResponseSequence> rows;
    for (const auto& p : pairs) rows.push_back(p.chosen);
    for (const auto& p : pairs) rows.push_back(p.rejected);
    const at::Tensor lp = scoring::response_log_probs(*model, rows, hook);
    return (lp.slice(0, 0, 12) - lp.slice(0, 12, 24)).mean().item<double>();
  };
  const double before = gap(nullptr);
  for (PolicyLoss kind : {PolicyLoss::kDpo, PolicyLoss::kIpo, PolicyLoss::kSimpo}) {
    PolicyTrainOptions o;
    o.loss = kind;
    o.fit.beta = kind == PolicyLoss::kSimpo ? 2.0 : 0.1;
    o.fit.lr = 1e-2;
    o.fit.steps = 20;
    o.fit.batch = 4;
    o.fit.valid_share = 0;
    o.fit.seed = 3;
    auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 3);
    double ref_seconds = -1;
    const PairFitReport rep = fit_policy_adapter(*model, adapter, pairs, o, &ref_seconds);
    const double after = gap(&adapter);
    std::printf("%s: log p(A) - log p(B) %.3f -> %.3f after %lld steps; train accuracy %.3f, reference %.3f s\n",
                policy_loss_name(kind).c_str(), before, after, static_cast<long long>(rep.steps), rep.train_accuracy,
                ref_seconds);
    EXPECT_GT(after, before + 1.0) << policy_loss_name(kind);
    EXPECT_EQ(rep.train_accuracy, 1.0) << policy_loss_name(kind);
    EXPECT_GE(ref_seconds, 0.0);
  }
}

// Stopping at step 6 (with a checkpoint) and resuming ends exactly where an uninterrupted fit ends: the same adapter,
// the same best-by-validation choice, the same step count.
TEST(PolicyTraining, ResumeFromACheckpointEqualsAnUninterruptedFit) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < 16; ++i) {
    std::vector<int64_t> prompt = {1, 10 + i, 50 + i};
    scoring::ResponseSequence c{prompt, 3}, r{prompt, 3};
    c.ids.insert(c.ids.end(), {301, 5 + i});
    r.ids.insert(r.ids.end(), {302, 7 + i});
    pairs.push_back({c, r});
  }
  PolicyTrainOptions o;
  o.fit.lr = 5e-3;
  o.fit.steps = 12;
  o.fit.batch = 3;
  o.fit.valid_share = 0.25;
  o.fit.eval_every = 2;
  o.fit.patience = 100;
  o.fit.seed = 9;
  auto straight = runtime::LoraAdapter::init(model->config(), o.fit.lora, 9);
  const PairFitReport a = fit_policy_adapter(*model, straight, pairs, o);

  const auto dir = std::filesystem::temp_directory_path() / ("palign_policy_ckpt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  o.fit.checkpoint_dir = dir;
  o.fit.checkpoint_every = 4;
  o.fit.stop_at = 6;
  auto first = runtime::LoraAdapter::init(model->config(), o.fit.lora, 9);
  const PairFitReport b = fit_policy_adapter(*model, first, pairs, o);
  EXPECT_TRUE(b.stopped);
  EXPECT_EQ(b.steps, 6);
  o.fit.stop_at = 0;
  auto resumed = runtime::LoraAdapter::init(model->config(), o.fit.lora, 9);
  const PairFitReport c = fit_policy_adapter(*model, resumed, pairs, o);
  EXPECT_EQ(c.resumed_at, 6);
  EXPECT_FALSE(c.stopped);
  EXPECT_EQ(c.steps, a.steps);
  EXPECT_EQ(c.epochs, a.epochs);
  double worst = 0;
  const auto pa = straight.parameters(), pc = resumed.parameters();
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pc[i]).abs().max().item<double>());
  std::printf("resumed at step 6 of 12 vs uninterrupted: adapter max-abs-diff %.3g, valid loss %.6f vs %.6f\n", worst,
              c.valid_loss, a.valid_loss);
  EXPECT_LT(worst, 1e-6);
  EXPECT_NEAR(c.valid_loss, a.valid_loss, 1e-9);
  // A checkpoint of another fit is an error, not a silent restart.
  o.fit.seed = 10;
  auto other = runtime::LoraAdapter::init(model->config(), o.fit.lora, 10);
  EXPECT_EQ(error_code_of([&] { fit_policy_adapter(*model, other, pairs, o); }), ErrorCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

// A damaged checkpoint is a user error naming the file (never an internal error or minutes of replay), and a save
// killed between its two renames is recovered instead of silently restarting from step 0.
TEST(PolicyTraining, DamagedCheckpointsAreRefusedAndAnInterruptedSaveIsRecovered) {
  namespace fs = std::filesystem;
  const auto model = runtime::Model::load(test::hf_model("llama"));
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < 8; ++i) {
    std::vector<int64_t> prompt = {1, 10 + i};
    scoring::ResponseSequence c{prompt, 2}, r{prompt, 2};
    c.ids.insert(c.ids.end(), {301, 5 + i});
    r.ids.insert(r.ids.end(), {302, 7 + i});
    pairs.push_back({c, r});
  }
  PolicyTrainOptions o;
  o.fit.steps = 6;
  o.fit.batch = 2;
  o.fit.seed = 3;
  const fs::path root = fs::temp_directory_path() / ("palign_policy_damaged_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path dir = root / "checkpoint", backup = root / "backup";
  o.fit.checkpoint_dir = dir;
  o.fit.checkpoint_every = 2;
  o.fit.stop_at = 2;
  auto first = runtime::LoraAdapter::init(model->config(), o.fit.lora, 3);
  ASSERT_TRUE(fit_policy_adapter(*model, first, pairs, o).stopped);
  fs::copy(dir, backup, fs::copy_options::recursive);
  o.fit.stop_at = 0;
  auto restore = [&] {
    fs::remove_all(dir);
    fs::remove_all(dir.string() + ".old");
    fs::copy(backup, dir, fs::copy_options::recursive);
  };
  auto message_of = [&] {
    auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 3);
    try {
      fit_policy_adapter(*model, adapter, pairs, o);
    } catch (const Error& e) {
      std::printf("  expected error: %s\n", e.what());
      return std::make_pair(e.code(), std::string(e.what()));
    }
    return std::make_pair(ErrorCode::kSentinel, std::string());
  };
  auto edit_state = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "state.json"));
    j[key] = value;
    std::ofstream(dir / "state.json") << j.dump();
  };
  // "step": 10^12 replayed the batch order for minutes; a negative one is no better.
  for (const int64_t step : {int64_t{1000000000000}, int64_t{-5}}) {
    edit_state("step", step);
    const auto [code, msg] = message_of();
    EXPECT_EQ(code, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("state.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("outside this fit"), std::string::npos) << msg;
    restore();
  }
  edit_state("since_best", "many");
  EXPECT_EQ(message_of().first, ErrorCode::kInvalidArgument);
  restore();
  // A truncated optimizer.pt was libtorch's internal error.
  fs::resize_file(dir / "optimizer.pt", fs::file_size(dir / "optimizer.pt") / 2);
  {
    const auto [code, msg] = message_of();
    EXPECT_EQ(code, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("optimizer.pt"), std::string::npos) << msg;
  }
  restore();
  // Killed between the renames: only checkpoint.old holds the checkpoint. The run resumes from it.
  fs::rename(dir, dir.string() + ".old");
  {
    auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 3);
    const PairFitReport r = fit_policy_adapter(*model, adapter, pairs, o);
    EXPECT_EQ(r.resumed_at, 2);
  }
  fs::remove_all(root);
}

TEST(PolicyTraining, ReferenceBatchedEqualsOnePairAtATime) {
  const auto model = runtime::Model::load(test::hf_model("qwen2"));
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < 5; ++i)
    pairs.push_back({{{1, 5 + i, 9, 20 + i, 21}, 2}, {{1, 5 + i, 30, 31, 32, 33 + i}, 2}});
  const auto [c, r] = reference_log_probs(*model, pairs, 3);
  double worst = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [c1, r1] = reference_log_probs(*model, {pairs[i]}, 1);
    worst = std::max({worst, std::abs(c[i].item<double>() - c1[0].item<double>()),
                      std::abs(r[i].item<double>() - r1[0].item<double>())});
  }
  std::printf("reference log-probs, batches of 3 vs one pair: max-abs-diff = %.3g\n", worst);
  EXPECT_LT(worst, 1e-4);
}

TEST(PolicyTraining, BadInputsFail) {
  EXPECT_EQ(error_code_of([] { policy_loss_from_name("kto"); }), ErrorCode::kInvalidArgument);
  const auto model = runtime::Model::load(test::hf_model("llama"));
  PolicyTrainOptions o;
  auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 0);
  EXPECT_EQ(error_code_of([&] { fit_policy_adapter(*model, adapter, {}, o); }), ErrorCode::kInvalidArgument);
  o.gamma = -1;
  EXPECT_EQ(error_code_of([&] { fit_policy_adapter(*model, adapter, {{{{1, 2}, 1}, {{1, 3}, 1}}}, o); }),
            ErrorCode::kInvalidArgument);
  o.gamma = 0.5;
  o.fit.beta = 0;
  EXPECT_EQ(error_code_of([&] { fit_policy_adapter(*model, adapter, {{{{1, 2}, 1}, {{1, 3}, 1}}}, o); }),
            ErrorCode::kInvalidArgument);
}

}  // namespace
