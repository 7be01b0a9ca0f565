// The DPO family on a LoRA adapter (see policy_trainer.h).
#include "palign/training/policy_trainer.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/response_log_probs.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

at::Tensor response_lengths(const std::vector<SequencePair>& pairs, bool chosen) {
  std::vector<double> n;
  for (const auto& p : pairs) {
    const scoring::ResponseSequence& s = chosen ? p.chosen : p.rejected;
    n.push_back(static_cast<double>(static_cast<int64_t>(s.ids.size()) - std::max<int64_t>(s.response_start, 1)));
  }
  return at::tensor(n, at::kDouble);
}

}  // namespace

PolicyLoss policy_loss_from_name(const std::string& name) {
  if (name == "dpo") return PolicyLoss::kDpo;
  if (name == "ipo") return PolicyLoss::kIpo;
  if (name == "simpo") return PolicyLoss::kSimpo;
  if (name == "pdpo") return PolicyLoss::kPdpo;
  if (name == "sft") return PolicyLoss::kSft;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.policy] unknown method '", name,
               "'; known: dpo, ipo, simpo, pdpo, sft");
}

std::string policy_loss_name(PolicyLoss loss) {
  switch (loss) {
    case PolicyLoss::kDpo: return "dpo";
    case PolicyLoss::kIpo: return "ipo";
    case PolicyLoss::kSimpo: return "simpo";
    case PolicyLoss::kPdpo: return "pdpo";
    case PolicyLoss::kSft: return "sft";
  }
  return "?";
}

at::Tensor policy_difference(PolicyLoss loss, const at::Tensor& chosen_lp, const at::Tensor& rejected_lp,
                             const at::Tensor& ref_chosen_lp, const at::Tensor& ref_rejected_lp,
                             const at::Tensor& chosen_len, const at::Tensor& rejected_len, double beta) {
  switch (loss) {
    case PolicyLoss::kDpo:
    case PolicyLoss::kPdpo:
      return beta * ((chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp));
    case PolicyLoss::kIpo:
      return (chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp);
    case PolicyLoss::kSimpo:
      return beta * (chosen_lp / chosen_len.clamp_min(1) - rejected_lp / rejected_len.clamp_min(1));
    case PolicyLoss::kSft:
      return chosen_lp / chosen_len.clamp_min(1);
  }
  return {};
}

at::Tensor policy_pair_loss(PolicyLoss loss, const at::Tensor& d, double beta, double gamma) {
  switch (loss) {
    case PolicyLoss::kDpo:
    case PolicyLoss::kPdpo: return -at::log_sigmoid(d);
    case PolicyLoss::kSft: return -d;
    case PolicyLoss::kIpo: return (d - 1.0 / (2.0 * beta)).pow(2);
    case PolicyLoss::kSimpo: return -at::log_sigmoid(d - gamma);
  }
  return {};
}

std::string PolicyTrainOptions::validate() const {
  if (!std::isfinite(gamma) || gamma < 0) return "gamma must be a finite number >= 0";
  if (user_tokens < 1) return "user-tokens must be >= 1";
  if (!std::isfinite(alpha) || alpha < 0) return "alpha must be a finite number >= 0";
  if (!(user_lr > 0) || !std::isfinite(user_lr)) return "user-lr must be > 0";
  if (loss == PolicyLoss::kPdpo && !user.empty())
    return "pdpo learns every user at once; drop --user (it filters the records to one user)";
  return fit.validate();
}

scoring::ResponseSequence with_prefix(const scoring::ResponseSequence& s, const std::vector<int64_t>& prefix) {
  scoring::ResponseSequence out;
  out.ids = prefix;
  out.ids.insert(out.ids.end(), s.ids.begin(), s.ids.end());
  out.response_start = s.response_start + static_cast<int64_t>(prefix.size());
  return out;
}

