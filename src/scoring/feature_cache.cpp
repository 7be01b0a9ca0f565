// Pooled backbone features with an in-memory and on-disk cache (see feature_cache.h).
#include "palign/scoring/feature_cache.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdio>
#include <system_error>

#include "palign/base/error.h"
#include "palign/base/hash.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"

namespace palign::scoring {

using runtime::ForwardOptions;
using runtime::Model;
using runtime::SafetensorsFile;
using runtime::Tokenizer;

namespace {

// Features [n, 2·D] of one batch of texts (rows right-padded; each row's mean runs over its response tokens).
at::Tensor compute_batch(const Model& model, const Tokenizer& tokenizer, const std::vector<TextPair>& texts) {
  const int64_t window = model.config().max_position;
  std::vector<std::vector<int32_t>> rows;
  std::vector<int64_t> first;  // first response position of each row
  int64_t longest = 1;
  for (const auto& t : texts) {
    auto ids = tokenizer.encode(t.prompt + t.response, /*add_special=*/true);
    const auto n_prompt = static_cast<int64_t>(tokenizer.encode(t.prompt, /*add_special=*/true).size());
    if (static_cast<int64_t>(ids.size()) > window) ids.resize(static_cast<size_t>(window));
    if (ids.empty()) ids.push_back(tokenizer.eos_id().value_or(0));
    first.push_back(std::min<int64_t>(n_prompt, static_cast<int64_t>(ids.size()) - 1));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
    rows.push_back(std::move(ids));
  }
  const auto n_rows = static_cast<int64_t>(rows.size());
  at::Tensor ids = at::zeros({n_rows, longest}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  std::vector<int64_t> n_tokens;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (size_t t = 0; t < rows[r].size(); ++t) acc[r][static_cast<int64_t>(t)] = rows[r][t];
    n_tokens.push_back(static_cast<int64_t>(rows[r].size()));
  }
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::kNone;
  fo.return_hidden = true;
  const at::Tensor hidden =
      model.forward_uncached({.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo).hidden.to(at::kFloat);
  std::vector<at::Tensor> out;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t last = n_tokens[r] - 1;
    out.push_back(at::cat({hidden[r].slice(0, first[r], last + 1).mean(0), hidden[r][last]}));
  }
  return at::stack(out).contiguous();
}

}  // namespace

FeatureCache::Key FeatureCache::key_of(const TextPair& text) {
  const std::string len = std::to_string(text.prompt.size()) + ":";
  const uint64_t a = fnv1a64(text.response, fnv1a64(text.prompt, fnv1a64(len)));
  const uint64_t b = fnv1a64(text.response, fnv1a64(text.prompt, fnv1a64(len, 0x84222325cbf29ce4ull)));
  return {a, b};
}

FeatureCache::FeatureCache(const Model& model, const Tokenizer& tokenizer, std::filesystem::path dir, int64_t batch)
    : model_(model), tokenizer_(tokenizer), batch_(batch), dim_(2 * model.config().hidden_size) {
  PALIGN_CHECK(batch >= 1, ErrorCode::kInvalidArgument, "[scoring.FeatureCache] batch must be >= 1, got ", batch);
  fingerprint_ = runtime::model_fingerprint(model);
  if (dir.empty()) return;
  dir_ = dir / fingerprint_;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[scoring.FeatureCache] cannot create ", dir_.string(), ": ", ec.message(),
               "; pass a writable --feature-cache folder");
  std::vector<std::filesystem::path> shards;
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path());
  std::sort(shards.begin(), shards.end());
  for (const auto& path : shards) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    PALIGN_CHECK(file.contains("keys") && file.contains("features"), ErrorCode::kInvalidArgument,
                 "[scoring.FeatureCache] ", path.string(),
                 " is not a feature shard (needs 'keys' and 'features'); delete the folder to rebuild the cache");
    const at::Tensor keys = file.get("keys").to(at::kLong).contiguous();
    const at::Tensor feats = file.get_f32("features").contiguous();
    PALIGN_CHECK(keys.dim() == 2 && keys.size(1) == 2 && feats.dim() == 2 && feats.size(0) == keys.size(0) &&
                     feats.size(1) == dim_,
                 ErrorCode::kInvalidArgument, "[scoring.FeatureCache] ", path.string(),
                 " has shapes that do not fit this model's features (", dim_,
                 " wide); delete the folder to rebuild the cache");
    const auto* k = keys.data_ptr<int64_t>();
    const float* f = feats.data_ptr<float>();
    for (int64_t i = 0; i < keys.size(0); ++i) {
      features_[{static_cast<uint64_t>(k[2 * i]), static_cast<uint64_t>(k[2 * i + 1])}] =
          std::vector<float>(f + i * dim_, f + (i + 1) * dim_);
      ++stats_.loaded;
    }
    ++next_shard_;
  }
}

