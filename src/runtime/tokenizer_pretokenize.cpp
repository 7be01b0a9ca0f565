// Pre-tokenizers of tokenizer.json (HF tokenizers' pre_tokenizers module): ByteLevel (GPT-2 regex and byte map),
// Split (regex or string; Removed / Isolated / MergedWithPrevious / MergedWithNext / Contiguous; invert), Metaspace,
// Whitespace, WhitespaceSplit, Digits, Punctuation and Sequence. Splitting follows NormalizedString::split.
#include <functional>

#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime::tok {

namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const std::string& name, std::string_view where) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.Tokenizer] unknown split behavior \"", name, "\" in ", where,
               "; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
}

struct Span {
  size_t begin;
  size_t end;
  bool is_match;
};

// The whole text as alternating non-match / match spans (HF's Pattern::find_matches).
std::vector<Span> spans_from_matches(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches) {
  std::vector<Span> spans;
  if (text.empty()) return {{0, 0, false}};
  size_t prev = 0;
  for (const auto& [begin, end] : matches) {
    if (prev != begin) spans.push_back({prev, begin, false});
    spans.push_back({begin, end, true});
    prev = end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  return spans;
}

// Each character satisfying pred is its own match.
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view text, const std::function<bool(char32_t)>& pred) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t begin = pos;
    if (pred(unicode::next_code_point(text, pos))) out.emplace_back(begin, pos);
  }
  return out;
}

// Kept [begin, end) ranges after applying a split behavior (NormalizedString::split).
std::vector<std::pair<size_t, size_t>> apply_behavior(const std::vector<Span>& spans, Behavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  switch (behavior) {
    case Behavior::kIsolated:
      for (const Span& s : spans) out.emplace_back(s.begin, s.end);
      break;
    case Behavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) out.emplace_back(s.begin, s.end);
      }
      break;
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().first = it->begin;
        } else {
          out.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  return out;
}

// Replaces every piece by its sub-pieces; empty sub-pieces are dropped, as PreTokenizedString::split does.
void split_pieces(std::vector<Piece>& pieces,
                  const std::function<std::vector<std::pair<size_t, size_t>>(const Piece&)>& split) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (const Piece& piece : pieces) {
    for (const auto& [begin, end] : split(piece)) {
      if (end > begin) out.push_back({piece.text.substr(begin, end - begin), piece.at_start && begin == 0});
    }
  }
  pieces = std::move(out);
}

std::vector<std::pair<size_t, size_t>> split_text(std::string_view text,
                                                  const std::vector<std::pair<size_t, size_t>>& matches,
                                                  Behavior behavior, bool invert) {
  std::vector<Span> spans = spans_from_matches(text, matches);
  if (invert) {
    for (Span& s : spans) s.is_match = !s.is_match;
  }
  return apply_behavior(spans, behavior);
}

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Optionally prepends a space, splits with GPT-2's regex, then maps every byte to its bytes_to_unicode character.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    static const Regex gpt2(kGpt2Pattern, "the ByteLevel pre-tokenizer");
    std::vector<Piece> split;
    split.reserve(pieces.size());
    for (Piece& piece : pieces) {
      if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) piece.text.insert(0, " ");
      if (!use_regex_) {
        if (!piece.text.empty()) split.push_back(std::move(piece));
        continue;
      }
      for (const auto& [begin, end] : split_text(piece.text, gpt2.find_all(piece.text), Behavior::kIsolated, false)) {
        if (end > begin) split.push_back({piece.text.substr(begin, end - begin), piece.at_start && begin == 0});
      }
    }
    const auto& table = unicode::byte_to_code_point();
    for (Piece& piece : split) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      for (char c : piece.text) unicode::append_utf8(mapped, table[static_cast<unsigned char>(c)]);
      piece.text = std::move(mapped);
    }
    pieces = std::move(split);
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, [&](const Piece& piece) {
      return split_text(piece.text, pattern_.find_all(piece.text), behavior_, invert_);
    });
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// Splits on characters that satisfy a predicate (WhitespaceSplit, Digits, Punctuation).
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(char32_t)> pred, Behavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, [&](const Piece& piece) {
      return split_text(piece.text, char_matches(piece.text, pred_), behavior_, false);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  Behavior behavior_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// Replaces spaces by the replacement character, prepends one per the scheme, and splits before each replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    const Pattern space = Pattern::from_json(Json{{"String", " "}}, "Metaspace");
    std::vector<Piece> out;
    for (Piece& piece : pieces) {
      std::string text = space.replace_all(piece.text, replacement_);
      const bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_start))) {
        text.insert(0, replacement_);
      }
      if (!split_) {
        if (!text.empty()) out.push_back({std::move(text), piece.at_start});
        continue;
      }
      std::vector<std::pair<size_t, size_t>> matches;
      for (size_t pos = text.find(replacement_); pos != std::string::npos; pos = text.find(replacement_, pos)) {
        matches.emplace_back(pos, pos + replacement_.size());
        pos += replacement_.size();
      }
      for (const auto& [begin, end] : split_text(text, matches, Behavior::kMergedWithNext, false)) {
        if (end > begin) out.push_back({text.substr(begin, end - begin), piece.at_start && begin == 0});
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, std::string_view where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type");
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(json_bool(j, "add_prefix_space", true),
                                                   json_bool(j, "use_regex", true));
  }
  if (type == "Split") {
    PALIGN_CHECK(j.contains("pattern"), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Split pre_tokenizer in ",
                 where, " has no \"pattern\"");
    return std::make_unique<SplitPreTokenizer>(Pattern::from_json(j["pattern"], where),
                                               parse_behavior(json_string(j, "behavior", "Isolated"), where),
                                               json_bool(j, "invert", false));
  }
  if (type == "Metaspace") {
    std::string replacement = json_string(j, "replacement", "\xE2\x96\x81");
    PrependScheme scheme = json_bool(j, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      const std::string name = j["prepend_scheme"].get<std::string>();
      if (name == "always") {
        scheme = PrependScheme::kAlways;
      } else if (name == "first") {
        scheme = PrependScheme::kFirst;
      } else if (name == "never") {
        scheme = PrependScheme::kNever;
      } else {
        PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Metaspace prepend_scheme \"", name, "\" in ",
                     where, " must be always, first or never");
      }
    }
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, json_bool(j, "split", true));
  }
  if (type == "Whitespace") {
    return std::make_unique<SplitPreTokenizer>(Pattern::from_json(Json{{"Regex", R"(\w+|[^\w\s]+)"}}, where),
                                               Behavior::kRemoved, /*invert=*/true);
  }
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharSplitPreTokenizer>(unicode::is_whitespace, Behavior::kRemoved);
  }
  if (type == "Digits") {
    return std::make_unique<CharSplitPreTokenizer>(
        unicode::is_numeric, json_bool(j, "individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous);
  }
  if (type == "Punctuation") {
    return std::make_unique<CharSplitPreTokenizer>(unicode::is_punctuation,
                                                   parse_behavior(json_string(j, "behavior", "Isolated"), where));
  }
  if (type == "Sequence") {
    const Json& list = j.contains("pretokenizers") ? j["pretokenizers"] : Json::array();
    PALIGN_CHECK(list.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Sequence pre_tokenizer in ",
                 where, " needs a \"pretokenizers\" array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const Json& item : list) {
      if (auto step = make_pre_tokenizer(item, where)) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.Tokenizer] unsupported pre_tokenizer type \"", type, "\" in ",
               where, "; palign implements ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit, Digits, "
               "Punctuation, Sequence");
}

}  // namespace palign::runtime::tok
