// Steering vectors per dimension: mean differences or BiPO (see steering_trainer.h).
#include "palign/training/steering_trainer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>

#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/runtime/model.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/training/policy_trainer.h"

namespace palign::training {

std::string BipoOptions::validate() const {
  if (layer < 0) return "layer must be >= 0";
  if (!(beta > 0) || !std::isfinite(beta)) return "beta must be a positive finite number";
  if (!(lr > 0) || !std::isfinite(lr)) return "lr must be > 0";
  if (epochs < 1) return "epochs must be >= 1";
  if (batch < 1) return "batch must be >= 1";
  if (!(valid_share >= 0 && valid_share < 1)) return "valid-share must be in [0, 1)";
  if (patience < 1) return "patience must be >= 1";
  if (checkpoint_every < 1) return "checkpoint-every must be >= 1";
  if (stop_at < 0) return "stop-at must be >= 0";
  return {};
}

at::Tensor bipo_loss(const runtime::Model& model, const std::vector<SequencePair>& pairs, const at::Tensor& ref_chosen,
                     const at::Tensor& ref_rejected, const at::Tensor& v, int64_t layer, double direction,
                     double beta) {
  std::vector<scoring::ResponseSequence> rows;
  for (const auto& p : pairs) rows.push_back(p.chosen);
  for (const auto& p : pairs) rows.push_back(p.rejected);
  const auto k = static_cast<int64_t>(pairs.size());
  const at::Tensor lp = scoring::response_log_probs(model, rows, nullptr, [&](int64_t l, at::Tensor& x) {
    if (l == layer) x = x + direction * v;
  });
  const at::Tensor d = direction * beta *
                       ((lp.slice(0, 0, k) - ref_chosen) - (lp.slice(0, k, 2 * k) - ref_rejected));
  return (-at::log_sigmoid(d)).mean();
}

at::Tensor train_bipo_vector(const runtime::Model& model, const std::vector<SequencePair>& pairs, const BipoOptions& o,
                             BipoReport* report) {
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.bipo] ", problem);
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.bipo] no preference pairs to train on");
  PALIGN_CHECK(o.layer < model.config().n_layer, ErrorCode::kInvalidArgument, "[training.bipo] layer ", o.layer,
               " is outside the model's ", model.config().n_layer, " layers (0-based)");
  const auto [ref_c, ref_r] = reference_log_probs(model, pairs, o.batch, o.progress);
  at::Tensor v = at::zeros({model.config().hidden_size}, at::kFloat);
  auto direction = std::make_shared<double>(1.0);  // +1 or −1, the batch's (or the validation pass's) d
  PairObjective objective;
  objective.name = "bipo";
  objective.extra_parameters = {v};
  objective.n_variants = 2;
  objective.set_variant = [direction](int64_t i) { *direction = i == 0 ? 1.0 : -1.0; };
  objective.residual_hook = [v, direction, layer = o.layer](int64_t l, at::Tensor& x) {
    if (l == layer) x = x + *direction * v;
  };
  objective.difference = [=, beta = o.beta](const at::Tensor& c, const at::Tensor& r, const std::vector<int64_t>& idx) {
    const at::Tensor i = at::tensor(idx, at::kLong);
    return *direction * beta * ((c - ref_c.index_select(0, i)) - (r - ref_r.index_select(0, i)));
  };
  objective.loss = [](const at::Tensor& d) { return -at::log_sigmoid(d); };
  PairTrainOptions fit;
  fit.lr = o.lr;
  fit.weight_decay = 0;
  fit.epochs = o.epochs;
  fit.batch = o.batch;
  fit.valid_share = o.valid_share;
  fit.patience = o.patience;
  fit.seed = o.seed;
  fit.progress = o.progress;
  fit.checkpoint_dir = o.checkpoint_dir;
  fit.checkpoint_every = o.checkpoint_every;
  fit.stop_at = o.stop_at;
  const PairFitReport rep = fit_pair_parameters(model, pairs, fit, objective);
  if (report) *report = rep;
  return v.detach().clone();
}

