// Private to runtime: resolved weights, the per-call batch plan, and the shared pieces of the transformer forward
// (RoPE, masked attention over a KV cache) used by the per-architecture files llama.cpp and gpt2.cpp.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "palign/runtime/config.h"
#include "palign/runtime/kv_cache.h"
#include "palign/runtime/linear.h"
#include "palign/runtime/model.h"

namespace palign::runtime {

// One decoder layer's tensors (float32, [out, in] for linears). Unused ones stay undefined.
// note: inference linears are [out, in] views of contiguous [in, out] storage (use_transposed_layout in model.cpp).
struct LayerWeights {
  at::Tensor attn_norm, attn_norm_b;  // RMSNorm weight (Llama) or LayerNorm weight/bias (GPT-2)
  at::Tensor q, k, v, o, q_b, k_b, v_b, o_b;
  at::Tensor q_norm, k_norm;  // Qwen3
  at::Tensor mlp_norm, mlp_norm_b;
  at::Tensor gate, up, down, gate_b, up_b, down_b;  // GPT-2: up = c_fc, down = mlp.c_proj
};

struct ModelWeights {
  at::Tensor embed;      // [V, D]
  at::Tensor pos_embed;  // GPT-2: [max_position, D]
  std::vector<LayerWeights> layers;
  at::Tensor final_norm, final_norm_b;
  at::Tensor head;      // lm_head [V, D] (the embedding when tied) or score [num_labels, D]
  at::Tensor inv_freq;  // RoPE inverse frequencies [head_dim / 2]
  // The tensors under their Hugging Face names, as a checkpoint holds them (for save and n_params).
  std::vector<std::pair<std::string, at::Tensor>> named;
  bool requires_grad = false;
};

// Looks tensors up by Hugging Face name and checks shapes.
class WeightSource {
 public:
  WeightSource(std::map<std::string, at::Tensor> tensors, std::string origin)
      : tensors_(std::move(tensors)), origin_(std::move(origin)) {}
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor, checked against shape; records it in weights.named. Throws kInvalidArgument when missing or
  // mis-shaped.
  at::Tensor take(const std::string& name, std::vector<int64_t> shape, ModelWeights& weights) const;
  at::Tensor take_optional(const std::string& name, std::vector<int64_t> shape, ModelWeights& weights) const;
  const std::string& origin() const { return origin_; }
  std::vector<std::string> unused(const ModelWeights& weights) const;

 private:
  std::map<std::string, at::Tensor> tensors_;
  std::string origin_;
};

void resolve_llama_weights(const ModelConfig& c, const WeightSource& src, ModelWeights& w);
void resolve_gpt2_weights(const ModelConfig& c, const WeightSource& src, ModelWeights& w);

// RoPE inverse frequencies [head_dim / 2] as transformers computes them (default, linear, llama3).
at::Tensor rope_inv_freq(const ModelConfig& c);

// Everything about one forward call that does not depend on the layer.
struct BatchPlan {
  int64_t B = 0, T = 0, L = 0;
  std::vector<int64_t> n_tokens;  // per row
  std::vector<int64_t> seq;       // cache sequence per row
  std::vector<int64_t> start;     // cached length per row before this call
  KvCache* cache = nullptr;       // null: no cache, keys are this call's tokens only
  bool uniform = false;           // contiguous seqs, equal starts, all rows full
  at::Tensor seq_index;           // [B] int64, for gathering non-contiguous rows
  at::Tensor positions;           // [B, T] int64
  at::Tensor mask;                // [B, 1, 1, T, L] bool, true = masked
  at::Tensor cos, sin;            // [B, 1, T, head_dim] (RoPE models)
  LinearKernel kernel = LinearKernel::kBlas;  // the call's linear kernel (ForwardOptions, else the model's)
};

BatchPlan make_plan(const ModelConfig& c, const ModelWeights& w, const Batch& batch, KvCache* cache);

// Causal attention of this call's queries over the cached and new keys; writes k_new/v_new into the cache.
// q: [B, H, T, hd]; k_new, v_new: [B, Hkv, T, hd]. Returns [B, T, H * hd].
at::Tensor attend(const ModelConfig& c, const BatchPlan& plan, int64_t layer, const at::Tensor& q,
                  const at::Tensor& k_new, const at::Tensor& v_new);

// q * cos + rotate_half(q) * sin. x: [B, H, T, hd].
at::Tensor apply_rope(const at::Tensor& x, const BatchPlan& plan);

// x: [..., D]; transformers' LlamaRMSNorm: w * (x * rsqrt(mean(x^2) + eps)).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// y = x W^T + b, then the hook's delta.
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t layer, LinearKind kind,
                   const BatchPlan& plan, const ForwardOptions& opts);

inline void trace(const ForwardOptions& opts, int64_t layer, std::string_view name, const at::Tensor& t) {
  if (opts.trace) opts.trace(layer, name, t);
}

// One decoder layer, residual stream in and out ([B, T, D]).
at::Tensor llama_layer(const ModelConfig& c, const LayerWeights& lw, int64_t layer, const at::Tensor& x,
                       const BatchPlan& plan, const ForwardOptions& opts);
at::Tensor gpt2_layer(const ModelConfig& c, const LayerWeights& lw, int64_t layer, const at::Tensor& x,
                      const BatchPlan& plan, const ForwardOptions& opts);

}  // namespace palign::runtime