std::pair<at::Tensor, at::Tensor> reference_log_probs(const runtime::Model& model,
                                                      const std::vector<SequencePair>& pairs, int64_t batch,
                                                      bool progress) {
  at::NoGradGuard no_grad;
  ProgressBar bar("reference", std::ssize(pairs), progress);
  std::vector<at::Tensor> chosen, rejected;
  const auto step = static_cast<size_t>(std::max<int64_t>(1, batch));
  for (size_t start = 0; start < pairs.size(); start += step) {
    const size_t end = std::min(pairs.size(), start + step);
    std::vector<scoring::ResponseSequence> rows;
    for (size_t i = start; i < end; ++i) rows.push_back(pairs[i].chosen);
    for (size_t i = start; i < end; ++i) rows.push_back(pairs[i].rejected);
    const at::Tensor lp = scoring::response_log_probs(model, rows, nullptr);
    const auto k = static_cast<int64_t>(end - start);
    chosen.push_back(lp.slice(0, 0, k));
    rejected.push_back(lp.slice(0, k, 2 * k));
    bar.update(static_cast<int64_t>(end));
  }
  bar.finish();
  return {at::cat(chosen), at::cat(rejected)};
}

namespace {

// The loop's objective for loss o.loss over pairs, with the reference log-probs of each pair (undefined: none).
PairObjective policy_objective(const PolicyTrainOptions& o, const std::vector<SequencePair>& pairs, at::Tensor ref_c,
                               at::Tensor ref_r) {
  PairObjective objective;
  objective.name = policy_loss_name(o.loss);
  objective.single = o.loss == PolicyLoss::kSft;
  objective.has_accuracy = o.loss != PolicyLoss::kSft;
  const at::Tensor len_c = response_lengths(pairs, true), len_r = response_lengths(pairs, false);
  objective.difference = [=, loss = o.loss, beta = o.fit.beta](const at::Tensor& c, const at::Tensor& r,
                                                               const std::vector<int64_t>& idx) {
    const at::Tensor i = at::tensor(idx, at::kLong);
    const at::Tensor zero = at::zeros_like(c);
    return policy_difference(loss, c, r.defined() ? r : zero, ref_c.defined() ? ref_c.index_select(0, i) : zero,
                             ref_r.defined() ? ref_r.index_select(0, i) : zero, len_c.index_select(0, i),
                             len_r.index_select(0, i), beta);
  };
  objective.loss = [loss = o.loss, beta = o.fit.beta, gamma = o.gamma](const at::Tensor& d) {
    return policy_pair_loss(loss, d, beta, gamma);
  };
  return objective;
}

}  // namespace

PairFitReport fit_policy_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                                 const std::vector<SequencePair>& pairs, const PolicyTrainOptions& o,
                                 double* reference_seconds) {
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.policy] ", problem);
  PALIGN_CHECK(o.loss != PolicyLoss::kPdpo, ErrorCode::kInvalidArgument,
               "[training.policy] pdpo trains user tokens too; call fit_pdpo");
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.policy] no preference pairs to train on");
  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor ref_c, ref_r;
  if (o.loss == PolicyLoss::kDpo || o.loss == PolicyLoss::kIpo)
    std::tie(ref_c, ref_r) = reference_log_probs(model, pairs, o.fit.batch, o.fit.progress);
  if (reference_seconds) *reference_seconds = seconds_since(t0);
  return fit_pair_adapter(model, adapter, pairs, o.fit, policy_objective(o, pairs, ref_c, ref_r));
}

