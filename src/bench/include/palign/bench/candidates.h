// Prompts and candidate responses for the bench: prompts are the openings of held-out fortunes; candidates are
// samples from a language model (the default model unless told otherwise), generated N per prompt in one batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palign/scoring/fortunes.h"

namespace palign::runtime {
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::bench {

struct PromptOptions {
  std::string split = "test";  // which fortunes the openings come from (never the LM's training split)
  int64_t n_prompts = 32;
  int64_t opening_words = 4;   // words of the fortune kept as the prompt
  uint64_t seed = 0;
  // Append new fields here.
};

// The first opening_words words of n_prompts fortunes of the split, chosen by a seeded shuffle; fortunes shorter
// than opening_words + 2 words are skipped. Throws kInvalidArgument when the split has too few usable fortunes.
std::vector<std::string> fortune_prompts(const std::vector<scoring::FortuneRecord>& records,
                                         const PromptOptions& options);

struct CandidateOptions {
  int64_t per_prompt = 8;
  int64_t max_new_tokens = 48;
  float temperature = 1.0f;
  float top_p = 0.95f;
  uint64_t seed = 0;  // prompt i, sample j uses seed + 1000 * i + j
  // Append new fields here.
};

// Candidate responses (the continuation text, without the prompt) for each prompt: [n_prompts][per_prompt].
// Generation stops at the model's end-of-text token; empty continuations are kept (they are valid responses).
std::vector<std::vector<std::string>> generate_candidates(const runtime::Model& model,
                                                          const runtime::Tokenizer& tokenizer,
                                                          const std::vector<std::string>& prompts,
                                                          const CandidateOptions& options);

}  // namespace palign::bench
