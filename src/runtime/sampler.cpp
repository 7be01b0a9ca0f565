// Logit processing and sampling (see sampler.h). Compare transformers' RepetitionPenaltyLogitsProcessor,
// TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper and MinPLogitsWarper.
#include "palign/runtime/sampler.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "palign/base/error.h"

namespace palign::runtime {

std::string SamplingOptions::validate() const {
  if (greedy) return {};
  if (!(temperature > 0.0f) || !std::isfinite(temperature))
    return "temperature must be > 0 (greedy decoding takes the argmax)";
  if (top_k < 0) return "top-k must be >= 0 (0 turns it off)";
  if (!(top_p > 0.0f && top_p <= 1.0f)) return "top-p must be in (0, 1]";
  if (!(min_p >= 0.0f && min_p < 1.0f)) return "min-p must be in [0, 1)";
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) return "repetition-penalty must be > 0";
  return {};
}

at::Tensor next_token_probs(const at::Tensor& logits_in, const SamplingOptions& o, std::span<const int64_t> history) {
  const std::string err = o.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[runtime.sampling] ", err);
  PALIGN_CHECK(logits_in.dim() == 1 && logits_in.numel() > 0, ErrorCode::kInvalidArgument,
               "[runtime.sampling] logits must be a non-empty [V] tensor");
  c10::InferenceMode guard;
  at::Tensor logits = logits_in.to(at::kFloat).clone();
  const int64_t V = logits.size(0);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.repetition_penalty != 1.0f && !history.empty()) {
    std::vector<int64_t> seen;
    for (int64_t id : history)
      if (id >= 0 && id < V) seen.push_back(id);
    if (!seen.empty()) {
      at::Tensor idx = at::tensor(seen, at::kLong);
      at::Tensor vals = logits.index_select(0, idx);
      vals = at::where(vals < 0, vals * o.repetition_penalty, vals / o.repetition_penalty);
      logits.index_put_({idx}, vals);
    }
  }
  if (o.greedy) return at::one_hot(logits.argmax(), V).to(at::kFloat);
  logits = logits / o.temperature;
  if (o.top_k > 0 && o.top_k < V) {
    const float kth = std::get<0>(logits.topk(o.top_k)).min().item<float>();
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0f) {
    // Sort ascending; drop the low tail whose cumulative mass is <= 1 - top_p, always keeping the best token.
    auto [sorted, order] = logits.sort(/*dim=*/0, /*descending=*/false);
    at::Tensor cum = sorted.softmax(0).cumsum(0);
    at::Tensor remove_sorted = cum <= (1.0f - o.top_p);
    remove_sorted[-1] = false;
    at::Tensor remove = at::zeros({V}, at::kBool).scatter(0, order, remove_sorted);
    logits = logits.masked_fill(remove, neg_inf);
  }
  at::Tensor probs = logits.softmax(0);
  if (o.min_p > 0.0f) {
    const float threshold = o.min_p * probs.max().item<float>();
    logits = logits.masked_fill(probs < threshold, neg_inf);
    probs = logits.softmax(0);
  }
  return probs;
}

Sampler::Sampler(SamplingOptions options) : options_(options), rng_(options.seed) {
  const std::string err = options_.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[runtime.Sampler] ", err);
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int64_t Sampler::sample(const at::Tensor& logits, std::span<const int64_t> history) {
  if (options_.greedy && options_.repetition_penalty == 1.0f) return logits.argmax().item<int64_t>();
  at::Tensor probs = next_token_probs(logits, options_, history);
  if (options_.greedy) return probs.argmax().item<int64_t>();
  at::Tensor p = probs.to(at::kDouble).contiguous();
  const double* data = p.data_ptr<double>();
  const int64_t V = p.numel();
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += data[i];
  const double target = uniform() * total;
  double acc = 0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (data[i] <= 0) continue;
    last_nonzero = i;
    acc += data[i];
    if (acc > target) return i;
  }
  return last_nonzero;
}

}  // namespace palign::runtime
