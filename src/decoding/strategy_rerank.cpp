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

enum class Mode { kBestOfN, kBlock, kCards };

const char* name_of(Mode mode) {
  return mode == Mode::kBestOfN ? "best_of_n" : mode == Mode::kBlock ? "cd_block" : "cards";
}

class RerankStrategy final : public Strategy {
 public:
  RerankStrategy(const StrategySetup& setup, Mode mode)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        adapter_(detail::load_adapter(setup, name_of(mode))),
        mode_(mode),
        k_(mode == Mode::kBlock   ? setup.options.cd_k
           : mode == Mode::kCards ? setup.options.cards_k
                                  : setup.options.best_of),
        block_size_(setup.options.cd_block),
        cards_{.k = setup.options.cards_k,
               .entropy = setup.options.cards_entropy,
               .margin = setup.options.cards_margin,
               .rounds = setup.options.cards_rounds,
               .max_segment = setup.options.cards_segment} {
    const StrategyOptions& o = setup.options;
    const Personalization* profile = setup.profile;
    const char* name = name_of(mode);
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
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.", name, "] ",
                 mode == Mode::kBlock   ? "--cd-k"
                 : mode == Mode::kCards ? "--cards-k"
                                        : "--best-of",
                 " must be at least 1, got ", k_);
    PALIGN_CHECK(mode != Mode::kBlock || block_size_ >= 1, ErrorCode::kInvalidArgument,
                 "[decoding.cd_block] --cd-block must be at least 1, got ", block_size_);
    if (mode == Mode::kCards) {
      PALIGN_CHECK(cards_.rounds >= 1, ErrorCode::kInvalidArgument,
                   "[decoding.cards] --cards-rounds must be at least 1, got ", cards_.rounds);
      PALIGN_CHECK(cards_.max_segment >= 1, ErrorCode::kInvalidArgument,
                   "[decoding.cards] --cards-segment must be at least 1 token, got ", cards_.max_segment);
      PALIGN_CHECK(cards_.entropy >= 0, ErrorCode::kInvalidArgument,
                   "[decoding.cards] --cards-entropy must be >= 0 nats, got ", cards_.entropy);
    }
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, name_of(mode_));
    const std::string prompt_text =
        tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
    std::vector<std::pair<std::vector<int64_t>, double>> scored;  // this output's scored continuations
    const ContinuationScorer score = [&](const std::vector<std::vector<int64_t>>& continuations) {
      std::vector<std::string> texts;
      for (const auto& ids : continuations) texts.push_back(runtime::decode_generated(*tokenizer_, ids));
      std::vector<double> out = score_(prompt_text, texts);
      PALIGN_CHECK(out.size() == continuations.size(), ErrorCode::kInvalidArgument,
                   "[decoding.rerank] the reward gave ", out.size(), " scores for ", continuations.size(),
                   " responses");
      for (size_t i = 0; i < out.size(); ++i) scored.emplace_back(continuations[i], out[i]);
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
      scored.clear();
      switch (mode_) {
        case Mode::kBestOfN:
          out.push_back(best_of_n(model_, tokenizer_, request.prompt, o, k_, score, &spent));
          break;
        case Mode::kBlock:
          out.push_back(cd_block(model_, tokenizer_, request.prompt, o, k_, block_size_, score, &spent));
          break;
        case Mode::kCards:
          out.push_back(cards(model_, tokenizer_, request.prompt, o, cards_, score, &spent));
          break;
      }
      // Each block (best_of_n: one) is a batched decode of its tokens plus one scoring pass; cards counts each
      // round's batched steps (its rejected rounds included) and scoring passes.
      cost_.tokens += spent.tokens;
      cost_.passes +=
          (mode_ == Mode::kCards ? spent.steps : static_cast<int64_t>(out.back().ids.size())) + spent.batches;
      // The output is one of its scored candidates: one of best_of_n's, the whole text of cd_block's or cards' last
      // block or segment (cards' from any round of it).
      const auto it =
          std::find_if(scored.begin(), scored.end(), [&](const auto& c) { return c.first == out.back().ids; });
      PALIGN_CHECK(it != scored.end(), ErrorCode::kInternal, "[decoding.rerank] the output was not a scored candidate");
      output_rewards_.push_back(it->second);
    }
    return out;
  }

  uint64_t sample_seed(uint64_t seed, int64_t i) const override {
    return seed + static_cast<uint64_t>(i * k_ * (mode_ == Mode::kCards ? cards_.rounds : 1) * 1000);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  Mode mode_;
  int64_t k_, block_size_;
  CardsOptions cards_;
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
  return std::make_unique<RerankStrategy>(setup, Mode::kBestOfN);
}

std::unique_ptr<Strategy> make_cd_block_strategy(const StrategySetup& setup) {
  return std::make_unique<RerankStrategy>(setup, Mode::kBlock);
}

std::unique_ptr<Strategy> make_cards_strategy(const StrategySetup& setup) {
  return std::make_unique<RerankStrategy>(setup, Mode::kCards);
}

}  // namespace palign::decoding
