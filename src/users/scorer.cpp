#include "palign/users/scorer.h"

#include <fstream>
#include <map>

#include "palign/base/error.h"
#include "palign/base/hash.h"
#include "palign/scoring/preference_data.h"
#include "palign/scoring/reward_model.h"
#include "palign/users/online_model.h"

namespace palign::users {

namespace fs = std::filesystem;

std::string scorer_fingerprint(const fs::path& dir) {
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, "[users.scorer] no reward directory ", dir.string(),
               "; pass --reward a directory from `palign train reward --method multi`");
  uint64_t h = kFnv1a64Offset;
  for (const char* name : {"palign_reward.json", "config.json", "model.safetensors", "arm.json"}) {
    std::ifstream in(dir / name, std::ios::binary);
    if (!in) continue;
    h = fnv1a64(name, h);
    std::string buffer(1 << 20, '\0');
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
      h = fnv1a64(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())), h);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + hex;
}

std::vector<std::string> scorer_dimensions(const scoring::RewardModel& reward) {
  PALIGN_CHECK(!reward.personalized(), ErrorCode::kInvalidArgument, "[users.scorer] a ", reward.method(),
               " reward learns each user itself; a user's scorer is a reward with named dimensions (train one with "
               "`palign train reward --method multi`)");
  const auto labels = reward.labels();
  PALIGN_CHECK(labels.size() >= 2, ErrorCode::kInvalidArgument, "[users.scorer] a ", reward.method(),
               " reward gives one score; a user's scorer needs named dimensions to weigh (train one with "
               "`palign train reward --method multi`)");
  return labels;
}

std::vector<std::vector<double>> score_responses(scoring::RewardModel& reward, const std::string& prompt,
                                                 const std::vector<std::string>& responses) {
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < responses.size(); ++i) {
    PALIGN_CHECK(!responses[i].empty(), ErrorCode::kInvalidArgument, "[users.scorer] response ", i + 1,
                 " is empty; the scorer cannot score it");
    try {
      out.push_back(reward.score(prompt, responses[i]));
    } catch (const Error& e) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.scorer] the scorer cannot score response ", i + 1, ": ",
                   e.what());
    }
  }
  return out;
}

DimensionWeights fit_population_prior(scoring::RewardModel& reward, const fs::path& pairs_file, double prior_precision,
                                      double shrinkage) {
  const auto names = scorer_dimensions(reward);
  std::map<std::string, std::vector<scoring::PreferenceRecord>> by_user;
  for (auto& r : scoring::read_preference_jsonl(pairs_file)) by_user[r.user_id].push_back(std::move(r));
  by_user.erase("");
  PALIGN_CHECK(by_user.size() >= 2, ErrorCode::kInvalidArgument, "[users.prior] ", pairs_file.string(),
               " has pairs of ", by_user.size(), " users (by \"user_id\"); a population prior needs at least 2");
  std::vector<std::vector<double>> weights;
  for (const auto& [user, pairs] : by_user)
    weights.push_back(fit_weights_from_pairs(reward, pairs, prior_precision).mean);
  return population_prior(names, weights, shrinkage);
}

}  // namespace palign::users
