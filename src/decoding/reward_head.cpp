// weighted_reward_model (see strategies.h).
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

}  // namespace palign::decoding
