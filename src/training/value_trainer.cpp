// CD-FUDGE / VAS prefix value models (see value_trainer.h).
#include "palign/training/value_trainer.h"

#include <torch/torch.h>

#include <cmath>

#include "palign/base/error.h"
#include "palign/runtime/model.h"

namespace palign::training {

std::string ValueOptions::validate() const {
  if (rollouts < 1) return "--rollouts must be at least 1, got " + std::to_string(rollouts);
  if (!std::isfinite(td_lambda) || td_lambda < 0 || td_lambda > 1)
    return "--td-lambda must be in [0, 1] (1: Monte Carlo targets), got " + std::to_string(td_lambda);
  if (td_rounds < 0) return "--td-rounds must be >= 0, got " + std::to_string(td_rounds);
  if (!std::isfinite(l2)) return "--l2 must be a finite number (< 0: chosen on held-out prompts)";
  if (!std::isfinite(valid_share) || valid_share < 0 || valid_share >= 1)
    return "--valid-share must be in [0, 1), got " + std::to_string(valid_share);
  if (valid_share == 0 && l2 < 0) return "--valid-share 0 leaves no prompts to choose --l2 on; give --l2 >= 0";
  if (generate.max_new_tokens < 1) return "--max-new-tokens must be at least 1";
  return generate.validate();
}

ValueRollouts sample_value_rollouts(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                    const std::vector<std::vector<int64_t>>& prompts, const RolloutReward& reward,
                                    const ValueOptions& options) {
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[training.value] ", err);
  PALIGN_CHECK(!prompts.empty(), ErrorCode::kInvalidArgument, "[training.value] no prompts to roll out from");
  c10::InferenceMode guard;
  ValueRollouts out;
  std::vector<std::vector<double>> rewards;
  int64_t k = -1;
  for (size_t p = 0; p < prompts.size(); ++p) {
    runtime::GenerateOptions g = options.generate;
    g.sampling.seed = options.generate.sampling.seed + static_cast<uint64_t>(p) * 1000;
    const auto samples = runtime::generate(model, tokenizer, prompts[p], g, options.rollouts);
    std::vector<std::vector<int64_t>> ids;
    for (const auto& s : samples)
      if (!s.ids.empty()) ids.push_back(s.ids);
    if (ids.empty()) continue;
    const auto scores = reward(static_cast<int64_t>(p), ids);
    PALIGN_CHECK(scores.size() == ids.size(), ErrorCode::kInvalidArgument, "[training.value] the reward gave ",
                 scores.size(), " scores for ", ids.size(), " rollouts");
    for (const auto& s : scores) {
      if (k < 0) k = static_cast<int64_t>(s.size());
      PALIGN_CHECK(k >= 1 && static_cast<int64_t>(s.size()) == k, ErrorCode::kInvalidArgument,
                   "[training.value] every rollout needs the same number (>= 1) of rewards; got ", s.size(), " after ",
                   k);
      for (double v : s)
        PALIGN_CHECK(std::isfinite(v), ErrorCode::kInvalidArgument,
                     "[training.value] the reward of a rollout of prompt ", p, " is not finite (", v,
                     "); check the reward model");
      rewards.push_back(s);
    }
    // The prefixes' features: one right-padded forward of prompt + rollout per row.
    const auto P = static_cast<int64_t>(prompts[p].size());
    int64_t longest = 0;
    for (const auto& r : ids) longest = std::max<int64_t>(longest, P + static_cast<int64_t>(r.size()));
    at::Tensor batch = at::zeros({static_cast<int64_t>(ids.size()), longest}, at::kLong);
    std::vector<int64_t> n_tokens;
    for (size_t i = 0; i < ids.size(); ++i) {
      std::vector<int64_t> row = prompts[p];
      row.insert(row.end(), ids[i].begin(), ids[i].end());
      batch[static_cast<int64_t>(i)].narrow(0, 0, static_cast<int64_t>(row.size())).copy_(at::tensor(row, at::kLong));
      n_tokens.push_back(static_cast<int64_t>(row.size()));
    }
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kNone;
    fo.return_hidden = true;
    fo.linear_hook = options.generate.linear_hook;
    const at::Tensor hidden = model.forward_uncached(runtime::Batch{.ids = batch, .n_tokens = n_tokens}, fo).hidden;
    for (size_t i = 0; i < ids.size(); ++i) {
      out.features.push_back(
          hidden[static_cast<int64_t>(i)].narrow(0, P, static_cast<int64_t>(ids[i].size())).to(at::kFloat).clone());
      out.prompt_of.push_back(static_cast<int64_t>(p));
      out.ids.push_back(std::move(ids[i]));
    }
  }
  PALIGN_CHECK(!out.ids.empty(), ErrorCode::kInvalidArgument,
               "[training.value] every rollout ended before its first token; raise --max-new-tokens");
  out.rewards = at::empty({static_cast<int64_t>(rewards.size()), k}, at::kDouble);
  for (size_t i = 0; i < rewards.size(); ++i)
    out.rewards[static_cast<int64_t>(i)].copy_(at::tensor(rewards[i], at::kDouble));
  return out;
}

std::vector<at::Tensor> value_targets(const ValueRollouts& rollouts, double td_lambda,
                                      const std::vector<at::Tensor>& values) {
  const bool monte_carlo = td_lambda >= 1.0 || values.empty();
  PALIGN_CHECK(monte_carlo || values.size() == rollouts.features.size(), ErrorCode::kInvalidArgument,
               "[training.value] ", values.size(), " value rows for ", rollouts.features.size(), " rollouts");
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < rollouts.features.size(); ++i) {
    const at::Tensor r = rollouts.rewards[static_cast<int64_t>(i)];
    const int64_t L = rollouts.features[i].size(0);
    at::Tensor g = r.unsqueeze(0).repeat({L, 1}).contiguous();
    if (!monte_carlo) {
      const at::Tensor v = values[i].to(at::kDouble);
      for (int64_t j = L - 2; j >= 0; --j) {
        const at::Tensor next_value = j + 1 == L - 1 ? r : v[j + 1];  // the whole text's value is its reward
        g[j] = (1.0 - td_lambda) * next_value + td_lambda * g[j + 1];
      }
    }
    out.push_back(g);
  }
  return out;
}

