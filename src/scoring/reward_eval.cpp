#include "palign/scoring/reward_eval.h"

#include <algorithm>
#include <set>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/base/strings.h"

namespace palign::scoring {

Accuracy grouped_bootstrap(const std::vector<std::vector<double>>& groups, uint64_t seed, int resamples) {
  std::vector<const std::vector<double>*> kept;
  Accuracy a;
  double sum = 0;
  for (const auto& g : groups) {
    if (g.empty()) continue;
    kept.push_back(&g);
    for (double x : g) sum += x;
    a.pairs += std::ssize(g);
  }
  PALIGN_CHECK(a.pairs > 0, ErrorCode::kInvalidArgument, "[scoring.eval] no pairs to summarise");
  a.value = sum / static_cast<double>(a.pairs);
  Rng rng(seed);
  std::vector<double> means(static_cast<size_t>(resamples));
  for (double& m : means) {
    double s = 0;
    int64_t n = 0;
    for (size_t u = 0; u < kept.size(); ++u) {
      const auto& g = *kept[rng.uniform_int(kept.size())];
      for (size_t i = 0; i < g.size(); ++i) s += g[rng.uniform_int(g.size())];
      n += std::ssize(g);
    }
    m = s / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  a.lo = means[static_cast<size_t>(0.025 * (resamples - 1))];
  a.hi = means[static_cast<size_t>(0.975 * (resamples - 1))];
  return a;
}

RewardEval evaluate_reward(RewardModel& reward, const std::vector<PreferenceRecord>& pairs, uint64_t seed,
                           const std::function<void(int64_t, int64_t)>& progress) {
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[scoring.eval] no pairs to evaluate on");
  const auto labels = reward.labels();
  const auto known = reward.users();
  const std::set<std::string> seen(known.begin(), known.end());
  std::set<std::string> unseen;
  RewardEval out;
  out.correct.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PreferenceRecord& p = pairs[i];
    size_t label = 0;
    if (labels.size() > 1) {
      const auto it = std::find(labels.begin(), labels.end(), p.dimension);
      PALIGN_CHECK(it != labels.end(), ErrorCode::kInvalidArgument, "[scoring.eval] pair ", i + 1,
                   p.dimension.empty() ? std::string(" has no \"dimension\"")
                                       : " has dimension '" + p.dimension + "', which the reward does not score",
                   "; the reward scores ", labels.size(), " labels (", join_list(labels),
                   "): give each pair one of them as its \"dimension\"");
      label = static_cast<size_t>(it - labels.begin());
    }
    std::string user;
    if (reward.personalized()) {
      if (seen.count(p.user_id))
        user = p.user_id;
      else
        unseen.insert(p.user_id);
    }
    const double c = reward.score(p.prompt, p.chosen, user)[label], r = reward.score(p.prompt, p.rejected, user)[label];
    out.correct.push_back(c > r ? 1.0 : c < r ? 0.0 : 0.5);
    if (progress) progress(static_cast<int64_t>(i + 1), std::ssize(pairs));
  }
  out.unseen_users = std::ssize(unseen);
  // Group the outcomes by user, and by dimension then user.
  std::map<std::string, std::vector<double>> by_user;
  std::map<std::string, std::map<std::string, std::vector<double>>> by_dim_user;
  for (size_t i = 0; i < pairs.size(); ++i) {
    by_user[pairs[i].user_id].push_back(out.correct[i]);
    by_dim_user[pairs[i].dimension][pairs[i].user_id].push_back(out.correct[i]);
  }
  std::vector<std::vector<double>> users;
  for (const auto& [id, xs] : by_user) {
    out.by_user[id] = grouped_bootstrap({xs}, derive_seed(seed, "user:" + id));
    users.push_back(xs);
  }
  out.overall = grouped_bootstrap(users, derive_seed(seed, "overall"));
  for (const auto& [dim, per_user] : by_dim_user) {
    std::vector<std::vector<double>> groups;
    for (const auto& [id, xs] : per_user) groups.push_back(xs);
    out.by_dimension[dim] = grouped_bootstrap(groups, derive_seed(seed, "dimension:" + dim));
  }
  return out;
}

}  // namespace palign::scoring
