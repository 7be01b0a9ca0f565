// best_of_n, cd_block and cards (see rerank.h).
#include "palign/decoding/rerank.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::decoding {

namespace {

// The reward of each sample continuing `kept` (the tokens already chosen after the prompt), charged to cost.
std::vector<double> score_samples(const std::vector<runtime::GenerateResult>& samples, const std::vector<int64_t>& kept,
                                  const ContinuationScorer& score, RerankCost* cost) {
  std::vector<std::vector<int64_t>> continuations;
  int64_t longest = 0;
  for (const auto& s : samples) {
    continuations.push_back(kept);
    continuations.back().insert(continuations.back().end(), s.ids.begin(), s.ids.end());
    if (cost) cost->tokens += static_cast<int64_t>(s.ids.size());
    longest = std::max<int64_t>(longest, static_cast<int64_t>(s.ids.size()));
  }
  std::vector<double> scores = score(continuations);
  PALIGN_CHECK(scores.size() == samples.size(), ErrorCode::kInvalidArgument, "[decoding.rerank] the reward gave ",
               scores.size(), " scores for ", samples.size(), " candidates");
  if (cost) cost->scored += static_cast<int64_t>(scores.size()), ++cost->batches, cost->steps += longest;
  return scores;
}

// The first best of samples continuing `kept` (the tokens already chosen after the prompt).
size_t pick(const std::vector<runtime::GenerateResult>& samples, const std::vector<int64_t>& kept,
            const ContinuationScorer& score, RerankCost* cost) {
  const std::vector<double> scores = score_samples(samples, kept, score, cost);
  return static_cast<size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
}

}  // namespace

runtime::GenerateResult best_of_n(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                  std::span<const int64_t> prompt, const runtime::GenerateOptions& options, int64_t n,
                                  const ContinuationScorer& score, RerankCost* cost) {
  PALIGN_CHECK(n >= 1, ErrorCode::kInvalidArgument, "[decoding.best_of_n] n must be at least 1, got ", n);
  auto samples = runtime::generate(model, tokenizer, prompt, options, n);
  return std::move(samples[pick(samples, {}, score, cost)]);
}

runtime::GenerateResult cd_block(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                 std::span<const int64_t> prompt, const runtime::GenerateOptions& options, int64_t k,
                                 int64_t block, const ContinuationScorer& score, RerankCost* cost) {
  PALIGN_CHECK(k >= 1, ErrorCode::kInvalidArgument,
               "[decoding.cd_block] k (candidates per block) must be at least 1, "
               "got ",
               k);
  PALIGN_CHECK(block >= 1, ErrorCode::kInvalidArgument, "[decoding.cd_block] the block must be at least 1 token, got ",
               block);
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[decoding.cd_block] ", err);
  const int64_t budget =
      std::min<int64_t>(options.max_new_tokens, model.config().max_position - static_cast<int64_t>(prompt.size()));
  runtime::GenerateResult out;
  out.finish_reason = "length";
  std::vector<int64_t> context(prompt.begin(), prompt.end());
  for (int64_t b = 0; static_cast<int64_t>(out.ids.size()) < budget; ++b) {
    runtime::GenerateOptions o = options;
    o.max_new_tokens = std::min<int64_t>(block, budget - static_cast<int64_t>(out.ids.size()));
    o.sampling.seed = options.sampling.seed + static_cast<uint64_t>(b * k);
    auto samples = runtime::generate(model, tokenizer, context, o, k);
    const auto& best = samples[pick(samples, out.ids, score, cost)];
    out.ids.insert(out.ids.end(), best.ids.begin(), best.ids.end());
    context.insert(context.end(), best.ids.begin(), best.ids.end());
    if (best.finish_reason == "stop") {
      out.finish_reason = "stop";
      break;
    }
  }
  if (tokenizer) out.text = runtime::decode_generated(*tokenizer, out.ids);
  return out;
}

