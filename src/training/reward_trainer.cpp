// Reward models from preference data on cached backbone features (see reward_trainer.h).
#include "palign/training/reward_trainer.h"

#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint_dir.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/reward_model.h"
#include "palign/training/arm_trainer.h"
#include "palign/training/linear_bt.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Features [N, F] of texts, computed through the cache in chunks with a progress bar.
at::Tensor cached_features(scoring::FeatureCache& cache, const std::vector<scoring::TextPair>& texts, bool progress) {
  constexpr size_t kChunk = 256;
  ProgressBar bar("features", static_cast<int64_t>(texts.size()), progress);
  std::vector<at::Tensor> parts;
  for (size_t start = 0; start < texts.size(); start += kChunk) {
    const size_t end = std::min(texts.size(), start + kChunk);
    parts.push_back(cache.features(
        {texts.begin() + static_cast<std::ptrdiff_t>(start), texts.begin() + static_cast<std::ptrdiff_t>(end)}));
    bar.update(static_cast<int64_t>(end));
  }
  bar.finish();
  return at::cat(parts);
}

std::vector<std::vector<float>> rows_of(const at::Tensor& t) {
  const at::Tensor c = t.contiguous().to(at::kFloat);
  std::vector<std::vector<float>> rows;
  for (int64_t i = 0; i < c.size(0); ++i) {
    const float* p = c[i].data_ptr<float>();
    rows.emplace_back(p, p + c.size(1));
  }
  return rows;
}

// A linear BT head on rows of x: score.weight row w / scale (the standardisation folded in; BT ignores the offset),
// with accuracies from a fit on 80% of the pairs and a refit on all.
struct HeadFit {
  at::Tensor weight;  // [D]
  double train_accuracy = 0, valid_accuracy = 0;
};

double pair_accuracy(const at::Tensor& w, const at::Tensor& chosen, const at::Tensor& rejected) {
  if (chosen.size(0) == 0) return std::nan("");
  const at::Tensor m = at::mv(chosen - rejected, w);
  return (m.gt(0).to(at::kDouble) + 0.5 * m.eq(0).to(at::kDouble)).mean().item<double>();
}

HeadFit fit_head(const at::Tensor& chosen, const at::Tensor& rejected, double l2, uint64_t seed) {
  LinearBtOptions o;
  o.seed = seed;
  if (l2 >= 0) o.l2_grid = {l2};
  auto fold = [](const LinearBt& bt, int64_t dim) {
    at::Tensor w = at::zeros({dim}, at::kFloat);
    for (int64_t j = 0; j < dim && !bt.weights.empty(); ++j) w[j] = static_cast<float>(bt.weights[j] / bt.scale[j]);
    return w;
  };
  const int64_t n = chosen.size(0), dim = chosen.size(1);
  // Held-out accuracy from a fit on a seeded 80%.
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(derive_seed(seed, "reward.head.valid"));
  for (int64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.uniform_int(static_cast<uint64_t>(i))]);
  const int64_t n_valid = n >= 10 ? n / 5 : 0;
  const at::Tensor idx = at::tensor(order, at::kLong);
  HeadFit out;
  if (n_valid > 0) {
    const at::Tensor tr = idx.slice(0, n_valid), va = idx.slice(0, 0, n_valid);
    const LinearBt part = fit_linear_bt(rows_of(chosen.index_select(0, tr)), rows_of(rejected.index_select(0, tr)), o);
    out.valid_accuracy = pair_accuracy(fold(part, dim), chosen.index_select(0, va), rejected.index_select(0, va));
  } else {
    out.valid_accuracy = std::nan("");
  }
  const LinearBt all = fit_linear_bt(rows_of(chosen), rows_of(rejected), o);
  out.weight = fold(all, dim);
  out.train_accuracy = pair_accuracy(out.weight, chosen, rejected);
  return out;
}

// bt --lora: the Bradley–Terry reward r = w · h_last(x + y) with a LoRA on the backbone, trained jointly (AdamW,
// seeded batches, validation on a seeded share of the pairs every epoch, the best adapter and head kept).
struct LoraBtResult {
  runtime::LoraAdapter adapter;
  at::Tensor head;  // [D]
  double train_accuracy = 0, valid_accuracy = 0, frozen_valid_accuracy = 0;
  int64_t steps = 0;
};

