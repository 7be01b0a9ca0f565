// best_of_n, cd_block and cards (see rerank.h).
#include "palign/decoding/rerank.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>

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

namespace {

// CARDS' reward of candidate segments continuing the accepted text.
class SegmentReward {
 public:
  virtual ~SegmentReward() = default;
  // The reward of the prompt alone (called once, first).
  virtual double start() = 0;
  // The reward of kept + each segment (kept: the accepted tokens after the prompt).
  virtual std::vector<double> score(const std::vector<int64_t>& kept,
                                    const std::vector<std::vector<int64_t>>& segments) = 0;
  // The segment is accepted; `row` is its index in the last score() call, or -1 when it came from an earlier call.
  virtual void accept(const std::vector<int64_t>& segment, int64_t row) = 0;
};

// Any ContinuationScorer: every candidate scored as kept + segment from scratch.
class ScorerReward final : public SegmentReward {
 public:
  explicit ScorerReward(const ContinuationScorer& score) : score_(score) {}
  double start() override { return checked({{}})[0]; }
  std::vector<double> score(const std::vector<int64_t>& kept,
                            const std::vector<std::vector<int64_t>>& segments) override {
    std::vector<std::vector<int64_t>> continuations;
    for (const auto& s : segments) {
      continuations.push_back(kept);
      continuations.back().insert(continuations.back().end(), s.begin(), s.end());
    }
    return checked(continuations);
  }
  void accept(const std::vector<int64_t>&, int64_t) override {}

 private:
  std::vector<double> checked(const std::vector<std::vector<int64_t>>& continuations) {
    std::vector<double> scores = score_(continuations);
    PALIGN_CHECK(scores.size() == continuations.size(), ErrorCode::kInvalidArgument,
                 "[decoding.cards] the reward gave ", scores.size(), " scores for ", continuations.size(),
                 " candidates");
    return scores;
  }
  const ContinuationScorer& score_;
};

// A one-label sequence classifier over the policy's ids with a KV cache of the accepted text in each of k rows: a
// round forwards only its candidate segments (one right-padded batch), an acceptance copies the chosen row's segment
// into the others.
class CachedReward final : public SegmentReward {
 public:
  CachedReward(const runtime::Model& reward, std::span<const int64_t> prompt, int64_t k, int64_t budget)
      : reward_(reward),
        prompt_(prompt.begin(), prompt.end()),
        cache_(reward.make_cache(
            k, std::min<int64_t>(static_cast<int64_t>(prompt.size()) + budget, reward.config().max_position))),
        prefix_(static_cast<int64_t>(prompt.size())) {
    PALIGN_CHECK(reward.config().num_labels == 1, ErrorCode::kInvalidArgument, "[decoding.cards] the reward model has ",
                 reward.config().num_labels,
                 " labels; fold them into one (runtime::weighted_classifier) or give a scorer");
    PALIGN_CHECK(static_cast<int64_t>(prompt.size()) + budget <= reward.config().max_position,
                 ErrorCode::kInvalidArgument, "[decoding.cards] the prompt and budget (",
                 static_cast<int64_t>(prompt.size()) + budget, " tokens) exceed the reward model's context of ",
                 reward.config().max_position, "; lower --max-new-tokens");
    fo_.logits = runtime::ForwardOptions::Logits::kLast;
  }
  double start() override {
    const at::Tensor ids = at::tensor(prompt_, at::kLong).unsqueeze(0);
    const at::Tensor s = reward_.forward(runtime::Batch{.ids = ids, .n_tokens = {}, .seq = {0}}, cache_, fo_).logits;
    cache_.fork_all(0);
    return s[0][0].item<double>();
  }
  std::vector<double> score(const std::vector<int64_t>&, const std::vector<std::vector<int64_t>>& segments) override {
    PALIGN_CHECK(std::ssize(segments) == cache_.n_seq(), ErrorCode::kInternal, "[decoding.cards] ", segments.size(),
                 " segments for ", cache_.n_seq(), " reward rows");
    int64_t longest = 0;
    for (const auto& s : segments) longest = std::max<int64_t>(longest, std::ssize(s));
    at::Tensor ids = at::zeros({std::ssize(segments), longest}, at::kLong);
    std::vector<int64_t> n_tokens, seq;
    for (int64_t i = 0; i < std::ssize(segments); ++i) {
      cache_.truncate(i, prefix_);
      ids[i].narrow(0, 0, std::ssize(segments[i])).copy_(at::tensor(segments[i], at::kLong));
      n_tokens.push_back(std::ssize(segments[i]));
      seq.push_back(i);
    }
    const at::Tensor s =
        reward_.forward(runtime::Batch{.ids = ids, .n_tokens = n_tokens, .seq = seq}, cache_, fo_).logits.select(1, 0);
    return std::vector<double>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  }
  void accept(const std::vector<int64_t>& segment, int64_t row) override {
    if (row < 0) {  // a segment of an earlier round: its positions were overwritten since
      row = 0;
      cache_.truncate(0, prefix_);
      runtime::ForwardOptions none = fo_;
      none.logits = runtime::ForwardOptions::Logits::kNone;
      reward_.forward(runtime::Batch{.ids = at::tensor(segment, at::kLong).unsqueeze(0), .n_tokens = {}, .seq = {0}},
                      cache_, none);
    }
    const int64_t n = prefix_ + std::ssize(segment);
    cache_.fork_all(row, n, prefix_);
    prefix_ = n;
  }

