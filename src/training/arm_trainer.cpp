// GenARM's autoregressive reward model: a LoRA adapter on the backbone trained with the Bradley–Terry loss on summed
// response log-probs (see arm_trainer.h).
#include "palign/training/arm_trainer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void check_backbone(const runtime::ModelConfig& c, const fs::path& dir) {
  PALIGN_CHECK(c.arch != runtime::Arch::kGpt2, ErrorCode::kUnsupported, "[training.arm] the backbone at ", dir.string(),
               " is a ", c.architecture,
               "; an arm reward is a LoRA adapter, and LoRA adapts Llama, Mistral, Qwen2 and Qwen3 backbones only "
               "(not GPT-2's fused c_attn)");
  PALIGN_CHECK(c.head == runtime::HeadKind::kCausalLm, ErrorCode::kUnsupported, "[training.arm] the backbone at ",
               dir.string(), " is a ", c.architecture,
               "; an arm reward needs a *ForCausalLM backbone (it scores with next-token log-probs)");
}

}  // namespace

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

PairFitReport fit_arm_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                              const std::vector<SequencePair>& pairs, const PairTrainOptions& o) {
  return fit_pair_adapter(model, adapter, pairs, o, arm_objective(o.beta));
}

ArmTrainReport train_arm(const std::vector<scoring::PreferenceRecord>& records, const fs::path& backbone,
                         const fs::path& out, const PairTrainOptions& options) {
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
    PALIGN_CHECK(scoring::is_plain_directory_name(d), ErrorCode::kInvalidArgument, "[training.arm] dimension '", d,
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
    std::vector<SequencePair> pairs;
    for (const scoring::PreferenceRecord* r : kept)
      if (r->dimension == dim) pairs.push_back(tokenize_pair(tok, r->prompt, r->chosen, r->rejected, max_tokens));
    runtime::LoraConfig lora = options.lora;
    lora.base_model = backbone_abs;
    auto adapter = runtime::LoraAdapter::init(model->config(), lora, derive_seed(options.seed, "arm.init." + dim));
    adapter.set_dropout_seed(derive_seed(options.seed, "arm.dropout." + dim));
    PairTrainOptions o = options;
    o.seed = derive_seed(options.seed, "arm.fit." + dim);
    if (options.progress && !dim.empty())
      std::fprintf(stderr, "arm: dimension '%s' (%zu pairs)\n", dim.c_str(), pairs.size());
    const PairFitReport fit = fit_arm_adapter(*model, adapter, pairs, o);
    const fs::path dir = dim.empty() ? out : out / dim;
    adapter.save(dir);
    write_json_file(dir / scoring::kArmAdapterJson,
                    json{{"format", "palign.arm"},
                         {"version", 1},
                         {"beta", options.beta},
                         {"dimension", dim},
                         {"backbone", backbone_abs},
                         {"train_accuracy", finite_or_null(fit.train_accuracy)},
                         {"valid_accuracy", finite_or_null(fit.valid_accuracy)},
                         {"epochs", fit.epochs},
                         {"steps", fit.steps},
                         {"pairs", static_cast<int64_t>(pairs.size())},
                         {"max_tokens", max_tokens}},
                    "training.arm");
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

  write_json_file(out / scoring::kRewardManifest,
                  json{{"format", "palign.reward"},
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
                         {"fits", fits}}}},
                  "training.arm");
  return report;
}

}  // namespace palign::training
