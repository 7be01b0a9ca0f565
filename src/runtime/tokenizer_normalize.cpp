// Normalizers of tokenizer.json (HF tokenizers' normalizers module): NFC, NFD, NFKC, NFKD, Prepend, Replace,
// Lowercase, Strip, StripAccents and Sequence. Each works on one text segment between added tokens.
#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime::tok {

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  std::string normalize(std::string_view text) const override { return unicode::normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

// Prepends a string to non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  std::string normalize(std::string_view text) const override {
    if (text.empty()) return {};
    std::string out = prepend_;
    out.append(text);
    return out;
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override { return pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return unicode::lowercase(text); }
};

// Removes leading and/or trailing Unicode whitespace.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      while (begin < end) {
        size_t pos = begin;
        if (!unicode::is_whitespace(unicode::next_code_point(text, pos))) break;
        begin = pos;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!unicode::is_whitespace(unicode::next_code_point(text, pos))) break;
        end = start;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_;
  bool right_;
};

// Removes combining marks (categories Mn, Mc, Me); meant to follow NFD / NFKD.
class StripAccentsNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t begin = pos;
      if (!unicode::is_combining_mark(unicode::next_code_point(text, pos))) out.append(text.substr(begin, pos - begin));
    }
    return out;
  }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string_view text) const override {
    std::string current(text);
    for (const auto& step : steps_) current = step->normalize(current);
    return current;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, std::string_view where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_string(j, "type");
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNfkd);
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json_string(j, "prepend"));
  if (type == "Replace") {
    PALIGN_CHECK(j.contains("pattern"), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Replace normalizer in ",
                 where, " has no \"pattern\"");
    return std::make_unique<ReplaceNormalizer>(Pattern::from_json(j["pattern"], where), json_string(j, "content"));
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(json_bool(j, "strip_left", true), json_bool(j, "strip_right", true));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    const Json& list = j.contains("normalizers") ? j["normalizers"] : Json::array();
    PALIGN_CHECK(list.is_array(), ErrorCode::kInvalidArgument, "[runtime.Tokenizer] Sequence normalizer in ", where,
                 " needs a \"normalizers\" array");
    for (const Json& item : list) {
      if (auto step = make_normalizer(item, where)) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.Tokenizer] unsupported normalizer type \"", type, "\" in ", where,
               "; palign implements NFC, NFD, NFKC, NFKD, Prepend, Replace, Lowercase, Strip, StripAccents, Sequence");
}

}  // namespace palign::runtime::tok
