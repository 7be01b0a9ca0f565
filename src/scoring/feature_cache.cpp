// Pooled backbone features with an in-memory and on-disk cache (see feature_cache.h).
#include "palign/scoring/feature_cache.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
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

// Features [n, F] of one batch of texts (rows right-padded; each row's mean runs over its response tokens).
at::Tensor compute_batch(const Model& model, const Tokenizer& tokenizer, const std::vector<TextPair>& texts,
                         const FeatureSpec& spec) {
  const int64_t window = model.config().max_position;
  const int64_t n_layers = model.config().n_layer;
  const std::vector<int64_t> layers = spec.resolve(n_layers);
  std::vector<std::vector<int32_t>> rows;
  std::vector<int64_t> first;  // first response position of each row
  std::vector<int64_t> n_response;
  int64_t longest = 1;
  for (const auto& t : texts) {
    auto ids = tokenizer.encode(t.prompt + t.response, /*add_special=*/true);
    const auto n_prompt = static_cast<int64_t>(tokenizer.encode(t.prompt, /*add_special=*/true).size());
    if (static_cast<int64_t>(ids.size()) > window) ids.resize(static_cast<size_t>(window));
    if (ids.empty()) ids.push_back(tokenizer.eos_id().value_or(0));
    const auto n = static_cast<int64_t>(ids.size());
    first.push_back(std::min<int64_t>(n_prompt, n - 1));
    n_response.push_back(std::max<int64_t>(n - n_prompt, 0));
    longest = std::max<int64_t>(longest, n);
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
  // The pooled parts [n, pools·D] of each hidden state asked for, by index (0 embed, l decoder layer l, L final).
  std::vector<at::Tensor> pooled(static_cast<size_t>(n_layers + 1));
  auto pool = [&](int64_t index, const at::Tensor& hidden) {
    if (std::find(layers.begin(), layers.end(), index) == layers.end() || pooled[index].defined()) return;
    const at::Tensor h = hidden.to(at::kFloat);
    std::vector<at::Tensor> out;
    for (int64_t r = 0; r < n_rows; ++r) {
      const int64_t last = n_tokens[r] - 1;
      std::vector<at::Tensor> parts;
      if (spec.mean) parts.push_back(h[r].slice(0, first[r], last + 1).mean(0));
      if (spec.last) parts.push_back(h[r][last]);
      out.push_back(at::cat(parts));
    }
    pooled[index] = at::stack(out);
  };
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::kNone;
  fo.return_hidden = true;
  fo.trace = [&](int64_t layer, std::string_view name, const at::Tensor& value) {
    if (name == "embed") pool(0, value);
    if (name == "layer_out" && layer + 1 < n_layers) pool(layer + 1, value);
  };
  pool(n_layers, model.forward_uncached({.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo).hidden);
  std::vector<at::Tensor> parts;
  for (int64_t index : layers) parts.push_back(pooled[index]);
  if (spec.log_length) {
    at::Tensor len = at::empty({n_rows, 1}, at::kFloat);
    for (int64_t r = 0; r < n_rows; ++r) len[r][0] = static_cast<float>(std::log1p(static_cast<double>(n_response[r])));
    parts.push_back(len);
  }
  return at::cat(parts, 1).contiguous();
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

constexpr const char* kSpecForm = "; write it as layers=embed,mid,last;pool=mean,last;length (length optional)";

}  // namespace

FeatureCache::Key FeatureCache::key_of(const TextPair& text) {
  const std::string len = std::to_string(text.prompt.size()) + ":";
  const uint64_t a = fnv1a64(text.response, fnv1a64(text.prompt, fnv1a64(len)));
  const uint64_t b = fnv1a64(text.response, fnv1a64(text.prompt, fnv1a64(len, 0x84222325cbf29ce4ull)));
  return {a, b};
}

FeatureSpec FeatureSpec::parse(const std::string& text) {
  FeatureSpec spec;
  bool has_layers = false, has_pool = false;
  for (const std::string& part : split(text, ';')) {
    if (part == "length" || part == "log_length") {
      spec.log_length = true;
    } else if (part.rfind("layers=", 0) == 0) {
      spec.layers = split(part.substr(7), ',');
      for (const auto& l : spec.layers) {
        const bool named = l == "embed" || l == "mid" || l == "last";
        const bool index =
            !l.empty() && l.size() <= 4 && std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; });
        PALIGN_CHECK(named || index, ErrorCode::kInvalidArgument, "[scoring.FeatureSpec] layer '", l,
                     "' is not embed, mid, last or a layer index", kSpecForm);
      }
      has_layers = true;
    } else if (part.rfind("pool=", 0) == 0) {
      spec.mean = spec.last = false;
      for (const auto& p : split(part.substr(5), ',')) {
        PALIGN_CHECK(p == "mean" || p == "last", ErrorCode::kInvalidArgument, "[scoring.FeatureSpec] pool '", p,
                     "' is not mean or last", kSpecForm);
        (p == "mean" ? spec.mean : spec.last) = true;
      }
      has_pool = true;
    } else {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.FeatureSpec] '", part, "' in feature spec '", text,
                   "' is not layers=, pool= or length", kSpecForm);
    }
  }
  PALIGN_CHECK(has_layers && has_pool, ErrorCode::kInvalidArgument, "[scoring.FeatureSpec] feature spec '", text,
               "' needs both layers= and pool=", kSpecForm);
  return spec;
}

