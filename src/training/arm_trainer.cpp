// GenARM's autoregressive reward model: a LoRA adapter on the backbone trained with the Bradley–Terry loss on summed
// response log-probs (see arm_trainer.h). Shapes: N rows, T tokens, V vocabulary.
#include "palign/training/arm_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/training/reward_trainer.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "palign_reward.json";
constexpr const char* kArmJson = "arm.json";

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[training.arm] cannot read ", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.arm] ", path.string(), " is not valid JSON: ", e.what());
  }
}

void write_json_file(const fs::path& path, const json& j) {
  std::ofstream out(path, std::ios::binary);
  out << j.dump(2) << "\n";
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.arm] cannot write ", path.string(),
               "; check the folder's permissions and free space");
}

// A dimension names a subdirectory of the output, so it must be one plain path component.
bool safe_component(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find_first_of("/\\:") == std::string::npos &&
         name.find('\0') == std::string::npos;
}

void check_backbone(const runtime::ModelConfig& c, const fs::path& dir) {
  PALIGN_CHECK(c.arch != runtime::Arch::kGpt2, ErrorCode::kUnsupported, "[training.arm] the backbone at ", dir.string(),
               " is a ", c.architecture,
               "; an arm reward is a LoRA adapter, and LoRA adapts Llama, Mistral, Qwen2 and Qwen3 backbones only "
               "(not GPT-2's fused c_attn)");
  PALIGN_CHECK(c.head == runtime::HeadKind::kCausalLm, ErrorCode::kUnsupported, "[training.arm] the backbone at ",
               dir.string(), " is a ", c.architecture,
               "; an arm reward needs a *ForCausalLM backbone (it scores with next-token log-probs)");
}

