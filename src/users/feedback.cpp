#include "palign/users/feedback.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "palign/base/error.h"

namespace palign::users {

using nlohmann::json;

std::string event_type_name(EventType type) {
  switch (type) {
    case EventType::kChoice:
      return "choice";
    case EventType::kRating:
      return "rating";
    case EventType::kStatement:
      return "statement";
    case EventType::kUndo:
      return "undo";
  }
  return "?";
}

json event_to_json(const FeedbackEvent& e) {
  json j = {{"type", event_type_name(e.type)}};
  if (e.id) j["id"] = e.id;
  if (e.time_ms) j["time"] = e.time_ms;
  switch (e.type) {
    case EventType::kChoice:
    case EventType::kRating:
      j["prompt"] = e.prompt;
      j["responses"] = e.responses;
      j["scores"] = e.scores;
      if (e.type == EventType::kChoice) j["choice"] = e.choice;
      if (e.type == EventType::kRating) {
        j["rating"] = e.rating;
        if (!e.reference.empty()) j["reference"] = e.reference;
      }
      break;
    case EventType::kStatement:
      j["text"] = e.text;
      if (!e.dimension.empty()) {
        j["dimension"] = e.dimension;
        j["direction"] = e.direction;
        j["strength"] = e.strength;
      }
      break;
    case EventType::kUndo:
      j["target"] = e.target;
      break;
  }
  if (!e.scorer.empty()) j["scorer"] = e.scorer;
  if (!e.key.empty()) j["key"] = e.key;
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& what) { PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.event] ", what); }

template <typename T>
T field(const json& j, const char* name, const char* type_name) {
  if (!j.contains(name)) bad(std::string("the event has no \"") + name + "\"; add it (" + type_name + ")");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    bad(std::string("the event's \"") + name + "\" is not " + type_name);
  }
}

// An integer: a JSON integer, or a number with an integral value (2.0), within T's range. (json's get<int>() of a
// float outside int's range is undefined behaviour, and of a large integer wraps.)
template <typename T>
T integer_field(const json& j, const char* name, const char* type_name) {
  if (!j.contains(name)) bad(std::string("the event has no \"") + name + "\"; add it (" + type_name + ")");
  const json& v = j.at(name);
  constexpr double kLow = static_cast<double>(std::numeric_limits<T>::min());  // -2^(bits-1), exact
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return static_cast<T>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max()) return static_cast<T>(x);
  } else if (v.is_number_float()) {
    const double x = v.get<double>();
    if (std::isfinite(x) && x == std::trunc(x) && x >= kLow && x < -kLow) return static_cast<T>(x);
  }
  bad(std::string("the event's \"") + name + "\" is not " + type_name);
}

template <typename T>
T optional_integer_field(const json& j, const char* name, const char* type_name, T fallback) {
  if (!j.contains(name) || j.at(name).is_null()) return fallback;
  return integer_field<T>(j, name, type_name);
}

template <typename T>
T optional_field(const json& j, const char* name, const char* type_name, T fallback) {
  if (!j.contains(name) || j.at(name).is_null()) return fallback;
  return field<T>(j, name, type_name);
}

}  // namespace

FeedbackEvent event_from_json(const json& j) {
  if (!j.is_object()) bad("an event is a JSON object with a \"type\" (choice, rating, statement, undo)");
  FeedbackEvent e;
  const auto type = field<std::string>(j, "type", "a string: choice, rating, statement or undo");
  if (type == "choice")
    e.type = EventType::kChoice;
  else if (type == "rating")
    e.type = EventType::kRating;
  else if (type == "statement")
    e.type = EventType::kStatement;
  else if (type == "undo")
    e.type = EventType::kUndo;
  else
    bad("unknown event type \"" + type + "\"; use choice, rating, statement or undo");
  e.id = optional_integer_field<int64_t>(j, "id", "an integer", 0);
  e.time_ms = optional_integer_field<int64_t>(j, "time", "an integer (milliseconds since the epoch)", 0);
  e.scorer = optional_field<std::string>(j, "scorer", "a string", "");
  e.key = optional_field<std::string>(j, "key", "a string", "");
  switch (e.type) {
    case EventType::kChoice:
    case EventType::kRating: {
      e.prompt = optional_field<std::string>(j, "prompt", "a string", "");
      e.responses = field<std::vector<std::string>>(j, "responses", "a list of strings");
      e.scores = field<std::vector<std::vector<double>>>(j, "scores", "a list of score lists, one per response");
      if (e.scores.size() != e.responses.size())
        bad("the event has " + std::to_string(e.responses.size()) + " responses but " +
            std::to_string(e.scores.size()) + " score lists; give one per response");
      for (const auto& s : e.scores)
        for (double x : s)
          if (!std::isfinite(x)) bad("the event has a score that is not finite");
      if (e.type == EventType::kChoice) {
        if (e.responses.size() < 2) bad("a choice needs at least 2 responses");
        e.choice = integer_field<int>(j, "choice", "an integer (the preferred response's index, -1 for neither)");
        if (e.choice < -1 || e.choice >= static_cast<int>(e.responses.size()))
          bad("choice " + std::to_string(e.choice) + " is not a response's index (0.." +
              std::to_string(e.responses.size() - 1) + ") or -1 for neither");
      } else {
        if (e.responses.size() != 1) bad("a rating is of exactly 1 response");
        e.rating = integer_field<int>(j, "rating", "+1 or -1");
        if (e.rating != 1 && e.rating != -1) bad("a rating is +1 (thumbs up) or -1 (thumbs down)");
        e.reference = optional_field<std::vector<double>>(j, "reference", "a list of numbers", {});
      }
      break;
    }
    case EventType::kStatement:
      e.text = optional_field<std::string>(j, "text", "a string", "");
      e.dimension = optional_field<std::string>(j, "dimension", "a string", "");
      if (!e.dimension.empty()) {
        e.direction = field<double>(j, "direction", "a number (> 0: more, < 0: less)");
        e.strength = optional_field<double>(j, "strength", "a positive number", 1.0);
      }
      if (e.text.empty() && e.dimension.empty()) bad("a statement needs a \"text\" or a \"dimension\"");
      break;
    case EventType::kUndo:
      e.target = integer_field<int64_t>(j, "target", "an integer (the id of the event to take back)");
      if (e.target <= 0) bad("an undo's target must be a stored event's id (> 0)");
      break;
  }
  return e;
}