LoraBtResult fit_bt_lora(const runtime::Model& model, const runtime::Tokenizer& tok,
                         const std::vector<scoring::PreferenceRecord>& records, const at::Tensor& frozen_head,
                         const RewardTrainOptions& options) {
  const PairTrainOptions& a = options.arm;  // the adapter and optimizer settings are arm's flags
  const int64_t max_tokens = std::min(a.max_tokens, model.config().max_position);
  auto ids_of = [&](const std::string& prompt, const std::string& response) {
    return scoring::tokenize_response(tok, prompt, response, max_tokens).ids;
  };
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs;
  for (const auto& r : records) pairs.emplace_back(ids_of(r.prompt, r.chosen), ids_of(r.prompt, r.rejected));
  const auto n = static_cast<int64_t>(pairs.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  Rng rng(derive_seed(options.fit.seed, "reward.bt_lora"));
  for (int64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.uniform_int(static_cast<uint64_t>(i))]);
  const int64_t n_valid =
      n >= 10 ? static_cast<int64_t>(std::llround(options.fit.valid_share * static_cast<double>(n))) : 0;
  const std::vector<int64_t> valid(order.begin(), order.begin() + n_valid), train(order.begin() + n_valid, order.end());

  LoraBtResult out{runtime::LoraAdapter::init(model.config(), a.lora, options.fit.seed), {}, 0, 0, 0, 0};
  at::Tensor w = frozen_head.detach().clone().to(at::kFloat).requires_grad_(true);
  std::vector<at::Tensor> params = out.adapter.parameters();
  for (auto& p : params) p.requires_grad_(true);
  params.push_back(w);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(a.lr).weight_decay(a.weight_decay));

  // Rewards of rows (each a token list), one right-padded forward pass.
  auto rewards = [&](const std::vector<const std::vector<int64_t>*>& rows) {
    int64_t longest = 1;
    for (const auto* r : rows) longest = std::max<int64_t>(longest, static_cast<int64_t>(r->size()));
    at::Tensor ids = at::zeros({static_cast<int64_t>(rows.size()), longest}, at::kLong);
    std::vector<int64_t> n_tokens;
    for (size_t i = 0; i < rows.size(); ++i) {
      for (size_t t = 0; t < rows[i]->size(); ++t)
        ids[static_cast<int64_t>(i)][static_cast<int64_t>(t)] = (*rows[i])[t];
      n_tokens.push_back(static_cast<int64_t>(rows[i]->size()));
    }
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kNone;
    fo.return_hidden = true;
    fo.linear_hook = &out.adapter;
    const at::Tensor hidden = model.forward_uncached({.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo).hidden;
    const at::Tensor last = at::tensor(n_tokens, at::kLong) - 1;
    const at::Tensor h = hidden.index({at::arange(static_cast<int64_t>(rows.size())), last});  // [N, D]
    return at::mv(h, w);
  };
  auto margins = [&](const std::vector<int64_t>& which) {
    std::vector<const std::vector<int64_t>*> rows;
    for (int64_t i : which) rows.push_back(&pairs[i].first);
    for (int64_t i : which) rows.push_back(&pairs[i].second);
    const at::Tensor r = rewards(rows);
    const auto k = static_cast<int64_t>(which.size());
    return r.slice(0, 0, k) - r.slice(0, k, 2 * k);
  };
  auto accuracy = [&](const std::vector<int64_t>& which) {
    if (which.empty()) return std::nan("");
    at::NoGradGuard no_grad;
    double acc = 0;
    for (size_t s = 0; s < which.size(); s += 32) {
      const std::vector<int64_t> chunk(which.begin() + static_cast<std::ptrdiff_t>(s),
                                       which.begin() + static_cast<std::ptrdiff_t>(std::min(which.size(), s + 32)));
      const at::Tensor m = margins(chunk);
      acc += (m.gt(0).to(at::kDouble) + 0.5 * m.eq(0).to(at::kDouble)).sum().item<double>();
    }
    return acc / static_cast<double>(which.size());
  };

  out.frozen_valid_accuracy = accuracy(valid);
  double best = valid.empty() ? -1.0 : out.frozen_valid_accuracy;
  std::vector<at::Tensor> best_params;
  for (const auto& p : params) best_params.push_back(p.detach().clone());
  const int64_t batch = std::max<int64_t>(1, a.batch);
  const int64_t steps_per_epoch = std::max<int64_t>(1, (static_cast<int64_t>(train.size()) + batch - 1) / batch);
  const int64_t total = a.steps > 0 ? a.steps : a.epochs * steps_per_epoch;
  ProgressBar bar("fit bt+lora", total, options.progress);
  int64_t since_best = 0;
  std::vector<int64_t> shuffled = train;
  for (int64_t step = 0; step < total; ++step) {
    const int64_t pos = step % steps_per_epoch;
    if (pos == 0)
      for (int64_t i = static_cast<int64_t>(shuffled.size()); i > 1; --i)
        std::swap(shuffled[i - 1], shuffled[rng.uniform_int(static_cast<uint64_t>(i))]);
    const std::vector<int64_t> chunk(
        shuffled.begin() + pos * batch,
        shuffled.begin() + std::min<int64_t>(static_cast<int64_t>(shuffled.size()), (pos + 1) * batch));
    if (chunk.empty()) continue;
    opt.zero_grad();
    const at::Tensor loss = -at::log_sigmoid(margins(chunk)).mean();
    loss.backward();
    opt.step();
    out.steps = step + 1;
    if (pos + 1 == steps_per_epoch || step + 1 == total) {
      const double acc = accuracy(valid);
      char status[96];
      std::snprintf(status, sizeof(status), "loss %.4f val acc %.3f", loss.item<double>(), acc);
      bar.update(step + 1, status);
      if (valid.empty() || acc > best) {
        best = acc;
        since_best = 0;
        for (size_t i = 0; i < params.size(); ++i) best_params[i] = params[i].detach().clone();
      } else if (++since_best >= a.patience) {
        break;
      }
    }
  }
  bar.finish();
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_params[i]);
  }
  for (auto& p : params) p.requires_grad_(false);
  out.head = w.detach().clone();
  out.train_accuracy = accuracy(train);
  out.valid_accuracy = accuracy(valid);
  return out;
}

}  // namespace

