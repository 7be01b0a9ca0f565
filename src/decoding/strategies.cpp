// fusion, proxy and ARGS scorers and the decode loop (see strategies.h).
#include "palign/decoding/strategies.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/kv_cache.h"
#include "palign/runtime/linear.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/sampler.h"
#include "palign/runtime/tokenizer.h"

namespace palign::decoding {

using runtime::Batch;
using runtime::ForwardOptions;
using runtime::KvCache;
using runtime::Model;

namespace {

at::Tensor ids_row(std::span<const int64_t> ids) {
  return at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
}

void check_prompt(const Model& m, std::span<const int64_t> prompt, const char* what) {
  PALIGN_CHECK(!prompt.empty(), ErrorCode::kInvalidArgument, "[decoding.", what,
               "] the prompt is empty; give some text or token ids");
  PALIGN_CHECK(static_cast<int64_t>(prompt.size()) <= m.config().max_position, ErrorCode::kInvalidArgument,
               "[decoding.", what, "] the prompt has ", prompt.size(), " tokens, more than a model's context of ",
               m.config().max_position);
  for (int64_t id : prompt)
    PALIGN_CHECK(id >= 0 && id < m.config().vocab_size, ErrorCode::kInvalidArgument, "[decoding.", what, "] token id ",
                 id, " is outside the vocabulary (", m.config().vocab_size, ")");
}

// A causal LM following the text with its own cache: the last position's logits [V].
class Follower {
 public:
  Follower(const Model& m, std::span<const int64_t> prompt) : model_(m), cache_(m.make_cache(1)) {
    PALIGN_CHECK(m.config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[decoding] ",
                 m.config().architecture, " is not a causal LM; strategies fuse next-token distributions");
    last_ = step(ids_row(prompt));
  }
  const at::Tensor& logits() const { return last_; }
  void append(int64_t token) {
    if (cache_.length(0) >= model_.config().max_position) return;  // the loop stops at the context
    last_ = step(at::tensor({token}, at::kLong).unsqueeze(0));
  }

 private:
  at::Tensor step(const at::Tensor& ids) {
    ForwardOptions fo;
    fo.logits = ForwardOptions::Logits::kLast;
    return model_.forward(Batch{.ids = ids, .n_tokens = {}, .seq = {0}}, cache_, fo).logits[0].to(at::kFloat);
  }
  const Model& model_;
  KvCache cache_;
  at::Tensor last_;
};

void check_same_vocab(const Model& a, const Model& b, const char* what) {
  PALIGN_CHECK(a.config().vocab_size == b.config().vocab_size, ErrorCode::kInvalidArgument, "[decoding.", what,
               "] the models have different vocabularies (", a.config().vocab_size, " and ", b.config().vocab_size,
               " tokens); fuse only models that share a tokenizer");
}

class FusionScorer final : public NextTokenScorer {
 public:
  FusionScorer(const std::vector<const Model*>& models, std::vector<double> weights, std::span<const int64_t> prompt)
      : weights_(std::move(weights)) {
    PALIGN_CHECK(!models.empty(), ErrorCode::kInvalidArgument, "[decoding.fusion] no models to fuse; pass --models");
    PALIGN_CHECK(weights_.size() == models.size(), ErrorCode::kInvalidArgument, "[decoding.fusion] ", weights_.size(),
                 " weights for ", models.size(), " models; give one weight per model");
    for (const Model* m : models) {
      check_same_vocab(*models[0], *m, "fusion");
      check_prompt(*m, prompt, "fusion");
      followers_.emplace_back(*m, prompt);
    }
  }
  at::Tensor scores() override {
    at::Tensor s = at::zeros_like(followers_[0].logits());
    for (size_t i = 0; i < followers_.size(); ++i) s += weights_[i] * at::log_softmax(followers_[i].logits(), -1);
    return s;
  }
  void append(int64_t token) override {
    for (auto& f : followers_) f.append(token);
  }

