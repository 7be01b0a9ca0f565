// best_of_n and cd_block (see rerank.h).
#include "palign/decoding/rerank.h"

#include <algorithm>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::decoding {

namespace {

// The first best of samples continuing `kept` (the tokens already chosen after the prompt).
size_t pick(const std::vector<runtime::GenerateResult>& samples, const std::vector<int64_t>& kept,
            const ContinuationScorer& score, RerankCost* cost) {
  std::vector<std::vector<int64_t>> continuations;
  for (const auto& s : samples) {
    continuations.push_back(kept);
    continuations.back().insert(continuations.back().end(), s.ids.begin(), s.ids.end());
    if (cost) cost->tokens += static_cast<int64_t>(s.ids.size());
  }
  const std::vector<double> scores = score(continuations);
  PALIGN_CHECK(scores.size() == samples.size(), ErrorCode::kInvalidArgument, "[decoding.rerank] the reward gave ",
               scores.size(), " scores for ", samples.size(), " candidates");
  if (cost) cost->scored += static_cast<int64_t>(scores.size()), ++cost->batches;
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
  PALIGN_CHECK(k >= 1, ErrorCode::kInvalidArgument, "[decoding.cd_block] k (candidates per block) must be at least 1, "
               "got ", k);
  PALIGN_CHECK(block >= 1, ErrorCode::kInvalidArgument, "[decoding.cd_block] the block must be at least 1 token, got ",
               block);
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[decoding.cd_block] ", err);
  const int64_t budget = std::min<int64_t>(options.max_new_tokens,
                                           model.config().max_position - static_cast<int64_t>(prompt.size()));
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

}  // namespace palign::decoding