FeatureCache::~FeatureCache() = default;

void FeatureCache::compute(const std::vector<TextPair>& todo) {
  c10::InferenceMode guard;
  for (size_t start = 0; start < todo.size(); start += static_cast<size_t>(batch_)) {
    const size_t end = std::min(todo.size(), start + static_cast<size_t>(batch_));
    const std::vector<TextPair> chunk(todo.begin() + static_cast<std::ptrdiff_t>(start),
                                      todo.begin() + static_cast<std::ptrdiff_t>(end));
    const at::Tensor feats = compute_batch(model_, tokenizer_, chunk);
    at::Tensor keys = at::empty({static_cast<int64_t>(chunk.size()), 2}, at::kLong);
    auto* k = keys.data_ptr<int64_t>();
    const float* f = feats.data_ptr<float>();
    for (size_t i = 0; i < chunk.size(); ++i) {
      const Key key = key_of(chunk[i]);
      k[2 * i] = static_cast<int64_t>(key.first);
      k[2 * i + 1] = static_cast<int64_t>(key.second);
      features_[key] = std::vector<float>(f + static_cast<int64_t>(i) * dim_, f + static_cast<int64_t>(i + 1) * dim_);
    }
    stats_.computed += static_cast<int64_t>(chunk.size());
    if (!dir_.empty()) {
      char name[32];
      std::snprintf(name, sizeof(name), "shard-%08lld.safetensors", static_cast<long long>(next_shard_++));
      runtime::save_safetensors(dir_ / name, {{"keys", keys}, {"features", feats}});
    }
  }
}

at::Tensor FeatureCache::features(const std::vector<TextPair>& texts) {
  std::vector<TextPair> todo;
  std::unordered_map<Key, bool, KeyHash> queued;
  for (const auto& t : texts) {
    const Key key = key_of(t);
    if (features_.count(key) || queued.count(key)) continue;
    queued[key] = true;
    todo.push_back(t);
  }
  stats_.hits += static_cast<int64_t>(texts.size() - todo.size());
  compute(todo);
  at::Tensor out = at::empty({static_cast<int64_t>(texts.size()), dim_}, at::kFloat);
  float* o = out.data_ptr<float>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto& f = features_.at(key_of(texts[i]));
    std::copy(f.begin(), f.end(), o + static_cast<int64_t>(i) * dim_);
  }
  return out;
}

const std::vector<float>& FeatureCache::feature(const TextPair& text) {
  const Key key = key_of(text);
  auto it = features_.find(key);
  if (it != features_.end()) {
    ++stats_.hits;
    return it->second;
  }
  compute({text});
  return features_.at(key);
}

at::Tensor FeatureCache::compute_one_by_one(const Model& model, const Tokenizer& tokenizer,
                                            const std::vector<TextPair>& texts) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> rows;
  for (const auto& t : texts) rows.push_back(compute_batch(model, tokenizer, {t})[0]);
  return at::stack(rows);
}

}  // namespace palign::scoring
