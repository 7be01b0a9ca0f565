// The generic pairwise training loop (see pair_loop.h). Shapes: N rows, T tokens, V vocabulary.
#include "palign/training/pair_loop.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>

#include "checkpoint_dir.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/scoring/response_log_probs.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

SequencePair tokenize_pair(const runtime::Tokenizer& tok, const std::string& prompt, const std::string& chosen,
                           const std::string& rejected, int64_t max_tokens) {
  return {scoring::tokenize_response(tok, prompt, chosen, max_tokens),
          scoring::tokenize_response(tok, prompt, rejected, max_tokens)};
}

std::string PairTrainOptions::validate() const {
  if (!(beta > 0) || !std::isfinite(beta)) return "beta must be a positive finite number";
  if (!(lr > 0) || !std::isfinite(lr)) return "lr must be > 0";
  if (!(weight_decay >= 0)) return "weight-decay must be >= 0";
  if (epochs < 1 && steps < 1) return "epochs (or steps) must be >= 1";
  if (steps < 0) return "steps must be >= 0";
  if (batch < 1) return "batch must be >= 1";
  if (!(valid_share >= 0 && valid_share < 1)) return "valid-share must be in [0, 1)";
  if (eval_every < 0) return "eval-every must be >= 0";
  if (patience < 1) return "patience must be >= 1";
  if (max_tokens < 2) return "max-tokens must be >= 2";
  if (checkpoint_every < 1) return "checkpoint-every must be >= 1";
  if (stop_at < 0) return "stop-at must be >= 0";
  const std::string lora_problem = lora.validate();
  if (!lora_problem.empty()) return "lora: " + lora_problem;
  return {};
}

namespace {

// The summed response log-probs of pairs[idx] under model + adapter as (chosen [k], rejected [k]) float64, in one
// forward pass of 2k right-padded rows (k rows and an undefined rejected for a single-sequence objective).
std::pair<at::Tensor, at::Tensor> pair_log_probs(const runtime::Model& model, const runtime::LoraAdapter* adapter,
                                                 const std::vector<SequencePair>& pairs,
                                                 const std::vector<int64_t>& idx, const PairObjective& objective,
                                                 const at::Tensor& table) {
  std::vector<scoring::ResponseSequence> rows;
  for (int64_t i : idx) rows.push_back(pairs[i].chosen);
  if (!objective.single)
    for (int64_t i : idx) rows.push_back(pairs[i].rejected);
  const auto k = static_cast<int64_t>(idx.size());
  const at::Tensor lp =
      scoring::response_log_probs(model, rows, adapter, objective.residual_hook, table).to(at::kDouble);
  return {lp.slice(0, 0, k), objective.single ? at::Tensor() : lp.slice(0, k, 2 * k)};
}

// The loss weights of pairs[idx] ([k] float64 ones without pair_weights).
at::Tensor pair_weights(const PairObjective& objective, const std::vector<int64_t>& idx) {
  if (!objective.pair_weights.defined()) return at::ones({static_cast<int64_t>(idx.size())}, at::kDouble);
  return objective.pair_weights.to(at::kDouble).index_select(0, at::tensor(idx, at::kLong));
}

// The objective's differences of pairs[idx], no grad, in eval mode: (weighted mean loss, accuracy with ties as one
// half; NaN without has_accuracy).
std::pair<double, double> evaluate(const runtime::Model& model, const runtime::LoraAdapter* adapter,
                                   const std::vector<SequencePair>& pairs, const std::vector<int64_t>& idx,
                                   const PairTrainOptions& o, const PairObjective& objective) {
  if (idx.empty()) return {std::nan(""), std::nan("")};
  at::NoGradGuard no_grad;
  double loss = 0, correct = 0, weight = 0;
  const at::Tensor table = objective.virtual_tokens ? objective.virtual_tokens() : at::Tensor();
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(o.batch, 1));
  for (int64_t variant = 0; variant < objective.n_variants; ++variant) {
    if (objective.set_variant) objective.set_variant(variant);
    for (size_t start = 0; start < idx.size(); start += chunk) {
      const size_t end = std::min(idx.size(), start + chunk);
      const std::vector<int64_t> part(idx.begin() + start, idx.begin() + end);
      const auto [lp_c, lp_r] = pair_log_probs(model, adapter, pairs, part, objective, table);
      const at::Tensor m = objective.difference(lp_c, lp_r, part);
      const at::Tensor w = pair_weights(objective, part);
      loss += (objective.loss(m) * w).sum().item<double>();
      weight += w.sum().item<double>();
      correct += (m.gt(0).to(at::kDouble) + 0.5 * m.eq(0).to(at::kDouble)).sum().item<double>();
    }
  }
  const double n = static_cast<double>(idx.size() * static_cast<size_t>(objective.n_variants));
  return {loss / std::max(weight, 1e-300), objective.has_accuracy ? correct / n : std::nan("")};
}

