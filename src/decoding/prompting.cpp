// Retrieval and context assembly of the `prompt` strategy (see prompting.h).
#include "palign/decoding/prompting.h"

#include <algorithm>
#include <cctype>
#include <numeric>
#include <set>

#include "palign/base/error.h"
#include "palign/runtime/tokenizer.h"

namespace palign::decoding {

namespace {

std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::string word;
  for (char ch : text + " ") {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) {
      word += static_cast<char>(std::tolower(c));
    } else if (!word.empty()) {
      out.insert(word);
      word.clear();
    }
  }
  return out;
}

}  // namespace

std::vector<size_t> rank_by_overlap(const std::string& query, const std::vector<std::string>& docs) {
  const auto q = words(query);
  std::vector<double> sim;
  for (const auto& d : docs) {
    const auto w = words(d);
    size_t common = 0;
    for (const auto& x : w) common += q.count(x);
    const size_t total = q.size() + w.size() - common;
    sim.push_back(total ? static_cast<double>(common) / static_cast<double>(total) : 0.0);
  }
  std::vector<size_t> order(docs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sim[a] > sim[b]; });
  return order;
}

std::vector<int64_t> personalized_prompt(const runtime::Tokenizer& tokenizer, const std::string& statement,
                                         const std::vector<std::string>& ranked_docs,
                                         const std::vector<int64_t>& prompt_ids, int64_t room, size_t max_docs,
                                         size_t* used_docs) {
  auto encode = [&](const std::string& text) {
    const auto ids32 = tokenizer.encode(text, /*add_special=*/true);
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    if (tokenizer.eos_id()) ids.push_back(*tokenizer.eos_id());
    return ids;
  };
  std::vector<int64_t> head = statement.empty() ? std::vector<int64_t>{} : encode(statement);
  const std::vector<int64_t>& tail = prompt_ids;
  PALIGN_CHECK(static_cast<int64_t>(head.size() + tail.size()) <= room, ErrorCode::kInvalidArgument,
               "[decoding.prompt] the preference statement and the prompt take ", head.size() + tail.size(),
               " tokens, more than the ", room, " the context leaves; shorten the statement");
  std::vector<int64_t> docs;  // most relevant last
  size_t used = 0;
  for (const auto& doc : ranked_docs) {
    if (used == max_docs) break;
    const auto ids = encode(doc);
    if (static_cast<int64_t>(head.size() + docs.size() + ids.size() + tail.size()) > room) continue;
    docs.insert(docs.begin(), ids.begin(), ids.end());
    ++used;
  }
  head.insert(head.end(), docs.begin(), docs.end());
  head.insert(head.end(), tail.begin(), tail.end());
  if (used_docs) *used_docs = used;
  return head;
}

}  // namespace palign::decoding