 private:
  std::vector<double> weights_;
  std::vector<Follower> followers_;
};

class LoraFusionScorer final : public NextTokenScorer {
 public:
  LoraFusionScorer(const Model& base, const std::vector<const runtime::LoraAdapter*>& experts,
                   std::vector<double> weights, std::span<const int64_t> prompt)
      : base_(base),
        weights_(std::move(weights)),
        k_(static_cast<int64_t>(experts.size())),
        hook_(experts),  // built under make_lora_fusion's InferenceMode: the stacked (bmm) path
        cache_(base.make_cache(std::max<int64_t>(1, k_))) {
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.fusion] no experts to fuse");
    PALIGN_CHECK(static_cast<int64_t>(weights_.size()) == k_, ErrorCode::kInvalidArgument, "[decoding.fusion] ",
                 weights_.size(), " weights for ", k_, " experts; give one weight per expert");
    PALIGN_CHECK(base.config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[decoding.fusion] ",
                 base.config().architecture, " is not a causal LM");
    check_prompt(base, prompt, "fusion");
    weight_row_ = at::tensor(std::vector<float>(weights_.begin(), weights_.end()), at::kFloat).unsqueeze(0);
    // Every expert's row prefills the prompt in one [K, P] pass.
    last_ = step(ids_row(prompt).expand({k_, static_cast<int64_t>(prompt.size())}).contiguous());
  }
  at::Tensor scores() override {
    // Σ_i w_i · log_softmax(logits_i) as one [K] x [K, V] product (one pass instead of K scaled adds).
    return at::matmul(weight_row_, at::log_softmax(last_, -1)).squeeze(0);
  }
  void append(int64_t token) override { last_ = step(at::full({k_, 1}, token, at::kLong)); }

 private:
  // Row i is expert i's sequence i (Batch's default rows 0..K-1).
  at::Tensor step(const at::Tensor& ids) {
    ForwardOptions fo;
    fo.logits = ForwardOptions::Logits::kLast;
    fo.linear_hook = &hook_;
    return base_.forward(Batch{.ids = ids, .n_tokens = {}, .seq = {}}, cache_, fo).logits.to(at::kFloat);
  }
  const Model& base_;
  std::vector<double> weights_;
  int64_t k_;
  runtime::LoraBatchHook hook_;
  KvCache cache_;
  at::Tensor last_;        // [K, V]
  at::Tensor weight_row_;  // [1, K] float32
};

class ProxyScorer final : public NextTokenScorer {
 public:
  ProxyScorer(const Model& base, const Model& expert, const Model& anti, double alpha, std::span<const int64_t> prompt)
      : alpha_(alpha) {
    check_same_vocab(base, expert, "proxy");
    check_same_vocab(base, anti, "proxy");
    for (const Model* m : {&base, &expert, &anti}) {
      check_prompt(*m, prompt, "proxy");
      followers_.emplace_back(*m, prompt);
    }
  }
  at::Tensor scores() override {
    return followers_[0].logits() + alpha_ * (followers_[1].logits() - followers_[2].logits());
  }
  void append(int64_t token) override {
    for (auto& f : followers_) f.append(token);
  }

 private:
  double alpha_;
  std::vector<Follower> followers_;
};

class ContrastScorer final : public NextTokenScorer {
 public:
  ContrastScorer(const Model& m, std::span<const int64_t> with, std::span<const int64_t> without, double lambda)
      : lambda_(lambda), with_(checked(m, with), with), without_(checked(m, without), without) {}
  at::Tensor scores() override { return with_.logits() + lambda_ * (with_.logits() - without_.logits()); }
  void append(int64_t token) override {
    with_.append(token);
    without_.append(token);
  }

