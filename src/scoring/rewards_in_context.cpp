// Rewards-in-Context prompts (see rewards_in_context.h).
#include "palign/scoring/rewards_in_context.h"

#include <cmath>
#include <cstdio>

#include "palign/base/error.h"

namespace palign::scoring {

std::string reward_prompt(const std::string& prompt, const std::vector<std::string>& labels,
                          const std::vector<double>& scores) {
  PALIGN_CHECK(labels.size() == scores.size(), ErrorCode::kInvalidArgument, "[scoring.reward_prompt] ", labels.size(),
               " labels but ", scores.size(), " scores");
  std::string out;
  for (size_t k = 0; k < labels.size(); ++k) {
    PALIGN_CHECK(std::isfinite(scores[k]), ErrorCode::kInvalidArgument, "[scoring.reward_prompt] the score of '",
                 labels[k], "' is not finite");
    double rounded = std::round(scores[k] * 10.0) / 10.0;
    if (rounded == 0) rounded = 0;  // no "-0.0"
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.1f> ", rounded);
    out += "<" + labels[k] + buf;
  }
  return out + prompt;
}

}  // namespace palign::scoring
