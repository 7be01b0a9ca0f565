// An arm directory (GenARM's autoregressive reward, written by training::train_arm) as a RewardModel.
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/scoring/reward_model.h"

namespace palign::scoring {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kWhere = "scoring.arm";

// Scored as β · Σ log π_r(response | prompt), one score per adapter.
class ArmReward final : public RewardModel {
 public:
  explicit ArmReward(const fs::path& dir) {
    const json m = read_json_file(dir / kRewardManifest, kWhere);
    PALIGN_CHECK(m.value("method", "") == "arm" && m.contains("backbone") && m["backbone"].is_string(),
                 ErrorCode::kInvalidArgument, "[", kWhere, "] ", (dir / kRewardManifest).string(),
                 " is not an arm reward manifest");
    const fs::path backbone = m["backbone"].get<std::string>();
    PALIGN_CHECK(fs::is_directory(backbone), ErrorCode::kNotFound, "[", kWhere, "] the backbone ", backbone.string(),
                 " of ", dir.string(), " is gone; restore it or retrain the reward");
    model_ = runtime::Model::load(backbone);
    PALIGN_CHECK(
        !m.contains("backbone_fingerprint") || m["backbone_fingerprint"] == runtime::model_fingerprint(*model_),
        ErrorCode::kInvalidArgument, "[", kWhere, "] the backbone at ", backbone.string(), " is not the one ",
        dir.string(), " was trained on; retrain the reward on it");
    tok_ = std::make_unique<runtime::Tokenizer>(runtime::Tokenizer::from_dir(backbone));
    max_tokens_ = std::min(m.value("max_tokens", int64_t{1024}), model_->config().max_position);
    const auto dims = m.value("dimensions", std::vector<std::string>{});
    labels_ = dims.empty() ? std::vector<std::string>{"reward"} : dims;
    for (const std::string& d : dims)
      PALIGN_CHECK(is_plain_directory_name(d), ErrorCode::kInvalidArgument, "[", kWhere, "] ",
                   (dir / kRewardManifest).string(), " names dimension '", d, "', which is not a directory name");
    for (const std::string& d : dims.empty() ? std::vector<std::string>{""} : dims) {
      const fs::path sub = d.empty() ? dir : dir / d;
      const json arm = read_json_file(sub / kArmAdapterJson, kWhere);
      PALIGN_CHECK(arm.value("format", "") == "palign.arm" && arm.value("version", 0) == 1, ErrorCode::kInvalidArgument,
                   "[", kWhere, "] ", (sub / kArmAdapterJson).string(), " is not a version-1 palign.arm file");
      adapters_.push_back(runtime::LoraAdapter::load(sub, model_->config()));
      betas_.push_back(arm.value("beta", 1.0));
    }
  }
  std::string method() const override { return "arm"; }
  std::vector<std::string> labels() const override { return labels_; }
  bool personalized() const override { return false; }
  std::vector<std::string> users() const override { return {}; }
  std::vector<double> score(const std::string& prompt, const std::string& response, const std::string&,
                            const std::vector<PreferenceRecord>&) override {
    at::NoGradGuard no_grad;
    const ResponseSequence seq = tokenize_response(*tok_, prompt, response, max_tokens_);
    std::vector<double> out;
    for (size_t i = 0; i < adapters_.size(); ++i)
      out.push_back(betas_[i] * response_log_probs(*model_, {seq}, &adapters_[i])[0].item<double>());
    return out;
  }
  std::vector<double> score_ids(const std::vector<int64_t>&) override {
    PALIGN_THROW(ErrorCode::kUnsupported, "[", kWhere,
                 "] an arm reward scores a response given its prompt, not raw token ids; give the prompt and the "
                 "response as text (during decoding it scores tokens through the fusion strategy)");
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

}  // namespace palign::scoring