// Writes a Hugging Face *ForSequenceClassification directory: the backbone's weights (without lm_head) and
// score.weight [K, D], padded with the backbone's pad token (its first end-of-sequence token when it has none).
void write_classifier_directory(const fs::path& out, const runtime::Model& backbone, const fs::path& backbone_dir,
                                const at::Tensor& score_weight, const std::vector<std::string>& labels) {
  const runtime::ModelConfig& c = backbone.config();
  std::optional<int64_t> pad = c.pad_token_id;
  if (!pad && !c.eos_token_ids.empty()) pad = c.eos_token_ids[0];
  runtime::classifier_on_backbone(backbone, score_weight.detach(), labels, pad)->save(out);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    if (fs::exists(backbone_dir / file))
      fs::copy_file(backbone_dir / file, out / file, fs::copy_options::overwrite_existing);
}

namespace {

// How each method trains: through the backbone (arm), or on cached backbone features as linear classifier heads (bt,
// multi) or as a personalized head (prm, pal, vpl; linear over a multi model's scores).
enum class Fit { kArm, kClassifier, kPersonalized };

struct RewardMethod {
  const char* name;
  Fit fit;
  bool per_dimension = false;  // one head per "dimension" of the records, which must all have one
  bool needs_objectives = false;
};

constexpr RewardMethod kMethods[] = {
    {.name = "bt", .fit = Fit::kClassifier},    {.name = "multi", .fit = Fit::kClassifier, .per_dimension = true},
    {.name = "prm", .fit = Fit::kPersonalized}, {.name = "pal", .fit = Fit::kPersonalized},
    {.name = "vpl", .fit = Fit::kPersonalized}, {.name = "linear", .fit = Fit::kPersonalized, .needs_objectives = true},
    {.name = "arm", .fit = Fit::kArm},          {.name = "maxmin", .fit = Fit::kPersonalized},
};

const RewardMethod& find_method(const std::string& name) {
  std::string known;
  for (const auto& m : kMethods) {
    if (name == m.name) return m;
    known += (known.empty() ? "" : ", ") + std::string(m.name);
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward] unknown method '", name, "'; known methods: ", known);
}

// arm trains through the backbone, so no feature cache; train_arm writes its own manifest.
RewardTrainReport train_arm_method(const RewardTrainOptions& options,
                                   const std::vector<scoring::PreferenceRecord>& records) {
  PairTrainOptions arm = options.arm;
  arm.valid_share = options.fit.valid_share;
  arm.seed = options.fit.seed;
  arm.progress = options.progress;
  const ArmTrainReport r = train_arm(records, options.backbone, options.out, arm);
  RewardTrainReport report;
  report.method = options.method;
  report.n_pairs = r.n_pairs;
  report.n_skipped = r.n_skipped;
  report.dimensions = r.dimensions;
  report.train_accuracy = r.train_accuracy;
  report.valid_accuracy = r.valid_accuracy;
  report.fit_seconds = r.seconds;
  report.pairs_per_second = r.pairs_per_second;
  return report;
}

// The backbone, its tokenizer and the records' cached features: chosen and rejected [N, F].
struct FeatureData {
  std::unique_ptr<runtime::Model> backbone;
  runtime::Tokenizer tokenizer;
  std::string fingerprint;
  scoring::FeatureSpec spec;
  at::Tensor chosen, rejected;
};

FeatureData features_of(const RewardTrainOptions& options, const std::vector<scoring::PreferenceRecord>& records,
                        RewardTrainReport& report) {
  // The backbone loads outside inference mode so that bt --lora can record gradients through it.
  auto backbone = runtime::Model::load(options.backbone);
  c10::InferenceMode guard;
  auto tok = runtime::Tokenizer::from_dir(options.backbone);
  // A classification head sees the final states' last token; a linear head the scores of such heads.
  const bool classifier_inputs = options.method == "bt" || options.method == "multi" || options.method == "linear";
  scoring::FeatureCache cache(*backbone, tok, options.feature_cache, 32,
                              classifier_inputs ? scoring::FeatureSpec::classifier() : options.features);
  std::vector<scoring::TextPair> texts;
  for (const auto& r : records) texts.push_back({r.prompt, r.chosen}), texts.push_back({r.prompt, r.rejected});
  const auto t0 = Clock::now();
  const at::Tensor all = cached_features(cache, texts, options.progress);
  report.feature_seconds = seconds_since(t0);
  return {std::move(backbone),
          std::move(tok),
          cache.fingerprint(),
          cache.spec(),
          all.slice(0, 0, all.size(0), 2),
          all.slice(0, 1, all.size(0), 2)};
}

// bt, multi: linear Bradley–Terry heads on the last token's features (bt --lora: with a LoRA on the backbone),
// written as a *ForSequenceClassification directory.
void fit_classifier(const RewardMethod& method, const RewardTrainOptions& options,
                    const std::vector<scoring::PreferenceRecord>& records, const FeatureData& data,
                    RewardTrainReport& report, json& manifest) {
  std::vector<std::string> labels;
  if (!method.per_dimension) {
    labels = {"reward"};
  } else {
    std::set<std::string> dims;
    for (const auto& r : records) dims.insert(r.dimension);
    labels.assign(dims.begin(), dims.end());
  }
  std::vector<at::Tensor> rows;
  double train_acc = 0, valid_acc = 0;
  for (const auto& label : labels) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < records.size(); ++i)
      if (!method.per_dimension || records[i].dimension == label) idx.push_back(static_cast<int64_t>(i));
    const at::Tensor sel = at::tensor(idx, at::kLong);
    const HeadFit head =
        fit_head(data.chosen.index_select(0, sel), data.rejected.index_select(0, sel), options.l2, options.fit.seed);
    rows.push_back(head.weight);
    train_acc += head.train_accuracy / static_cast<double>(labels.size());
    valid_acc += head.valid_accuracy / static_cast<double>(labels.size());
    if (method.per_dimension) {
      report.by_dimension[label] = {head.train_accuracy, head.valid_accuracy, std::ssize(idx)};
      manifest["by_dimension"][label] = {{"train_accuracy", finite_or_null(head.train_accuracy)},
                                         {"valid_accuracy", finite_or_null(head.valid_accuracy)},
                                         {"pairs", std::ssize(idx)}};
    }
  }
  if (!method.per_dimension && options.bt_lora) {
    // Fine-tune a LoRA on the backbone jointly with the head (warm-started from the frozen fit), then merge it.
    c10::InferenceMode train_mode(false);
    const LoraBtResult lb = fit_bt_lora(*data.backbone, data.tokenizer, records, rows[0], options);
    const auto merged = runtime::merge_lora(*data.backbone, lb.adapter);
    write_classifier_directory(options.out, *merged, options.backbone, lb.head.unsqueeze(0), labels);
    lb.adapter.save(options.out / "adapter");
    train_acc = lb.train_accuracy;
    valid_acc = lb.valid_accuracy;
    manifest["lora"] = {{"r", lb.adapter.config().r},
                        {"alpha", lb.adapter.config().alpha},
                        {"target_modules", lb.adapter.config().target_modules},
                        {"steps", lb.steps},
                        {"frozen_valid_accuracy", lb.frozen_valid_accuracy}};
  } else {
    write_classifier_directory(options.out, *data.backbone, options.backbone, at::stack(rows), labels);
  }
  report.dimensions = method.per_dimension ? labels : std::vector<std::string>{};
  report.train_accuracy = train_acc;
  report.valid_accuracy = valid_acc;
  manifest["dimensions"] = labels;
}

