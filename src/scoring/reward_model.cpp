// RewardModel::load, the classifier and personalized reward models, and the directories' shared parts (see
// reward_model.h). The arm reward is in reward_arm.cpp.
#include "palign/scoring/reward_model.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/personalized_reward.h"

namespace palign::scoring {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kWhere = "scoring.reward";
}  // namespace

bool is_personalized_method(const std::string& method) {
  return method == "prm" || method == "pal" || method == "vpl" || method == "linear" || method == "maxmin";
}

bool is_plain_directory_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find_first_of("/\\:") == std::string::npos &&
         name.find('\0') == std::string::npos;
}

RewardObjectives load_objectives(const fs::path& dir, const std::string& backbone_fingerprint) {
  const json m = read_json_file(dir / kRewardManifest, kWhere);
  PALIGN_CHECK(
      m.is_object() && m.contains("method") && m["method"].is_string() && m.contains("dimensions") &&
          m["dimensions"].is_array() &&
          std::all_of(m["dimensions"].begin(), m["dimensions"].end(), [](const json& d) { return d.is_string(); }),
      ErrorCode::kInvalidArgument, "[", kWhere, "] ", (dir / kRewardManifest).string(),
      " is not a reward manifest (an object with a \"method\" string and a \"dimensions\" list of names); "
      "retrain with `palign train reward --method multi`");
  PALIGN_CHECK(m.value("method", "") == "multi" || m.value("method", "") == "bt", ErrorCode::kInvalidArgument, "[",
               kWhere, "] ", dir.string(), " is a '", m.value("method", ""),
               "' reward; the objectives must be a multi (or bt) reward directory");
  PALIGN_CHECK(m.contains("backbone_fingerprint") && m["backbone_fingerprint"] == backbone_fingerprint,
               ErrorCode::kInvalidArgument, "[", kWhere, "] the objectives in ", dir.string(),
               " were trained on another backbone; train them on the same one");
  const auto weights = runtime::SafetensorsFile::open(dir / "model.safetensors");
  RewardObjectives o;
  o.weight = weights.get_f32("score.weight").clone();
  o.labels = m.at("dimensions").get<std::vector<std::string>>();
  o.dir = dir;
  return o;
}

FeatureSpec reward_features(const json& manifest) {
  if (manifest.value("method", "") == "linear") return FeatureSpec::classifier();
  const std::string text = manifest.value("features", "mean_last");
  if (text == "mean_last") return FeatureSpec{};  // written before specs existed
  if (text == "last") return FeatureSpec::classifier();
  return FeatureSpec::parse(text);
}

namespace {

// A Hugging Face *ForSequenceClassification directory, scored through the runtime's forward pass.
class ClassifierReward final : public RewardModel {
 public:
  explicit ClassifierReward(const fs::path& dir)
      : model_(runtime::Model::load(dir)), tok_(runtime::Tokenizer::from_dir(dir)) {
    PALIGN_CHECK(model_->config().head == runtime::HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument, "[",
                 kWhere, "] ", dir.string(), " holds a ", model_->config().architecture,
                 ", not a reward model; pass a *ForSequenceClassification directory or one from `palign train "
                 "reward`");
    if (fs::exists(dir / kRewardManifest))
      method_ = read_json_file(dir / kRewardManifest, kWhere).value("method", "classifier");
  }
  std::string method() const override { return method_; }
  std::vector<std::string> labels() const override { return model_->config().id2label; }
  bool personalized() const override { return false; }
  std::vector<std::string> users() const override { return {}; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string&,
                            const std::vector<PreferenceRecord>&) override {
    const auto ids = tok_.encode(prompt + response, /*add_special=*/true);
    return score_ids(std::vector<int64_t>(ids.begin(), ids.end()));
  }
  std::vector<double> score_ids(const std::vector<int64_t>& ids) override {
    PALIGN_CHECK(!ids.empty(), ErrorCode::kInvalidArgument, "[", kWhere, "] nothing to score: the text is empty");
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
        cache_(*backbone_, tok_, {}, 32, reward_features(manifest)),
        head_(load_personalized_reward(dir)) {
    PALIGN_CHECK(cache_.fingerprint() == manifest.value("backbone_fingerprint", ""), ErrorCode::kInvalidArgument, "[",
                 kWhere, "] the backbone at ", manifest.at("backbone").get<std::string>(), " is not the one ",
                 dir.string(), " was trained on; retrain the reward on it");
    users_ = manifest.value("users", std::vector<std::string>{});
    for (size_t i = 0; i < users_.size(); ++i) index_[users_[i]] = static_cast<int64_t>(i);
    if (method_ == "linear") {
      objectives_dir_ = manifest.at("objectives").get<std::string>();
      objectives_ = load_objectives(objectives_dir_, cache_.fingerprint()).weight;
    }
    PALIGN_CHECK(fs::exists(dir / kRewardInputNorm), ErrorCode::kNotFound, "[", kWhere, "] ",
                 (dir / kRewardInputNorm).string(), " is missing; retrain the reward with `palign train reward`");
    const auto norm = runtime::SafetensorsFile::open(dir / kRewardInputNorm);
    mean_ = norm.get_f32("mean").clone();
    scale_ = norm.get_f32("scale").clone();
  }
  std::string method() const override { return method_; }
  std::vector<std::string> labels() const override { return {"reward"}; }
  bool personalized() const override { return true; }
  std::vector<std::string> users() const override { return users_; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string& user,
                            const std::vector<PreferenceRecord>& user_pairs) override {
    c10::InferenceMode guard;
    const at::Tensor r = head_->score(inputs(cache_.features({{prompt, response}})), state(user, user_pairs));
    return {static_cast<double>(r[0].item<float>())};
  }
  std::optional<LabelWeights> label_weights(const std::string& user,
                                            const std::vector<PreferenceRecord>& user_pairs) override {
    if (method_ != "linear") return std::nullopt;
    c10::InferenceMode guard;
    // w · (s − mean) / scale = (w / scale) · s − w · mean / scale.
    const at::Tensor w = (state(user, user_pairs).to(at::kDouble) / scale_.to(at::kDouble)).contiguous();
    return LabelWeights{objectives_dir_, std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + w.numel())};
  }
  std::vector<double> score_ids(const std::vector<int64_t>&) override {
    PALIGN_THROW(ErrorCode::kUnsupported, "[", kWhere, "] a ", method_,
                 " reward scores texts, not token ids; give the prompt and the response as text");
  }

