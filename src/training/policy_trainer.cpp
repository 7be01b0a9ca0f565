// The DPO family on a LoRA adapter (see policy_trainer.h).
#include "palign/training/policy_trainer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/strings.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/scoring/reward_model.h"
#include "palign/scoring/rewards_in_context.h"

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
  if (name == "ric") return PolicyLoss::kRic;
  if (name == "modpo") return PolicyLoss::kModpo;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.policy] unknown method '", name,
               "'; known: dpo, ipo, simpo, pdpo, sft, ric, modpo");
}

std::string policy_loss_name(PolicyLoss loss) {
  switch (loss) {
    case PolicyLoss::kDpo:
      return "dpo";
    case PolicyLoss::kIpo:
      return "ipo";
    case PolicyLoss::kSimpo:
      return "simpo";
    case PolicyLoss::kPdpo:
      return "pdpo";
    case PolicyLoss::kSft:
      return "sft";
    case PolicyLoss::kRic:
      return "ric";
    case PolicyLoss::kModpo:
      return "modpo";
  }
  return "?";
}

at::Tensor policy_difference(PolicyLoss loss, const at::Tensor& chosen_lp, const at::Tensor& rejected_lp,
                             const at::Tensor& ref_chosen_lp, const at::Tensor& ref_rejected_lp,
                             const at::Tensor& chosen_len, const at::Tensor& rejected_len, double beta) {
  switch (loss) {
    case PolicyLoss::kDpo:
    case PolicyLoss::kPdpo:
    case PolicyLoss::kModpo:  // without its weights and margin (modpo_difference): dpo's
      return beta * ((chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp));
    case PolicyLoss::kIpo:
      return (chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp);
    case PolicyLoss::kSimpo:
      return beta * (chosen_lp / chosen_len.clamp_min(1) - rejected_lp / rejected_len.clamp_min(1));
    case PolicyLoss::kSft:
    case PolicyLoss::kRic:
      return chosen_lp / chosen_len.clamp_min(1);
  }
  return {};
}

at::Tensor modpo_difference(const at::Tensor& chosen_lp, const at::Tensor& rejected_lp, const at::Tensor& ref_chosen_lp,
                            const at::Tensor& ref_rejected_lp, const at::Tensor& weight, const at::Tensor& margin,
                            double beta) {
  const at::Tensor h = (chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp);
  return (beta * h - margin) / weight;
}

