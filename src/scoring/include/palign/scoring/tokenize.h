// The graders' tokeniser: lowercase ASCII word tokens, plus the sentence and syllable counts that the style
// graders share. Deterministic and locale-independent; not the language model's tokeniser.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace palign::scoring {

// Maximal runs of ASCII letters and apostrophes (' and the UTF-8 right single quote ’, which becomes '), lowercased,
// with leading and trailing apostrophes removed; runs that are only apostrophes are dropped. Digits, other
// punctuation and other non-ASCII bytes separate tokens. "Don't PANIC, it's 42!" -> {"don't", "panic", "it's"}.
std::vector<std::string> grader_tokens(std::string_view text);

// The number of sentences: a sentence is a stretch of text holding at least one word token and ending at a run of
// '.', '!' or '?' or at the end of the text. "Hi. Hi!! ... ok" -> 3; "" -> 0.
int count_sentences(std::string_view text);

// Syllables of one lowercase word by a heuristic: groups of vowels (a e i o u y), minus one for a final silent 'e'
// (not after 'l' as in "table", and not when it is the only vowel group), at least 1.
// "the" -> 1, "cake" -> 1, "table" -> 2, "reading" -> 2, "rhythm" -> 1.
int count_syllables(std::string_view word);

}  // namespace palign::scoring
