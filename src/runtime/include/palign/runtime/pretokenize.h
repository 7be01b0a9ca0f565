// Byte-level pre-tokenization outside the full tokenizer (for the BPE trainer): a regex split (HF's Split with
// behavior Isolated, invert false) followed by GPT-2's byte -> unicode map, run by the same code as a loaded
// tokenizer.json whose pre_tokenizer is Sequence[Split(Regex), ByteLevel(add_prefix_space false, use_regex false)].
// Not a tokenizer: no added tokens, normalizer or model (see tokenizer.h).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace palign::runtime {

namespace tok {
class PreTokenizer;
}

// Immutable after construction; split may be called from several threads at once.
class ByteLevelSplitter {
 public:
  // Throws palign::Error(kInvalidArgument) when the pattern does not compile.
  explicit ByteLevelSplitter(std::string_view pattern);
  ByteLevelSplitter(ByteLevelSplitter&&) noexcept;
  ByteLevelSplitter& operator=(ByteLevelSplitter&&) noexcept;
  ~ByteLevelSplitter();

  // The byte-level pre-tokens of text, left to right, none empty; their concatenation is text with every byte
  // mapped. Throws kInvalidArgument when text is not valid UTF-8.
  std::vector<std::string> split(std::string_view text) const;

 private:
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer_;
};

// GPT-2's byte-level alphabet: the UTF-8 string of the character that stands for each byte value.
const std::array<std::string, 256>& byte_level_alphabet();

// One-shot form of ByteLevelSplitter(regex).split(text); compiles the regex on every call.
std::vector<std::string> byte_level_pieces(std::string_view text, std::string_view regex);

}  // namespace palign::runtime
