// A stored user as the rest of palign reads it: as JSON (the CLI's `palign user show`, the server's
// GET /v1/users/{id}), and as the decoding strategies' Personalization (the one request path of DESIGN.md).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "palign/decoding/strategy.h"
#include "palign/users/store.h"

namespace palign::server {

// {"user_id", "version", "events", "observations", "statement", "scorer", "weights": {name: {"mean", "sd"}}}.
nlohmann::ordered_json describe_user(const users::UserState& state);

// A user's state as a strategy's profile: the weights are the posterior mean by dimension name, the statement the
// latest stated one, the pairs the user's choices among `events` (chosen over each response passed over, undone
// ones left out), the reward `reward_dir` (the user's scorer; may be empty).
decoding::Personalization personalization_of(const users::UserState& state,
                                             const std::vector<users::FeedbackEvent>& events,
                                             const std::filesystem::path& reward_dir);
// The same for a stored user (throws kNotFound for an unknown one).
decoding::Personalization personalization_of(const users::ProfileStore& store, const std::string& user,
                                             const std::filesystem::path& reward_dir);

}  // namespace palign::server