constexpr const char* kCheckpointFormat = "palign.pair_checkpoint";

// The loop's position and figures that a resumed fit needs to continue exactly.
struct LoopState {
  int64_t step = 0, epochs = 0, since_best = 0, trained_pairs = 0;
  double best_loss = std::numeric_limits<double>::infinity(), best_acc = std::nan(""), running = std::nan("");
  double train_seconds = 0;
  std::string status;
};

void save_tensors(const fs::path& file, const std::vector<at::Tensor>& ts) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (size_t i = 0; i < ts.size(); ++i) named.emplace_back(std::to_string(i), ts[i].detach());
  runtime::save_safetensors(file, named);
}

void load_tensors(const fs::path& file, const std::vector<at::Tensor>& into) {
  const auto st = runtime::SafetensorsFile::open(file);
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < into.size(); ++i) {
    const at::Tensor t = st.get_f32(std::to_string(i));
    PALIGN_CHECK(t.sizes() == into[i].sizes(), ErrorCode::kInvalidArgument, "[training.pair_loop] ", file.string(),
                 ": tensor ", i, " has shape ", t.sizes(), ", not ", into[i].sizes(), "; delete ",
                 file.parent_path().string(), " to start over");
    into[i].copy_(t);
  }
}

// Writes dir atomically (detail::write_checkpoint_dir), so an interruption leaves the last complete one.
void save_pair_checkpoint(const fs::path& dir, const std::vector<at::Tensor>& params,
                          const std::vector<at::Tensor>& best, torch::optim::AdamW& opt, const LoopState& s,
                          const json& identity) {
  detail::write_checkpoint_dir(
      dir,
      [&](const fs::path& tmp) {
        save_tensors(tmp / "adapter.safetensors", params);
        if (!best.empty()) save_tensors(tmp / "best.safetensors", best);
        torch::save(opt, (tmp / "optimizer.pt").string());
        write_json_file(tmp / "state.json",
                        json{{"format", kCheckpointFormat},
                             {"version", 1},
                             {"identity", identity},
                             {"step", s.step},
                             {"epochs", s.epochs},
                             {"since_best", s.since_best},
                             {"trained_pairs", s.trained_pairs},
                             {"best_loss", finite_or_null(s.best_loss)},
                             {"best_acc", finite_or_null(s.best_acc)},
                             {"running", finite_or_null(s.running)},
                             {"train_seconds", s.train_seconds},
                             {"status", s.status},
                             {"has_best", !best.empty()}},
                        "training.pair_loop");
      },
      "training.pair_loop");
}