namespace {

// Rows of the rollouts of prompts in [begin, end): features [N, D] and targets [N, K] (float64); first: the rows of
// each rollout's first prefix.
struct Rows {
  at::Tensor x, y, first_x, first_y;
};

Rows rows_of(const ValueRollouts& r, const std::vector<at::Tensor>& targets, int64_t begin, int64_t end) {
  std::vector<at::Tensor> xs, ys;
  for (size_t i = 0; i < r.features.size(); ++i)
    if (r.prompt_of[i] >= begin && r.prompt_of[i] < end) {
      xs.push_back(r.features[i].to(at::kDouble));
      ys.push_back(targets[i]);
    }
  if (xs.empty()) return {};
  Rows out{at::cat(xs), at::cat(ys), {}, {}};
  std::vector<at::Tensor> fx, fy;
  for (size_t i = 0; i < xs.size(); ++i) fx.push_back(xs[i][0]), fy.push_back(ys[i][0]);
  out.first_x = at::stack(fx);
  out.first_y = at::stack(fy);
  return out;
}

// 1 − SSE / SST pooled over the columns; NaN for no rows or constant targets.
double r2(const at::Tensor& pred, const at::Tensor& y) {
  if (!y.defined() || y.size(0) == 0) return std::nan("");
  const double sst = (y - y.mean(0, true)).pow(2).sum().item<double>();
  const double sse = (pred - y).pow(2).sum().item<double>();
  return sst > 0 ? 1.0 - sse / sst : std::nan("");
}

struct Ridge {
  at::Tensor w;  // [D, K]
  at::Tensor b;  // [K]
  at::Tensor predict(const at::Tensor& x) const { return x.matmul(w) + b; }
};

Ridge ridge(const at::Tensor& x, const at::Tensor& y, double alpha) {
  const at::Tensor mx = x.mean(0), my = y.mean(0);
  const at::Tensor xc = x - mx, yc = y - my;
  const int64_t d = x.size(1);
  const at::Tensor a = xc.t().matmul(xc) + alpha * at::eye(d, at::kDouble);
  const at::Tensor w = at::linalg_solve(a, xc.t().matmul(yc));
  return {w, my - mx.matmul(w)};
}

}  // namespace