double next_token_entropy(const at::Tensor& logits) {
  const at::Tensor logp = at::log_softmax(logits.to(at::kDouble), -1);
  // exp(-inf) * -inf is NaN: masked tokens contribute 0.
  return -at::nan_to_num(logp.exp() * logp, 0.0).sum().item<double>();
}

runtime::GenerateResult cards(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                              std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                              const CardsOptions& c, const ContinuationScorer& score, RerankCost* cost) {
  PALIGN_CHECK(c.k >= 1, ErrorCode::kInvalidArgument, "[decoding.cards] --cards-k must be at least 1, got ", c.k);
  PALIGN_CHECK(c.rounds >= 1, ErrorCode::kInvalidArgument, "[decoding.cards] --cards-rounds must be at least 1, got ",
               c.rounds);
  PALIGN_CHECK(c.max_segment >= 1, ErrorCode::kInvalidArgument,
               "[decoding.cards] --cards-segment must be at least 1 token, got ", c.max_segment);
  PALIGN_CHECK(std::isfinite(c.entropy) && c.entropy >= 0, ErrorCode::kInvalidArgument,
               "[decoding.cards] --cards-entropy must be a finite number of nats >= 0, got ", c.entropy);
  PALIGN_CHECK(std::isfinite(c.margin), ErrorCode::kInvalidArgument,
               "[decoding.cards] --cards-margin must be a finite number, got ", c.margin);
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[decoding.cards] ", err);
  const int64_t budget =
      std::min<int64_t>(options.max_new_tokens, model.config().max_position - static_cast<int64_t>(prompt.size()));
  runtime::GenerateResult out;
  out.finish_reason = "length";
  std::vector<int64_t> context(prompt.begin(), prompt.end());
  // The reward of the text so far: the threshold the next segment must clear (with the margin).
  std::vector<double> first = score({{}});
  PALIGN_CHECK(first.size() == 1, ErrorCode::kInvalidArgument, "[decoding.cards] the reward gave ", first.size(),
               " scores for 1 candidate");
  if (cost) ++cost->scored, ++cost->batches;
  double current = first[0];
  runtime::GenerateOptions o = options;
  o.end_segment = [&](int64_t, const at::Tensor& logits) { return next_token_entropy(logits) > c.entropy; };
  for (int64_t s = 0; static_cast<int64_t>(out.ids.size()) < budget; ++s) {
    o.max_new_tokens = std::min<int64_t>(c.max_segment, budget - static_cast<int64_t>(out.ids.size()));
    // The accepted candidate, else the best seen over every round.
    std::optional<runtime::GenerateResult> chosen;
    double chosen_score = -INFINITY;
    for (int64_t r = 0; r < c.rounds; ++r) {
      o.sampling.seed = options.sampling.seed + static_cast<uint64_t>((s * c.rounds + r) * c.k);
      auto samples = runtime::generate(model, tokenizer, context, o, c.k);
      const std::vector<double> scores = score_samples(samples, out.ids, score, cost);
      size_t accepted = samples.size();
      for (size_t i = 0; i < samples.size() && accepted == samples.size(); ++i)
        if (scores[i] >= current + c.margin) accepted = i;
      if (accepted < samples.size()) {
        chosen = std::move(samples[accepted]);
        chosen_score = scores[accepted];
        break;
      }
      for (size_t i = 0; i < samples.size(); ++i)
        if (!chosen || scores[i] > chosen_score) chosen = std::move(samples[i]), chosen_score = scores[i];
    }
    out.ids.insert(out.ids.end(), chosen->ids.begin(), chosen->ids.end());
    context.insert(context.end(), chosen->ids.begin(), chosen->ids.end());
    current = chosen_score;
    if (chosen->finish_reason == "stop") {
      out.finish_reason = "stop";
      break;
    }
  }
  if (tokenizer) out.text = runtime::decode_generated(*tokenizer, out.ids);
  return out;
}

}  // namespace palign::decoding