UserState initial_state(const std::string& user_id, const DimensionWeights& prior, const std::string& scorer) {
  UserState s;
  s.user_id = user_id;
  s.scorer = scorer;
  s.prior = gaussian_prior(prior.names, prior.mean, prior.covariance);
  s.posterior = s.prior;
  return s;
}

void check_event(const UserState& state, const FeedbackEvent& e) {
  const size_t k = state.prior.names.size();
  if (e.type == EventType::kChoice || e.type == EventType::kRating) {
    PALIGN_CHECK(state.scorer.empty() || e.scorer.empty() || e.scorer == state.scorer, ErrorCode::kInvalidArgument,
                 "[users.event] the event was scored by scorer '", e.scorer, "' but user '", state.user_id,
                 "' is learnt with '", state.scorer, "'; score it with the user's scorer");
    for (const auto& s : e.scores) {
      PALIGN_CHECK(s.size() == k, ErrorCode::kInvalidArgument, "[users.event] a response has ", s.size(),
                   " scores but user '", state.user_id, "' weighs ", k, " dimensions; score it with the user's scorer");
      for (double x : s)
        PALIGN_CHECK(std::isfinite(x), ErrorCode::kInvalidArgument, "[users.event] a score is not finite");
    }
    PALIGN_CHECK(e.reference.empty() || e.reference.size() == k, ErrorCode::kInvalidArgument,
                 "[users.event] the rating's reference has ", e.reference.size(), " scores for ", k, " dimensions");
  }
  if (e.type == EventType::kStatement && !e.dimension.empty())
    (void)statement_direction(state.prior.names, e.dimension, e.direction, e.strength);
}

namespace {

void learn(UserState& state, const FeedbackEvent& e) {
  OnlineUserModel model(state.prior, state.posterior, 0);
  switch (e.type) {
    case EventType::kChoice: {
      if (e.choice < 0) break;  // neither: stored, nothing learnt
      std::vector<std::vector<double>> others;
      for (size_t i = 0; i < e.scores.size(); ++i)
        if (static_cast<int>(i) != e.choice) others.push_back(e.scores[i]);
      model.observe_choice(e.scores[static_cast<size_t>(e.choice)], others);
      break;
    }
    case EventType::kRating:
      model.observe_rating(e.scores[0], e.rating, e.reference);
      break;
    case EventType::kStatement:
      if (!e.text.empty()) state.statement = e.text;
      if (!e.dimension.empty()) model.observe_statement(e.dimension, e.direction, e.strength);
      break;
    case EventType::kUndo:
      break;
  }
  state.observations += model.observations();
  state.posterior.mean = model.posterior().mean;
  state.posterior.covariance = model.posterior().covariance;
  ++state.events;
}

}  // namespace

void apply_event(UserState& state, const FeedbackEvent& e) {
  PALIGN_CHECK(e.type != EventType::kUndo, ErrorCode::kInvalidArgument,
               "[users.event] an undo is applied by replaying the user's events");
  check_event(state, e);
  learn(state, e);
  state.last_event = std::max(state.last_event, e.id);
}

UserState replay(const std::string& user_id, const DimensionWeights& prior, const std::string& scorer,
                 const std::vector<FeedbackEvent>& events) {
  UserState state = initial_state(user_id, prior, scorer);
  std::set<int64_t> ids, undone;
  for (const auto& e : events) {
    if (e.type == EventType::kUndo) {
      PALIGN_CHECK(ids.count(e.target), ErrorCode::kInvalidArgument, "[users.event] undo of event ", e.target,
                   ", which is not an earlier event of user '", user_id, "'");
      undone.insert(e.target);
    }
    ids.insert(e.id);
  }
  for (const auto& e : events) {
    state.last_event = std::max(state.last_event, e.id);
    if (e.type == EventType::kUndo || undone.count(e.id)) continue;
    check_event(state, e);
    learn(state, e);
  }
  return state;
}

}  // namespace palign::users
