// ByteLevelSplitter (palign/runtime/pretokenize.h): builds the Split + ByteLevel pre-tokenizer pair from the same
// JSON factory that loads tokenizer.json, so that training and encoding split text identically.
#include "palign/runtime/pretokenize.h"

#include "palign/base/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime {

ByteLevelSplitter::ByteLevelSplitter(std::string_view pattern) {
  const tok::Json config = {
      {"type", "Sequence"},
      {"pretokenizers",
       tok::Json::array({{{"type", "Split"},
                          {"pattern", {{"Regex", std::string(pattern)}}},
                          {"behavior", "Isolated"},
                          {"invert", false}},
                         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  pre_tokenizer_ = tok::make_pre_tokenizer(config, "the byte-level splitter");
}

ByteLevelSplitter::ByteLevelSplitter(ByteLevelSplitter&&) noexcept = default;
ByteLevelSplitter& ByteLevelSplitter::operator=(ByteLevelSplitter&&) noexcept = default;
ByteLevelSplitter::~ByteLevelSplitter() = default;

std::vector<std::string> ByteLevelSplitter::split(std::string_view text) const {
  if (auto bad = unicode::find_invalid_utf8(text)) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ByteLevelSplitter.split] text is not valid UTF-8 at byte ",
                 *bad, "; decode it as UTF-8 (or replace invalid bytes) first");
  }
  std::vector<tok::Piece> pieces;
  if (text.empty()) return {};
  pieces.push_back({std::string(text), /*at_start=*/true});
  pre_tokenizer_->pre_tokenize(pieces);
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (tok::Piece& piece : pieces) {
    if (!piece.text.empty()) out.push_back(std::move(piece.text));
  }
  return out;
}

const std::array<std::string, 256>& byte_level_alphabet() {
  static const std::array<std::string, 256> alphabet = [] {
    std::array<std::string, 256> a;
    const auto& table = unicode::byte_to_code_point();
    for (int b = 0; b < 256; ++b) a[b] = unicode::to_utf8(table[b]);
    return a;
  }();
  return alphabet;
}

std::vector<std::string> byte_level_pieces(std::string_view text, std::string_view regex) {
  return ByteLevelSplitter(regex).split(text);
}

}  // namespace palign::runtime