PairFitReport fit_pdpo(const runtime::Model& model, runtime::LoraAdapter& adapter, runtime::UserTokens& tokens,
                       const std::vector<SequencePair>& pairs, const std::vector<int64_t>& slots,
                       const PolicyTrainOptions& options, double* reference_seconds) {
  PolicyTrainOptions o = options;
  o.loss = PolicyLoss::kPdpo;
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.pdpo] ", problem);
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.pdpo] no preference pairs to train on");
  PALIGN_CHECK(slots.size() == pairs.size(), ErrorCode::kInvalidArgument, "[training.pdpo] ", slots.size(),
               " user slots for ", pairs.size(), " pairs");
  const auto n_users = static_cast<int64_t>(tokens.users.size());
  for (int64_t s : slots)
    PALIGN_CHECK(s >= 0 && s <= n_users, ErrorCode::kInvalidArgument, "[training.pdpo] user slot ", s,
                 " is outside [0, ", n_users, "]");
  const auto t0 = std::chrono::steady_clock::now();
  const auto [ref_c, ref_r] =
      reference_log_probs(model, pairs, o.fit.batch, o.fit.progress);  // no adapter, no user tokens
  if (reference_seconds) *reference_seconds = seconds_since(t0);
  // Each pair with its user's tokens (weight 1), then every pair with the generic user's (weight alpha; 1 for a
  // pair without a user, whose only copy it is).
  const int64_t V = model.config().vocab_size;
  std::vector<SequencePair> conditioned;
  std::vector<int64_t> source;
  std::vector<double> weights;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (slots[i] == 0) continue;
    const auto prefix = tokens.prefix(slots[i], V);
    conditioned.push_back({with_prefix(pairs[i].chosen, prefix), with_prefix(pairs[i].rejected, prefix)});
    source.push_back(static_cast<int64_t>(i));
    weights.push_back(1.0);
  }
  const auto generic = tokens.prefix(0, V);
  for (size_t i = 0; i < pairs.size(); ++i) {
    conditioned.push_back({with_prefix(pairs[i].chosen, generic), with_prefix(pairs[i].rejected, generic)});
    source.push_back(static_cast<int64_t>(i));
    weights.push_back(slots[i] == 0 ? 1.0 : o.alpha);
  }
  const at::Tensor from = at::tensor(source, at::kLong);
  PairObjective objective = policy_objective(o, conditioned, ref_c.index_select(0, from), ref_r.index_select(0, from));
  objective.pair_weights = at::tensor(weights, at::kDouble);
  objective.extra_parameters = {tokens.generic, tokens.individual};
  objective.extra_lr = o.user_lr;
  objective.virtual_tokens = [&tokens] { return tokens.table(); };
  return fit_pair_adapter(model, adapter, conditioned, o.fit, objective);
}