 private:
  // The head's state for a seen user, a new user's pairs, or the generic user.
  at::Tensor state(const std::string& user, const std::vector<PreferenceRecord>& user_pairs) {
    at::Tensor state;
    if (!user.empty()) {
      auto it = index_.find(user);
      PALIGN_CHECK(it != index_.end(), ErrorCode::kNotFound, "[", kWhere, "] user '", user,
                   "' was not in the training data (", users_.size(),
                   " users); give the user's labelled pairs instead, or no user for the generic user");
      state = head_->user_state(it->second);
    } else if (!user_pairs.empty()) {
      std::vector<TextPair> texts;
      for (const auto& r : user_pairs) texts.push_back({r.prompt, r.chosen}), texts.push_back({r.prompt, r.rejected});
      const at::Tensor f = inputs(cache_.features(texts));
      state = head_->new_user_state(f.slice(0, 0, f.size(0), 2), f.slice(0, 1, f.size(0), 2));
    } else {
      state = head_->new_user_state(at::Tensor(), at::Tensor());
    }
    return state;
  }
  at::Tensor inputs(const at::Tensor& features) const {
    const at::Tensor x = objectives_.defined() ? at::mm(features, objectives_.t()) : features;
    return (x - mean_) / scale_;
  }
  std::string method_;
  std::unique_ptr<runtime::Model> backbone_;
  runtime::Tokenizer tok_;
  FeatureCache cache_;
  std::unique_ptr<PersonalizedReward> head_;
  at::Tensor objectives_, mean_, scale_;
  fs::path objectives_dir_;
  std::vector<std::string> users_;
  std::map<std::string, int64_t> index_;
};

}  // namespace

std::unique_ptr<RewardModel> RewardModel::load(const fs::path& dir) {
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, "[", kWhere, "] no reward directory at ", dir.string(),
               "; train one with `palign train reward` or pass a *ForSequenceClassification directory");
  const fs::path manifest = dir / kRewardManifest;
  try {
    if (fs::exists(manifest)) {
      const json m = read_json_file(manifest, kWhere);
      PALIGN_CHECK(m.is_object() && m.value("format", "") == "palign.reward" && m.value("version", 0) == 1,
                   ErrorCode::kInvalidArgument, "[", kWhere, "] ", manifest.string(),
                   " is not a version-1 palign.reward manifest (a JSON object); retrain with `palign train reward`");
      if (is_personalized_method(m.value("method", ""))) return std::make_unique<PersonalizedRewardModel>(dir, m);
      if (m.value("method", "") == "arm") return load_arm_reward(dir);
    }
    return std::make_unique<ClassifierReward>(dir);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type in the manifest (or in a file it names) is the directory's fault, not ours.
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[", kWhere, "] ", manifest.string(),
                 " (or a file of that reward directory) has a field of the wrong JSON type (", e.what(),
                 "); retrain with `palign train reward`");
  }
}

}  // namespace palign::scoring
