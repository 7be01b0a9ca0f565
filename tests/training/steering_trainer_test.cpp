// BiPO: the loss's gradient in v against a central difference, and a planted preference (token A over token B) that
// the trained vector must push toward A and its negation toward B; bad options.
#include "palign/training/steering_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/training/policy_trainer.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;

namespace {

std::vector<SequencePair> planted_pairs(int64_t n) {
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> prompt = {1, 10 + i, 50 + i};
    scoring::ResponseSequence c{prompt, 3}, r{prompt, 3};
    c.ids.push_back(301);
    r.ids.push_back(302);
    pairs.push_back({c, r});
  }
  return pairs;
}

TEST(Bipo, GradientMatchesACentralDifference) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto pairs = planted_pairs(4);
  const auto [ref_c, ref_r] = reference_log_probs(*model, pairs, 4);
  at::manual_seed(1);
  at::Tensor v = (at::randn({model->config().hidden_size}) * 0.1).requires_grad_(true);
  for (double direction : {1.0, -1.0}) {
    if (v.grad().defined()) v.grad().zero_();
    bipo_loss(*model, pairs, ref_c, ref_r, v, 1, direction, 0.5).backward();
    const at::Tensor u = at::randn_like(v);
    const double eps = 1e-2;
    at::NoGradGuard no_grad;
    const double plus = bipo_loss(*model, pairs, ref_c, ref_r, v + eps * u, 1, direction, 0.5).item<double>();
    const double minus = bipo_loss(*model, pairs, ref_c, ref_r, v - eps * u, 1, direction, 0.5).item<double>();
    const double fd = (plus - minus) / (2 * eps), ad = (v.grad() * u).sum().item<double>();
    std::printf("bipo d=%+.0f: directional derivative autograd %.6f vs central difference %.6f (diff %.2g)\n",
                direction, ad, fd, std::abs(ad - fd));
    EXPECT_NEAR(ad, fd, 1e-3 + 1e-2 * std::abs(fd));
  }
}

TEST(Bipo, LearnsAPlantedPreferenceInBothDirections) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto pairs = planted_pairs(12);
  BipoOptions o;
  o.layer = 1;
  o.beta = 0.5;
  o.lr = 0.05;
  o.epochs = 15;
  o.batch = 4;
  o.valid_share = 0;
  BipoReport rep;
  const at::Tensor v = train_bipo_vector(*model, pairs, o, &rep);
  auto gap = [&](double scale) {
    at::NoGradGuard no_grad;
    std::vector<scoring::ResponseSequence> rows;
    for (const auto& p : pairs) rows.push_back(p.chosen);
    for (const auto& p : pairs) rows.push_back(p.rejected);
    const at::Tensor lp = response_log_probs(*model, rows, nullptr, [&](int64_t l, at::Tensor& x) {
      if (l == 1) x = x + scale * v;
    });
    return (lp.slice(0, 0, 12) - lp.slice(0, 12, 24)).mean().item<double>();
  };
  const double base = gap(0), toward = gap(1), away = gap(-1);
  std::printf("bipo: log p(A) - log p(B): %.3f with +v, %.3f without, %.3f with -v; loss log 2 = %.3f -> %.3f in %lld "
              "steps (accuracy over both directions %.3f), |v| %.3f\n",
              toward, base, away, std::log(2.0), rep.train_loss, static_cast<long long>(rep.steps),
              rep.train_accuracy, v.norm().item<double>());
  EXPECT_GT(toward, base + 0.5);
  EXPECT_LT(away, base - 0.5);
  EXPECT_LT(rep.train_loss, std::log(2.0) - 0.1);
  EXPECT_EQ(rep.steps, 15 * 3);
}

// Held-out pairs validate the vector (both directions) and keep the best; a run stopped at a checkpoint and resumed
// ends with the uninterrupted run's vector.
TEST(Bipo, ValidatesAndResumesFromACheckpoint) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto pairs = planted_pairs(12);
  BipoOptions o;
  o.layer = 1;
  o.beta = 0.5;
  o.lr = 0.05;
  o.epochs = 4;
  o.batch = 3;
  o.valid_share = 0.25;
  o.seed = 2;
  BipoReport straight_rep;
  const at::Tensor straight = train_bipo_vector(*model, pairs, o, &straight_rep);
  const auto dir = std::filesystem::temp_directory_path() / ("palign_bipo_ckpt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  o.checkpoint_dir = dir;
  o.stop_at = 5;
  BipoReport first;
  train_bipo_vector(*model, pairs, o, &first);
  EXPECT_TRUE(first.stopped);
  o.stop_at = 0;
  BipoReport resumed_rep;
  const at::Tensor resumed = train_bipo_vector(*model, pairs, o, &resumed_rep);
  const double diff = (straight - resumed).abs().max().item<double>();
  std::printf("bipo: valid loss %.4f, valid accuracy %.3f (3 held-out pairs x 2 directions); resumed at step %lld of "
              "%lld vs uninterrupted: max-abs-diff %.3g\n",
              straight_rep.valid_loss, straight_rep.valid_accuracy, static_cast<long long>(resumed_rep.resumed_at),
              static_cast<long long>(straight_rep.steps), diff);
  EXPECT_EQ(straight_rep.n_valid, 3);
  EXPECT_LT(straight_rep.valid_loss, std::log(2.0));
  EXPECT_EQ(resumed_rep.resumed_at, 5);
  EXPECT_EQ(diff, 0.0);
  std::filesystem::remove_all(dir);
}

