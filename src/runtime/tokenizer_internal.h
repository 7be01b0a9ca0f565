// Private pieces of the tokenizer.json pipeline (see palign/runtime/tokenizer.h): a PCRE2 regex wrapper, the
// component interfaces (normalizer, pre-tokenizer, BPE model, post-processor, decoder), their JSON factories, and
// TokenizerImpl, which holds one loaded file. Each component mirrors the HF tokenizers 0.23 type of the same name.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace palign::runtime::tok {

using Json = nlohmann::json;

// Hash with heterogeneous lookup, so maps keyed by std::string can be probed with a std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A compiled PCRE2 pattern in UTF mode with Unicode properties (PCRE2_UCP), JIT-compiled when possible.
// Immutable after construction; find_all may be called from several threads at once.
// Token ids above this are refused when a tokenizer.json is read: no real vocabulary comes near it (the largest have
// about a million entries), and the id -> token table is sized by the largest id.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

class Regex {
 public:
  // Throws kInvalidArgument naming `where` when the pattern does not compile.
  Regex(std::string_view pattern, std::string_view where);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();
  // Non-overlapping matches [begin, end) in byte offsets, left to right. text must be valid UTF-8. Throws
  // kInvalidArgument naming the pattern and `where` when PCRE2 gives up (a pattern that backtracks catastrophically
  // runs into PCRE2's match limit).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  std::string pattern_, where_;  // for messages
};

// A literal or regex pattern as in HF's {"String": ...} / {"Regex": ...}.
class Pattern {
 public:
  static Pattern from_json(const Json& j, std::string_view where);
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // Replaces every match of the pattern in text with content.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

// A piece of text during pre-tokenization. at_start: the piece begins at offset 0 of the original input (used by
// Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits and rewrites pieces in place; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF's decode_chain: rewrites the list of token strings; the final text is their concatenation.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single-sequence encoding (called only when add_special is true).
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // The id this processor puts first, if any (a BOS guess when tokenizer_config.json gives none).
  virtual std::optional<int32_t> leading_id() const { return std::nullopt; }
};

// The BPE model of tokenizer.json ("type": "BPE").
class BpeModel {
 public:
  BpeModel(const Json& j, std::string_view where);
  // Appends the ids of one pre-token (non-empty, valid UTF-8) to out.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  const Vocab& vocab() const { return vocab_; }
  const std::vector<std::string>& vocab_r() const { return vocab_r_; }

 private:
  struct MergeValue {
    int32_t rank;
    int32_t new_id;
  };
  const MergeValue* find_merge(int32_t left, int32_t right) const;

  Vocab vocab_;
  std::vector<std::string> vocab_r_;  // id -> token; empty string for ids with no token
  std::unordered_map<uint64_t, MergeValue> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>" or -1
};

// Factories: j may be null (returns nullptr). Unknown types throw kUnsupported naming the type and `where`.
std::unique_ptr<Normalizer> make_normalizer(const Json& j, std::string_view where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, std::string_view where);
std::unique_ptr<Decoder> make_decoder(const Json& j, std::string_view where);
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const Vocab& vocab, std::string_view where);

// Shared JSON accessors: a field's value or a default when absent or null.
std::string json_string(const Json& j, const char* key, std::string_view fallback = {});
bool json_bool(const Json& j, const char* key, bool fallback);
int64_t json_int(const Json& j, const char* key, int64_t fallback);

}  // namespace palign::runtime::tok

namespace palign::runtime {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
  std::string decoded;  // the text decode() and id_to_token() give: content, normalized when `normalized`
};

// Finds added tokens in text, leftmost-longest, as HF's AddedVocabulary does with its Aho-Corasick automaton.
class AddedTokenMatcher {
 public:
  // patterns[i] is the text matched for tokens[i] (the normalized content for normalized tokens).
  void add(std::string pattern, const AddedToken* token);
  bool empty() const { return entries_.empty(); }
  // Splits text into segments; each is [begin, end) plus the added token it is, or nullptr for plain text.
  struct Segment {
    size_t begin;
    size_t end;
    const AddedToken* token;
  };
  std::vector<Segment> split(std::string_view text) const;

 private:
  struct Entry {
    std::string pattern;
    const AddedToken* token;
  };
  std::vector<Entry> entries_;
  std::array<std::vector<int>, 256> by_first_byte_;  // entry indices, longest pattern first
};

struct TokenizerImpl {
  std::string path;
  std::unique_ptr<tok::BpeModel> model;
  std::vector<AddedToken> added_tokens;
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added_tokens
  tok::Vocab added_by_content;
  AddedTokenMatcher raw_matcher;         // tokens with normalized = false, matched on the input text
  AddedTokenMatcher normalized_matcher;  // tokens with normalized = true, matched after normalization
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  int32_t vocab_size = 0;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  std::optional<int32_t> pad_id;
  std::string chat_template;

  // Ids and (when tokens is non-null) token strings of text, without the post-processor.
  void encode(std::string_view text, std::vector<int32_t>& ids, std::vector<std::string>* tokens) const;
  std::string token_string(int32_t id) const;
};

}  // namespace palign::runtime
