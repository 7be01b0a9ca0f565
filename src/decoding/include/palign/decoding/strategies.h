// Decoding-time strategies over several models that share a vocabulary. Each is a NextTokenScorer — next-token scores
// [V] for the current text, and an append — driven by one loop (decode) with the runtime's sampler, so greedy takes
// the argmax of the scores and sampling draws from softmax(scores / temperature) after the usual filters.
//   fusion  Σ_i w_i · log_softmax(logits_i): MOD (Shi et al. 2024) over per-dimension policies, GenARM / PAD over a
//           base and autoregressive rewards. Any real weights (negative ones extrapolate).
//   proxy   proxy-tuning (Liu et al. 2024): base logits + α · (expert logits − anti-expert logits); DeRa is the same
//           rule between a base and an aligned model.
//   contrast  contrastive context steering: l_with + λ · (l_with − l_without) of the user's preference prompt.
//   args    ARGS (Khanov et al. 2024): the policy's top-k tokens v scored s(v) = log_softmax(policy)[v] + w · r(prefix
//   + v),
//           r the reward model's first score; the k candidates are scored in one batch over the reward model's cached
//           prefix (forked KV cache).
// Every model keeps its own KV cache: one forward of one token per model per step.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "palign/runtime/generate.h"

namespace palign::runtime {
class Model;
class LoraAdapter;
}  // namespace palign::runtime

namespace palign::decoding {

class NextTokenScorer {
 public:
  virtual ~NextTokenScorer() = default;
  // Scores [V] float32 of the next token after the prompt and every appended token (-inf: never chosen).
  virtual at::Tensor scores() = 0;
  virtual void append(int64_t token) = 0;
};

// The decode loop: the prompt goes to the scorers' constructors; stops at options.stop_ids (kept in the output) or
// after max_new_tokens (clipped to the context). One sample; sampling uses options.sampling.seed.
runtime::GenerateResult decode(NextTokenScorer& scorer, std::span<const int64_t> prompt,
                               const runtime::GenerateOptions& options, int64_t max_position,
                               const runtime::Tokenizer* tokenizer = nullptr);

// Throws kInvalidArgument: no models, weights of the wrong count, models with different vocabularies, a context
// the prompt does not fit.
std::unique_ptr<NextTokenScorer> make_fusion(const std::vector<const runtime::Model*>& models,
                                             const std::vector<double>& weights, std::span<const int64_t> prompt);
// fusion over K LoRA experts of one base (nullptr = the base itself): the experts are K rows of one batched forward
// per step (runtime::LoraBatchHook), not K models. Throws kInvalidArgument as make_fusion does.
std::unique_ptr<NextTokenScorer> make_lora_fusion(const runtime::Model& base,
                                                  const std::vector<const runtime::LoraAdapter*>& experts,
                                                  const std::vector<double>& weights, std::span<const int64_t> prompt);
struct Personalization;
// The fusion strategy's experts and weights for one request over LoRA adapters held in memory (a fusion row of a
// serving batch, decoded as make_lora_fusion decodes): the adapters named by models_text (comma-separated names of
// `adapters`, in that order), weighted by weights_text (numbers in that order, or name=number pairs) when given, else
// by the profile's weights of those names. Throws kInvalidArgument as the fusion strategy does: no models, a name
// `adapters` lacks, weights that do not fit, neither weights nor a profile.
struct FusionExperts {
  std::vector<std::string> names;
  std::vector<const runtime::LoraAdapter*> experts;
  std::vector<double> weights;
};
FusionExperts request_fusion_experts(const std::map<std::string, const runtime::LoraAdapter*>& adapters,
                                     const std::string& models_text, const std::string& weights_text,
                                     const Personalization* profile);
std::unique_ptr<NextTokenScorer> make_proxy(const runtime::Model& base, const runtime::Model& expert,
                                            const runtime::Model& antiexpert, double alpha,
                                            std::span<const int64_t> prompt);
// contrastive context steering: l_with + λ · (l_with − l_without), where "with" continues context + prompt and
// "without" the prompt alone (both append the same generated tokens). λ = 0 is plain decoding with the context.
std::unique_ptr<NextTokenScorer> make_contrast(const runtime::Model& model, std::span<const int64_t> with_context,
                                               std::span<const int64_t> without_context, double lambda);
// reward: a sequence-classification model over the policy's vocabulary. Throws kInvalidArgument for k < 1 or k
// beyond the vocabulary, a reward model that is not a classifier, different vocabularies.
std::unique_ptr<NextTokenScorer> make_args(const runtime::Model& policy, const runtime::Model& reward, int64_t k,
                                           double w, std::span<const int64_t> prompt);

}  // namespace palign::decoding