double num_or(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

PairFitReport fit_pairs(const runtime::Model& model, runtime::LoraAdapter* adapter,
                        const std::vector<SequencePair>& pairs, const PairTrainOptions& o,
                        const PairObjective& objective) {
  const std::string tag = "[training." + objective.name + "] ";
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, tag, problem);
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, tag, "no preference pairs to train on");
  PALIGN_CHECK(objective.n_variants >= 1, ErrorCode::kInvalidArgument, tag, "n_variants must be >= 1");
  const auto t_start = Clock::now();

  // The held-out split: a seeded valid_share (at least one pair, at least one left to train; none under 5 pairs).
  const int64_t n = static_cast<int64_t>(pairs.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Rng split_rng(derive_seed(o.seed, "arm.valid"));
  for (int64_t i = n; i > 1; --i) std::swap(order[i - 1], order[split_rng.uniform_int(static_cast<uint64_t>(i))]);
  int64_t n_valid = 0;
  if (n >= 5 && o.valid_share > 0)
    n_valid = std::clamp<int64_t>(std::llround(o.valid_share * static_cast<double>(n)), 1, n - 1);
  const std::vector<int64_t> valid(order.begin(), order.begin() + n_valid), train(order.begin() + n_valid, order.end());

  PairFitReport report;
  report.n_train = static_cast<int64_t>(train.size());
  report.n_valid = n_valid;
  PALIGN_CHECK(!objective.pair_weights.defined() || objective.pair_weights.numel() == n, ErrorCode::kInvalidArgument,
               tag, "pair_weights has ", objective.pair_weights.numel(), " entries for ", n, " pairs");
  // The adapter's tensors, then the objective's extra ones (one AdamW group each).
  std::vector<at::Tensor> params = adapter ? adapter->parameters() : std::vector<at::Tensor>{};
  const size_t n_adapter = params.size();
  params.insert(params.end(), objective.extra_parameters.begin(), objective.extra_parameters.end());
  for (const at::Tensor& p : params) p.requires_grad_(true);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (n_adapter > 0)
    groups.emplace_back(
        std::vector<at::Tensor>(params.begin(), params.begin() + static_cast<int64_t>(n_adapter)),
        std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  if (!objective.extra_parameters.empty())
    groups.emplace_back(
        objective.extra_parameters,
        std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(objective.extra_lr > 0 ? objective.extra_lr : o.lr).weight_decay(0)));
  torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));

  const int64_t steps_per_epoch = (report.n_train + o.batch - 1) / o.batch;
  const int64_t total_steps = o.steps > 0 ? o.steps : o.epochs * steps_per_epoch;
  const int64_t eval_every = o.eval_every > 0 ? o.eval_every : steps_per_epoch;
  LoopState st;
  std::vector<at::Tensor> best;
  Rng batch_rng(derive_seed(o.seed, "arm.batches"));
  Rng variant_rng(derive_seed(o.seed, "arm.variants"));
  int64_t variant = 0;  // of the batch next_batch returned last
  std::vector<int64_t> perm;
  size_t pos = 0;
  // The next batch's pairs: a fresh seeded order of the training pairs at each epoch's start.
  auto next_batch = [&] {
    if (pos >= perm.size()) {
      perm = train;
      for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[batch_rng.uniform_int(i)]);
      pos = 0;
      ++st.epochs;
    }
    const size_t begin = pos;
    pos = std::min(perm.size(), pos + static_cast<size_t>(o.batch));
    if (objective.n_variants > 1)
      variant = static_cast<int64_t>(variant_rng.uniform_int(static_cast<uint64_t>(objective.n_variants)));
    return std::vector<int64_t>(perm.begin() + static_cast<int64_t>(begin), perm.begin() + static_cast<int64_t>(pos));
  };
  const json identity = {{"objective", objective.name}, {"pairs", n},      {"seed", o.seed}, {"batch", o.batch},
                         {"total", total_steps},        {"valid", n_valid}};
  const fs::path ckpt = o.checkpoint_dir;
  if (!ckpt.empty() && detail::recover_checkpoint_dir(ckpt, "training." + objective.name)) {
    const fs::path state_file = ckpt / "state.json";
    const std::string start_over = "; delete " + ckpt.string() + " to start over";
    const json j = read_json_file(state_file, "training.pair_loop");
    PALIGN_CHECK(j.is_object() && j.value("format", "") == kCheckpointFormat && j.value("identity", json()) == identity,
                 ErrorCode::kInvalidArgument, tag, "the checkpoint in ", ckpt.string(), " belongs to another fit (",
                 j.is_object() ? j.value("identity", json()).dump() : j.dump(), " vs ", identity.dump(),
                 "); delete it or pass another checkpoint folder");
    int64_t resume_at = 0;
    try {
      resume_at = j.at("step").get<int64_t>();
      st.since_best = j.at("since_best").get<int64_t>();
      st.trained_pairs = j.at("trained_pairs").get<int64_t>();
      st.train_seconds = j.at("train_seconds").get<double>();
      st.status = j.value("status", "");
    } catch (const json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, tag, state_file.string(),
                   " lacks step, since_best, trained_pairs or train_seconds of the right types", start_over);
    }
    // A step past the run's end replayed the batch order for as long as it said (minutes for 10^12).
    PALIGN_CHECK(resume_at >= 0 && resume_at <= total_steps && st.since_best >= 0 && st.trained_pairs >= 0,
                 ErrorCode::kInvalidArgument, tag, state_file.string(), ": step ", resume_at,
                 " is outside this fit's 0..", total_steps, " steps (or a count is negative)", start_over);
    load_tensors(ckpt / "adapter.safetensors", params);
    if (j.value("has_best", false)) {
      for (const at::Tensor& p : params) best.push_back(at::empty_like(p));
      load_tensors(ckpt / "best.safetensors", best);
    }
    detail::load_optimizer(opt, ckpt / "optimizer.pt", "training." + objective.name);
    for (int64_t i = 0; i < resume_at; ++i) (void)next_batch();  // replay the batch order
    st.step = resume_at;
    st.best_loss = num_or(j, "best_loss", std::numeric_limits<double>::infinity());
    st.best_acc = num_or(j, "best_acc", std::nan(""));
    st.running = num_or(j, "running", std::nan(""));
    report.resumed_at = resume_at;
  }
  const int64_t last = o.stop_at > 0 ? std::min(o.stop_at, total_steps) : total_steps;
  ProgressBar bar(objective.name, total_steps, o.progress);
  std::string line;
  bool stop = false;
  while (st.step < last && !stop) {
    const std::vector<int64_t> batch_idx = next_batch();
    const auto k = static_cast<int64_t>(batch_idx.size());

    const auto t0 = Clock::now();
    if (adapter) adapter->set_training(true);
    if (objective.set_variant) objective.set_variant(variant);
    const at::Tensor table = objective.virtual_tokens ? objective.virtual_tokens() : at::Tensor();
    const auto [lp_c, lp_r] = pair_log_probs(model, adapter, pairs, batch_idx, objective, table);
    const at::Tensor loss =
        (objective.loss(objective.difference(lp_c, lp_r, batch_idx)) * pair_weights(objective, batch_idx)).mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (adapter) adapter->set_training(false);
    st.train_seconds += seconds_since(t0);
    st.trained_pairs += k;
    ++st.step;
    const double l = loss.item<double>();
    PALIGN_CHECK(std::isfinite(l), ErrorCode::kInvalidArgument, tag, "the loss became ", l, " at step ", st.step,
                 "; lower --lr (now ", o.lr, ")");
    st.running = std::isnan(st.running) ? l : 0.9 * st.running + 0.1 * l;

    if (n_valid > 0 && (st.step % eval_every == 0 || st.step == total_steps)) {
      const auto [vl, va] = evaluate(model, adapter, pairs, valid, o, objective);
      if (vl < st.best_loss) {
        st.best_loss = vl;
        st.best_acc = va;
        st.since_best = 0;
        best.clear();
        for (const at::Tensor& p : params) best.push_back(p.detach().clone());
      } else if (++st.since_best >= o.patience) {
        stop = true;
      }
      char buf[96];
      std::snprintf(buf, sizeof buf, "val loss %.4f acc %.3f", vl, va);
      st.status = buf;
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "loss %.4f %s %.1f pairs/s", st.running, st.status.c_str(),
                  static_cast<double>(st.trained_pairs) / std::max(1e-9, st.train_seconds));
    line = buf;
    bar.update(st.step, line);
    const bool stopping_here = !stop && st.step == last && last < total_steps;
    if (!ckpt.empty() && (st.step % o.checkpoint_every == 0 || stopping_here))
      save_pair_checkpoint(ckpt, params, best, opt, st, identity);
  }
  report.stopped = st.step < total_steps && !stop;
  report.epochs = st.epochs;
  report.steps = st.step;
  report.trained_pairs = st.trained_pairs;
  report.train_seconds = st.train_seconds;
  double best_loss = st.best_loss, best_acc = st.best_acc;
  bar.finish(line);
  if (!best.empty()) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best[i]);
  }
  for (const at::Tensor& p : params) p.requires_grad_(false);
  if (adapter) adapter->set_training(false);

  std::tie(report.train_loss, report.train_accuracy) = evaluate(model, adapter, pairs, train, o, objective);
  report.valid_loss = n_valid > 0 ? best_loss : std::nan("");
  report.valid_accuracy = n_valid > 0 ? best_acc : std::nan("");
  report.seconds = seconds_since(t_start);
  report.pairs_per_second = static_cast<double>(report.trained_pairs) / std::max(1e-9, report.train_seconds);
  return report;
}

}  // namespace

PairFitReport fit_pair_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                               const std::vector<SequencePair>& pairs, const PairTrainOptions& o,
                               const PairObjective& objective) {
  adapter.check_compatible(model.config(), "fit_pair_adapter");
  return fit_pairs(model, &adapter, pairs, o, objective);
}

PairFitReport fit_pair_parameters(const runtime::Model& model, const std::vector<SequencePair>& pairs,
                                  const PairTrainOptions& o, const PairObjective& objective) {
  PALIGN_CHECK(!objective.extra_parameters.empty(), ErrorCode::kInvalidArgument, "[training.", objective.name,
               "] nothing to train: the objective has no parameters");
  return fit_pairs(model, nullptr, pairs, o, objective);
}

}  // namespace palign::training
