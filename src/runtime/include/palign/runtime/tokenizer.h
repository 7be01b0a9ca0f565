// Hugging Face tokenizer.json, read and run in C++: BPE models (byte-level as in GPT-2 / Llama-3 / Qwen2, and
// SentencePiece-style with byte fallback as in Llama-2 / Mistral), their normalizers, pre-tokenizers,
// post-processors and decoders. Must give exactly the ids, tokens and decoded text that HF tokenizers 0.23 gives.
// Not a trainer (that lives in training) and not a chat template engine (chat_template.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace palign::runtime {

struct TokenizerImpl;

// Immutable after load; thread-compatible (const methods may be called concurrently).
class Tokenizer {
 public:
  // Loads a tokenizer.json file. Throws palign::Error (kNotFound for a missing file, kInvalidArgument for malformed
  // JSON or an inconsistent vocabulary, kUnsupported for a component type palign does not implement, naming it).
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (bos/eos/pad tokens, chat_template).
  static Tokenizer from_dir(const std::filesystem::path& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of text. add_special = true applies the post-processor's template (e.g. a BOS token), as
  // HF's encode(text, add_special_tokens=True). Added/special tokens in the text are matched before splitting.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  // The token strings of encode(text, false) (HF's Encoding.tokens).
  std::vector<std::string> encode_tokens(std::string_view text) const;
  // Text of ids through the file's decoders (HF's decode(ids, skip_special_tokens)). Ids out of range are an error
  // (kInvalidArgument). Invalid UTF-8 is replaced by U+FFFD as Rust's from_utf8_lossy does.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Largest token id + 1 over the model vocabulary and the added tokens.
  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string for id, or std::nullopt when out of range.
  std::optional<std::string> id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  // From tokenizer_config.json when present, else guessed from the post-processor / added tokens; may be empty.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  // tokenizer_config.json's "chat_template" (the Jinja source), empty when absent.
  const std::string& chat_template_source() const;

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerImpl> impl);
  std::unique_ptr<TokenizerImpl> impl_;
};

}  // namespace palign::runtime
