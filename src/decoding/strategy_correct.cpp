// correct: rectification by a learned corrector (Aligner, Ji et al. 2024; MetaAligner, Yang et al. 2024). The policy
// samples a draft; the corrector — a LoRA adapter on the policy from `palign train corrector` — reads the question
// and the draft (scoring::corrector_prompt) and writes the answer returned. A corrector trained with objectives is
// told in words what to correct toward: --correct-toward's dimensions, else the user's two strongest positively
// weighted dimensions (the request's profile, else the setup's), else nothing.
#include <algorithm>
#include <filesystem>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/corrector.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

namespace fs = std::filesystem;

// The two dimensions the profile weighs most, among those weighed above 0.
std::vector<std::string> strongest(const Personalization& profile) {
  std::vector<std::pair<double, std::string>> positive;
  for (const auto& [name, w] : profile.weights)
    if (w > 0) positive.emplace_back(w, name);
  std::stable_sort(positive.begin(), positive.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < positive.size() && i < 2; ++i) out.push_back(positive[i].second);
  return out;
}

class CorrectStrategy final : public Strategy {
 public:
  explicit CorrectStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        profile_(setup.profile),
        adapter_(detail::load_adapter(setup, "correct")),
        toward_(split_list(setup.options.correct_toward)) {
    PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                 "[decoding.correct] the corrector reads the draft as text, but the model directory has no "
                 "tokenizer.json");
    const std::string& dir = setup.options.corrector;
    if (setup.inputs.corrector && dir.empty()) {
      corrector_ = setup.inputs.corrector;  // held in memory
      objectives_ = setup.inputs.corrector_objectives;
    } else {
      PALIGN_CHECK(!dir.empty(), ErrorCode::kInvalidArgument,
                   "[decoding.correct] --strategy correct needs --corrector DIR, an adapter from `palign train "
                   "corrector`");
      const fs::path manifest = fs::path(dir) / "palign_corrector.json";
      PALIGN_CHECK(fs::exists(manifest), ErrorCode::kNotFound, "[decoding.correct] ", dir,
                   " has no palign_corrector.json; give the --out directory of `palign train corrector`");
      owned_ = runtime::LoraAdapter::load(dir, model_.config());
      corrector_ = &*owned_;
      const auto j = read_json_file(manifest, "decoding.correct");
      PALIGN_CHECK(j.is_object() && j.value("format", "") == "palign.corrector" && j.contains("objectives") &&
                       j["objectives"].is_boolean(),
                   ErrorCode::kInvalidArgument, "[decoding.correct] ", manifest.string(),
                   " is not a palign corrector manifest (format \"palign.corrector\", a boolean \"objectives\")");
      objectives_ = j["objectives"].get<bool>();
    }
    PALIGN_CHECK(toward_.empty() || objectives_, ErrorCode::kInvalidArgument,
                 "[decoding.correct] this corrector was trained without --objectives, so it cannot be told what to "
                 "correct toward; drop --correct-toward or train with --objectives");
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    const Personalization* profile = detail::request_profile(request, profile_);
    const std::vector<std::string> toward = !toward_.empty()         ? toward_
                                            : objectives_ && profile ? strongest(*profile)
                                                                     : std::vector<std::string>{};
    const std::string prompt_text =
        request.prompt_text ? *request.prompt_text
                            : tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()),
                                                 /*skip_special=*/true);
    std::vector<runtime::GenerateResult> out;
    cost_ = {};
    notes_.clear();
    if (!toward.empty()) {
      std::string words;
      for (const auto& t : toward) words += (words.empty() ? "" : ", ") + t;
      notes_.push_back("corrected toward " + words);
    }
    for (int64_t i = 0; i < request.n; ++i) {
      runtime::GenerateOptions o = request.options;
      o.sampling.seed = request.options.sampling.seed + static_cast<uint64_t>(i);
      if (adapter_) o.linear_hook = &*adapter_;
      const auto draft = runtime::generate(model_, tokenizer_, request.prompt, o)[0];
      const std::vector<int64_t> ids =
          encode_prompt(*tokenizer_, scoring::corrector_prompt(prompt_text, draft.text, toward));
      o.linear_hook = corrector_;
      out.push_back(runtime::generate(model_, tokenizer_, ids, o)[0]);
      const auto tokens = static_cast<int64_t>(draft.ids.size() + out.back().ids.size());
      cost_.tokens += tokens;
      cost_.passes += tokens + 2;  // each token's step, and the two prefills
    }
    return out;
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  const Personalization* profile_;
  std::optional<runtime::LoraAdapter> adapter_;  // the policy's --adapter, for the draft
  std::vector<std::string> toward_;
  std::optional<runtime::LoraAdapter> owned_;
  const runtime::LoraAdapter* corrector_ = nullptr;
  bool objectives_ = false;
};

}  // namespace

std::unique_ptr<Strategy> make_correct_strategy(const StrategySetup& setup) {
  return std::make_unique<CorrectStrategy>(setup);
}

}  // namespace palign::decoding
