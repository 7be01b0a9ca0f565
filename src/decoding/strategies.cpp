// fusion, proxy and ARGS scorers and the decode loop (see strategies.h).
#include "palign/decoding/strategies.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>

#include "palign/base/error.h"
#include "palign/runtime/kv_cache.h"
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
    // Every expert's row prefills the prompt in one [K, P] pass.
    last_ = step(ids_row(prompt).expand({k_, static_cast<int64_t>(prompt.size())}).contiguous());
  }
  at::Tensor scores() override {
    at::Tensor s = at::zeros({last_.size(1)});
    const at::Tensor lp = at::log_softmax(last_, -1);
    for (int64_t i = 0; i < k_; ++i) s += weights_[i] * lp[i];
    return s;
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
  at::Tensor last_;  // [K, V]
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

// The reward cache holds k candidate rows over one shared prefix. Each step scores the k candidates as one-token rows
// (row j = candidate j); appending candidate j leaves row j as the new prefix, so only that one position is copied
// into the other rows, never the whole prefix.
class ArgsScorer final : public NextTokenScorer {
 public:
  ArgsScorer(const Model& policy, const Model& reward, int64_t k, double w, std::span<const int64_t> prompt)
      : policy_(policy, prompt), reward_(reward), k_(k), w_(w), cache_(reward.make_cache(k)) {
    PALIGN_CHECK(reward.config().head == runtime::HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument,
                 "[decoding.args] the reward model is a ", reward.config().architecture,
                 "; ARGS needs a *ForSequenceClassification reward model");
    check_same_vocab(policy, reward, "args");
    PALIGN_CHECK(k >= 1 && k <= policy.config().vocab_size, ErrorCode::kInvalidArgument,
                 "[decoding.args] --args-k must be in [1, ", policy.config().vocab_size, "], got ", k);
    check_prompt(policy, prompt, "args");
    check_prompt(reward, prompt, "args");
    ForwardOptions fo;
    fo.logits = ForwardOptions::Logits::kNone;
    reward_.forward(Batch{.ids = ids_row(prompt), .n_tokens = {}, .seq = {0}}, cache_, fo);
    cache_.fork_all(/*src=*/0);
    prefix_len_ = static_cast<int64_t>(prompt.size());
  }
  at::Tensor scores() override {
    const at::Tensor lp = at::log_softmax(policy_.logits(), -1);
    const auto [top, idx] = at::topk(lp, k_);
    candidates_ = idx.contiguous();
    // Rows hold the shared prefix (a repeated scores() call drops the previous candidates).
    for (int64_t j = 0; j < k_; ++j) cache_.truncate(j, prefix_len_);
    ForwardOptions fo;
    fo.logits = ForwardOptions::Logits::kLast;
    const at::Tensor r = reward_.forward(Batch{.ids = candidates_.unsqueeze(1), .n_tokens = {}, .seq = {}}, cache_, fo)
                             .logits.select(1, 0)
                             .to(at::kFloat);
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
    policy_.append(token);
  }

 private:
  Follower policy_;
  const Model& reward_;
  int64_t k_;
  double w_;
  KvCache cache_;  // k rows; positions [0, prefix_len_) are the same in every row
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
  if (tokenizer)
    result.text = tokenizer->decode(std::vector<int32_t>(result.ids.begin(), result.ids.end()), /*skip_special=*/true);
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