SteeringTrainResult train_steering(const runtime::Model& model, const runtime::Tokenizer& tok,
                                   const std::vector<scoring::PreferenceRecord>& records,
                                   const SteeringTrainOptions& o) {
  const auto& c = model.config();
  PALIGN_CHECK(o.method == "mean_diff" || o.method == "bipo", ErrorCode::kInvalidArgument,
               "[training.steer] unknown method '", o.method, "'; use mean_diff or bipo");
  SteeringTrainResult out;
  out.layer = o.layer < 0 ? c.n_layer / 2 : o.layer;
  PALIGN_CHECK(out.layer < c.n_layer, ErrorCode::kInvalidArgument, "[training.steer] --layer ", out.layer,
               " is outside the model's ", c.n_layer, " layers (0-based)");
  PALIGN_CHECK(o.max_tokens >= 2, ErrorCode::kInvalidArgument, "[training.steer] --max-tokens must be >= 2, got ",
               o.max_tokens);
  const int64_t max_tokens = std::min(o.max_tokens, c.max_position);
  std::map<std::string, std::vector<scoring::TokenPair>> by_dimension;
  std::map<std::string, std::vector<SequencePair>> sequence_pairs;  // bipo
  for (const auto& r : records) {
    PALIGN_CHECK(!r.dimension.empty(), ErrorCode::kInvalidArgument,
                 "[training.steer] a pair has no \"dimension\"; steering vectors are per dimension");
    auto& kept = by_dimension[r.dimension];  // a dimension all of whose pairs are cut is an error below
    auto& kept_sequences = sequence_pairs[r.dimension];
    const auto chosen = scoring::tokenize_response(tok, r.prompt, r.chosen, max_tokens);
    const auto rejected = scoring::tokenize_response(tok, r.prompt, r.rejected, max_tokens);
    if (chosen.response_start >= std::ssize(chosen.ids) || rejected.response_start >= std::ssize(rejected.ids))
      continue;  // the prompt alone fills max_tokens
    scoring::TokenPair p;
    p.prompt.assign(chosen.ids.begin(), chosen.ids.begin() + chosen.response_start);
    p.chosen.assign(chosen.ids.begin() + chosen.response_start, chosen.ids.end());
    p.rejected.assign(rejected.ids.begin() + rejected.response_start, rejected.ids.end());
    // The rejected response continues its own prompt tokens (a tokenizer may merge differently).
    if (!std::equal(p.prompt.begin(), p.prompt.end(), rejected.ids.begin())) continue;
    kept.push_back(std::move(p));
    kept_sequences.push_back({chosen, rejected});
  }
  for (const auto& [name, pairs] : by_dimension) {
    PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.steer] dimension '", name,
                 "' has no pair that fits in --max-tokens ", max_tokens);
    SteeringDimensionReport rep;
    rep.name = name;
    rep.pairs = std::ssize(pairs);
    at::Tensor v;
    if (o.method == "bipo") {
      BipoOptions b = o.bipo;
      b.layer = out.layer;
      b.progress = o.progress;
      b.checkpoint_dir = o.checkpoint_root.empty() ? std::filesystem::path() : o.checkpoint_root / name;
      BipoReport fit;
      v = train_bipo_vector(model, sequence_pairs[name], b, &fit);
      out.stopped = out.stopped || fit.stopped;
      rep.bipo = fit;
    } else {
      ProgressBar bar("steer " + name, 2 * std::ssize(pairs), o.progress);
      v = scoring::mean_difference_vector(model, pairs, out.layer, [&](int64_t done, int64_t) { bar.update(done); });
      bar.finish();
    }
    rep.norm = v.norm().item<double>();
    out.vectors.push_back({.name = name, .layer = out.layer, .vector = v});
    out.dimensions.push_back(std::move(rep));
  }
  return out;
}

}  // namespace palign::training
