// lm_head, classifier_on_backbone and weighted_classifier (see heads.h).
#include "palign/runtime/heads.h"

#include <ATen/ATen.h>

#include <map>

#include "palign/base/error.h"
#include "palign/runtime/model.h"

namespace palign::runtime {

namespace {
constexpr std::string_view kCausal = "ForCausalLM";
constexpr const char* kLmHead = "lm_head.weight";
constexpr const char* kScore = "score.weight";
}  // namespace

at::Tensor lm_head(const Model& model) {
  const bool tied = model.config().tie_word_embeddings;
  constexpr std::string_view embed = "embed_tokens.weight";
  if (model.config().head == HeadKind::kCausalLm)
    for (const auto& [name, t] : model.named_weights())
      if (tied ? name.ends_with(embed) : name == kLmHead) return t;
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.lm_head] the ", model.config().architecture, " has no ",
               tied ? std::string(embed) : std::string(kLmHead), " to score tokens with; pass a *ForCausalLM model");
}

std::string classification_architecture(const std::string& causal) {
  PALIGN_CHECK(causal.size() > kCausal.size() && causal.ends_with(kCausal), ErrorCode::kUnsupported,
               "[runtime.classifier] the backbone is a ", causal,
               "; a score head needs a *ForCausalLM backbone (Llama, Mistral, Qwen2, Qwen3)");
  return causal.substr(0, causal.size() - kCausal.size()) + "ForSequenceClassification";
}

std::unique_ptr<Model> classifier_on_backbone(const Model& backbone, const at::Tensor& score_weight,
                                              std::vector<std::string> labels, std::optional<int64_t> pad_token_id) {
  ModelConfig c = backbone.config();
  PALIGN_CHECK(c.head == HeadKind::kCausalLm, ErrorCode::kInvalidArgument,
               "[runtime.classifier] a score head on a backbone needs a *ForCausalLM, not ", c.architecture);
  PALIGN_CHECK(score_weight.defined() && score_weight.dim() == 2 && score_weight.size(1) == c.hidden_size &&
                   score_weight.size(0) >= 1 &&
                   (labels.empty() || static_cast<int64_t>(labels.size()) == score_weight.size(0)),
               ErrorCode::kInvalidArgument, "[runtime.classifier] the score head must be [K, ", c.hidden_size,
               "] with one label per row, got ", score_weight.defined() ? score_weight.sizes() : at::IntArrayRef{});
  c.architecture = classification_architecture(c.architecture);  // kUnsupported for e.g. GPT-2's LM head model
  c.head = HeadKind::kSequenceClassification;
  c.num_labels = score_weight.size(0);
  if (labels.empty())
    for (int64_t k = 0; k < c.num_labels; ++k)
      labels.push_back(c.num_labels == 1 ? "reward" : "LABEL_" + std::to_string(k));
  c.id2label = std::move(labels);
  if (pad_token_id) c.pad_token_id = pad_token_id;
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : backbone.named_weights())
    if (name != kLmHead) named[name] = t;
  named[kScore] = score_weight.to(at::kFloat).contiguous();
  return Model::from_weights(std::move(c), std::move(named), backbone.options());
}

std::unique_ptr<Model> weighted_classifier(const Model& classifier, const std::vector<double>& label_weights) {
  ModelConfig c = classifier.config();
  PALIGN_CHECK(c.head == HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument, "[runtime.classifier] ",
               c.architecture, " is not a reward (sequence-classification) model");
  PALIGN_CHECK(static_cast<int64_t>(label_weights.size()) == c.num_labels, ErrorCode::kInvalidArgument,
               "[runtime.classifier] ", label_weights.size(), " weights for a reward model with ", c.num_labels,
               " labels; give one weight per label");
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : classifier.named_weights()) named[name] = t;
  const auto head = named.find(kScore);
  PALIGN_CHECK(head != named.end(), ErrorCode::kInvalidArgument, "[runtime.classifier] the reward model has no ",
               kScore);
  const at::Tensor w = at::tensor(std::vector<float>(label_weights.begin(), label_weights.end()), at::kFloat);
  head->second = at::matmul(w.unsqueeze(0), head->second.to(at::kFloat));  // [1, D]
  c.num_labels = 1;
  c.id2label = {"reward"};
  return Model::from_weights(std::move(c), std::move(named), classifier.options());
}

}  // namespace palign::runtime
