// Byte-level BPE training (see bpe_trainer.h). Follows HF tokenizers' BpeTrainer: count the distinct pre-tokens
// ("words"), start from the byte alphabet, then repeatedly merge the most frequent adjacent pair. Pair counts are
// kept incrementally: pair -> count, pair -> indices of the words that contain it, and a lazy max-heap; a merge only
// rewrites the words that contain the merged pair.
#include "palign/training/bpe_trainer.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/pretokenize.h"

namespace palign::training {

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::ordered_json;
using PairKey = uint64_t;  // (left id << 32) | right id; ordering the keys orders pairs by (left, right)

PairKey pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t pair_left(PairKey key) { return static_cast<int32_t>(key >> 32); }
int32_t pair_right(PairKey key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// A distinct pre-token as a sequence of symbol ids, and how often it occurs in the corpus.
struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

struct QueueEntry {
  int64_t count;
  PairKey pair;
};
// std::priority_queue puts the "largest" on top: the highest count, then the smallest pair.
struct QueueOrder {
  bool operator()(const QueueEntry& a, const QueueEntry& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

// Calls f(segment) for the parts of text between occurrences of the special tokens (leftmost, then longest match).
template <typename F>
void for_each_plain_segment(std::string_view text, const std::vector<std::string>& specials, F&& f) {
  std::vector<size_t> next(specials.size());
  for (size_t special_idx = 0; special_idx < specials.size(); ++special_idx) {
    next[special_idx] = text.find(specials[special_idx]);
  }
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best_pos = std::string_view::npos;
    size_t best_len = 0;
    for (size_t special_idx = 0; special_idx < specials.size(); ++special_idx) {
      if (next[special_idx] != std::string_view::npos && next[special_idx] < pos) {
        next[special_idx] = text.find(specials[special_idx], pos);
      }
      const size_t at = next[special_idx];
      const size_t len = specials[special_idx].size();
      if (at != std::string_view::npos && (at < best_pos || (at == best_pos && len > best_len))) {
        best_pos = at;
        best_len = len;
      }
    }
    if (best_pos == std::string_view::npos) {
      f(text.substr(pos));
      return;
    }
    if (best_pos > pos) f(text.substr(pos, best_pos - pos));
    pos = best_pos + best_len;
  }
}

// Writes content to path through a temporary file and a rename, so that a reader never sees half a file.
void write_file(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.train_bpe_tokenizer] cannot write ", tmp.string(),
                 "; check that the output folder is writable");
    out << content;
    out.close();
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.train_bpe_tokenizer] writing ", tmp.string(),
                 " failed; check the free disk space");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[training.train_bpe_tokenizer] cannot rename ", tmp.string(), " to ",
               path.string(), ": ", ec.message());
}

