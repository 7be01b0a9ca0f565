// The DPO family on a LoRA adapter (see policy_trainer.h).
#include "palign/training/policy_trainer.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/training/reward_trainer.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

at::Tensor response_lengths(const std::vector<ArmPair>& pairs, bool chosen) {
  std::vector<double> n;
  for (const auto& p : pairs) {
    const ArmSequence& s = chosen ? p.chosen : p.rejected;
    n.push_back(static_cast<double>(static_cast<int64_t>(s.ids.size()) - std::max<int64_t>(s.response_start, 1)));
  }
  return at::tensor(n, at::kDouble);
}

}  // namespace

PolicyLoss policy_loss_from_name(const std::string& name) {
  if (name == "dpo") return PolicyLoss::kDpo;
  if (name == "ipo") return PolicyLoss::kIpo;
  if (name == "simpo") return PolicyLoss::kSimpo;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.policy] unknown loss '", name, "'; known: dpo, ipo, simpo");
}

std::string policy_loss_name(PolicyLoss loss) {
  switch (loss) {
    case PolicyLoss::kDpo: return "dpo";
    case PolicyLoss::kIpo: return "ipo";
    case PolicyLoss::kSimpo: return "simpo";
  }
  return "?";
}

at::Tensor policy_difference(PolicyLoss loss, const at::Tensor& chosen_lp, const at::Tensor& rejected_lp,
                             const at::Tensor& ref_chosen_lp, const at::Tensor& ref_rejected_lp,
                             const at::Tensor& chosen_len, const at::Tensor& rejected_len, double beta) {
  switch (loss) {
    case PolicyLoss::kDpo:
      return beta * ((chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp));
    case PolicyLoss::kIpo:
      return (chosen_lp - ref_chosen_lp) - (rejected_lp - ref_rejected_lp);
    case PolicyLoss::kSimpo:
      return beta * (chosen_lp / chosen_len.clamp_min(1) - rejected_lp / rejected_len.clamp_min(1));
  }
  return {};
}

at::Tensor policy_pair_loss(PolicyLoss loss, const at::Tensor& d, double beta, double gamma) {
  switch (loss) {
    case PolicyLoss::kDpo: return -at::log_sigmoid(d);
    case PolicyLoss::kIpo: return (d - 1.0 / (2.0 * beta)).pow(2);
    case PolicyLoss::kSimpo: return -at::log_sigmoid(d - gamma);
  }
  return {};
}

std::string PolicyTrainOptions::validate() const {
  if (!std::isfinite(gamma) || gamma < 0) return "gamma must be a finite number >= 0";
  return fit.validate();
}

std::pair<at::Tensor, at::Tensor> reference_log_probs(const runtime::Model& model, const std::vector<ArmPair>& pairs,
                                                      int64_t batch) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> chosen, rejected;
  const auto step = static_cast<size_t>(std::max<int64_t>(1, batch));
  for (size_t start = 0; start < pairs.size(); start += step) {
    const size_t end = std::min(pairs.size(), start + step);
    std::vector<ArmSequence> rows;
    for (size_t i = start; i < end; ++i) rows.push_back(pairs[i].chosen);
    for (size_t i = start; i < end; ++i) rows.push_back(pairs[i].rejected);
    const at::Tensor lp = response_log_probs(model, rows, nullptr);
    const auto k = static_cast<int64_t>(end - start);
    chosen.push_back(lp.slice(0, 0, k));
    rejected.push_back(lp.slice(0, k, 2 * k));
  }
  return {at::cat(chosen), at::cat(rejected)};
}

ArmFitReport fit_policy_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                                const std::vector<ArmPair>& pairs, const PolicyTrainOptions& o,
                                double* reference_seconds) {
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.policy] ", problem);
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.policy] no preference pairs to train on");
  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor ref_c, ref_r;
  if (o.loss != PolicyLoss::kSimpo) std::tie(ref_c, ref_r) = reference_log_probs(model, pairs, o.fit.batch);
  if (reference_seconds) *reference_seconds = seconds_since(t0);
  const at::Tensor len_c = response_lengths(pairs, true), len_r = response_lengths(pairs, false);
  PairObjective objective;
  objective.name = policy_loss_name(o.loss);
  objective.difference = [&, loss = o.loss, beta = o.fit.beta](const at::Tensor& c, const at::Tensor& r,
                                                               const std::vector<int64_t>& idx) {
    const at::Tensor i = at::tensor(idx, at::kLong);
    const at::Tensor zero = at::zeros_like(c);
    return policy_difference(loss, c, r, ref_c.defined() ? ref_c.index_select(0, i) : zero,
                             ref_r.defined() ? ref_r.index_select(0, i) : zero, len_c.index_select(0, i),
                             len_r.index_select(0, i), beta);
  };
  objective.loss = [loss = o.loss, beta = o.fit.beta, gamma = o.gamma](const at::Tensor& d) {
    return policy_pair_loss(loss, d, beta, gamma);
  };
  return fit_pair_adapter(model, adapter, pairs, o.fit, objective);
}

PolicyTrainReport train_policy(const std::vector<PreferenceRecord>& records, const fs::path& model_dir,
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
  std::vector<ArmPair> pairs;
  for (const auto& r : records) {
    if (r.chosen == r.rejected) {
      ++report.n_skipped;
      continue;
    }
    pairs.push_back({tokenize_response(tok, r.prompt, r.chosen, max_tokens),
                     tokenize_response(tok, r.prompt, r.rejected, max_tokens)});
  }
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.policy] all ", records.size(),
               " pairs have identical chosen and rejected texts; there is nothing to learn");
  report.n_pairs = static_cast<int64_t>(pairs.size());
  runtime::LoraConfig lora = options.fit.lora;
  lora.base_model = fs::absolute(model_dir).lexically_normal().string();
  auto adapter = runtime::LoraAdapter::init(model->config(), lora, options.fit.seed);
  PolicyTrainOptions o = options;
  if (o.fit.checkpoint_dir.empty()) o.fit.checkpoint_dir = out / "checkpoint";
  report.fit = fit_policy_adapter(*model, adapter, pairs, o, &report.reference_seconds);
  adapter.save(out);
  if (!report.fit.stopped) fs::remove_all(o.fit.checkpoint_dir);  // finished: a rerun starts afresh
  const auto& f = report.fit;
  const json manifest = {{"format", "palign.policy"},
                         {"version", 1},
                         {"method", policy_loss_name(options.loss)},
                         {"beta", options.fit.beta},
                         {"gamma", options.gamma},
                         {"model", lora.base_model},
                         {"report",
                          {{"pairs", report.n_pairs},
                           {"stopped", report.fit.stopped},
                           {"resumed_at", report.fit.resumed_at},
                           {"skipped", report.n_skipped},
                           {"steps", f.steps},
                           {"epochs", f.epochs},
                           {"train_accuracy", num(f.train_accuracy)},
                           {"valid_accuracy", num(f.valid_accuracy)},
                           {"train_loss", num(f.train_loss)},
                           {"valid_loss", num(f.valid_loss)},
                           {"pairs_per_second", num(f.pairs_per_second)},
                           {"reference_seconds", report.reference_seconds}}}};
  std::ofstream file(out / "palign_policy.json");
  file << manifest.dump(2) << "\n";
  PALIGN_CHECK(file.good(), ErrorCode::kIo, "[training.policy] cannot write ", (out / "palign_policy.json").string());
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace palign::training
