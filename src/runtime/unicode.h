// Private UTF-8 and Unicode helpers for the tokenizer: decoding code points, character classes with Rust's
// definitions (char::is_whitespace, is_alphanumeric, is_numeric), utf8proc normal forms, GPT-2's byte <-> unicode
// map, and Rust's String::from_utf8_lossy. Not a public header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace palign::runtime::unicode {

// Length in bytes of the UTF-8 sequence that starts with lead byte b (1 for a stray byte).
inline int utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at s[pos] (s must be valid UTF-8) and advances pos past it.
char32_t next_code_point(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
std::string to_utf8(char32_t cp);

// Byte offset of the first invalid UTF-8 sequence in s, or std::nullopt when s is valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string from_utf8_lossy(std::string_view bytes);

// Rust char predicates (Unicode White_Space; Alphabetic or Nd/Nl/No; Nd/Nl/No).
bool is_whitespace(char32_t cp);
bool is_alphanumeric(char32_t cp);
bool is_numeric(char32_t cp);
// A "word character" as the \w class of Rust's regex crate: alphabetic (approximated by L* and Nl), marks (M*),
// Nd, Pc, and the joiners U+200C / U+200D. HF's single_word added tokens only match between non-word characters.
bool is_word_char(char32_t cp);
// HF tokenizers' is_punc: ASCII punctuation or a Unicode P* category.
bool is_punctuation(char32_t cp);
// A combining mark (general category Mn, Mc or Me), as removed by the StripAccents normalizer.
bool is_combining_mark(char32_t cp);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
std::string normalize(std::string_view s, NormalForm form);
// Rust's char::to_lowercase applied per character (no final-sigma rule, as in HF's NormalizedString::lowercase).
std::string lowercase(std::string_view s);

// GPT-2's bytes_to_unicode(): the code point that stands for each byte, and the inverse (-1 when not a byte char).
const std::array<char32_t, 256>& byte_to_code_point();
int code_point_to_byte(char32_t cp);

}  // namespace palign::runtime::unicode