at::Tensor policy_pair_loss(PolicyLoss loss, const at::Tensor& d, double beta, double gamma) {
  switch (loss) {
    case PolicyLoss::kDpo:
    case PolicyLoss::kPdpo:
    case PolicyLoss::kModpo:
      return -at::log_sigmoid(d);
    case PolicyLoss::kSft:
    case PolicyLoss::kRic:
      return -d;
    case PolicyLoss::kIpo:
      return (d - 1.0 / (2.0 * beta)).pow(2);
    case PolicyLoss::kSimpo:
      return -at::log_sigmoid(d - gamma);
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
  if ((loss == PolicyLoss::kRic || loss == PolicyLoss::kModpo) && objectives.empty())
    return policy_loss_name(loss) +
           " scores every response by several objectives; pass --objectives DIR (a `palign "
           "train reward --method multi` directory)";
  if (loss == PolicyLoss::kModpo && weights.empty())
    return "modpo weighs the objectives; pass --weights name=w,... over the --objectives labels";
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
  objective.single = o.loss == PolicyLoss::kSft || o.loss == PolicyLoss::kRic;
  objective.has_accuracy = !objective.single;
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

PairFitReport fit_modpo(const runtime::Model& model, runtime::LoraAdapter& adapter,
                        const std::vector<SequencePair>& pairs, const at::Tensor& weight, const at::Tensor& margin,
                        const PolicyTrainOptions& options, double* reference_seconds) {
  PolicyTrainOptions o = options;
  o.loss = PolicyLoss::kModpo;
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.modpo] no preference pairs to train on");
  PALIGN_CHECK(weight.numel() == std::ssize(pairs) && margin.numel() == std::ssize(pairs), ErrorCode::kInvalidArgument,
               "[training.modpo] ", weight.numel(), " weights and ", margin.numel(), " margins for ", pairs.size(),
               " pairs");
  PALIGN_CHECK((weight > 0).all().item<bool>() && margin.isfinite().all().item<bool>(), ErrorCode::kInvalidArgument,
               "[training.modpo] every pair's own objective must weigh more than 0 and every margin be finite");
  const std::string problem = o.fit.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.modpo] ", problem);
  const auto t0 = std::chrono::steady_clock::now();
  const auto [ref_c, ref_r] = reference_log_probs(model, pairs, o.fit.batch, o.fit.progress);
  if (reference_seconds) *reference_seconds = seconds_since(t0);
  PairObjective objective = policy_objective(o, pairs, ref_c, ref_r);
  const at::Tensor w = weight.to(at::kDouble), m = margin.to(at::kDouble);
  objective.difference = [=, beta = o.fit.beta](const at::Tensor& c, const at::Tensor& r,
                                                const std::vector<int64_t>& idx) {
    const at::Tensor i = at::tensor(idx, at::kLong);
    return modpo_difference(c, r, ref_c.index_select(0, i), ref_r.index_select(0, i), w.index_select(0, i),
                            m.index_select(0, i), beta);
  };
  return fit_pair_adapter(model, adapter, pairs, o.fit, objective);
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

namespace {

// The objectives' weights of modpo by label (a label without one weighs 0). Throws kInvalidArgument for a malformed
// entry, a name that is not a label, or a non-finite weight.
std::vector<double> objective_weights(const std::string& text, const std::vector<std::string>& labels) {
  std::vector<double> w(labels.size(), 0.0);
  std::string known;
  for (const auto& l : labels) known += (known.empty() ? "" : ", ") + l;
  for (const auto& item : split_list(text)) {
    const size_t eq = item.find('=');
    PALIGN_CHECK(eq != std::string::npos, ErrorCode::kInvalidArgument, "[training.modpo] --weights: '", item,
                 "' is not name=number; give name=w pairs over the objectives (", known, ")");
    const std::string name = item.substr(0, eq);
    const auto it = std::find(labels.begin(), labels.end(), name);
    PALIGN_CHECK(it != labels.end(), ErrorCode::kInvalidArgument, "[training.modpo] --weights names '", name,
                 "', which the objectives do not score (they are: ", known, ")");
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(item.substr(eq + 1), &used);
      PALIGN_CHECK(used == item.size() - eq - 1, ErrorCode::kInvalidArgument, "");
    } catch (const std::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.modpo] --weights: '", item, "' is not name=number");
    }
    PALIGN_CHECK(std::isfinite(v), ErrorCode::kInvalidArgument, "[training.modpo] --weights: '", item,
                 "' is not a finite number");
    w[static_cast<size_t>(it - labels.begin())] = v;
  }
  return w;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> modpo_weights(const std::vector<const scoring::PreferenceRecord*>& records,
                                                const PolicyTrainOptions& options) {
  const auto reward = scoring::RewardModel::load(options.objectives);
  const std::vector<std::string> labels = reward->labels();
  const std::vector<double> w = objective_weights(options.weights, labels);
  std::vector<double> own, margin;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = *records[i];
    const auto it = std::find(labels.begin(), labels.end(), r.dimension);
    PALIGN_CHECK(it != labels.end(), ErrorCode::kInvalidArgument, "[training.modpo] pair ", i + 1, " is labelled by \"",
                 r.dimension,
                 "\", which the objectives do not score; modpo reads each pair's \"dimension\" as the objective it "
                 "was labelled by");
    const auto k = static_cast<size_t>(it - labels.begin());
    PALIGN_CHECK(w[k] > 0, ErrorCode::kInvalidArgument, "[training.modpo] pair ", i + 1, " is labelled by '",
                 r.dimension, "', which --weights gives ", w[k], "; give each labelled dimension a weight above 0");
    const std::vector<double> c = reward->score(r.prompt, r.chosen), j = reward->score(r.prompt, r.rejected);
    double m = 0;
    for (size_t o = 0; o < labels.size(); ++o)
      if (o != k) m += w[o] * (c[o] - j[o]);
    own.push_back(w[k]);
    margin.push_back(m);
  }
  return {at::tensor(own, at::kDouble), at::tensor(margin, at::kDouble)};
}

