// weighted_reward_model and reward_on_backbone (see strategies.h).
#include <ATen/ATen.h>

#include <map>

#include "palign/base/error.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/model.h"

namespace palign::decoding {

std::unique_ptr<runtime::Model> weighted_reward_model(const runtime::Model& reward,
                                                      const std::vector<double>& label_weights) {
  runtime::ModelConfig c = reward.config();
  PALIGN_CHECK(c.head == runtime::HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument, "[decoding] ",
               c.architecture, " is not a reward (sequence-classification) model");
  PALIGN_CHECK(static_cast<int64_t>(label_weights.size()) == c.num_labels, ErrorCode::kInvalidArgument,
               "[decoding] ", label_weights.size(), " weights for a reward model with ", c.num_labels,
               " labels; give one weight per label");
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : reward.named_weights()) named[name] = t;
  const auto head = named.find("score.weight");
  PALIGN_CHECK(head != named.end(), ErrorCode::kInvalidArgument, "[decoding] the reward model has no score.weight");
  const at::Tensor w = at::tensor(std::vector<float>(label_weights.begin(), label_weights.end()), at::kFloat);
  head->second = at::matmul(w.unsqueeze(0), head->second.to(at::kFloat));  // [1, D]
  c.num_labels = 1;
  c.id2label = {"reward"};
  return runtime::Model::from_weights(std::move(c), std::move(named));
}

std::unique_ptr<runtime::Model> reward_on_backbone(const runtime::Model& policy, const at::Tensor& score_weight,
                                                   std::vector<std::string> labels) {
  runtime::ModelConfig c = policy.config();
  const std::string suffix = "ForCausalLM";
  PALIGN_CHECK(c.head == runtime::HeadKind::kCausalLm && c.architecture.size() > suffix.size() &&
                   c.architecture.compare(c.architecture.size() - suffix.size(), suffix.size(), suffix) == 0,
               ErrorCode::kInvalidArgument, "[decoding] a reward on the backbone needs a *ForCausalLM policy, not ",
               c.architecture);
  PALIGN_CHECK(score_weight.dim() == 2 && score_weight.size(1) == c.hidden_size && score_weight.size(0) >= 1 &&
                   (labels.empty() || static_cast<int64_t>(labels.size()) == score_weight.size(0)),
               ErrorCode::kInvalidArgument, "[decoding] the score head must be [K, ", c.hidden_size,
               "] with one label per row, got ", score_weight.sizes());
  c.architecture = c.architecture.substr(0, c.architecture.size() - suffix.size()) + "ForSequenceClassification";
  c.head = runtime::HeadKind::kSequenceClassification;
  c.num_labels = score_weight.size(0);
  if (labels.empty())
    for (int64_t k = 0; k < c.num_labels; ++k) labels.push_back(c.num_labels == 1 ? "reward" : "LABEL_" + std::to_string(k));
  c.id2label = std::move(labels);
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : policy.named_weights())
    if (name != "lm_head.weight") named[name] = t;
  named["score.weight"] = score_weight.to(at::kFloat);
  return runtime::Model::from_weights(std::move(c), std::move(named));
}

}  // namespace palign::decoding
