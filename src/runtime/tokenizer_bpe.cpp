// The BPE model of tokenizer.json, as HF tokenizers' models::bpe: vocabulary, merges ("a b" strings or ["a", "b"]
// pairs), unk_token / fuse_unk, byte_fallback to <0xXX> tokens, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix. Merging follows Word::merge_all: a priority queue by merge rank, then by position.
#include <cstdio>
#include <queue>

#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime::tok {

namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::pair<std::string, std::string> parse_merge(const Json& m, std::string_view where, size_t index) {
  if (m.is_string()) {
    const auto& s = m.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    PALIGN_CHECK(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
                 ErrorCode::kInvalidArgument, "[runtime.Tokenizer] merge ", index, " \"", s, "\" in ", where,
                 " must be two tokens separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  PALIGN_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), ErrorCode::kInvalidArgument,
               "[runtime.Tokenizer] merge ", index, " in ", where, " must be \"a b\" or [\"a\", \"b\"], got ",
               m.dump());
  return {m[0].get<std::string>(), m[1].get<std::string>()};
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  int32_t len;  // bytes; 0 once merged into its left neighbour
};

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: lowest rank first, then lowest position.
  bool operator<(const QueuedMerge& other) const {
    if (rank != other.rank) return rank > other.rank;
    return pos > other.pos;
  }
};

}  // namespace

BpeModel::BpeModel(const Json& j, std::string_view where) {
  const Json& vocab = j.contains("vocab") ? j["vocab"] : Json();
  PALIGN_CHECK(vocab.is_object(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] model.vocab in ", where,
               " must be an object of token -> id");
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    PALIGN_CHECK(
        it.value().is_number_integer() && it.value().get<int64_t>() >= 0 && it.value().get<int64_t>() <= kMaxTokenId,
        ErrorCode::kInvalidArgument, "[runtime.Tokenizer] model.vocab[\"", it.key(), "\"] in ", where,
        " must be an integer id from 0 to ", kMaxTokenId, ", got ", it.value().dump(), "; fix the tokenizer file");
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab_.emplace(it.key(), id);
    max_id = std::max(max_id, id);
  }
  vocab_r_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [token, id] : vocab_) vocab_r_[id] = token;

  const std::string unk = json_string(j, "unk_token");
  if (!unk.empty()) {
    auto it = vocab_.find(unk);
    PALIGN_CHECK(it != vocab_.end(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] unk_token \"", unk,
                 "\" of ", where, " is not in the vocabulary; add it to model.vocab");
    unk_id_ = it->second;
  }
  fuse_unk_ = json_bool(j, "fuse_unk", false);
  byte_fallback_ = json_bool(j, "byte_fallback", false);
  ignore_merges_ = json_bool(j, "ignore_merges", false);
  continuing_subword_prefix_ = json_string(j, "continuing_subword_prefix");
  end_of_word_suffix_ = json_string(j, "end_of_word_suffix");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  if (j.contains("merges") && !j["merges"].is_null()) {
    const Json& merges = j["merges"];
    PALIGN_CHECK(merges.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] model.merges in ", where,
                 " must be an array");
    merges_.reserve(merges.size());
    const size_t prefix_len = continuing_subword_prefix_.size();
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto [left, right] = parse_merge(merges[rank], where, rank);
      auto left_it = vocab_.find(left);
      auto right_it = vocab_.find(right);
      std::string merged = left;
      merged.append(prefix_len > 0 && right.compare(0, prefix_len, continuing_subword_prefix_) == 0
                        ? right.substr(prefix_len)
                        : right);
      auto merged_it = vocab_.find(merged);
      PALIGN_CHECK(left_it != vocab_.end() && right_it != vocab_.end() && merged_it != vocab_.end(),
                   ErrorCode::kInvalidArgument, "[runtime.Tokenizer] merge ", rank, " (\"", left, "\", \"", right,
                   "\") in ", where, " uses a token that is not in the vocabulary; the file is inconsistent");
      merges_[pair_key(left_it->second, right_it->second)] = {static_cast<int32_t>(rank), merged_it->second};
    }
  }
}

const BpeModel::MergeValue* BpeModel::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, int32_t len) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, len});
    if (index > 0) symbols[index - 1].next = index;
  };
  int32_t unk_len = 0;  // byte length of a pending unk token (fused when fuse_unk); 0 when none
  std::string scratch;
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t begin = pos;
    const size_t len = static_cast<size_t>(unicode::utf8_len(static_cast<unsigned char>(word[pos])));
    pos = std::min(word.size(), pos + len);
    const bool is_first = begin == 0;
    const bool is_last = pos == word.size();
    std::string_view piece = word.substr(begin, pos - begin);
    if ((!is_first && !continuing_subword_prefix_.empty()) || (is_last && !end_of_word_suffix_.empty())) {
      scratch.clear();
      if (!is_first) scratch.append(continuing_subword_prefix_);
      scratch.append(piece);
      if (is_last) scratch.append(end_of_word_suffix_);
      piece = scratch;
    }
    const auto piece_len = static_cast<int32_t>(piece.size());
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      if (unk_len > 0) {
        add(*unk_id_, unk_len);
        unk_len = 0;
      }
      add(it->second, piece_len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : piece) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // note: HF adds the byte tokens without flushing a pending unk first; kept for identical output.
        for (char c : piece) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (unk_len > 0 && fuse_unk_) {
        unk_len += piece_len;
      } else {
        if (unk_len > 0) add(*unk_id_, unk_len);
        unk_len = piece_len;
      }
    }
  }
  if (unk_len > 0) add(*unk_id_, unk_len);

  std::priority_queue<QueuedMerge> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const MergeValue* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& current = symbols[top.pos];
    if (current.len == 0 || current.next == -1) continue;
    const int32_t next_pos = current.next;
    const Symbol right = symbols[next_pos];
    const MergeValue* m = find_merge(current.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // a stale queue entry
    current.id = top.new_id;
    current.len += right.len;
    current.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (current.prev >= 0) {
      if (const MergeValue* pm = find_merge(symbols[current.prev].id, current.id)) {
        queue.push({pm->rank, current.prev, pm->new_id});
      }
    }
    if (current.next >= 0) {
      if (const MergeValue* nm = find_merge(current.id, symbols[current.next].id)) {
        queue.push({nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace palign::runtime::tok