// The LM head's weight [V, D] (the embedding when tied), as the runtime's forward applies it to the final hidden state.
at::Tensor lm_head(const runtime::Model& model) {
  const bool tied = model.config().tie_word_embeddings;
  const std::string suffix = "embed_tokens.weight";
  for (const auto& [name, t] : model.named_weights()) {
    if (!tied && name == "lm_head.weight") return t;
    if (tied && name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return t;
  }
  PALIGN_THROW(ErrorCode::kUnsupported, "[training.arm] the backbone ", model.config().architecture, " has no ",
               tied ? suffix : std::string("lm_head.weight"), " to score tokens with");
}

// The summed response log-probs of pairs[idx] under model + adapter as (chosen [k], rejected [k]) float64, in one
// forward pass of 2k right-padded rows (k rows and an undefined rejected for a single-sequence objective).
std::pair<at::Tensor, at::Tensor> pair_log_probs(const runtime::Model& model, const runtime::LoraAdapter* adapter,
                                                 const std::vector<ArmPair>& pairs, const std::vector<int64_t>& idx,
                                                 const PairObjective& objective, const at::Tensor& table) {
  std::vector<ArmSequence> rows;
  for (int64_t i : idx) rows.push_back(pairs[i].chosen);
  if (!objective.single)
    for (int64_t i : idx) rows.push_back(pairs[i].rejected);
  const auto k = static_cast<int64_t>(idx.size());
  const at::Tensor lp = response_log_probs(model, rows, adapter, objective.residual_hook, table).to(at::kDouble);
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
                                   const std::vector<ArmPair>& pairs, const std::vector<int64_t>& idx,
                                   const ArmTrainOptions& o, const PairObjective& objective) {
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
  for (size_t i = 0; i < into.size(); ++i) into[i].copy_(st.get_f32(std::to_string(i)));
}

// Writes dir atomically (a complete dir.tmp renamed over dir), so an interruption leaves the last complete one.
void save_pair_checkpoint(const fs::path& dir, const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& best,
                          torch::optim::AdamW& opt, const LoopState& s, const json& identity) {
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_tensors(tmp / "adapter.safetensors", params);
  if (!best.empty()) save_tensors(tmp / "best.safetensors", best);
  torch::save(opt, (tmp / "optimizer.pt").string());
  write_json_file(tmp / "state.json", {{"format", kCheckpointFormat},
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
                                       {"has_best", !best.empty()}});
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

double num_or(const json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

}  // namespace

std::string ArmTrainOptions::validate() const {
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

ArmSequence tokenize_response(const runtime::Tokenizer& tok, const std::string& prompt, const std::string& response,
                              int64_t max_tokens) {
  const std::vector<int32_t> full = tok.encode(prompt + response, /*add_special=*/true);
  const std::vector<int32_t> head = tok.encode(prompt, /*add_special=*/true);
  ArmSequence s;
  s.ids.assign(full.begin(), full.begin() + std::min<int64_t>(static_cast<int64_t>(full.size()), max_tokens));
  s.response_start = std::max<int64_t>(1, static_cast<int64_t>(head.size()));
  return s;
}

at::Tensor response_log_probs(const runtime::Model& model, const std::vector<ArmSequence>& sequences,
                              const runtime::LinearHook* hook,
                              const std::function<void(int64_t, at::Tensor&)>& residual_hook,
                              const at::Tensor& virtual_tokens) {
  PALIGN_CHECK(!sequences.empty(), ErrorCode::kInvalidArgument, "[training.arm.response_log_probs] no sequences");
  const int64_t N = static_cast<int64_t>(sequences.size());
  int64_t T = 0;
  for (const auto& s : sequences) {
    PALIGN_CHECK(!s.ids.empty(), ErrorCode::kInvalidArgument, "[training.arm.response_log_probs] an empty sequence");
    T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
  }
  // Right-padded ids (padding with id 0, never scored) and the scored predictions: the hidden state at t - 1
  // predicts token t, which counts when it is a response token. Only those positions go through the LM head, so
  // prompt tokens cost no [V] logits.
  std::vector<int64_t> flat(static_cast<size_t>(N * T), 0), n_tokens(static_cast<size_t>(N));
  std::vector<int64_t> position, target, row;  // per scored token: flat index of the predicting state, token, row
  for (int64_t b = 0; b < N; ++b) {
    const auto& s = sequences[b];
    const int64_t n = static_cast<int64_t>(s.ids.size());
    std::copy(s.ids.begin(), s.ids.end(), flat.begin() + b * T);
    n_tokens[b] = n;
    for (int64_t t = std::max<int64_t>(s.response_start, 1); t < n; ++t) {
      position.push_back(b * T + t - 1);
      target.push_back(s.ids[t]);
      row.push_back(b);
    }
  }
  runtime::ForwardOptions fo;
  fo.logits = runtime::ForwardOptions::Logits::kNone;
  fo.return_hidden = true;
  fo.linear_hook = hook;
  fo.residual_hook = residual_hook;
  fo.virtual_tokens = virtual_tokens;
  const at::Tensor ids = at::tensor(flat, at::kLong).view({N, T});
  const at::Tensor hidden = model.forward_uncached({.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo).hidden;
  const at::Tensor states = hidden.reshape({N * T, hidden.size(-1)}).index_select(0, at::tensor(position, at::kLong));
  const at::Tensor logits = at::linear(states, lm_head(model));  // [M, V], M scored tokens
  const at::Tensor lp =
      logits.gather(1, at::tensor(target, at::kLong).unsqueeze(1)).squeeze(1) - at::logsumexp(logits, -1);  // [M]
  // Summed in double: no summation-order effects between a padded batch and one row alone.
  return at::zeros({N}, lp.options().dtype(at::kDouble)).index_add(0, at::tensor(row, at::kLong), lp.to(at::kDouble));
}

at::Tensor arm_bt_loss(const at::Tensor& chosen_log_probs, const at::Tensor& rejected_log_probs, double beta) {
  PALIGN_CHECK(chosen_log_probs.sizes() == rejected_log_probs.sizes() && chosen_log_probs.numel() > 0,
               ErrorCode::kInvalidArgument,
               "[training.arm.bt_loss] chosen and rejected need the same, non-empty shape");
  return (-at::log_sigmoid(beta * (chosen_log_probs - rejected_log_probs))).mean();
}

PairObjective arm_objective(double beta) {
  PairObjective o;
  o.name = "arm";
  o.difference = [beta](const at::Tensor& c, const at::Tensor& r, const std::vector<int64_t>&) { return beta * (c - r); };
  o.loss = [](const at::Tensor& d) { return -at::log_sigmoid(d); };
  return o;
}

ArmFitReport fit_arm_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                             const std::vector<ArmPair>& pairs, const ArmTrainOptions& o) {
  return fit_pair_adapter(model, adapter, pairs, o, arm_objective(o.beta));
}

namespace {
// The pair loop over an optional adapter and the objective's extra parameters (defined below).
ArmFitReport fit_pairs(const runtime::Model& model, runtime::LoraAdapter* adapter, const std::vector<ArmPair>& pairs,
                       const ArmTrainOptions& o, const PairObjective& objective);
}  // namespace

ArmFitReport fit_pair_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                              const std::vector<ArmPair>& pairs, const ArmTrainOptions& o,
                              const PairObjective& objective) {
  adapter.check_compatible(model.config(), "fit_pair_adapter");
  return fit_pairs(model, &adapter, pairs, o, objective);
}

ArmFitReport fit_pair_parameters(const runtime::Model& model, const std::vector<ArmPair>& pairs,
                                 const ArmTrainOptions& o, const PairObjective& objective) {
  PALIGN_CHECK(!objective.extra_parameters.empty(), ErrorCode::kInvalidArgument, "[training.", objective.name,
               "] nothing to train: the objective has no parameters");
  return fit_pairs(model, nullptr, pairs, o, objective);
}

namespace {

ArmFitReport fit_pairs(const runtime::Model& model, runtime::LoraAdapter* adapter, const std::vector<ArmPair>& pairs,
                       const ArmTrainOptions& o, const PairObjective& objective) {
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

  ArmFitReport report;
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
    groups.emplace_back(std::vector<at::Tensor>(params.begin(), params.begin() + static_cast<int64_t>(n_adapter)),
                        std::make_unique<torch::optim::AdamWOptions>(
                            torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  if (!objective.extra_parameters.empty())
    groups.emplace_back(objective.extra_parameters,
                        std::make_unique<torch::optim::AdamWOptions>(
                            torch::optim::AdamWOptions(objective.extra_lr > 0 ? objective.extra_lr : o.lr)
                                .weight_decay(0)));
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
  const json identity = {{"objective", objective.name}, {"pairs", n},       {"seed", o.seed},
                         {"batch", o.batch},            {"total", total_steps}, {"valid", n_valid}};
  const fs::path ckpt = o.checkpoint_dir;
  if (!ckpt.empty() && fs::exists(ckpt / "state.json")) {
    const json j = read_json_file(ckpt / "state.json");
    PALIGN_CHECK(j.value("format", "") == kCheckpointFormat && j.value("identity", json()) == identity,
                 ErrorCode::kInvalidArgument, tag, "the checkpoint in ", ckpt.string(),
                 " belongs to another fit (", j.value("identity", json()).dump(), " vs ", identity.dump(),
                 "); delete it or pass another checkpoint folder");
    load_tensors(ckpt / "adapter.safetensors", params);
    if (j.value("has_best", false)) {
      for (const at::Tensor& p : params) best.push_back(at::empty_like(p));
      load_tensors(ckpt / "best.safetensors", best);
    }
    torch::load(opt, (ckpt / "optimizer.pt").string());
    const int64_t resume_at = j.at("step").get<int64_t>();
    for (int64_t i = 0; i < resume_at; ++i) (void)next_batch();  // replay the batch order
    st.step = resume_at;
    st.since_best = j.at("since_best").get<int64_t>();
    st.trained_pairs = j.at("trained_pairs").get<int64_t>();
    st.best_loss = num_or(j, "best_loss", std::numeric_limits<double>::infinity());
    st.best_acc = num_or(j, "best_acc", std::nan(""));
    st.running = num_or(j, "running", std::nan(""));
    st.train_seconds = j.at("train_seconds").get<double>();
    st.status = j.value("status", "");
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

ArmTrainReport train_arm(const std::vector<scoring::PreferenceRecord>& records, const fs::path& backbone,
                         const fs::path& out, const ArmTrainOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.arm] ", problem);
  PALIGN_CHECK(!records.empty(), ErrorCode::kInvalidArgument,
               "[training.arm] no preference records; pass {\"prompt\", \"chosen\", \"rejected\"} pairs");
  ArmTrainReport report;
  std::vector<const scoring::PreferenceRecord*> kept;
  for (const auto& r : records)
    if (r.chosen == r.rejected)
      ++report.n_skipped;
    else
      kept.push_back(&r);
  PALIGN_CHECK(!kept.empty(), ErrorCode::kInvalidArgument, "[training.arm] all ", records.size(),
               " pairs have identical chosen and rejected texts; there is nothing to learn");
  report.n_pairs = static_cast<int64_t>(kept.size());
  std::set<std::string> dims;
  size_t with_dimension = 0;
  for (const scoring::PreferenceRecord* r : kept)
    if (!r->dimension.empty()) {
      dims.insert(r->dimension);
      ++with_dimension;
    }
  PALIGN_CHECK(with_dimension == 0 || with_dimension == kept.size(), ErrorCode::kInvalidArgument, "[training.arm] ",
               with_dimension, " of ", kept.size(),
               " pairs have a \"dimension\" and the rest none; arm trains one adapter per dimension, so give every "
               "record one (or none)");
  for (const auto& d : dims)
    PALIGN_CHECK(safe_component(d), ErrorCode::kInvalidArgument, "[training.arm] dimension '", d,
                 "' cannot name an adapter subdirectory; use a name without '/', '\\' or ':'");
  report.dimensions.assign(dims.begin(), dims.end());

  PALIGN_CHECK(fs::is_directory(backbone), ErrorCode::kNotFound, "[training.arm] no backbone directory at ",
               backbone.string());
  check_backbone(runtime::ModelConfig::load(backbone / "config.json"), backbone);
  const auto model = runtime::Model::load(backbone);
  const auto tok = runtime::Tokenizer::from_dir(backbone);
  const std::string backbone_abs = fs::absolute(backbone).lexically_normal().string();
  const int64_t max_tokens = std::min(options.max_tokens, model->config().max_position);
  std::error_code ec;
  fs::create_directories(out, ec);
  PALIGN_CHECK(!ec && fs::is_directory(out), ErrorCode::kIo, "[training.arm] cannot create ", out.string(), ": ",
               ec.message());

  const std::vector<std::string> groups = dims.empty() ? std::vector<std::string>{""} : report.dimensions;
  json adapters = json::object(), fits = json::object();
  const auto t0 = Clock::now();
  double train_seconds = 0;
  int64_t trained = 0;
  for (const std::string& dim : groups) {
    std::vector<ArmPair> pairs;
    for (const scoring::PreferenceRecord* r : kept)
      if (r->dimension == dim)
        pairs.push_back({tokenize_response(tok, r->prompt, r->chosen, max_tokens),
                         tokenize_response(tok, r->prompt, r->rejected, max_tokens)});
    runtime::LoraConfig lora = options.lora;
    lora.base_model = backbone_abs;
    auto adapter = runtime::LoraAdapter::init(model->config(), lora, derive_seed(options.seed, "arm.init." + dim));
    adapter.set_dropout_seed(derive_seed(options.seed, "arm.dropout." + dim));
    ArmTrainOptions o = options;
    o.seed = derive_seed(options.seed, "arm.fit." + dim);
    if (options.progress && !dim.empty())
      std::fprintf(stderr, "arm: dimension '%s' (%zu pairs)\n", dim.c_str(), pairs.size());
    const ArmFitReport fit = fit_arm_adapter(*model, adapter, pairs, o);
    const fs::path dir = dim.empty() ? out : out / dim;
    adapter.save(dir);
    write_json_file(dir / kArmJson, {{"format", "palign.arm"},
                                     {"version", 1},
                                     {"beta", options.beta},
                                     {"dimension", dim},
                                     {"backbone", backbone_abs},
                                     {"train_accuracy", finite_or_null(fit.train_accuracy)},
                                     {"valid_accuracy", finite_or_null(fit.valid_accuracy)},
                                     {"epochs", fit.epochs},
                                     {"steps", fit.steps},
                                     {"pairs", static_cast<int64_t>(pairs.size())},
                                     {"max_tokens", max_tokens}});
    adapters[dim.empty() ? "reward" : dim] = dim.empty() ? "." : dim;
    fits[dim.empty() ? "reward" : dim] = {{"pairs", static_cast<int64_t>(pairs.size())},
                                          {"train_accuracy", finite_or_null(fit.train_accuracy)},
                                          {"valid_accuracy", finite_or_null(fit.valid_accuracy)},
                                          {"valid_loss", finite_or_null(fit.valid_loss)},
                                          {"epochs", fit.epochs},
                                          {"steps", fit.steps}};
    report.train_accuracy += fit.train_accuracy / static_cast<double>(groups.size());
    report.valid_accuracy += fit.valid_accuracy / static_cast<double>(groups.size());
    train_seconds += fit.train_seconds;
    trained += fit.trained_pairs;
    report.fits.push_back(fit);
  }
  report.seconds = seconds_since(t0);
  report.pairs_per_second = static_cast<double>(trained) / std::max(1e-9, train_seconds);

  write_json_file(out / kManifest, {{"format", "palign.reward"},
                                    {"version", 1},
                                    {"method", "arm"},
                                    {"backbone", backbone_abs},
                                    {"backbone_fingerprint", runtime::model_fingerprint(*model)},
                                    {"dimensions", report.dimensions},
                                    {"adapters", adapters},
                                    {"beta", options.beta},
                                    {"max_tokens", max_tokens},
                                    {"report",
                                     {{"pairs", report.n_pairs},
                                      {"skipped_pairs", report.n_skipped},
                                      {"train_accuracy", finite_or_null(report.train_accuracy)},
                                      {"valid_accuracy", finite_or_null(report.valid_accuracy)},
                                      {"fit_seconds", report.seconds},
                                      {"pairs_per_second", report.pairs_per_second},
                                      {"fits", fits}}}});
  return report;
}

namespace {

// An arm directory scored as β · Σ log π_r(response | prompt), one score per adapter.
class ArmReward final : public RewardModel {
 public:
  explicit ArmReward(const fs::path& dir) {
    const json m = read_json_file(dir / kManifest);
    PALIGN_CHECK(m.value("method", "") == "arm" && m.contains("backbone") && m["backbone"].is_string(),
                 ErrorCode::kInvalidArgument, "[training.arm] ", (dir / kManifest).string(),
                 " is not an arm reward manifest");
    const fs::path backbone = m["backbone"].get<std::string>();
    PALIGN_CHECK(fs::is_directory(backbone), ErrorCode::kNotFound, "[training.arm] the backbone ", backbone.string(),
                 " of ", dir.string(), " is gone; restore it or retrain the reward");
    model_ = runtime::Model::load(backbone);
    PALIGN_CHECK(
        !m.contains("backbone_fingerprint") || m["backbone_fingerprint"] == runtime::model_fingerprint(*model_),
        ErrorCode::kInvalidArgument, "[training.arm] the backbone at ", backbone.string(), " is not the one ",
        dir.string(), " was trained on; retrain the reward on it");
    tok_ = std::make_unique<runtime::Tokenizer>(runtime::Tokenizer::from_dir(backbone));
    max_tokens_ = std::min(m.value("max_tokens", int64_t{1024}), model_->config().max_position);
    const auto dims = m.value("dimensions", std::vector<std::string>{});
    labels_ = dims.empty() ? std::vector<std::string>{"reward"} : dims;
    for (const std::string& d : dims)
      PALIGN_CHECK(safe_component(d), ErrorCode::kInvalidArgument, "[training.arm] ", (dir / kManifest).string(),
                   " names dimension '", d, "', which is not a directory name");
    for (const std::string& d : dims.empty() ? std::vector<std::string>{""} : dims) {
      const fs::path sub = d.empty() ? dir : dir / d;
      const json arm = read_json_file(sub / kArmJson);
      PALIGN_CHECK(arm.value("format", "") == "palign.arm" && arm.value("version", 0) == 1, ErrorCode::kInvalidArgument,
                   "[training.arm] ", (sub / kArmJson).string(), " is not a version-1 palign.arm file");
      adapters_.push_back(runtime::LoraAdapter::load(sub, model_->config()));
      betas_.push_back(arm.value("beta", 1.0));
    }
  }
  std::string method() const override { return "arm"; }
  std::vector<std::string> labels() const override { return labels_; }
  bool personalized() const override { return false; }
  std::vector<std::string> users() const override { return {}; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string&,
                            const std::vector<scoring::PreferenceRecord>&) override {
    at::NoGradGuard no_grad;
    const ArmSequence seq = tokenize_response(*tok_, prompt, response, max_tokens_);
    std::vector<double> out;
    for (size_t i = 0; i < adapters_.size(); ++i)
      out.push_back(betas_[i] * response_log_probs(*model_, {seq}, &adapters_[i])[0].item<double>());
    return out;
  }
  std::vector<double> score_ids(const std::vector<int64_t>&) override {
    PALIGN_THROW(ErrorCode::kUnsupported,
                 "[training.arm] an arm reward scores a response given its prompt, not raw token ids; pass --prompt "
                 "and --response (during decoding it scores tokens through the fusion strategy)");
  }

 private:
  std::unique_ptr<runtime::Model> model_;
  std::unique_ptr<runtime::Tokenizer> tok_;
  std::vector<runtime::LoraAdapter> adapters_;
  std::vector<double> betas_;
  std::vector<std::string> labels_;
  int64_t max_tokens_ = 1024;
};

}  // namespace

std::unique_ptr<RewardModel> load_arm_reward(const fs::path& dir) { return std::make_unique<ArmReward>(dir); }

}  // namespace palign::training
