// What the user commands share: a stored user as JSON, and as the decoding strategies' Personalization.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "palign/decoding/strategy.h"
#include "palign/users/store.h"

namespace palign::cli {

// {"user_id", "version", "events", "observations", "statement", "scorer", "weights": {name: {"mean", "sd"}}}.
nlohmann::ordered_json describe_user(const users::UserState& state);

// The user's current posterior as a strategy's profile: the weights are the posterior mean by dimension name, the
// statement the latest stated one, the pairs the user's choices (chosen over each response passed over, undone ones
// left out), the reward `reward_dir` (the user's scorer; may be empty).
decoding::Personalization personalization_of(const users::ProfileStore& store, const std::string& user,
                                             const std::filesystem::path& reward_dir);

}  // namespace palign::cli
