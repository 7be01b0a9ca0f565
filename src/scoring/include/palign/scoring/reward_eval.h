// Held-out accuracy of a reward model on preference pairs: how often it scores the chosen response above the rejected
// one (ties count half), overall, per dimension and per user, each with a 95% interval from a two-stage bootstrap
// that resamples users and then each sampled user's pairs (pairs of one user are not independent).
//
// The score compared: a reward with one label uses it; a multi-label reward (multi, arm with dimensions) uses the
// label named by the pair's "dimension". A personalized reward scores each pair for its user when it has seen them,
// else as the generic user (counted in unseen_users).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "palign/scoring/preference_data.h"
#include "palign/scoring/reward_model.h"

namespace palign::scoring {

struct Accuracy {
  double value = 0;  // mean over the pairs
  double lo = 0, hi = 0;
  int64_t pairs = 0;
};

struct RewardEval {
  Accuracy overall;
  std::map<std::string, Accuracy> by_dimension;  // pairs without a dimension are under ""
  std::map<std::string, Accuracy> by_user;       // pairs without a user_id are under ""
  int64_t unseen_users = 0;                      // personalized rewards: users scored as the generic user
  std::vector<double> correct;                   // per pair: 1, 0.5 (tie) or 0
};

// Scores every pair (two scores each) and summarises. progress(done, total) is called after each pair. Throws
// kInvalidArgument for no pairs, or, with a multi-label reward, a pair whose dimension is not one of its labels
// (naming them).
RewardEval evaluate_reward(RewardModel& reward, const std::vector<PreferenceRecord>& pairs, uint64_t seed = 0,
                           const std::function<void(int64_t done, int64_t total)>& progress = {});

// The two-stage bootstrap mean of grouped values (each inner vector one user's pairs; empty groups are skipped).
Accuracy grouped_bootstrap(const std::vector<std::vector<double>>& groups, uint64_t seed, int resamples = 1000);

}  // namespace palign::scoring
