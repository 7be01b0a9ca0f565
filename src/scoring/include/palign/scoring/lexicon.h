// The positivity grader's sentiment lexicon: about 100 positive and 100 negative lowercase English words, written
// by hand and embedded in the source (no external list). Matching is exact on grader_tokens; there is no stemming
// and no negation handling, so "not good" counts as positive.
#pragma once

#include <string_view>
#include <vector>

namespace palign::scoring {

// The lexicon's words, sorted, without duplicates; the two lists are disjoint.
const std::vector<std::string_view>& positive_words();
const std::vector<std::string_view>& negative_words();

bool is_positive_word(std::string_view word);
bool is_negative_word(std::string_view word);

// (positive tokens − negative tokens) / sqrt(tokens + 1) over grader_tokens(text); 0 for an empty text.
// "a good and happy day" -> (2 − 0) / sqrt(6).
double positivity_score(std::string_view text);

}  // namespace palign::scoring
