// Rewards-in-Context (RiC, Yang et al. 2024): a policy fine-tuned on responses whose reward scores are written before
// the prompt, so that at decoding time the scores written there ask for the trade-off a user wants. One format shared
// by the trainer (training/policy_trainer.h, --method ric) and the ric strategy (decoding).
#pragma once

#include <string>
#include <vector>

namespace palign::scoring {

// "<humour 0.5> <length -1.3> " + prompt: each label with its score rounded to one decimal (-0.0 written 0.0).
// Throws kInvalidArgument for labels and scores of different counts or a non-finite score.
std::string reward_prompt(const std::string& prompt, const std::vector<std::string>& labels,
                          const std::vector<double>& scores);

}  // namespace palign::scoring