// prm, pal, vpl, linear: a personalized head on standardised pooled features (linear: on the K scores of the
// objectives' multi model); the standardisation is saved beside the head and applied when scoring.
void fit_personalized(const RewardMethod& method, const RewardTrainOptions& options,
                      const std::vector<scoring::PreferenceRecord>& records, const FeatureData& data,
                      RewardTrainReport& report, json& manifest) {
  std::map<std::string, int64_t> index;
  std::vector<std::string> users;
  for (const auto& r : records)
    if (index.emplace(r.user_id, static_cast<int64_t>(users.size())).second) users.push_back(r.user_id);
  PreferencePairs pairs;
  pairs.chosen = data.chosen;
  pairs.rejected = data.rejected;
  std::map<std::string, int64_t> prompts;  // validation holds out whole prompts
  for (const auto& r : records) {
    pairs.user.push_back(index.at(r.user_id));
    pairs.group.push_back(prompts.emplace(r.prompt, static_cast<int64_t>(prompts.size())).first->second);
  }
  if (method.needs_objectives) {
    const scoring::RewardObjectives obj = scoring::load_objectives(options.objectives, data.fingerprint);
    pairs.chosen = at::mm(data.chosen, obj.weight.t());
    pairs.rejected = at::mm(data.rejected, obj.weight.t());
    manifest["objectives"] = fs::absolute(obj.dir).lexically_normal().string();
    manifest["dimensions"] = obj.labels;
    report.dimensions = obj.labels;
  }
  const at::Tensor both = at::cat({pairs.chosen, pairs.rejected});
  const at::Tensor mean = both.mean(0), scale = both.std(0).clamp_min(1e-6);
  pairs.chosen = (pairs.chosen - mean) / scale;
  pairs.rejected = (pairs.rejected - mean) / scale;
  runtime::save_safetensors(options.out / scoring::kRewardInputNorm,
                            {{"mean", mean.contiguous()}, {"scale", scale.contiguous()}});
  RewardFitOptions fit = options.fit;
  fit.progress = options.progress;
  const FittedReward fitted = fit_personalized_reward(method.name, pairs, static_cast<int64_t>(users.size()), fit);
  fitted.head->save(options.out);
  report.n_users = static_cast<int64_t>(users.size());
  report.train_accuracy = fitted.report.train_accuracy;
  report.valid_accuracy = fitted.report.valid_accuracy;
  report.n_valid = fitted.report.valid_pairs;
  report.n_skipped += fitted.report.skipped_pairs;
  report.groups = fitted.report.groups;
  report.valid_loss_by_groups = fitted.report.valid_loss_by_groups;
  if (report.groups > 0) manifest["groups"] = report.groups;
  manifest["users"] = users;
}

