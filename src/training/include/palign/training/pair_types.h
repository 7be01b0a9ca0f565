// Preference pairs as token sequences: what the pairwise trainers (arm, the DPO family, P-DPO, BiPO) train on.
#pragma once

#include <cstdint>
#include <string>

#include "palign/scoring/response_log_probs.h"

namespace palign::runtime {
class Tokenizer;
}  // namespace palign::runtime

namespace palign::training {

struct SequencePair {
  scoring::ResponseSequence chosen, rejected;
};

// The pair of (prompt, chosen) and (prompt, rejected) tokenized by scoring::tokenize_response.
SequencePair tokenize_pair(const runtime::Tokenizer& tok, const std::string& prompt, const std::string& chosen,
                           const std::string& rejected, int64_t max_tokens);

}  // namespace palign::training
