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

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/training/linear_bt.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "palign_reward.json";
constexpr const char* kInputNorm = "input_norm.safetensors";

bool is_personalized(const std::string& method) {
  return method == "prm" || method == "pal" || method == "vpl" || method == "linear";
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[training.reward] cannot read ", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward] ", path.string(), " is not valid JSON: ", e.what());
  }
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.reward] cannot write ", path.string(),
               "; check the folder's permissions and free space");
}

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

std::string classification_architecture(const std::string& causal) {
  const std::string suffix = "ForCausalLM";
  PALIGN_CHECK(
      causal.size() > suffix.size() && causal.compare(causal.size() - suffix.size(), suffix.size(), suffix) == 0,
      ErrorCode::kUnsupported, "[training.reward] the backbone is a ", causal,
      "; bt and multi heads need a *ForCausalLM backbone (Llama, Mistral, Qwen2, Qwen3)");
  return causal.substr(0, causal.size() - suffix.size()) + "ForSequenceClassification";
}

// Writes a Hugging Face *ForSequenceClassification directory: the backbone's weights (without lm_head) and
// score.weight [K, D].
void write_classifier(const fs::path& out, const runtime::Model& backbone, const fs::path& backbone_dir,
                      const at::Tensor& score_weight, const std::vector<std::string>& labels) {
  runtime::ModelConfig config = backbone.config();
  config.architecture = classification_architecture(config.architecture);
  config.head = runtime::HeadKind::kSequenceClassification;
  config.num_labels = static_cast<int64_t>(labels.size());
  config.id2label = labels;
  if (!config.pad_token_id && !config.eos_token_ids.empty()) config.pad_token_id = config.eos_token_ids[0];
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : backbone.named_weights())
    if (name != "lm_head.weight") named[name] = t.detach();
  named["score.weight"] = score_weight.contiguous();
  runtime::Model::from_weights(config, std::move(named))->save(out);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    if (fs::exists(backbone_dir / file))
      fs::copy_file(backbone_dir / file, out / file, fs::copy_options::overwrite_existing);
}

// The score.weight [K, D] and labels of a `multi` directory written by train_reward, checked against a backbone.
struct Objectives {
  at::Tensor weight;
  std::vector<std::string> labels;
  fs::path dir;
};

Objectives load_objectives(const fs::path& dir, const std::string& fingerprint) {
  const json m = read_json_file(dir / kManifest);
  PALIGN_CHECK(m.value("method", "") == "multi" || m.value("method", "") == "bt", ErrorCode::kInvalidArgument,
               "[training.reward] ", dir.string(), " is a '", m.value("method", ""),
               "' reward; --objectives needs a multi (or bt) reward directory");
  PALIGN_CHECK(m.value("backbone_fingerprint", "") == fingerprint, ErrorCode::kInvalidArgument,
               "[training.reward] the objectives in ", dir.string(),
               " were trained on another backbone; train them on the same --backbone");
  const auto weights = runtime::SafetensorsFile::open(dir / "model.safetensors");
  Objectives o;
  o.weight = weights.get_f32("score.weight").clone();
  o.labels = m.at("dimensions").get<std::vector<std::string>>();
  o.dir = dir;
  return o;
}