ValueFit fit_value(const ValueRollouts& rollouts, int64_t n_prompts, const ValueOptions& options) {
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[training.value] ", err);
  int64_t n_valid = 0;
  if (options.valid_share > 0) {
    PALIGN_CHECK(n_prompts >= 2, ErrorCode::kInvalidArgument, "[training.value] ", n_prompts,
                 " prompt(s) cannot be split into training and held-out prompts; give more prompts, or --valid-share 0 "
                 "with --l2");
    n_valid = std::clamp<int64_t>(std::llround(options.valid_share * static_cast<double>(n_prompts)), 1, n_prompts - 1);
  }
  const int64_t n_train = n_prompts - n_valid;
  const std::vector<at::Tensor> mc = value_targets(rollouts, 1.0);
  const Rows train = rows_of(rollouts, mc, 0, n_train), valid = rows_of(rollouts, mc, n_train, n_prompts);
  PALIGN_CHECK(train.x.defined(), ErrorCode::kInvalidArgument,
               "[training.value] the training prompts gave no rollouts; raise --max-new-tokens or give more prompts");
  PALIGN_CHECK(n_valid == 0 || valid.x.defined() || options.l2 >= 0, ErrorCode::kInvalidArgument,
               "[training.value] the held-out prompts gave no rollouts to choose --l2 on; give --l2");
  // L2 strengths relative to the features' scale: trace(XᵀX) / D = N · the mean squared feature.
  const at::Tensor xc = train.x - train.x.mean(0);
  const double scale = std::max(1e-12, xc.pow(2).sum().item<double>() / static_cast<double>(train.x.size(1)));
  ValueFit fit;
  double alpha = options.l2 * scale;
  if (options.l2 < 0) {
    double best = INFINITY;
    for (double grid : {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0}) {
      const double mse =
          (ridge(train.x, train.y, grid * scale).predict(valid.x) - valid.y).pow(2).mean().item<double>();
      if (mse < best) best = mse, alpha = grid * scale, fit.l2 = grid;
    }
  } else {
    fit.l2 = options.l2;
  }
  Ridge model = ridge(train.x, train.y, alpha);
  if (options.td_lambda < 1.0) {
    // Fitted value iteration: TD(λ) targets from the last fit's values, refit on the training prompts.
    for (int64_t round = 0; round < options.td_rounds; ++round) {
      std::vector<at::Tensor> values;
      for (const auto& f : rollouts.features) values.push_back(model.predict(f.to(at::kDouble)));
      const Rows td = rows_of(rollouts, value_targets(rollouts, options.td_lambda, values), 0, n_train);
      model = ridge(td.x, td.y, alpha);
    }
  }
  fit.head = model.w.t().to(at::kFloat).contiguous();
  fit.bias = model.b.to(at::kFloat);
  fit.train_prompts = n_train;
  fit.valid_prompts = n_valid;
  fit.train_prefixes = train.x.size(0);
  fit.valid_prefixes = valid.x.defined() ? valid.x.size(0) : 0;
  fit.train_r2 = r2(model.predict(train.x), train.y);
  fit.valid_r2 = valid.x.defined() ? r2(model.predict(valid.x), valid.y) : std::nan("");
  fit.valid_r2_first = valid.x.defined() ? r2(model.predict(valid.first_x), valid.first_y) : std::nan("");
  fit.mean_rollout_tokens = 0;
  for (const auto& ids : rollouts.ids) fit.mean_rollout_tokens += static_cast<double>(ids.size());
  fit.mean_rollout_tokens /= static_cast<double>(rollouts.ids.size());
  return fit;
}

}  // namespace palign::training