RicData ric_records(const std::vector<scoring::PreferenceRecord>& records, const std::vector<std::string>& labels,
                    const std::function<std::vector<double>(const std::string&, const std::string&)>& score) {
  RicData out;
  std::vector<std::vector<double>> scores(labels.size());
  for (const auto& r : records)
    for (const std::string* response : {&r.chosen, &r.rejected}) {
      const std::vector<double> s = score(r.prompt, *response);
      PALIGN_CHECK(s.size() == labels.size(), ErrorCode::kInvalidArgument, "[training.ric] ", s.size(), " scores for ",
                   labels.size(), " labels");
      for (size_t k = 0; k < labels.size(); ++k) scores[k].push_back(s[k]);
      scoring::PreferenceRecord c = r;
      c.prompt = scoring::reward_prompt(r.prompt, labels, s);
      c.chosen = *response;
      out.records.push_back(std::move(c));
    }
  for (double p : {0.1, 0.5, 0.9}) {
    std::vector<double> values;
    for (auto& s : scores) {
      std::sort(s.begin(), s.end());
      values.push_back(s.empty() ? 0.0 : s[static_cast<size_t>(p * static_cast<double>(s.size() - 1))]);
    }
    out.quantiles.push_back(values);
  }
  return out;
}

PolicyTrainReport train_ric(const std::vector<scoring::PreferenceRecord>& records, const fs::path& model_dir,
                            const fs::path& out, const PolicyTrainOptions& options) {
  const auto reward = scoring::RewardModel::load(options.objectives);
  const std::vector<std::string> labels = reward->labels();
  std::vector<scoring::PreferenceRecord> mine;
  for (const auto& r : records)
    if (options.user.empty() || r.user_id == options.user) mine.push_back(r);
  const RicData data = ric_records(mine, labels, [&](const std::string& prompt, const std::string& response) {
    return reward->score(prompt, response);
  });
  PolicyTrainOptions o = options;
  o.loss = PolicyLoss::kSft;
  o.user.clear();
  PolicyTrainReport report = train_policy(data.records, model_dir, out, o);
  // Each label's training-score quantiles: where --strategy ric maps a user's weights.
  json manifest = read_json_file(out / "palign_policy.json", "training.ric");
  manifest["method"] = "ric";
  manifest["ric"] = {{"labels", labels},
                     {"objectives", fs::absolute(options.objectives).lexically_normal().string()},
                     {"p10", data.quantiles[0]},
                     {"p50", data.quantiles[1]},
                     {"p90", data.quantiles[2]}};
  write_json_file(out / "palign_policy.json", manifest, "training.ric");
  return report;
}

PolicyTrainReport train_policy(const std::vector<scoring::PreferenceRecord>& records, const fs::path& model_dir,
                               const fs::path& out, const PolicyTrainOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.policy] ", problem);
  if (options.loss == PolicyLoss::kRic) return train_ric(records, model_dir, out, options);
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
  PALIGN_CHECK(!kept.empty(), ErrorCode::kInvalidArgument, "[training.policy] all ", report.n_skipped,
               " pairs have identical chosen and rejected texts; there is nothing to learn");
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
  if (options.loss == PolicyLoss::kModpo) {
    const auto [weight, margin] = modpo_weights(kept, options);
    report.fit = fit_modpo(*model, adapter, pairs, weight, margin, o, &report.reference_seconds);
  } else {
    report.fit = tokens ? fit_pdpo(*model, adapter, *tokens, pairs, slots, o, &report.reference_seconds)
                        : fit_policy_adapter(*model, adapter, pairs, o, &report.reference_seconds);
  }
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
  if (options.loss == PolicyLoss::kModpo) {
    manifest["objectives"] = fs::absolute(options.objectives).lexically_normal().string();
    manifest["weights"] = options.weights;
  }
  std::ofstream file(out / "palign_policy.json");
  file << manifest.dump(2) << "\n";
  PALIGN_CHECK(file.good(), ErrorCode::kIo, "[training.policy] cannot write ", (out / "palign_policy.json").string());
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace palign::training
