// The output heads of a model, offered to the layers above: the LM head that turns a final hidden state into
// next-token logits, and a linear score head on a causal LM's backbone (a *ForSequenceClassification sharing the
// backbone's tensors). Hugging Face tensor names stay in runtime.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace palign::runtime {

class Model;

// The LM head's weight [V, D] (the token embedding when tied), as the forward applies it to the final hidden state.
// Throws kUnsupported for a model without one (a sequence classifier).
at::Tensor lm_head(const Model& model);

// "XForSequenceClassification" for "XForCausalLM". Throws kUnsupported for any other architecture name.
std::string classification_architecture(const std::string& causal);

// A classifier on backbone's weights (the same tensors; no LM head) with a linear score head score_weight [K, D] on the
// last token's final hidden state, as the *ForSequenceClassification of the backbone's architecture: what
// `palign train reward --method bt` writes, and what lets ARGS read rewards off the policy's own pass. labels: one per
// row (empty: "reward" for one row, LABEL_k otherwise). pad_token_id: the classifier's (unset: the backbone's).
// Throws kInvalidArgument for a backbone that is not a *ForCausalLM or a head of the wrong shape.
std::unique_ptr<Model> classifier_on_backbone(const Model& backbone, const at::Tensor& score_weight,
                                              std::vector<std::string> labels = {},
                                              std::optional<int64_t> pad_token_id = std::nullopt);

// A classifier scoring Σ_k label_weights[k] · score_k: the K labels of a multi-objective classifier folded into one
// linear score head (exact, as the heads are linear), e.g. a user's profile weights. Throws kInvalidArgument for a
// model that is not a classifier or weights of the wrong count.
std::unique_ptr<Model> weighted_classifier(const Model& classifier, const std::vector<double>& label_weights);

}  // namespace palign::runtime
