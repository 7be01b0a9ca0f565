// POST /v1/feedback, GET and DELETE /v1/users/{id}, POST /v1/users/{id}/elicit. Feedback is acknowledged only once
// the event is durable in the store (ProfileStore::append commits it: SQLite's synchronous=FULL, PostgreSQL's flushed
// commit), and the store's append returns the user's new posterior, which the user's next request reads: the update
// is visible before the acknowledgement is. Nothing is cached here: with replicas on one PostgreSQL store, every
// request reads the user's latest version from the database.
#include <algorithm>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/server/profiles.h"
#include "palign/users/online_model.h"
#include "palign/users/scorer.h"
#include "server_internal.h"

namespace palign::server {

using detail::Caller;
using detail::fail;
using detail::json;

users::UserState Server::Impl::state_of(const std::string& user, std::vector<users::FeedbackEvent>* events) {
  if (!store->has_user(user)) {
    if (events) events->clear();
    if (prior.names.empty()) {  // no scorer: nothing to weigh, the user is their statement alone (none yet)
      users::UserState none;
      none.user_id = user;
      return none;
    }
    return users::initial_state(user, prior, scorer);
  }
  if (events) *events = store->events(user);
  return store->profile(user);
}

std::vector<std::vector<double>> Server::Impl::score(const std::string& prompt,
                                                     const std::vector<std::string>& responses) {
  if (!reward)
    fail(400,
         "this server has no scorer (start it with --reward DIR), so it cannot learn from choices or ratings; "
         "a stated preference ('statement') is still taken",
         "", "no_scorer");
  std::lock_guard lock(reward_mutex);
  return users::score_responses(*reward, prompt, responses);
}

void Server::Impl::feedback(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  detail::FeedbackBody body = detail::parse_feedback_body(req.body);
  const std::string& user = body.user;
  const std::string stored = store_user(caller, user);
  users::FeedbackEvent& e = body.event;
  if (!body.response_id.empty()) {
    const std::optional<detail::Remembered> response = recall(body.response_id);
    // Another user's (or tenant's) response is reported as unknown, not as forbidden: ids are not probed.
    if (!response || response->store_user != stored)
      fail(404,
           "no response '" + body.response_id + "' of user '" + user +
               "' is remembered; give the texts instead (prompt, chosen, rejected)",
           "response_id", "response_not_found");
    const int64_t count = std::ssize(response->texts);
    if (e.type == users::EventType::kRating) {
      const int64_t index = body.index.value_or(0);
      if (index < 0 || index >= count)
        fail(400, "'index' must name one of the response's " + std::to_string(count) + " choices", "index");
      e.prompt = response->prompt;
      e.responses = {response->texts[static_cast<size_t>(index)]};
    } else if (e.type == users::EventType::kChoice) {
      if (count < 2)
        fail(400, "response '" + body.response_id + "' has one choice; ask with n >= 2 to let the user choose",
             "choice");
      if (*body.choice < -1 || *body.choice >= count)
        fail(400, "'choice' must be -1 or the index of one of the response's " + std::to_string(count) + " choices",
             "choice");
      e.prompt = response->prompt;
      e.responses = response->texts;
      e.choice = static_cast<int>(*body.choice);
    }
  }
  if (e.type == users::EventType::kChoice || e.type == users::EventType::kRating) {
    e.scores = score(e.prompt, e.responses);
    e.scorer = scorer;
  }
  users::ProfileStore::Appended appended;
  if (!store->has_user(stored)) {
    if (prior.names.empty())
      fail(400,
           "this server has no scorer (--reward), so it cannot create users; create them with palign user "
           "create",
           "user");
    // Another request (on this replica or another) may create the user at the same moment.
    store->ensure_user(stored, prior, scorer);
  }
  appended = store->append(stored, {e});
  {
    std::lock_guard lock(metrics.mutex);
    metrics.feedback_events += appended.stored;
  }
  json out = describe_user(appended.state);
  out["user_id"] = user;
  out["object"] = "feedback";
  out["event_id"] = appended.ids.at(0);
  out["stored"] = appended.stored == 1;
  res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void Server::Impl::get_user(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  const std::string user = req.matches[1];
  const std::string stored = store_user(caller, user);
  if (!store->has_user(stored)) fail(404, "no user '" + user + "'", "user", "user_not_found");
  const users::UserState state = store->profile(stored);
  json out = describe_user(state);
  out["user_id"] = user;
  out["object"] = "user";
  res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void Server::Impl::delete_user(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  const std::string user = req.matches[1];
  const std::string stored = store_user(caller, user);
  if (!store->has_user(stored)) fail(404, "no user '" + user + "'", "user", "user_not_found");
  store->delete_user(stored);
  res.set_content(json{{"id", user}, {"object", "user"}, {"deleted", true}}.dump(), "application/json");
}

void Server::Impl::elicit(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  const detail::ElicitBody body = detail::parse_elicit_body(req.body, body_limits());
  const std::string user = req.matches[1];
  const std::string stored = store_user(caller, user);
  const std::string& prompt = body.prompt;
  const int64_t n = body.candidates;
  runtime::GenerateOptions gen;
  gen.max_new_tokens = body.max_tokens;
  gen.sampling.seed = body.seed ? *body.seed : next_id.load() * 104729 + 17;
  gen.stop_ids = stop_ids;
  std::vector<int64_t> ids;
  if (chat) {
    const auto e = tokenizer->encode(chat->apply({{"user", prompt}}), false);
    ids.assign(e.begin(), e.end());
  } else {
    const auto e = tokenizer->encode(prompt, true);
    ids.assign(e.begin(), e.end());
  }
  Decoding d = decode(stored, body.palign, ids, prompt, gen, n);
  const auto results =
      finish(d, std::chrono::steady_clock::now() + std::chrono::seconds(options.limits.request_timeout_s));
  count(d, results);
  std::vector<std::string> texts;
  for (const auto& r : results)
    if (std::find(texts.begin(), texts.end(), r.text) == texts.end() && !r.text.empty()) texts.push_back(r.text);
  if (texts.size() < 2)
    fail(422, "the model gave fewer than 2 different answers to this prompt; try another prompt or more candidates",
         "prompt", "too_few_candidates");
  const auto scores = score(prompt, texts);
  Rng rng(derive_seed(gen.sampling.seed, "elicit"));
  const int anchor = users::best_candidate(d.state.posterior, scores);
  const auto pair = users::choose_pair(d.state.posterior, scores, users::QueryPolicy::kInformation, rng, anchor);
  const auto a = static_cast<size_t>(pair.first), b = static_cast<size_t>(pair.second);
  const std::string id = new_id("elicit-");
  remember(id, {stored, prompt, {texts[a], texts[b]}});
  res.set_content(json{{"id", id},
                       {"object", "elicitation"},
                       {"user", user},
                       {"prompt", prompt},
                       {"choices", {texts[a], texts[b]}},
                       {"scores", {scores[a], scores[b]}},
                       {"predicted", users::predictive_preference(d.state.posterior, scores[a], scores[b])},
                       {"information", pair.value},
                       {"profile_version", d.state.version}}
                      .dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json");
}

}  // namespace palign::server
