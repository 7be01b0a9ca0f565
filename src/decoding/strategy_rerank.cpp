// best_of_n: N samples in one batch (shared prompt prefix), reranked by a reward model — any `palign train reward`
// directory, personalized for --user / --user-pairs (or the profile's user, reward and history) — once per output
// (seed + i·N·1000). cd_block: K continuations of B tokens per block, the best by the reward kept. A reward with
// several labels (a multi-objective model) ranks by the profile's weighted sum of them.
#include <algorithm>

#include "palign/base/error.h"
#include "palign/decoding/rerank.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class RerankStrategy final : public Strategy {
 public:
  RerankStrategy(const StrategySetup& setup, bool block)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        adapter_(detail::load_adapter(setup, block ? "cd_block" : "best_of_n")),
        block_(block),
        k_(block ? setup.options.cd_k : setup.options.best_of),
        block_size_(setup.options.cd_block) {
    const StrategyOptions& o = setup.options;
    const Personalization* profile = setup.profile;
    const char* name = block ? "cd_block" : "best_of_n";
    PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument, "[decoding.", name,
                 "] scores text, but the model directory has no tokenizer.json");
    if (setup.inputs.reward && o.reward.empty()) {
      score_ = setup.inputs.reward;  // the user's reward, held in memory
    } else {
      const std::filesystem::path dir = !o.reward.empty() ? std::filesystem::path(o.reward)
                                        : profile         ? profile->reward
                                                          : std::filesystem::path();
      PALIGN_CHECK(!dir.empty(), ErrorCode::kInvalidArgument, "[decoding.", name, "] --strategy ", name,
                   " needs --reward DIR (from palign train reward) or a --user-profile with a reward");
      reward_ = scoring::RewardModel::load(dir);
      auto who = detail::reward_user(setup, *reward_, dir.string(), name);
      user_ = std::move(who.user);
      pairs_ = std::move(who.pairs);
      const std::vector<std::string> labels = reward_->labels();
      if (labels.size() > 1) {
        PALIGN_CHECK(profile, ErrorCode::kInvalidArgument, "[decoding.", name, "] ", dir.string(), " scores ",
                     labels.size(), " labels (", labels.front(),
                     ", ...); pass --user-profile DIR with weights over them");
        label_weights_ = profile->weights_for(labels, /*missing_zero=*/true);
      }
      score_ = [this](const std::string& prompt, const std::vector<std::string>& responses) {
        std::vector<double> out;
        for (const auto& response : responses) {
          const std::vector<double> scores = reward_->score(prompt, response, user_, pairs_);
          double total = label_weights_.empty() ? scores[0] : 0.0;
          for (size_t k = 0; k < label_weights_.size(); ++k) total += label_weights_[k] * scores[k];
          out.push_back(total);
        }
        return out;
      };
    }
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.", name, "] ", block ? "--cd-k" : "--best-of",
                 " must be at least 1, got ", k_);
    PALIGN_CHECK(!block || block_size_ >= 1, ErrorCode::kInvalidArgument,
                 "[decoding.cd_block] --cd-block must be at least 1, got ", block_size_);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, block_ ? "cd_block" : "best_of_n");
    const std::string prompt_text =
        tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
    std::vector<std::pair<std::vector<int64_t>, double>> last;  // the last call's continuations and scores
    const ContinuationScorer score = [&](const std::vector<std::vector<int64_t>>& continuations) {
      std::vector<std::string> texts;
      for (const auto& ids : continuations) texts.push_back(runtime::decode_generated(*tokenizer_, ids));
      std::vector<double> out = score_(prompt_text, texts);
      PALIGN_CHECK(out.size() == continuations.size(), ErrorCode::kInvalidArgument,
                   "[decoding.rerank] the reward gave ", out.size(), " scores for ", continuations.size(),
                   " responses");
      last.clear();
      for (size_t i = 0; i < out.size(); ++i) last.emplace_back(continuations[i], out[i]);
      return out;
    };
    std::vector<runtime::GenerateResult> out;
    output_rewards_.clear();
    cost_ = {};
    for (int64_t i = 0; i < request.n; ++i) {
      runtime::GenerateOptions o = request.options;
      if (adapter_) o.linear_hook = &*adapter_;
      o.sampling.seed = sample_seed(request.options.sampling.seed, i);
      RerankCost spent;
      out.push_back(block_ ? cd_block(model_, tokenizer_, request.prompt, o, k_, block_size_, score, &spent)
                           : best_of_n(model_, tokenizer_, request.prompt, o, k_, score, &spent));
      // Each block (best_of_n: one) is a batched decode of its tokens plus one scoring pass.
      cost_.tokens += spent.tokens;
      cost_.passes += static_cast<int64_t>(out.back().ids.size()) + spent.batches;
      // The output is one of the last call's candidates: all of best_of_n's, the whole text of cd_block's last block.
      const auto it = std::find_if(last.begin(), last.end(), [&](const auto& c) { return c.first == out.back().ids; });
      PALIGN_CHECK(it != last.end(), ErrorCode::kInternal, "[decoding.rerank] the output was not a scored candidate");
      output_rewards_.push_back(it->second);
    }
    return out;
  }

  uint64_t sample_seed(uint64_t seed, int64_t i) const override { return seed + static_cast<uint64_t>(i * k_ * 1000); }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  bool block_;
  int64_t k_, block_size_;
  std::unique_ptr<scoring::RewardModel> reward_;
  std::string user_;
  std::vector<scoring::PreferenceRecord> pairs_;
  std::vector<double> label_weights_;  // a multi-label reward's weights from the profile (empty: one label)
  // The reward of responses to a prompt: the reward directory's (with the user and label weights above), or the
  // caller's (StrategyInputs::reward).
  std::function<std::vector<double>(const std::string&, const std::vector<std::string>&)> score_;
};

}  // namespace

std::unique_ptr<Strategy> make_best_of_n_strategy(const StrategySetup& setup) {
  return std::make_unique<RerankStrategy>(setup, false);
}

std::unique_ptr<Strategy> make_cd_block_strategy(const StrategySetup& setup) {
  return std::make_unique<RerankStrategy>(setup, true);
}

}  // namespace palign::decoding
