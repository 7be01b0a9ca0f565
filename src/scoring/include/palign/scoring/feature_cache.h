// Pooled backbone features of (prompt, response) texts, computed once in batches and cached in memory and,
// optionally, on disk — so that training and retraining reward heads never recomputes the frozen backbone.
//
// A feature vector is [mean ⊕ last] (2·D): the backbone's final hidden states averaged over the response's tokens,
// then the hidden state of the last token (an empty response averages over the prompt's last token). Texts are
// tokenized as prompt + response with the tokenizer's special tokens and cut to the model's context.
//
// On disk the cache is a folder with one safetensors shard per computed batch ("keys" I64 [n, 2], "features" F32
// [n, 2·D]) under a subfolder named by the backbone's fingerprint (runtime::model_fingerprint), so a
// cache never serves features of a different model. Keys are two independent 64-bit hashes of the text pair.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace palign::runtime {
class Model;
class Tokenizer;
}  // namespace palign::scoring

namespace palign::scoring {


struct TextPair {
  std::string prompt, response;
};

struct FeatureCacheStats {
  int64_t hits = 0;      // features served from memory or disk
  int64_t computed = 0;  // features the backbone computed
  int64_t loaded = 0;    // features read from disk when the cache was opened
};

class FeatureCache {
 public:
  // dir empty: memory only. Otherwise features are read from and appended to dir/<fingerprint>/. Throws kIo when
  // the folder cannot be created, kInvalidArgument for a damaged shard (naming it; delete the folder to rebuild).
  FeatureCache(const runtime::Model& model, const runtime::Tokenizer& tokenizer, std::filesystem::path dir = {},
               int64_t batch = 32);
  ~FeatureCache();

  int64_t dim() const { return dim_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const FeatureCacheStats& stats() const { return stats_; }

  // Features [N, 2·D] of the texts, in order; computes the missing ones in batches (and appends them to disk).
  at::Tensor features(const std::vector<TextPair>& texts);
  // One text's features (a view into the cache, valid until the next call that computes).
  const std::vector<float>& feature(const TextPair& text);

  // The naive twin: features computed one text at a time, nothing cached.
  static at::Tensor compute_one_by_one(const runtime::Model& model, const runtime::Tokenizer& tokenizer,
                                       const std::vector<TextPair>& texts);

 private:
  using Key = std::pair<uint64_t, uint64_t>;
  struct KeyHash {
    size_t operator()(const Key& k) const { return static_cast<size_t>(k.first ^ (k.second * 0x9e3779b97f4a7c15ull)); }
  };
  static Key key_of(const TextPair& text);
  void compute(const std::vector<TextPair>& todo);

  const runtime::Model& model_;
  const runtime::Tokenizer& tokenizer_;
  std::filesystem::path dir_;  // dir/<fingerprint>, or empty
  int64_t batch_;
  int64_t dim_;
  std::string fingerprint_;
  int64_t next_shard_ = 0;
  std::unordered_map<Key, std::vector<float>, KeyHash> features_;
  FeatureCacheStats stats_;
};

}  // namespace palign::scoring
