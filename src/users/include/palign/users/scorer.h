// The scorer a user is learnt with: a reward with named labels (a `multi` classification directory, an arm directory
// with dimensions), whose K scores of a response are the s(y) of the user's reward r_u(y) = w_u · s(y).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "palign/users/dimension_weights.h"

namespace palign::scoring {
class RewardModel;
}

namespace palign::users {

// A content fingerprint of a reward directory ("fnv1a64:<hex>" of its manifest, config and weights), stored with each
// user and each event so that scores of another scorer are never mixed into a user's posterior. Throws kNotFound for
// a missing directory.
std::string scorer_fingerprint(const std::filesystem::path& reward_dir);

// The dimension names of a reward usable as a user's scorer. Throws kInvalidArgument for a personalized reward (it
// learns users itself) or one with a single score (nothing to weigh).
std::vector<std::string> scorer_dimensions(const scoring::RewardModel& reward);

// The K scores of each response to a prompt. Throws kInvalidArgument naming the response the scorer cannot score
// (empty, or an error of the scorer's own).
std::vector<std::vector<double>> score_responses(scoring::RewardModel& reward, const std::string& prompt,
                                                 const std::vector<std::string>& responses);

// The population prior from labelled pairs of known users (JSON Lines with "user_id"): each user's batch fit
// (fit_weights_from_pairs, prior N(0, I / prior_precision)), then population_prior over them. Throws kInvalidArgument
// for fewer than 2 users.
DimensionWeights fit_population_prior(scoring::RewardModel& reward, const std::filesystem::path& pairs_file,
                                      double prior_precision = 1.0, double shrinkage = 0.1);

}  // namespace palign::users
