// Decoders of tokenizer.json (HF tokenizers' decoders module): ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace, WordPiece, BPEDecoder and Sequence. Each rewrites the token list (decode_chain); the text is the
// concatenation of the result.
#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime::tok {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Maps each token's characters back to bytes (a token with a character outside the byte map keeps its own UTF-8
// bytes), then decodes all bytes at once with from_utf8_lossy.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t mark = bytes.size();
      size_t pos = 0;
      bool all = true;
      while (pos < token.size()) {
        const int b = unicode::code_point_to_byte(unicode::next_code_point(token, pos));
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all) {
        bytes.resize(mark);
        bytes.append(token);
      }
    }
    tokens.assign(1, unicode::from_utf8_lossy(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Turns runs of <0xXX> tokens into their bytes; a run that is not valid UTF-8 becomes one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      if (!unicode::find_invalid_utf8(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementChar);
      }
      run.clear();
    };
    for (std::string& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
        const int hi = hex_value(token[3]);
        const int lo = hex_value(token[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        run.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& token : tokens) all.append(token);
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<size_t> bounds;  // byte offset of each character, then token.size()
      size_t pos = 0;
      std::vector<char32_t> chars;
      while (pos < token.size()) {
        bounds.push_back(pos);
        chars.push_back(unicode::next_code_point(token, pos));
      }
      bounds.push_back(token.size());
      size_t start_cut = 0;
      for (size_t i = 0; i < std::min(start_, chars.size()) && chars[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < std::min(stop_, chars.size()) && chars[chars.size() - 1 - i] == content_; ++i) {
        stop_cut = chars.size() - i - 1;
      }
      token = stop_cut > start_cut ? token.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]) : "";
    }
  }

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

// Replacement characters become spaces, except in the first token when a prefix was prepended.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepended) : replacement_(replacement), prepended_(prepended) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      size_t pos = 0;
      while (pos < tokens[i].size()) {
        const char32_t cp = unicode::next_code_point(tokens[i], pos);
        if (cp == replacement_) {
          if (!(i == 0 && prepended_)) out.push_back(' ');
        } else {
          unicode::append_utf8(out, cp);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool prepended_;
};

void replace_in_place(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& token = tokens[i];
      if (i != 0) {
        if (token.compare(0, prefix_.size(), prefix_) == 0) {
          token.erase(0, prefix_.size());
        } else {
          token.insert(0, " ");
        }
      }
      if (cleanup_) {
        replace_in_place(token, " .", ".");
        replace_in_place(token, " ?", "?");
        replace_in_place(token, " !", "!");
        replace_in_place(token, " ,", ",");
        replace_in_place(token, " ' ", "'");
        replace_in_place(token, " n't", "n't");
        replace_in_place(token, " 'm", "'m");
        replace_in_place(token, " do not", " don't");
        replace_in_place(token, " 's", "'s");
        replace_in_place(token, " 've", "'ve");
        replace_in_place(token, " 're", "'re");
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// BPEDecoder: the end-of-word suffix becomes a space (none after the last token).
class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_in_place(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

char32_t single_char(const std::string& s, const char* field, std::string_view where) {
  size_t pos = 0;
  const char32_t cp = s.empty() ? 0 : unicode::next_code_point(s, pos);
  PALIGN_CHECK(!s.empty() && pos == s.size(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] decoder field \"",
               field, "\" in ", where, " must be exactly one character, got \"", s, "\"");
  return cp;
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& j, std::string_view where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type");
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    PALIGN_CHECK(j.contains("pattern"), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Replace decoder in ",
                 where, " has no \"pattern\"");
    return std::make_unique<ReplaceDecoder>(Pattern::from_json(j["pattern"], where), json_string(j, "content"));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(single_char(json_string(j, "content", " "), "content", where),
                                          static_cast<size_t>(std::max<int64_t>(0, json_int(j, "start", 0))),
                                          static_cast<size_t>(std::max<int64_t>(0, json_int(j, "stop", 0))));
  }
  if (type == "Metaspace") {
    bool prepended = json_bool(j, "add_prefix_space", true);
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      prepended = j["prepend_scheme"].get<std::string>() != "never";
    }
    return std::make_unique<MetaspaceDecoder>(
        single_char(json_string(j, "replacement", "\xE2\x96\x81"), "replacement", where), prepended);
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(json_string(j, "prefix", "##"), json_bool(j, "cleanup", true));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(json_string(j, "suffix", "</w>"));
  if (type == "Sequence") {
    const Json& list = j.contains("decoders") ? j["decoders"] : Json::array();
    PALIGN_CHECK(list.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Sequence decoder in ", where,
                 " needs a \"decoders\" array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const Json& item : list) {
      if (auto step = make_decoder(item, where)) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.Tokenizer] unsupported decoder type \"", type, "\" in ", where,
               "; palign implements ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, WordPiece, "
               "BPEDecoder, Sequence");
}

}  // namespace palign::runtime::tok
