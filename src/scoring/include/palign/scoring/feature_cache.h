// Pooled backbone features of (prompt, response) texts, computed once in batches and cached in memory and,
// optionally, on disk — so that training and retraining reward heads never recomputes the frozen backbone.
//
// What a feature vector holds is a FeatureSpec: for each chosen hidden state (the embedding output, a decoder layer's
// output, the final normed states) the mean over the response's tokens and/or the last token's state, then
// optionally log(1 + the response's token count). The default, [mean ⊕ last] of the final states (2·D), is what
// reward directories written before specs existed hold. An empty response pools the prompt's last token. Texts are
// tokenized as prompt + response with the tokenizer's special tokens and cut to the model's context.
//
// On disk the cache is a folder with one safetensors shard per computed batch ("keys" I64 [n, 2], "features" F32
// [n, F]) under a subfolder named by the backbone's fingerprint (runtime::model_fingerprint) — and, for a spec other
// than the default, a hash of the spec — so a cache never serves features of a different model or spec. Keys are two
// independent 64-bit hashes of the text pair.
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
}  // namespace palign::runtime

namespace palign::scoring {


struct TextPair {
  std::string prompt, response;
};

// Which backbone states a feature vector pools, written as text "layers=embed,mid,last;pool=mean,last;length":
//   layers  hidden states, in order: "embed" (the embedding output, index 0), "mid" (index L/2), "last" (index L, the
//           final normed states) or an index l in [0, L] (l in [1, L): decoder layer l's output residual), L the
//           model's num_hidden_layers;
//   pool    "mean" (over the response's tokens) and/or "last" (the last token), in that order for each layer;
//   length  present: one more feature, log(1 + the response's token count).
struct FeatureSpec {
  std::vector<std::string> layers = {"last"};
  bool mean = true, last = true;
  bool log_length = false;

  // Throws kInvalidArgument naming the bad part and the form expected.
  static FeatureSpec parse(const std::string& text);
  // The spec the bench's held-out head accuracies chose, "layers=embed;pool=mean;length" (README, "Features"): what
  // the bench and `palign train reward` use unless told otherwise.
  static FeatureSpec recommended();
  // The last token of the final states alone: what a *ForSequenceClassification head sees (bt, multi).
  static FeatureSpec classifier();
  std::string text() const;  // canonical, parse(text()) == *this
  bool operator==(const FeatureSpec&) const = default;
  // Hidden-state indices for a model of n_layers decoder layers; throws kInvalidArgument for one out of [0, n_layers].
  std::vector<int64_t> resolve(int64_t n_layers) const;
  int64_t dim(int64_t hidden_size) const;
  // Where one layer's pooled part starts in a feature vector (the layer as written in layers, e.g. "last"), and
  // the pool's offset within it; throws kInvalidArgument when the spec lacks that layer or pool.
  int64_t offset(const std::string& layer, bool last_token, int64_t hidden_size) const;
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
               int64_t batch = 32, FeatureSpec spec = {});
  ~FeatureCache();

  int64_t dim() const { return dim_; }
  const FeatureSpec& spec() const { return spec_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const FeatureCacheStats& stats() const { return stats_; }

  // Features [N, F] of the texts, in order; computes the missing ones in batches (and appends them to disk).
  at::Tensor features(const std::vector<TextPair>& texts);
  // One text's features (a view into the cache, valid until the next call that computes).
  const std::vector<float>& feature(const TextPair& text);

  // The naive twin: features computed one text at a time, nothing cached.
  static at::Tensor compute_one_by_one(const runtime::Model& model, const runtime::Tokenizer& tokenizer,
                                       const std::vector<TextPair>& texts, const FeatureSpec& spec = {});

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
  FeatureSpec spec_;
  int64_t dim_;
  std::string fingerprint_;
  int64_t next_shard_ = 0;
  std::unordered_map<Key, std::vector<float>, KeyHash> features_;
  FeatureCacheStats stats_;
};

}  // namespace palign::scoring