// The last-token half of [mean ⊕ last] features.
at::Tensor last_half(const at::Tensor& features) {
  const int64_t d = features.size(1) / 2;
  return features.slice(1, d, 2 * d);
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
  const ArmTrainOptions& a = options.arm;  // the adapter and optimizer settings are arm's flags
  const int64_t max_tokens = std::min(a.max_tokens, model.config().max_position);
  auto ids_of = [&](const std::string& prompt, const std::string& response) {
    return tokenize_response(tok, prompt, response, max_tokens).ids;
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

RewardTrainReport train_reward(const RewardTrainOptions& options) {
  const std::string& method = options.method;
  PALIGN_CHECK(method == "bt" || method == "multi" || is_personalized(method) || method == "arm",
               ErrorCode::kInvalidArgument, "[training.reward] unknown method '", method,
               "'; known methods: bt, multi, prm, pal, vpl, linear, arm");
  const std::string problem = options.fit.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.reward] ", problem);
  PALIGN_CHECK(method != "linear" || !options.objectives.empty(), ErrorCode::kInvalidArgument,
               "[training.reward] linear weighs the scores of a multi-objective model; pass --objectives DIR (a "
               "directory from `palign train reward --method multi`)");
  auto records = scoring::read_preference_jsonl(options.data);
  RewardTrainReport report;
  report.method = method;
  if (method == "arm") {  // trains through the backbone, so no feature cache; writes its own manifest
    ArmTrainOptions arm = options.arm;
    arm.valid_share = options.fit.valid_share;
    arm.seed = options.fit.seed;
    arm.progress = options.progress;
    const ArmTrainReport r = train_arm(records, options.backbone, options.out, arm);
    report.n_pairs = r.n_pairs;
    report.n_skipped = r.n_skipped;
    report.dimensions = r.dimensions;
    report.train_accuracy = r.train_accuracy;
    report.valid_accuracy = r.valid_accuracy;
    report.fit_seconds = r.seconds;
    report.pairs_per_second = r.pairs_per_second;
    return report;
  }
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
  if (is_personalized(method))
    for (size_t i = 0; i < records.size(); ++i)
      PALIGN_CHECK(!records[i].user_id.empty(), ErrorCode::kInvalidArgument, "[training.reward] ", method,
                   " learns each user's preferences, but record ", i + 1, " of ", options.data.string(),
                   " has no \"user_id\"; add user ids, or train --method bt");
  if (method == "multi")
    for (size_t i = 0; i < records.size(); ++i)
      PALIGN_CHECK(!records[i].dimension.empty(), ErrorCode::kInvalidArgument,
                   "[training.reward] multi trains one "
                   "head per \"dimension\", but record ",
                   i + 1, " of ", options.data.string(), " has none");

  // The backbone loads outside inference mode so that bt --lora can record gradients through it.
  auto backbone = runtime::Model::load(options.backbone);
  c10::InferenceMode guard;
  const auto tok = runtime::Tokenizer::from_dir(options.backbone);
  scoring::FeatureCache cache(*backbone, tok, options.feature_cache);
  std::vector<scoring::TextPair> texts;
  for (const auto& r : records) texts.push_back({r.prompt, r.chosen}), texts.push_back({r.prompt, r.rejected});
  auto t0 = Clock::now();
  const at::Tensor all = cached_features(cache, texts, options.progress);
  report.feature_seconds = seconds_since(t0);
  const at::Tensor chosen = all.slice(0, 0, all.size(0), 2), rejected = all.slice(0, 1, all.size(0), 2);
  fs::create_directories(options.out);

  json manifest = {{"format", "palign.reward"},
                   {"version", 1},
                   {"method", method},
                   {"backbone", fs::absolute(options.backbone).lexically_normal().string()},
                   {"backbone_fingerprint", cache.fingerprint()},
                   {"features", method == "bt" || method == "multi" ? "last" : "mean_last"},
                   {"data", options.data.string()}};
  t0 = Clock::now();
  if (method == "bt" || method == "multi") {
    std::vector<std::string> labels;
    if (method == "bt") {
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
        if (method == "bt" || records[i].dimension == label) idx.push_back(static_cast<int64_t>(i));
      const at::Tensor sel = at::tensor(idx, at::kLong);
      const HeadFit head = fit_head(last_half(chosen).index_select(0, sel), last_half(rejected).index_select(0, sel),
                                    options.l2, options.fit.seed);
      rows.push_back(head.weight);
      train_acc += head.train_accuracy / static_cast<double>(labels.size());
      valid_acc += head.valid_accuracy / static_cast<double>(labels.size());
    }
    if (method == "bt" && options.bt_lora) {
      // Fine-tune a LoRA on the backbone jointly with the head (warm-started from the frozen fit), then merge it.
      c10::InferenceMode train_mode(false);
      const LoraBtResult lb = fit_bt_lora(*backbone, tok, records, rows[0], options);
      const auto merged = runtime::merge_lora(*backbone, lb.adapter);
      write_classifier(options.out, *merged, options.backbone, lb.head.unsqueeze(0), labels);
      lb.adapter.save(options.out / "adapter");
      train_acc = lb.train_accuracy;
      valid_acc = lb.valid_accuracy;
      manifest["lora"] = {{"r", lb.adapter.config().r},
                          {"alpha", lb.adapter.config().alpha},
                          {"target_modules", lb.adapter.config().target_modules},
                          {"steps", lb.steps},
                          {"frozen_valid_accuracy", lb.frozen_valid_accuracy}};
    } else {
      write_classifier(options.out, *backbone, options.backbone, at::stack(rows), labels);
    }
    report.dimensions = method == "multi" ? labels : std::vector<std::string>{};
    report.train_accuracy = train_acc;
    report.valid_accuracy = valid_acc;
    manifest["dimensions"] = labels;
  } else {
    std::map<std::string, int64_t> index;
    std::vector<std::string> users;
    for (const auto& r : records)
      if (index.emplace(r.user_id, static_cast<int64_t>(users.size())).second) users.push_back(r.user_id);
    PreferencePairs pairs;
    pairs.chosen = chosen;
    pairs.rejected = rejected;
    for (const auto& r : records) pairs.user.push_back(index.at(r.user_id));
    if (method == "linear") {
      const Objectives obj = load_objectives(options.objectives, cache.fingerprint());
      pairs.chosen = at::mm(last_half(chosen), obj.weight.t());
      pairs.rejected = at::mm(last_half(rejected), obj.weight.t());
      manifest["objectives"] = fs::absolute(obj.dir).lexically_normal().string();
      manifest["dimensions"] = obj.labels;
      report.dimensions = obj.labels;
    }
    // Heads train on standardised inputs (per-feature mean 0, sd 1 over the training texts); the standardisation is
    // saved beside the head and applied when scoring.
    const at::Tensor both = at::cat({pairs.chosen, pairs.rejected});
    const at::Tensor mean = both.mean(0), scale = both.std(0).clamp_min(1e-6);
    pairs.chosen = (pairs.chosen - mean) / scale;
    pairs.rejected = (pairs.rejected - mean) / scale;
    runtime::save_safetensors(options.out / kInputNorm, {{"mean", mean.contiguous()}, {"scale", scale.contiguous()}});
    RewardFitOptions fit = options.fit;
    fit.progress = options.progress;
    auto head = make_personalized_reward(method);
    const FitReport r = head->fit(pairs, static_cast<int64_t>(users.size()), fit);
    head->save(options.out);
    report.n_users = static_cast<int64_t>(users.size());
    report.train_accuracy = r.train_accuracy;
    report.valid_accuracy = r.valid_accuracy;
    report.n_skipped += r.skipped_pairs;
    manifest["users"] = users;
  }
  report.fit_seconds = seconds_since(t0);
  report.pairs_per_second = static_cast<double>(report.n_pairs) / std::max(1e-9, report.fit_seconds);
  manifest["report"] = {{"pairs", report.n_pairs},
                        {"skipped_pairs", report.n_skipped},
                        {"users", report.n_users},
                        {"train_accuracy", finite_or_null(report.train_accuracy)},
                        {"valid_accuracy", finite_or_null(report.valid_accuracy)},
                        {"feature_seconds", report.feature_seconds},
                        {"fit_seconds", report.fit_seconds}};
  write_text(options.out / kManifest, manifest.dump(2) + "\n");
  return report;
}

namespace {

// A Hugging Face *ForSequenceClassification directory, scored through the runtime's forward pass.
class ClassifierReward final : public RewardModel {
 public:
  explicit ClassifierReward(const fs::path& dir)
      : model_(runtime::Model::load(dir)), tok_(runtime::Tokenizer::from_dir(dir)) {
    PALIGN_CHECK(model_->config().head == runtime::HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument,
                 "[training.reward] ", dir.string(), " holds a ", model_->config().architecture,
                 ", not a reward model; pass a *ForSequenceClassification directory or one from `palign train "
                 "reward`");
    if (fs::exists(dir / kManifest)) method_ = read_json_file(dir / kManifest).value("method", "classifier");
  }
  std::string method() const override { return method_; }
  std::vector<std::string> labels() const override { return model_->config().id2label; }
  bool personalized() const override { return false; }
  std::vector<std::string> users() const override { return {}; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string&,
                            const std::vector<scoring::PreferenceRecord>&) override {
    const auto ids = tok_.encode(prompt + response, /*add_special=*/true);
    return score_ids(std::vector<int64_t>(ids.begin(), ids.end()));
  }
  std::vector<double> score_ids(const std::vector<int64_t>& ids) override {
    PALIGN_CHECK(!ids.empty(), ErrorCode::kInvalidArgument, "[training.reward] nothing to score: the text is empty");
    c10::InferenceMode guard;
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kLast;
    const at::Tensor t = at::tensor(ids, at::kLong).view({1, -1});
    const at::Tensor s =
        model_->forward_uncached({.ids = t, .n_tokens = {static_cast<int64_t>(ids.size())}, .seq = {}}, fo)
            .logits.to(at::kDouble)
            .contiguous();
    return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  }

 private:
  std::unique_ptr<runtime::Model> model_;
  runtime::Tokenizer tok_;
  std::string method_ = "classifier";
};

// prm, pal, vpl, linear: a head over the backbone's features (linear: over a multi model's scores).
class PersonalizedRewardModel final : public RewardModel {
 public:
  explicit PersonalizedRewardModel(const fs::path& dir, const json& manifest)
      : method_(manifest.at("method").get<std::string>()),
        backbone_(runtime::Model::load(manifest.at("backbone").get<std::string>())),
        tok_(runtime::Tokenizer::from_dir(manifest.at("backbone").get<std::string>())),
        cache_(*backbone_, tok_),
        head_(load_personalized_reward(dir)) {
    PALIGN_CHECK(cache_.fingerprint() == manifest.value("backbone_fingerprint", ""), ErrorCode::kInvalidArgument,
                 "[training.reward] the backbone at ", manifest.at("backbone").get<std::string>(), " is not the one ",
                 dir.string(), " was trained on; retrain the reward on it");
    users_ = manifest.value("users", std::vector<std::string>{});
    for (size_t i = 0; i < users_.size(); ++i) index_[users_[i]] = static_cast<int64_t>(i);
    if (method_ == "linear") {
      const Objectives obj = load_objectives(manifest.at("objectives").get<std::string>(), cache_.fingerprint());
      objectives_ = obj.weight;
    }
    PALIGN_CHECK(fs::exists(dir / kInputNorm), ErrorCode::kNotFound, "[training.reward] ", (dir / kInputNorm).string(),
                 " is missing; retrain the reward with `palign train reward`");
    const auto norm = runtime::SafetensorsFile::open(dir / kInputNorm);
    mean_ = norm.get_f32("mean").clone();
    scale_ = norm.get_f32("scale").clone();
  }
  std::string method() const override { return method_; }
  std::vector<std::string> labels() const override { return {"reward"}; }
  bool personalized() const override { return true; }
  std::vector<std::string> users() const override { return users_; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string& user,
                            const std::vector<scoring::PreferenceRecord>& user_pairs) override {
    c10::InferenceMode guard;
    at::Tensor state;
    if (!user.empty()) {
      auto it = index_.find(user);
      PALIGN_CHECK(it != index_.end(), ErrorCode::kNotFound, "[training.reward] user '", user,
                   "' was not in the training data (", users_.size(),
                   " users); pass --user-pairs FILE with their labelled pairs, or leave out --user for the generic "
                   "user");
      state = head_->user_state(it->second);
    } else if (!user_pairs.empty()) {
      std::vector<scoring::TextPair> texts;
      for (const auto& r : user_pairs) texts.push_back({r.prompt, r.chosen}), texts.push_back({r.prompt, r.rejected});
      const at::Tensor f = inputs(cache_.features(texts));
      state = head_->new_user_state(f.slice(0, 0, f.size(0), 2), f.slice(0, 1, f.size(0), 2));
    } else {
      state = head_->new_user_state(at::Tensor(), at::Tensor());
    }
    const at::Tensor r = head_->score(inputs(cache_.features({{prompt, response}})), state);
    return {static_cast<double>(r[0].item<float>())};
  }
  std::vector<double> score_ids(const std::vector<int64_t>&) override {
    PALIGN_THROW(ErrorCode::kUnsupported, "[training.reward] a ", method_,
                 " reward scores texts, not token ids; pass --prompt and --response");
  }

 private:
  at::Tensor inputs(const at::Tensor& features) const {
    const at::Tensor x = objectives_.defined() ? at::mm(last_half(features), objectives_.t()) : features;
    return (x - mean_) / scale_;
  }
  std::string method_;
  std::unique_ptr<runtime::Model> backbone_;
  runtime::Tokenizer tok_;
  scoring::FeatureCache cache_;
  std::unique_ptr<PersonalizedReward> head_;
  at::Tensor objectives_, mean_, scale_;
  std::vector<std::string> users_;
  std::map<std::string, int64_t> index_;
};

}  // namespace

std::unique_ptr<RewardModel> RewardModel::load(const fs::path& dir) {
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, "[training.reward] no reward directory at ", dir.string(),
               "; train one with `palign train reward` or pass a *ForSequenceClassification directory");
  if (fs::exists(dir / kManifest)) {
    const json m = read_json_file(dir / kManifest);
    PALIGN_CHECK(m.value("format", "") == "palign.reward" && m.value("version", 0) == 1, ErrorCode::kInvalidArgument,
                 "[training.reward] ", (dir / kManifest).string(), " is not a version-1 palign.reward manifest");
    if (is_personalized(m.value("method", ""))) return std::make_unique<PersonalizedRewardModel>(dir, m);
    if (m.value("method", "") == "arm") return load_arm_reward(dir);
  }
  return std::make_unique<ClassifierReward>(dir);
}

}  // namespace palign::training