Json added_token_json(int32_t id, const std::string& content) {
  return Json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
              {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// tokenizer.json in the schema HF tokenizers 0.23 writes for a Llama-3-style byte-level BPE.
std::string tokenizer_json(const BpeTrainOptions& options, const std::vector<std::string>& id_to_token,
                           const std::vector<std::pair<int32_t, int32_t>>& merges) {
  const std::string& bos = options.special_tokens.front();
  Json added = Json::array();
  for (size_t special_idx = 0; special_idx < options.special_tokens.size(); ++special_idx) {
    added.push_back(added_token_json(static_cast<int32_t>(special_idx), options.special_tokens[special_idx]));
  }
  const Json bos_piece = {{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
  const Json post_processor = {
      {"type", "TemplateProcessing"},
      {"single", Json::array({bos_piece, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", Json::array({bos_piece,
                            {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                            bos_piece,
                            {{"Sequence", {{"id", "B"}, {"type_id", 0}}}}})},
      {"special_tokens", {{bos, {{"id", bos}, {"ids", Json::array({0})}, {"tokens", Json::array({bos})}}}}}};
  const Json pre_tokenizer = {
      {"type", "Sequence"},
      {"pretokenizers",
       Json::array(
           {{{"type", "Split"}, {"pattern", {{"Regex", options.pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}};
  // Tokens are distinct by construction, so the vocabulary is appended without ordered_map's linear key search.
  Json vocab = Json::object();
  auto& vocab_items = vocab.get_ref<Json::object_t&>();
  vocab_items.reserve(id_to_token.size());
  for (size_t id = 0; id < id_to_token.size(); ++id) vocab_items.push_back({id_to_token[id], Json(id)});
  Json merge_list = Json::array();
  for (const auto& [left, right] : merges) merge_list.push_back(Json::array({id_to_token[left], id_to_token[right]}));
  Json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false}};
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merge_list);
  Json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", std::move(added)},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", post_processor},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}}};
  doc["model"] = std::move(model);
  return doc.dump(2) + "\n";
}

std::string tokenizer_config_json(const BpeTrainOptions& options) {
  Json config = {{"bos_token", options.special_tokens.front()}, {"eos_token", options.special_tokens.front()}};
  if (options.special_tokens.size() > 1) config["pad_token"] = options.special_tokens[1];
  config["model_max_length"] = 1000000;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["clean_up_tokenization_spaces"] = false;
  // palign's models continue text: the template that suits them (runtime/chat_template.h), so that chat works.
  config["chat_template"] = std::string(runtime::kContinuationChatTemplate);
  return config.dump(2) + "\n";
}

}  // namespace

std::string BpeTrainOptions::validate() const {
  const auto n_special = static_cast<int64_t>(special_tokens.size());
  if (n_special < 1) return "special-tokens is empty; give at least the end-of-text token (e.g. <|endoftext|>)";
  const auto& alphabet = runtime::byte_level_alphabet();
  std::set<std::string> seen;
  for (const std::string& token : special_tokens) {
    if (token.empty()) return "special-tokens contains an empty token";
    if (!seen.insert(token).second) return "special token \"" + token + "\" is listed twice";
    if (std::find(alphabet.begin(), alphabet.end(), token) != alphabet.end())
      return "special token \"" + token + "\" is a byte symbol of the alphabet; use a longer token such as <|x|>";
  }
  const int64_t minimum = 256 + n_special;
  if (vocab_size < minimum || vocab_size > INT32_MAX)
    return "vocab-size " + std::to_string(vocab_size) + " is out of range; the minimum is " + std::to_string(minimum) +
           " (256 byte symbols + " + std::to_string(n_special) + " special tokens)";
  if (min_frequency < 1) return "min-frequency must be >= 1, got " + std::to_string(min_frequency);
  if (pattern.empty()) return "pattern is empty; use the Llama-3 split pattern (the default)";
  return {};
}

BpeTrainReport train_bpe_tokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                                   const fs::path& out_dir) {
  const auto start = std::chrono::steady_clock::now();
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[training.train_bpe_tokenizer] ", err);
  int64_t total_bytes = 0;
  for (const std::string& text : texts) total_bytes += static_cast<int64_t>(text.size());
  PALIGN_CHECK(total_bytes > 0, ErrorCode::kInvalidArgument, "[training.train_bpe_tokenizer] the corpus is empty (",
               texts.size(), " texts, 0 bytes); give at least one non-empty text");
  {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    PALIGN_CHECK(!ec && fs::is_directory(out_dir), ErrorCode::kIo, "[training.train_bpe_tokenizer] cannot create ",
                 out_dir.string(), (ec ? ": " + ec.message() : std::string()), "; choose a writable --out folder");
  }

  // 1. Distinct pre-tokens and their counts.
  const runtime::ByteLevelSplitter splitter = [&] {
    try {
      return runtime::ByteLevelSplitter(options.pattern);
    } catch (const Error& e) {
      PALIGN_THROW(e.code(), "[training.train_bpe_tokenizer] options.pattern: ", e.what());
    }
  }();
  BpeTrainReport report;
  std::unordered_map<std::string, int64_t> word_counts;
  {
    ProgressBar bar("pre-tokenize", static_cast<int64_t>(texts.size()), options.progress);
    for (size_t text_idx = 0; text_idx < texts.size(); ++text_idx) {
      for_each_plain_segment(texts[text_idx], options.special_tokens, [&](std::string_view segment) {
        std::vector<std::string> pieces;
        try {
          pieces = splitter.split(segment);
        } catch (const Error& e) {
          PALIGN_THROW(e.code(), "[training.train_bpe_tokenizer] text ", text_idx, ": ", e.what());
        }
        for (std::string& piece : pieces) ++word_counts[std::move(piece)];
        report.words += static_cast<int64_t>(pieces.size());
      });
      if ((text_idx + 1) % 256 == 0 && text_idx + 1 < texts.size()) bar.update(static_cast<int64_t>(text_idx) + 1);
    }
    bar.finish();
  }

  // 2. The initial vocabulary: special tokens, then the 256 byte symbols in code point order (as HF sorts its
  // alphabet), so that every byte has a token.
  std::vector<std::string> id_to_token(options.special_tokens.begin(), options.special_tokens.end());
  const auto n_special = static_cast<int32_t>(id_to_token.size());
  std::vector<std::string> alphabet(runtime::byte_level_alphabet().begin(), runtime::byte_level_alphabet().end());
  std::sort(alphabet.begin(), alphabet.end());  // UTF-8 byte order is code point order
  std::unordered_map<std::string, int32_t> token_to_id;
  for (int32_t id = 0; id < n_special; ++id) token_to_id.emplace(id_to_token[id], id);
  for (const std::string& symbol : alphabet) {
    token_to_id.emplace(symbol, static_cast<int32_t>(id_to_token.size()));
    id_to_token.push_back(symbol);
  }

  // 3. Words as symbol ids, sorted by text so that every later step is independent of hash order.
  std::vector<std::pair<std::string, int64_t>> sorted_words(word_counts.begin(), word_counts.end());
  word_counts.clear();
  std::sort(sorted_words.begin(), sorted_words.end());
  std::vector<Word> words(sorted_words.size());
  for (size_t word_idx = 0; word_idx < sorted_words.size(); ++word_idx) {
    const std::string& text = sorted_words[word_idx].first;
    Word& word = words[word_idx];
    word.count = sorted_words[word_idx].second;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = static_cast<unsigned char>(text[pos]) < 0x80 ? 1 : 2;  // byte symbols are U+0021..U+0143
      const auto it = token_to_id.find(text.substr(pos, len));
      PALIGN_ASSERT(it != token_to_id.end(), "pre-token \"", text, "\" holds a non-byte-level character");
      word.symbols.push_back(it->second);
      pos += len;
    }
  }
  report.unique_words = static_cast<int64_t>(words.size());
  sorted_words.clear();

  // 4. Pair counts (weighted by word counts) and where each pair occurs. The word lists may hold duplicates and
  // words that no longer contain the pair; both are filtered when a pair is merged.
  std::unordered_map<PairKey, int64_t> pair_counts;
  std::unordered_map<PairKey, std::vector<uint32_t>> pair_words;
  for (size_t word_idx = 0; word_idx < words.size(); ++word_idx) {
    const Word& word = words[word_idx];
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const PairKey key = pair_key(word.symbols[i], word.symbols[i + 1]);
      pair_counts[key] += word.count;
      auto& list = pair_words[key];
      if (list.empty() || list.back() != word_idx) list.push_back(static_cast<uint32_t>(word_idx));
    }
  }
  std::priority_queue<QueueEntry, std::vector<QueueEntry>, QueueOrder> queue;
  for (const auto& [key, count] : pair_counts) queue.push({count, key});

  // 5. Merge until the vocabulary is full or no pair is frequent enough. The queue is lazy: an entry whose count is
  // stale is dropped (a fresher entry exists when the count grew) or pushed back with the lower current count.
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_set<PairKey> banned;  // pairs whose concatenation is a special token's text
  std::vector<int32_t> merged_symbols;
  std::vector<PairKey> grown;
  const int64_t target_merges = options.vocab_size - static_cast<int64_t>(id_to_token.size());
  ProgressBar bar("bpe merges", target_merges, options.progress);
  while (static_cast<int64_t>(id_to_token.size()) < options.vocab_size && !queue.empty()) {
    const QueueEntry top = queue.top();
    queue.pop();
    const auto count_it = pair_counts.find(top.pair);
    const int64_t current = count_it == pair_counts.end() ? 0 : count_it->second;
    if (current != top.count) {
      if (current > 0 && current < top.count) queue.push({current, top.pair});
      continue;
    }
    if (top.count < options.min_frequency) break;
    if (banned.count(top.pair)) continue;
    const int32_t left = pair_left(top.pair);
    const int32_t right = pair_right(top.pair);
    std::string merged = id_to_token[left] + id_to_token[right];
    int32_t new_id;
    if (const auto existing = token_to_id.find(merged); existing != token_to_id.end()) {
      if (existing->second < n_special) {
        banned.insert(top.pair);
        continue;
      }
      new_id = existing->second;  // a second merge rule for a token that already exists (HF does the same)
    } else {
      new_id = static_cast<int32_t>(id_to_token.size());
      token_to_id.emplace(merged, new_id);
      id_to_token.push_back(std::move(merged));
    }
    merges.emplace_back(left, right);

    std::vector<uint32_t> affected = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    grown.clear();
    for (const uint32_t word_idx : affected) {
      Word& word = words[word_idx];
      std::vector<int32_t>& symbols = word.symbols;
      bool contains = false;
      for (size_t i = 0; i + 1 < symbols.size() && !contains; ++i)
        contains = symbols[i] == left && symbols[i + 1] == right;
      if (!contains) continue;
      merged_symbols.clear();
      for (size_t i = 0; i < symbols.size();) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          merged_symbols.push_back(new_id);
          i += 2;
        } else {
          merged_symbols.push_back(symbols[i]);
          i += 1;
        }
      }
      // Exact update: remove the word's old pairs, add its new ones (words are short pre-tokens).
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pair_counts[pair_key(symbols[i], symbols[i + 1])] -= word.count;
      for (size_t i = 0; i + 1 < merged_symbols.size(); ++i) {
        const PairKey key = pair_key(merged_symbols[i], merged_symbols[i + 1]);
        pair_counts[key] += word.count;
        if (merged_symbols[i] == new_id || merged_symbols[i + 1] == new_id) {
          auto& list = pair_words[key];
          if (list.empty() || list.back() != word_idx) list.push_back(word_idx);
          grown.push_back(key);
        }
      }
      symbols.swap(merged_symbols);
    }
    PALIGN_ASSERT(pair_counts[top.pair] == 0, "merged pair still counted ", pair_counts[top.pair], " times");
    pair_counts.erase(top.pair);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (const PairKey key : grown) {
      const int64_t count = pair_counts[key];
      if (count > 0 && !banned.count(key)) queue.push({count, key});
    }
    const int64_t done = static_cast<int64_t>(id_to_token.size()) - (n_special + 256);
    if (done < target_merges) bar.update(done, "pair count " + std::to_string(top.count));
  }
  bar.finish("vocab " + std::to_string(id_to_token.size()) + ", " + std::to_string(merges.size()) + " merges");

  std::string tokenizer_text;
  try {
    tokenizer_text = tokenizer_json(options, id_to_token, merges);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument,
                 "[training.train_bpe_tokenizer] cannot write the special tokens or "
                 "the pattern as JSON (",
                 e.what(), "); they must be valid UTF-8");
  }
  write_file(out_dir / "tokenizer.json", tokenizer_text);
  write_file(out_dir / "tokenizer_config.json", tokenizer_config_json(options));
  report.vocab_size = static_cast<int64_t>(id_to_token.size());
  report.merges = static_cast<int64_t>(merges.size());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace palign::training
