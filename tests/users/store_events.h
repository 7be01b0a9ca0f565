// What the store tests append: a 3-dimension prior and a scored choice between two answers.
#pragma once

#include <string>

#include "palign/base/rng.h"
#include "palign/users/feedback.h"
#include "palign/users/online_model.h"

namespace palign::test {

inline users::DimensionWeights test_prior() {
  return users::gaussian_prior({"length", "humor", "science"}, {0.1, 0.2, -0.1},
                               {1.0, 0.3, 0.0, 0.3, 1.0, 0.2, 0.0, 0.2, 1.0});
}

inline users::FeedbackEvent choice(Rng& rng, int chosen = 0, const std::string& key = "") {
  users::FeedbackEvent e;
  e.type = users::EventType::kChoice;
  e.prompt = "Tell me something.";
  e.responses = {"first answer", "second answer"};
  for (int r = 0; r < 2; ++r) e.scores.push_back({rng.normal(), rng.normal(), rng.normal()});
  e.choice = chosen;
  e.key = key;
  return e;
}

}  // namespace palign::test
