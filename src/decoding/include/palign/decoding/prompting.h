// The `prompt` strategy: personalization through the context alone. The user's free-text preference statement and
// their own liked responses retrieved for this prompt (LaMP-style retrieval, Salemi et al. 2024) go before the prompt,
// and the unchanged policy continues it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace palign::runtime {
class Tokenizer;
}

namespace palign::decoding {

// Indices of docs from most to least similar to query by word overlap (Jaccard similarity of the sets of lowercased
// alphanumeric words); ties keep the documents' order.
std::vector<size_t> rank_by_overlap(const std::string& query, const std::vector<std::string>& docs);

// The context token ids: [statement] [doc_m] … [doc_1] [prompt ids]. The statement and documents are encoded with the
// tokenizer's special tokens and followed by its end-of-text token, so each reads as a text of its own; the prompt's
// ids are kept as given. ranked_docs: most relevant first; the most relevant ends up nearest the prompt. Documents
// that do not fit in room tokens are skipped; at most max_docs are used (their count goes to *used_docs when given).
// Throws kInvalidArgument when the statement and prompt alone exceed room.
std::vector<int64_t> personalized_prompt(const runtime::Tokenizer& tokenizer, const std::string& statement,
                                         const std::vector<std::string>& ranked_docs,
                                         const std::vector<int64_t>& prompt_ids, int64_t room, size_t max_docs = 3,
                                         size_t* used_docs = nullptr);

}  // namespace palign::decoding
