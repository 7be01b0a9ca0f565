// tokenize_response and response_log_probs (see response_log_probs.h).
#include "palign/scoring/response_log_probs.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::scoring {

ResponseSequence tokenize_response(const runtime::Tokenizer& tok, const std::string& prompt,
                                   const std::string& response, int64_t max_tokens) {
  const std::vector<int32_t> full = tok.encode(prompt + response, /*add_special=*/true);
  const std::vector<int32_t> head = tok.encode(prompt, /*add_special=*/true);
  ResponseSequence s;
  s.ids.assign(full.begin(), full.begin() + std::min<int64_t>(static_cast<int64_t>(full.size()), max_tokens));
  s.response_start = std::max<int64_t>(1, static_cast<int64_t>(head.size()));
  return s;
}

at::Tensor response_log_probs(const runtime::Model& model, const std::vector<ResponseSequence>& sequences,
                              const runtime::LinearHook* hook,
                              const std::function<void(int64_t, at::Tensor&)>& residual_hook,
                              const at::Tensor& virtual_tokens) {
  PALIGN_CHECK(!sequences.empty(), ErrorCode::kInvalidArgument, "[scoring.response_log_probs] no sequences");
  const int64_t N = static_cast<int64_t>(sequences.size());
  int64_t T = 0;
  for (const auto& s : sequences) {
    PALIGN_CHECK(!s.ids.empty(), ErrorCode::kInvalidArgument, "[scoring.response_log_probs] an empty sequence");
    T = std::max<int64_t>(T, static_cast<int64_t>(s.ids.size()));
  }
  // Right-padded ids (padding with id 0, never scored) and the scored predictions: the hidden state at t - 1
  // predicts token t, which counts when it is a response token. Only those positions go through the LM head, so
  // prompt tokens cost no [V] logits.
  std::vector<int64_t> flat(static_cast<size_t>(N * T), 0), n_tokens(static_cast<size_t>(N));
  std::vector<int64_t> position, target, row;  // per scored token: flat index of the predicting state, token, row
  for (int64_t b = 0; b < N; ++b) {
    const auto& s = sequences[b];
    const int64_t n = static_cast<int64_t>(s.ids.size());
    std::copy(s.ids.begin(), s.ids.end(), flat.begin() + b * T);
    n_tokens[b] = n;
    for (int64_t t = std::max<int64_t>(s.response_start, 1); t < n; ++t) {
      position.push_back(b * T + t - 1);
      target.push_back(s.ids[t]);
      row.push_back(b);
    }
  }
  runtime::ForwardOptions fo;
  fo.logits = runtime::ForwardOptions::Logits::kNone;
  fo.return_hidden = true;
  fo.linear_hook = hook;
  fo.residual_hook = residual_hook;
  fo.virtual_tokens = virtual_tokens;
  const at::Tensor ids = at::tensor(flat, at::kLong).view({N, T});
  const at::Tensor hidden = model.forward_uncached({.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo).hidden;
  const at::Tensor states = hidden.reshape({N * T, hidden.size(-1)}).index_select(0, at::tensor(position, at::kLong));
  const at::Tensor logits = at::linear(states, runtime::lm_head(model));  // [M, V], M scored tokens
  const at::Tensor lp =
      logits.gather(1, at::tensor(target, at::kLong).unsqueeze(1)).squeeze(1) - at::logsumexp(logits, -1);  // [M]
  // Summed in double: no summation-order effects between a padded batch and one row alone.
  return at::zeros({N}, lp.options().dtype(at::kDouble)).index_add(0, at::tensor(row, at::kLong), lp.to(at::kDouble));
}

}  // namespace palign::scoring
