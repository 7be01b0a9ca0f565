// Strategies that sample whole continuations in one batch and keep the best by a reward:
//   best_of_n  N samples of the prompt in one batch (one prefill, the prompt's KV cache forked into N rows), reranked.
//   cd_block   block-wise controlled decoding: K continuations of B tokens sampled in one batch from the text so far,
//              the best by the reward kept, repeated until the budget or an end-of-sequence token.
//   cards      CARDS (Li et al. 2024), segment-level rejection sampling: K candidate segments sampled in one batch from
//              the text so far, each ended where the model's next-token entropy rises above a threshold (a semantic
//              boundary) or at a length cap; the first candidate whose reward clears the text so far's reward plus a
//              margin is accepted, else K more are sampled, up to a number of rounds, then the best seen is kept.
// The reward is any function of the continuations (the new ids after the prompt): a personalized reward model, a
// user's profile over objectives, an oracle in the bench.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "palign/runtime/generate.h"

namespace palign::decoding {

// One score per continuation; continuations are the tokens after the prompt (for cd_block everything kept so far plus
// the candidate block).
using ContinuationScorer = std::function<std::vector<double>(const std::vector<std::vector<int64_t>>& continuations)>;

// What a reranking strategy spent: tokens sampled over all candidates, batched generate calls (one prefill + decode
// loop each), continuations scored.
struct RerankCost {
  int64_t tokens = 0;
  int64_t batches = 0;
  int64_t scored = 0;
  int64_t steps = 0;  // batched decode steps: each generate call's longest sample (cards)
};

// The first highest-scoring of n samples; sample i uses options.sampling.seed + i (as runtime::generate). Throws
// kInvalidArgument for n < 1, a scorer returning the wrong number of scores, and what generate throws.
runtime::GenerateResult best_of_n(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                  std::span<const int64_t> prompt, const runtime::GenerateOptions& options, int64_t n,
                                  const ContinuationScorer& score, RerankCost* cost = nullptr);

// Blocks of `block` tokens; block b samples k candidates with seeds options.sampling.seed + b·k + i. The text is
// decoded from the ids kept. Throws kInvalidArgument for k < 1 or block < 1, and as best_of_n.
runtime::GenerateResult cd_block(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                 std::span<const int64_t> prompt, const runtime::GenerateOptions& options, int64_t k,
                                 int64_t block, const ContinuationScorer& score, RerankCost* cost = nullptr);

// CARDS' knobs: k candidate segments per round, a segment ends before a token whose distribution's entropy (nats,
// of the model's softmax) exceeds `entropy`, or after max_segment tokens; accepted when its reward is at least the
// text so far's reward + margin; at most `rounds` rounds per segment.
struct CardsOptions {
  int64_t k = 4;
  double entropy = 5.5;
  double margin = 0.0;
  int64_t rounds = 3;
  int64_t max_segment = 16;
};

// Segment s, round r samples k candidates with seeds options.sampling.seed + (s·rounds + r)·k + i. The reward of the
// empty continuation is scored once at the start (the first threshold). The policy's KV cache holds the accepted text
// in k rows: it is prefilled once, a round decodes its k candidates in one batch from the accepted text's logits, and
// an accepted segment is copied into the other rows (a fallback to an earlier round's best is recomputed). Throws
// kInvalidArgument for k, rounds or max_segment < 1, a negative or non-finite entropy, a non-finite margin, and as
// best_of_n.
runtime::GenerateResult cards(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                              std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                              const CardsOptions& cards, const ContinuationScorer& score, RerankCost* cost = nullptr);
// The same with the reward a one-label sequence classifier over the policy's ids (its score at the last token of
// prompt + continuation, e.g. a reward head on the policy's backbone): it keeps a KV cache of the accepted text too,
// so a round forwards only its k segments. Throws kInvalidArgument also for a reward with several labels or a
// context shorter than the prompt and budget.
runtime::GenerateResult cards(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                              std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                              const CardsOptions& cards, const runtime::Model& reward, RerankCost* cost = nullptr);

// The entropy (nats) of softmax(logits), logits [V] of any float type: CARDS' uncertainty.
double next_token_entropy(const at::Tensor& logits);

}  // namespace palign::decoding