TEST(Bipo, BadOptionsFail) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  BipoOptions o;
  EXPECT_EQ(error_code_of([&] { train_bipo_vector(*model, {}, o); }), ErrorCode::kInvalidArgument);
  o.layer = 5;
  EXPECT_EQ(error_code_of([&] { train_bipo_vector(*model, planted_pairs(2), o); }), ErrorCode::kInvalidArgument);
  o.layer = 0;
  o.beta = -1;
  EXPECT_EQ(error_code_of([&] { train_bipo_vector(*model, planted_pairs(2), o); }), ErrorCode::kInvalidArgument);
}

}  // namespace

// train_steering (what `palign train steer` runs): one mean-difference vector per dimension, equal to
// mean_difference_vector on the same pairs tokenized one by one; each bad input a clear error.
TEST(Steering, TrainsOneVectorPerDimensionAsTheOneByOneTwin) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  std::vector<scoring::PreferenceRecord> records;
  for (int i = 0; i < 6; ++i) {
    scoring::PreferenceRecord r;
    r.prompt = "Tell me about " + std::to_string(i);
    r.chosen = i % 2 ? " a long and happy story" : " ha ha!";
    r.rejected = " no";
    r.dimension = i % 2 ? "length" : "humour";
    records.push_back(r);
  }
  SteeringTrainOptions o;
  const auto result = train_steering(*model, tok, records, o);
  ASSERT_EQ(result.vectors.size(), 2u);
  EXPECT_EQ(result.layer, model->config().n_layer / 2);
  double max_diff = 0;
  for (size_t k = 0; k < result.vectors.size(); ++k) {
    std::vector<scoring::TokenPair> pairs;
    for (const auto& r : records) {
      if (r.dimension != result.vectors[k].name) continue;
      const auto c = scoring::tokenize_response(tok, r.prompt, r.chosen, 128);
      const auto x = scoring::tokenize_response(tok, r.prompt, r.rejected, 128);
      scoring::TokenPair p;
      p.prompt.assign(c.ids.begin(), c.ids.begin() + c.response_start);
      p.chosen.assign(c.ids.begin() + c.response_start, c.ids.end());
      p.rejected.assign(x.ids.begin() + x.response_start, x.ids.end());
      pairs.push_back(p);
    }
    EXPECT_EQ(result.dimensions[k].pairs, 3);
    const at::Tensor twin = scoring::mean_difference_vector(*model, pairs, result.layer);
    max_diff = std::max(max_diff, (twin - result.vectors[k].vector).abs().max().item<double>());
    EXPECT_NEAR(result.dimensions[k].norm, twin.norm().item<double>(), 1e-4);
  }
  std::printf("train_steering vs mean_difference_vector: max |diff| %.3g\n", max_diff);
  EXPECT_LT(max_diff, test::kF32Tol);

  auto bad = o;
  bad.method = "pca";
  EXPECT_EQ(error_code_of([&] { train_steering(*model, tok, records, bad); }), ErrorCode::kInvalidArgument);
  bad = o;
  bad.layer = model->config().n_layer;
  EXPECT_EQ(error_code_of([&] { train_steering(*model, tok, records, bad); }), ErrorCode::kInvalidArgument);
  bad = o;
  bad.max_tokens = 1;
  EXPECT_EQ(error_code_of([&] { train_steering(*model, tok, records, bad); }), ErrorCode::kInvalidArgument);
  bad = o;
  bad.max_tokens = 3;  // every pair is cut away: the dimension has nothing to average
  EXPECT_EQ(error_code_of([&] { train_steering(*model, tok, records, bad); }), ErrorCode::kInvalidArgument);
  auto no_dimension = records;
  no_dimension[0].dimension.clear();
  EXPECT_EQ(error_code_of([&] { train_steering(*model, tok, no_dimension, o); }), ErrorCode::kInvalidArgument);
}