 private:
  const runtime::Model& reward_;
  std::vector<int64_t> prompt_;
  runtime::KvCache cache_;
  int64_t prefix_;
  runtime::ForwardOptions fo_;
};

// The policy's side of CARDS: a KV cache of k rows that all hold the accepted text; a round samples one segment per
// row in one batched decode from the accepted text's next-token logits, and an acceptance copies the chosen row's
// segment into the others, so the accepted text is never prefilled again.
class SegmentSampler {
 public:
  struct Round {
    std::vector<std::vector<int64_t>> segments;
    std::vector<std::string> finish;  // "segment", "stop" or "length"
    std::vector<at::Tensor> next;     // the row's next-token logits when its last token was forwarded ("segment")
  };

  SegmentSampler(const runtime::Model& model, const runtime::Tokenizer* tokenizer, std::span<const int64_t> prompt,
                 const runtime::GenerateOptions& options, int64_t k, int64_t budget, double entropy)
      : model_(model), tokenizer_(tokenizer), options_(options), k_(k), entropy_(entropy) {
    PALIGN_CHECK(!prompt.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.cards] the prompt is empty; give some text or token ids");
    PALIGN_CHECK(options.stop_strings.empty() || tokenizer, ErrorCode::kInvalidArgument,
                 "[decoding.cards] stop strings need a tokenizer");
    PALIGN_CHECK(options.row_seeds.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.cards] row seeds are for separate prompts; give one seed");
    PALIGN_CHECK(!(options.residual_hook && options.row_residual_hook), ErrorCode::kInvalidArgument,
                 "[decoding.cards] give residual_hook or row_residual_hook, not both");
    prefix_ = static_cast<int64_t>(prompt.size());
    cache_ = model.make_cache(k, prefix_ + budget);
    fo_.logits = runtime::ForwardOptions::Logits::kLast;
    fo_.linear_hook = options.linear_hook;
    fo_.residual_hook = options.residual_hook;
    if (options.virtual_tokens) fo_.virtual_tokens = *options.virtual_tokens;
    if (options.row_residual_hook)
      fo_.residual_hook = [this](int64_t layer, at::Tensor& x) { options_.row_residual_hook(layer, x, rows_); };
    rows_ = {0};
    next_ = forward({std::vector<int64_t>(prompt.begin(), prompt.end())}, {0})[0];
    cache_->fork_all(0);
    const int64_t vocab = model.config().vocab_size;
    for (int64_t id : prompt)
      if (id < vocab) history_.push_back(id);  // virtual tokens are not text (as runtime::generate)
  }

