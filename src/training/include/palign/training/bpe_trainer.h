// Byte-level BPE tokenizer training (as HF tokenizers' BpeTrainer with a ByteLevel initial alphabet): regex
// pre-tokenization, GPT-2 byte-level alphabet, greedy most-frequent-pair merges with incremental pair counts. Writes a
// Hugging Face tokenizer.json + tokenizer_config.json that runtime::Tokenizer (and HF tokenizers) load.
// Not an encoder (runtime/tokenizer.h) and not SentencePiece/Unigram training.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "palign/training/corpus.h"

namespace palign::training {

// Llama-3's pre-tokenizer split pattern.
inline constexpr const char* kLlama3SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct BpeTrainOptions {
  // Total vocabulary: the special tokens, the 256 byte symbols and the merged tokens.
  int64_t vocab_size = 4096;
  // Ids 0, 1, ... in this order. The first is end-of-text and BOS; the second, when present, is padding.
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|pad|>"};
  // A pair seen fewer times than this (weighted by word counts) is not merged.
  int64_t min_frequency = 2;
  // The Split pre-tokenizer's regex (PCRE2 syntax, as in tokenizer.json).
  std::string pattern = kLlama3SplitPattern;
  bool progress = true;
  // Append new fields here.

  // Empty when valid, else a one-line message naming the field and the allowed values.
  std::string validate() const;
};

struct BpeTrainReport {
  int64_t vocab_size = 0;    // tokens in the written vocabulary, special tokens included
  int64_t merges = 0;        // merge rules written
  int64_t words = 0;         // pre-tokens in the corpus
  int64_t unique_words = 0;  // distinct pre-tokens
  double seconds = 0;        // wall time of training and writing
};

// Trains on texts (valid UTF-8) and writes out_dir/tokenizer.json and out_dir/tokenizer_config.json, creating
// out_dir. Occurrences of the special tokens in the texts are cut out before pre-tokenization (they encode as one
// id). Ties between equally frequent pairs go to the pair with the smaller (left id, right id), as in HF.
// Deterministic: the same texts and options give byte-identical files.
// Throws palign::Error: kInvalidArgument for invalid options (e.g. a vocab_size below 256 + the special tokens, the
// message says the minimum), an empty corpus or invalid UTF-8; kIo when out_dir cannot be created or written.
BpeTrainReport train_bpe_tokenizer(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                                   const std::filesystem::path& out_dir);

}  // namespace palign::training
