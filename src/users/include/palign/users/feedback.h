// Feedback events and the user state derived from them. An event is what the user did, stored as it happened:
//   choice     the user saw responses (2 or more) to a prompt and preferred one (or none: choice = -1, stored and
//              learnt nothing from);
//   rating     thumbs up (+1) or down (−1) on one response, against a reference (what the user would otherwise have
//              got; zeros when unknown);
//   statement  a stated preference: free text (the profile's statement, read by the prompt and contrast strategies),
//              optionally with a named dimension, a direction and a strength (a pseudo-observation of the weights);
//   undo       takes back an earlier event of the same user (`target`); the state is then replayed without it.
// Each event carries the K scores of its responses under the user's scorer and that scorer's fingerprint, so that
// replaying the events needs no model. The state (UserState) is a pure function of the prior and the events in id
// order: apply_event is the incremental step, replay the rebuild, and both give the same doubles.
//
// JSON form (export, `palign user feedback --event`):
//   {"type": "choice", "prompt": "...", "responses": ["a", "b"], "scores": [[...], [...]], "choice": 0,
//    "scorer": "...", "key": "..."}
//   {"type": "rating", "prompt": "...", "responses": ["a"], "scores": [[...]], "rating": 1, "reference": [...]}
//   {"type": "statement", "text": "shorter answers, please", "dimension": "length", "direction": -1, "strength": 2}
//   {"type": "undo", "target": 17}
// plus "id" and "time" (milliseconds since the epoch) once stored. "key" is an optional idempotency key: an event
// whose key the user already has is not stored twice.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "palign/users/dimension_weights.h"
#include "palign/users/online_model.h"

namespace palign::users {

enum class EventType { kChoice, kRating, kStatement, kUndo };
std::string event_type_name(EventType type);

struct FeedbackEvent {
  EventType type = EventType::kChoice;
  int64_t id = 0;       // assigned by the store
  int64_t time_ms = 0;  // assigned by the store when 0
  std::string prompt;
  std::vector<std::string> responses;
  std::vector<std::vector<double>> scores;  // [responses][K]
  int choice = -1;                          // choice: the preferred response's index, −1 for neither
  int rating = 0;                           // rating: +1 or −1 on responses[0]
  std::vector<double> reference;            // rating: the reference's scores (empty: zeros)
  std::string text;                         // statement
  std::string dimension;                    // statement: empty for text alone
  double direction = 0;
  double strength = 1;
  int64_t target = 0;  // undo
  std::string scorer;  // the fingerprint of the scorer that produced `scores`
  std::string key;     // idempotency key (optional)
};

nlohmann::json event_to_json(const FeedbackEvent& event);
// Throws kInvalidArgument naming the field for malformed JSON: an unknown type, a missing or mistyped field, scores
// that do not match the responses, a choice outside them, a rating other than ±1.
FeedbackEvent event_from_json(const nlohmann::json& j);

// What palign knows about a user at one version.
struct UserState {
  std::string user_id;
  int64_t version = 0;     // 0: the prior alone; +1 per stored batch of events
  int64_t last_event = 0;  // the id of the last event applied
  std::string scorer;      // the fingerprint every event's scores must carry (empty: any)
  DimensionWeights prior;
  DimensionWeights posterior;
  int64_t observations = 0;  // logistic observations learnt from
  int64_t events = 0;        // events applied (undone ones and undos excluded)
  std::string statement;     // the latest stated text
};

// The state before any event.
UserState initial_state(const std::string& user_id, const DimensionWeights& prior, const std::string& scorer);

// Checks an event against the state it would be applied to (scores of K dimensions, the scorer's fingerprint, a known
// dimension), throwing kInvalidArgument with a one-line message; apply_event calls it first, so a rejected event
// changes nothing.
void check_event(const UserState& state, const FeedbackEvent& event);

// One event, incrementally (an undo is not incremental: use replay). Throws as check_event, and kInvalidArgument for
// an undo.
void apply_event(UserState& state, const FeedbackEvent& event);

// The state after `events` in order, undone events skipped: the rebuild. Throws kInvalidArgument for an undo whose
// target is not an earlier event of the list.
UserState replay(const std::string& user_id, const DimensionWeights& prior, const std::string& scorer,
                 const std::vector<FeedbackEvent>& events);

}  // namespace palign::users
