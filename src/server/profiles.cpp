#include "palign/server/profiles.h"

#include <set>

namespace palign::server {

nlohmann::ordered_json describe_user(const users::UserState& s) {
  nlohmann::ordered_json weights = nlohmann::ordered_json::object();
  const auto sd = s.posterior.sd();
  for (size_t k = 0; k < s.posterior.names.size(); ++k)
    weights[s.posterior.names[k]] = {{"mean", s.posterior.mean[k]}, {"sd", sd[k]}};
  return {{"user_id", s.user_id},     {"version", s.version}, {"events", s.events}, {"observations", s.observations},
          {"statement", s.statement}, {"scorer", s.scorer},   {"weights", weights}};
}

decoding::Personalization personalization_of(const users::UserState& state,
                                             const std::vector<users::FeedbackEvent>& events,
                                             const std::filesystem::path& reward_dir) {
  decoding::Personalization p;
  p.user_id = state.user_id;
  p.weights = state.posterior.as_map();
  p.statement = state.statement;
  p.reward = reward_dir;
  std::set<int64_t> undone;
  for (const auto& e : events)
    if (e.type == users::EventType::kUndo) undone.insert(e.target);
  for (const auto& e : events) {
    if (e.type != users::EventType::kChoice || e.choice < 0 || undone.count(e.id)) continue;
    for (size_t i = 0; i < e.responses.size(); ++i)
      if (static_cast<int>(i) != e.choice)
        p.pairs.push_back(
            {e.prompt, e.responses[static_cast<size_t>(e.choice)], e.responses[i], state.user_id, "", {}, {}});
  }
  return p;
}

decoding::Personalization personalization_of(const users::ProfileStore& store, const std::string& user,
                                             const std::filesystem::path& reward_dir) {
  return personalization_of(store.profile(user), store.events(user), reward_dir);
}

}  // namespace palign::server