  // k segments of at most max_tokens tokens; row i samples with seed + i.
  Round sample(uint64_t seed, int64_t max_tokens) {
    Round round;
    round.segments.resize(k_);
    round.finish.resize(k_);
    round.next.resize(k_);
    std::vector<runtime::Sampler> samplers;
    std::vector<std::vector<int64_t>> history(k_, history_);
    std::vector<at::Tensor> logits(k_, next_);
    for (int64_t i = 0; i < k_; ++i) {
      cache_->truncate(i, prefix_);
      runtime::SamplingOptions so = options_.sampling;
      so.seed = seed + static_cast<uint64_t>(i);
      samplers.emplace_back(so);
    }
    std::vector<int64_t> active(k_);
    for (int64_t i = 0; i < k_; ++i) active[i] = i;
    while (!active.empty()) {
      std::vector<int64_t> going, tokens;
      for (int64_t i : active) {
        auto& seg = round.segments[i];
        if (!seg.empty() && next_token_entropy(logits[i]) > entropy_) {
          round.finish[i] = "segment", round.next[i] = logits[i];
          continue;
        }
        const int64_t t = samplers[i].sample(logits[i], history[i]);
        history[i].push_back(t);
        seg.push_back(t);
        bool stop = std::find(options_.stop_ids.begin(), options_.stop_ids.end(), t) != options_.stop_ids.end();
        if (!stop && !options_.stop_strings.empty())
          stop = find_stop(runtime::decode_generated(*tokenizer_, seg)) != std::string::npos;
        if (stop)
          round.finish[i] = "stop";
        else if (std::ssize(seg) == max_tokens)
          round.finish[i] = "length";
        else
          going.push_back(i), tokens.push_back(t);
      }
      active = going;
      if (active.empty()) break;
      std::vector<std::vector<int64_t>> step;
      for (int64_t t : tokens) step.push_back({t});
      const std::vector<at::Tensor> out = forward(step, active);
      for (size_t j = 0; j < active.size(); ++j) logits[active[j]] = out[j];
    }
    return round;
  }

  // The segment is accepted: every row continues it. `row` is its row in the last sample() (-1: an earlier round's,
  // recomputed), `next` its next-token logits when known; returns the forwards spent.
  int64_t accept(const std::vector<int64_t>& segment, int64_t row, const at::Tensor& next, bool more) {
    int64_t steps = 0;
    if (row < 0) {
      row = 0;
      cache_->truncate(0, prefix_);
      if (more) next_ = forward({segment}, {0})[0], ++steps;
    } else if (more && !next.defined()) {  // its last token was sampled but never forwarded
      next_ = forward({{segment.back()}}, {row})[0], ++steps;
    } else {
      next_ = next;
    }
    history_.insert(history_.end(), segment.begin(), segment.end());
    const int64_t n = prefix_ + std::ssize(segment);
    if (more) cache_->fork_all(row, n, prefix_);  // row now holds all n positions
    prefix_ = n;
    return steps;
  }