 private:
  static const Model& checked(const Model& m, std::span<const int64_t> prompt) {
    check_prompt(m, prompt, "contrast");
    return m;
  }
  double lambda_;
  Follower with_, without_;
};

// Whether the reward model is the policy's backbone plus a score head (what `palign train reward --method bt`
// writes): the same body (runtime::same_body), and every reward weight but score.weight equal to the policy's weight
// of that name (the same tensor, or equal values), covering every policy weight but the LM head. Returns
// score.weight [num_labels, D] then, else an undefined tensor. Compares each weight once (at::equal: one read of
// both models' weights unless they share storage).
at::Tensor shared_backbone_score_head(const Model& policy, const Model& reward) {
  if (!runtime::same_body(policy.config(), reward.config())) return {};
  std::map<std::string, at::Tensor> body;
  for (auto& [name, t] : policy.named_weights())
    if (name != "lm_head.weight") body.emplace(name, t);
  at::Tensor score;
  size_t matched = 0;
  for (const auto& [name, t] : reward.named_weights()) {
    if (name == "score.weight") {
      score = t;
      continue;
    }
    const auto it = body.find(name);
    if (it == body.end()) return {};
    const at::Tensor& a = it->second;
    const bool same_view = a.data_ptr() == t.data_ptr() && a.sizes() == t.sizes() && a.strides() == t.strides();
    if (!same_view && !(a.sizes() == t.sizes() && at::equal(a, t))) return {};
    ++matched;
  }
  return matched == body.size() ? score : at::Tensor();
}

// ARGS (Khanov et al. 2024): score(v) = log p(v | x) + w * r(x, v) over the policy's top k tokens v.
// The cache holds k candidate rows over one shared prefix. Each step scores the k candidates as one-token rows
// (row j = candidate j); appending candidate j leaves row j as the new prefix, so only that one position is copied
// into the other rows, never the whole prefix.
// Two models: the rows live in the reward model's cache and the policy follows the text with its own 1-row cache.
// Shared backbone (see shared_backbone_score_head): the rows live in the policy's cache, and one k-row policy forward
// gives both each candidate's reward (score head on its final hidden state, as the reward model computes it) and,
// for the chosen row, the next step's policy logits (LM head on the same hidden state); no second forward.
class ArgsScorer final : public NextTokenScorer {
 public:
  // policy and reward must outlive the scorer.
  ArgsScorer(const Model& policy, const Model& reward, int64_t k, double w, std::span<const int64_t> prompt)
      : policy_(checked(policy, reward, k, prompt)),
        reward_(reward),
        k_(k),
        w_(w),
        score_head_(shared_backbone_score_head(policy, reward)),
        lm_head_(score_head_.defined() ? runtime::lm_head(policy) : at::Tensor()),
        cache_((shared() ? policy : reward).make_cache(k)) {
    ForwardOptions fo;
    const Batch prefill{.ids = ids_row(prompt), .n_tokens = {}, .seq = {0}};
    if (shared()) {
      fo.logits = ForwardOptions::Logits::kLast;
      next_logits_ = policy_.forward(prefill, cache_, fo).logits[0].to(at::kFloat);
    } else {
      follower_.emplace(policy, prompt);
      fo.logits = ForwardOptions::Logits::kNone;
      reward_.forward(prefill, cache_, fo);
    }
    cache_.fork_all(/*src=*/0);
    prefix_len_ = static_cast<int64_t>(prompt.size());
  }
  at::Tensor scores() override {
    const at::Tensor lp = at::log_softmax(shared() ? next_logits_ : follower_->logits(), -1);
    const auto [top, idx] = at::topk(lp, k_);
    candidates_ = idx.contiguous();
    // Rows hold the shared prefix (a repeated scores() call drops the previous candidates).
    for (int64_t j = 0; j < k_; ++j) cache_.truncate(j, prefix_len_);
    const Batch rows{.ids = candidates_.unsqueeze(1), .n_tokens = {}, .seq = {}};
    ForwardOptions fo;
    at::Tensor r;  // [k]
    if (shared()) {
      fo.logits = ForwardOptions::Logits::kNone;
      fo.return_hidden = true;
      hidden_ = policy_.forward(rows, cache_, fo).hidden.select(1, 0);  // [k, D]
      r = at::linear(hidden_, score_head_).select(1, 0).to(at::kFloat);
    } else {
      fo.logits = ForwardOptions::Logits::kLast;
      r = reward_.forward(rows, cache_, fo).logits.select(1, 0).to(at::kFloat);
    }
    at::Tensor s = at::full_like(lp, -std::numeric_limits<float>::infinity());
    s.index_put_({candidates_}, top + w_ * r);
    return s;
  }
  void append(int64_t token) override {
    const auto* c = candidates_.data_ptr<int64_t>();
    int64_t row = -1;
    for (int64_t j = 0; j < k_; ++j)
      if (c[j] == token) row = j;
    PALIGN_CHECK(row >= 0, ErrorCode::kInternal, "[decoding.args] the chosen token was not a candidate");
    // Row `row` already ends with the chosen token; the others take just that position from it.
    cache_.fork_all(row, prefix_len_ + 1, /*from=*/prefix_len_);
    ++prefix_len_;
    if (shared()) {
      // The forward's own head linear: the logits a one-row forward gives, bitwise.
      next_logits_ =
          runtime::apply_linear(hidden_[row].unsqueeze(0), lm_head_, {}, policy_.options().linear_kernel)[0].to(
              at::kFloat);
    } else {
      follower_->append(token);
    }
  }