// Chosen by the bench's held-out head accuracy (full mode, 4096 pairs per dimension, mean over the 10 graders):
// embed mean + length 0.679, embed and mid means + length 0.675, embed mean and last + length 0.655, embed, mid and
// last (mean and last) + length 0.644, the final states' mean and last 0.638 (README, "Features").
FeatureSpec FeatureSpec::recommended() { return parse("layers=embed;pool=mean;length"); }

FeatureSpec FeatureSpec::classifier() { return parse("layers=last;pool=last"); }

std::string FeatureSpec::text() const {
  std::vector<std::string> pools;
  if (mean) pools.push_back("mean");
  if (last) pools.push_back("last");
  return "layers=" + join(layers) + ";pool=" + join(pools) + (log_length ? ";length" : "");
}

std::vector<int64_t> FeatureSpec::resolve(int64_t n_layers) const {
  std::vector<int64_t> out;
  for (const auto& l : layers) {
    const int64_t index = l == "embed" ? 0 : l == "mid" ? n_layers / 2 : l == "last" ? n_layers : std::stoll(l);
    PALIGN_CHECK(index >= 0 && index <= n_layers, ErrorCode::kInvalidArgument, "[scoring.FeatureSpec] layer ", l,
                 " is outside this model's hidden states [0, ", n_layers, "]; use embed, mid, last or 0..", n_layers);
    out.push_back(index);
  }
  return out;
}

int64_t FeatureSpec::dim(int64_t hidden_size) const {
  return static_cast<int64_t>(layers.size()) * ((mean ? 1 : 0) + (last ? 1 : 0)) * hidden_size + (log_length ? 1 : 0);
}

int64_t FeatureSpec::offset(const std::string& layer, bool last_token, int64_t hidden_size) const {
  const auto it = std::find(layers.begin(), layers.end(), layer);
  PALIGN_CHECK(it != layers.end() && (last_token ? last : mean), ErrorCode::kInvalidArgument,
               "[scoring.FeatureSpec] features '", text(), "' have no ", last_token ? "last-token" : "mean",
               " part of layer ", layer);
  const int64_t pools = (mean ? 1 : 0) + (last ? 1 : 0);
  return (it - layers.begin()) * pools * hidden_size + (last_token && mean ? hidden_size : 0);
}

FeatureCache::FeatureCache(const Model& model, const Tokenizer& tokenizer, std::filesystem::path dir, int64_t batch,
                           FeatureSpec spec)
    : model_(model), tokenizer_(tokenizer), batch_(batch), spec_(std::move(spec)) {
  PALIGN_CHECK(batch >= 1, ErrorCode::kInvalidArgument, "[scoring.FeatureCache] batch must be >= 1, got ", batch);
  PALIGN_CHECK(spec_.mean || spec_.last, ErrorCode::kInvalidArgument,
               "[scoring.FeatureCache] the feature spec pools nothing; give pool=mean, pool=last or both");
  (void)spec_.resolve(model.config().n_layer);  // a clear error now for a layer the model lacks
  dim_ = spec_.dim(model.config().hidden_size);
  fingerprint_ = runtime::model_fingerprint(model);
  if (dir.empty()) return;
  dir_ = dir / fingerprint_;
  if (spec_ != FeatureSpec{}) {
    char hash[24];
    std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64(spec_.text())));
    dir_ = dir / (fingerprint_ + "-" + hash);
  }
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
    const at::Tensor feats = compute_batch(model_, tokenizer_, chunk, spec_);
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
                                            const std::vector<TextPair>& texts, const FeatureSpec& spec) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> rows;
  for (const auto& t : texts) rows.push_back(compute_batch(model, tokenizer, {t}, spec)[0]);
  return at::stack(rows);
}

}  // namespace palign::scoring
