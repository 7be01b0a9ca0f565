// A response's log-likelihood under a causal LM: the tokenized (prompt, response) sequence and the summed log-probs of
// its response tokens. GenARM's autoregressive reward scores with it, and the pairwise trainers (DPO, IPO, SimPO,
// P-DPO, BiPO, arm) train on it. Shapes: N sequences, T tokens of the longest, V vocabulary.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace palign::runtime {
class LinearHook;
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::scoring {

// One tokenized text: ids = encode(prompt + response, add_special=true) (at most max_tokens), and the index of the
// first response token, len(encode(prompt, add_special=true)) (at least 1: the first token is never scored).
struct ResponseSequence {
  std::vector<int64_t> ids;
  int64_t response_start = 1;
};
ResponseSequence tokenize_response(const runtime::Tokenizer& tok, const std::string& prompt,
                                   const std::string& response, int64_t max_tokens);

// Σ_{t ≥ response_start} log π(ids[t] | ids[<t]) of each sequence under model (with hook, e.g. a LoraAdapter; may be
// null): [N] float64 (summed in double from float32 log-probs). The sequences run as right-padded rows of one forward
// pass; records the autograd graph when grad mode is on and the hook's or the model's tensors require grad. Throws
// kInvalidArgument for no sequences or an empty one.
// residual_hook (optional): changes the residual stream too, e.g. a steering vector being trained (BiPO).
// virtual_tokens (optional): the table of ids >= V in the sequences (ForwardOptions::virtual_tokens).
at::Tensor response_log_probs(const runtime::Model& model, const std::vector<ResponseSequence>& sequences,
                              const runtime::LinearHook* hook,
                              const std::function<void(int64_t, at::Tensor&)>& residual_hook = {},
                              const at::Tensor& virtual_tokens = {});

}  // namespace palign::scoring