 private:
  bool shared() const { return lm_head_.defined(); }
  static const Model& checked(const Model& policy, const Model& reward, int64_t k, std::span<const int64_t> prompt) {
    PALIGN_CHECK(policy.config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[decoding] ",
                 policy.config().architecture, " is not a causal LM; strategies fuse next-token distributions");
    PALIGN_CHECK(reward.config().head == runtime::HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument,
                 "[decoding.args] the reward model is a ", reward.config().architecture,
                 "; ARGS needs a *ForSequenceClassification reward model");
    check_same_vocab(policy, reward, "args");
    PALIGN_CHECK(k >= 1 && k <= policy.config().vocab_size, ErrorCode::kInvalidArgument,
                 "[decoding.args] --args-k must be in [1, ", policy.config().vocab_size, "], got ", k);
    check_prompt(policy, prompt, "args");
    check_prompt(reward, prompt, "args");
    return policy;
  }
  const Model& policy_;
  const Model& reward_;
  int64_t k_;
  double w_;
  at::Tensor score_head_;             // [num_labels, D]; defined when the backbone is shared
  at::Tensor lm_head_;                // [V, D]; defined when the backbone is shared (and the policy has a head)
  KvCache cache_;                     // k rows; positions [0, prefix_len_) are the same in every row
  std::optional<Follower> follower_;  // the policy with its own cache (two-model path)
  at::Tensor next_logits_;            // [V] policy logits after the prefix (shared path)
  at::Tensor hidden_;                 // [k, D] the candidates' final hidden states (shared path)
  int64_t prefix_len_ = 0;
  at::Tensor candidates_;  // [k] int64
};

}  // namespace

runtime::GenerateResult decode(NextTokenScorer& scorer, std::span<const int64_t> prompt,
                               const runtime::GenerateOptions& options, int64_t max_position,
                               const runtime::Tokenizer* tokenizer) {
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[decoding] ", err);
  c10::InferenceMode guard;
  runtime::GenerateResult result;
  result.finish_reason = "length";
  runtime::Sampler sampler(options.sampling);
  std::vector<int64_t> history(prompt.begin(), prompt.end());
  const int64_t budget = std::min<int64_t>(options.max_new_tokens, max_position - static_cast<int64_t>(prompt.size()));
  for (int64_t step = 0; step < budget; ++step) {
    const int64_t token = sampler.sample(scorer.scores(), history);
    history.push_back(token);
    result.ids.push_back(token);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), token) != options.stop_ids.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (step + 1 < budget) scorer.append(token);
  }
  if (tokenizer) result.text = runtime::decode_generated(*tokenizer, result.ids);
  return result;
}

std::unique_ptr<NextTokenScorer> make_fusion(const std::vector<const Model*>& models,
                                             const std::vector<double>& weights, std::span<const int64_t> prompt) {
  c10::InferenceMode guard;
  return std::make_unique<FusionScorer>(models, weights, prompt);
}

std::unique_ptr<NextTokenScorer> make_lora_fusion(const Model& base,
                                                  const std::vector<const runtime::LoraAdapter*>& experts,
                                                  const std::vector<double>& weights, std::span<const int64_t> prompt) {
  c10::InferenceMode guard;
  return std::make_unique<LoraFusionScorer>(base, experts, weights, prompt);
}

std::unique_ptr<NextTokenScorer> make_proxy(const Model& base, const Model& expert, const Model& antiexpert,
                                            double alpha, std::span<const int64_t> prompt) {
  c10::InferenceMode guard;
  return std::make_unique<ProxyScorer>(base, expert, antiexpert, alpha, prompt);
}

std::unique_ptr<NextTokenScorer> make_contrast(const Model& model, std::span<const int64_t> with_context,
                                               std::span<const int64_t> without_context, double lambda) {
  c10::InferenceMode guard;
  return std::make_unique<ContrastScorer>(model, with_context, without_context, lambda);
}

std::unique_ptr<NextTokenScorer> make_args(const Model& policy, const Model& reward, int64_t k, double w,
                                           std::span<const int64_t> prompt) {
  c10::InferenceMode guard;
  return std::make_unique<ArgsScorer>(policy, reward, k, w, prompt);
}

}  // namespace palign::decoding