PolicyTrainReport train_policy(const std::vector<scoring::PreferenceRecord>& records, const fs::path& model_dir,
                               const fs::path& out, const PolicyTrainOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.policy] ", problem);
  PALIGN_CHECK(!records.empty(), ErrorCode::kInvalidArgument,
               "[training.policy] no preference records; pass {\"prompt\", \"chosen\", \"rejected\"} pairs");
  PALIGN_CHECK(fs::is_directory(model_dir), ErrorCode::kNotFound, "[training.policy] no model directory at ",
               model_dir.string());
  const auto model = runtime::Model::load(model_dir);
  PALIGN_CHECK(model->config().head == runtime::HeadKind::kCausalLm, ErrorCode::kUnsupported, "[training.policy] ",
               model_dir.string(), " is a ", model->config().architecture, "; the policy must be a *ForCausalLM model");
  const auto tok = runtime::Tokenizer::from_dir(model_dir);
  const int64_t max_tokens = std::min(options.fit.max_tokens, model->config().max_position);
  PolicyTrainReport report;
  const bool sft = options.loss == PolicyLoss::kSft, pdpo = options.loss == PolicyLoss::kPdpo;
  std::vector<const scoring::PreferenceRecord*> kept;
  std::set<std::string> users;
  std::set<std::pair<std::string, std::string>> liked;  // sft: each (prompt, chosen) once
  for (const auto& r : records) {
    if (!options.user.empty() && r.user_id != options.user) continue;
    if (sft ? !liked.insert({r.prompt, r.chosen}).second : r.chosen == r.rejected) {
      ++report.n_skipped;
      continue;
    }
    kept.push_back(&r);
    if (!r.user_id.empty()) users.insert(r.user_id);
  }
  PALIGN_CHECK(options.user.empty() || kept.size() + static_cast<size_t>(report.n_skipped) > 0,
               ErrorCode::kInvalidArgument, "[training.policy] no record has user \"", options.user,
               "\"; check --user against the data's \"user_id\" values");
  PALIGN_CHECK(!kept.empty(), ErrorCode::kInvalidArgument, "[training.policy] all ",
               report.n_skipped, " pairs have identical chosen and rejected texts; there is nothing to learn");
  PALIGN_CHECK(!pdpo || !users.empty(), ErrorCode::kInvalidArgument,
               "[training.policy] pdpo conditions on users, but no record has a \"user_id\"; add them, or use dpo");
  std::vector<SequencePair> pairs;
  std::vector<int64_t> slots;
  std::optional<runtime::UserTokens> tokens;
  if (pdpo)
    tokens = runtime::UserTokens::init(*model, {users.begin(), users.end()}, options.user_tokens, options.fit.seed);
  for (const scoring::PreferenceRecord* r : kept) {
    scoring::ResponseSequence chosen = scoring::tokenize_response(tok, r->prompt, r->chosen, max_tokens);
    pairs.push_back({chosen, sft ? chosen : scoring::tokenize_response(tok, r->prompt, r->rejected, max_tokens)});
    if (tokens) slots.push_back(tokens->slot(r->user_id));
  }
  report.n_pairs = static_cast<int64_t>(pairs.size());
  runtime::LoraConfig lora = options.fit.lora;
  lora.base_model = fs::absolute(model_dir).lexically_normal().string();
  auto adapter = runtime::LoraAdapter::init(model->config(), lora, options.fit.seed);
  PolicyTrainOptions o = options;
  if (o.fit.checkpoint_dir.empty()) o.fit.checkpoint_dir = out / "checkpoint";
  report.fit = tokens ? fit_pdpo(*model, adapter, *tokens, pairs, slots, o, &report.reference_seconds)
                      : fit_policy_adapter(*model, adapter, pairs, o, &report.reference_seconds);
  adapter.save(out);
  if (tokens) tokens->save(out / runtime::kUserTokensFile);
  if (!report.fit.stopped) fs::remove_all(o.fit.checkpoint_dir);  // finished: a rerun starts afresh
  const auto& f = report.fit;
  json manifest = {{"format", "palign.policy"},
                         {"version", 1},
                         {"method", policy_loss_name(options.loss)},
                         {"beta", options.fit.beta},
                         {"gamma", options.gamma},
                         {"model", lora.base_model},
                         {"user", options.user},
                         {"report",
                          {{"pairs", report.n_pairs},
                           {"stopped", report.fit.stopped},
                           {"resumed_at", report.fit.resumed_at},
                           {"skipped", report.n_skipped},
                           {"steps", f.steps},
                           {"epochs", f.epochs},
                           {"train_accuracy", finite_or_null(f.train_accuracy)},
                           {"valid_accuracy", finite_or_null(f.valid_accuracy)},
                           {"train_loss", finite_or_null(f.train_loss)},
                           {"valid_loss", finite_or_null(f.valid_loss)},
                           {"pairs_per_second", finite_or_null(f.pairs_per_second)},
                           {"reference_seconds", report.reference_seconds}}}};
  if (tokens) {
    manifest["user_tokens"] = tokens->n_tokens();
    manifest["users"] = tokens->users.size();
    manifest["alpha"] = options.alpha;
  }
  std::ofstream file(out / "palign_policy.json");
  file << manifest.dump(2) << "\n";
  PALIGN_CHECK(file.good(), ErrorCode::kIo, "[training.policy] cannot write ", (out / "palign_policy.json").string());
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace palign::training