// Fits and writes the reward directory into options.out (a staging folder, see train_reward).
RewardTrainReport train_reward_into(const RewardTrainOptions& options, std::vector<scoring::PreferenceRecord> records) {
  const RewardMethod& method = find_method(options.method);
  if (method.fit == Fit::kArm) return train_arm_method(options, records);
  const std::string problem = options.fit.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.reward] ", problem);
  PALIGN_CHECK(!method.needs_objectives || !options.objectives.empty(), ErrorCode::kInvalidArgument,
               "[training.reward] ", method.name,
               " weighs the scores of a multi-objective model; pass --objectives DIR (a directory from `palign train "
               "reward --method multi`)");
  RewardTrainReport report;
  report.method = options.method;
  {
    std::vector<scoring::PreferenceRecord> kept;
    for (auto& r : records)
      if (r.chosen == r.rejected)
        ++report.n_skipped;
      else
        kept.push_back(std::move(r));
    PALIGN_CHECK(!kept.empty(), ErrorCode::kInvalidArgument, "[training.reward] every pair in ", options.data.string(),
                 " has identical chosen and rejected texts; there is nothing to learn");
    records = std::move(kept);
  }
  report.n_pairs = static_cast<int64_t>(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    PALIGN_CHECK(method.fit != Fit::kPersonalized || !records[i].user_id.empty(), ErrorCode::kInvalidArgument,
                 "[training.reward] ", method.name, " learns each user's preferences, but record ", i + 1, " of ",
                 options.data.string(), " has no \"user_id\"; add user ids, or train --method bt");
    PALIGN_CHECK(!method.per_dimension || !records[i].dimension.empty(), ErrorCode::kInvalidArgument,
                 "[training.reward] ", method.name, " trains one head per \"dimension\", but record ", i + 1, " of ",
                 options.data.string(), " has none");
  }
  const FeatureData data = features_of(options, records, report);
  json manifest = {{"format", "palign.reward"},
                   {"version", 1},
                   {"method", options.method},
                   {"backbone", fs::absolute(options.backbone).lexically_normal().string()},
                   {"backbone_fingerprint", data.fingerprint},
                   {"features", data.spec.text()},
                   {"data", options.data.string()}};
  c10::InferenceMode guard;
  const auto t0 = Clock::now();
  if (method.fit == Fit::kClassifier)
    fit_classifier(method, options, records, data, report, manifest);
  else
    fit_personalized(method, options, records, data, report, manifest);
  report.fit_seconds = seconds_since(t0);
  report.pairs_per_second = static_cast<double>(report.n_pairs) / std::max(1e-9, report.fit_seconds);
  manifest["report"] = {{"pairs", report.n_pairs},
                        {"skipped_pairs", report.n_skipped},
                        {"users", report.n_users},
                        {"train_accuracy", finite_or_null(report.train_accuracy)},
                        {"valid_accuracy", finite_or_null(report.valid_accuracy)},
                        {"groups", report.groups},
                        {"valid_loss_by_groups", report.valid_loss_by_groups},
                        {"feature_seconds", report.feature_seconds},
                        {"fit_seconds", report.fit_seconds}};
  write_json_file(options.out / scoring::kRewardManifest, manifest, "training.reward");
  return report;
}

}  // namespace

RewardTrainReport train_reward(const RewardTrainOptions& options) {
  (void)find_method(options.method);  // an unknown method is reported before anything is read or written
  const std::string problem = options.fit.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.reward] ", problem);
  auto records = scoring::read_preference_jsonl(options.data);
  // Everything is written into OUT.tmp and moved into OUT at the end: a failure (a full disk, a bad record found
  // late) leaves no directory with a config but no weights.
  detail::StagedDir staged(options.out, "training.reward");
  RewardTrainOptions staged_options = options;
  staged_options.out = staged.path();
  RewardTrainReport report = train_reward_into(staged_options, std::move(records));
  staged.commit();
  return report;
}

}  // namespace palign::training