 private:
  size_t find_stop(const std::string& text) const {
    size_t best = std::string::npos;
    for (const auto& s : options_.stop_strings) best = std::min(best, text.find(s));
    return best;
  }
  // Appends rows[j]'s tokens to cache sequence rows[j] (right-padded); the next-token logits of each row.
  std::vector<at::Tensor> forward(const std::vector<std::vector<int64_t>>& tokens, const std::vector<int64_t>& rows) {
    int64_t longest = 0;
    for (const auto& t : tokens) longest = std::max<int64_t>(longest, std::ssize(t));
    at::Tensor ids = at::zeros({std::ssize(tokens), longest}, at::kLong);
    std::vector<int64_t> n_tokens;
    for (size_t j = 0; j < tokens.size(); ++j) {
      ids[static_cast<int64_t>(j)].narrow(0, 0, std::ssize(tokens[j])).copy_(at::tensor(tokens[j], at::kLong));
      n_tokens.push_back(std::ssize(tokens[j]));
    }
    rows_ = rows;
    const at::Tensor out =
        model_.forward(runtime::Batch{.ids = ids, .n_tokens = n_tokens, .seq = rows}, *cache_, fo_).logits;
    std::vector<at::Tensor> each;
    for (int64_t j = 0; j < out.size(0); ++j) each.push_back(out[j]);
    return each;
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  const runtime::GenerateOptions& options_;
  int64_t k_;
  double entropy_;
  std::optional<runtime::KvCache> cache_;
  runtime::ForwardOptions fo_;
  std::vector<int64_t> rows_;     // the sample of each row of the forward in flight (row_residual_hook)
  std::vector<int64_t> history_;  // the accepted text's real tokens (the repetition penalty's history)
  int64_t prefix_ = 0;            // the accepted text's positions in every row
  at::Tensor next_;               // the accepted text's next-token logits [V]
};

runtime::GenerateResult cards_impl(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                   std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                                   const CardsOptions& c,
                                   const std::function<std::unique_ptr<SegmentReward>(int64_t)>& make_reward,
                                   RerankCost* cost) {
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
  const int64_t P = static_cast<int64_t>(prompt.size());
  PALIGN_CHECK(P <= model.config().max_position, ErrorCode::kInvalidArgument, "[decoding.cards] the prompt has ", P,
               " tokens, more than the model's context of ", model.config().max_position, "; shorten it");
  const int64_t budget = std::min<int64_t>(options.max_new_tokens, model.config().max_position - P);
  runtime::GenerateResult out;
  out.finish_reason = "length";
  // The reward of the text so far: the threshold the next segment must clear (with the margin).
  const std::unique_ptr<SegmentReward> reward = make_reward(budget);
  double current = reward->start();
  if (cost) ++cost->scored, ++cost->batches;
  if (budget == 0) return out;
  SegmentSampler sampler(model, tokenizer, prompt, options, c.k, budget, c.entropy);
  for (int64_t s = 0; std::ssize(out.ids) < budget; ++s) {
    const int64_t room = std::min<int64_t>(c.max_segment, budget - std::ssize(out.ids));
    // The accepted candidate, else the best seen over every round.
    std::vector<int64_t> chosen;
    std::string chosen_finish;
    at::Tensor chosen_next;
    int64_t chosen_round = -1, chosen_row = -1;
    double chosen_score = -INFINITY;
    int64_t r = 0;
    for (; r < c.rounds; ++r) {
      SegmentSampler::Round round =
          sampler.sample(options.sampling.seed + static_cast<uint64_t>((s * c.rounds + r) * c.k), room);
      const std::vector<double> scores = reward->score(out.ids, round.segments);
      if (cost) {
        int64_t longest = 0;
        for (const auto& seg : round.segments) {
          cost->tokens += std::ssize(seg);
          longest = std::max<int64_t>(longest, std::ssize(seg));
        }
        cost->scored += c.k, ++cost->batches, cost->steps += longest;
      }
      int64_t accepted = -1;
      for (int64_t i = 0; i < c.k && accepted < 0; ++i)
        if (scores[i] >= current + c.margin) accepted = i;
      for (int64_t i = 0; i < c.k; ++i) {
        if (accepted >= 0 && i != accepted) continue;
        if (accepted >= 0 || chosen_round < 0 || scores[i] > chosen_score) {
          chosen = round.segments[i], chosen_finish = round.finish[i], chosen_next = round.next[i];
          chosen_round = r, chosen_row = i, chosen_score = scores[i];
        }
      }
      if (accepted >= 0) break;
    }
    const int64_t last_round = std::min<int64_t>(r, c.rounds - 1);
    const int64_t row = chosen_round == last_round ? chosen_row : -1;
    out.ids.insert(out.ids.end(), chosen.begin(), chosen.end());
    current = chosen_score;
    const bool more = chosen_finish != "stop" && std::ssize(out.ids) < budget;
    const int64_t extra = sampler.accept(chosen, row, chosen_next, more);
    if (cost) cost->steps += extra;
    if (!more) {
      if (chosen_finish == "stop") out.finish_reason = "stop";
      break;
    }
    reward->accept(chosen, row);
  }
  if (tokenizer) out.text = runtime::decode_generated(*tokenizer, out.ids);
  return out;
}

}  // namespace

runtime::GenerateResult cards(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                              std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                              const CardsOptions& c, const ContinuationScorer& score, RerankCost* cost) {
  return cards_impl(
      model, tokenizer, prompt, options, c, [&](int64_t) { return std::make_unique<ScorerReward>(score); }, cost);
}

runtime::GenerateResult cards(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                              std::span<const int64_t> prompt, const runtime::GenerateOptions& options,
                              const CardsOptions& c, const runtime::Model& reward, RerankCost* cost) {
  return cards_impl(
      model, tokenizer, prompt, options, c,
      [&](int64_t budget) { return std::make_unique<CachedReward>(reward, prompt, c.k, budget); }, cost);
}

}  // namespace palign::decoding
