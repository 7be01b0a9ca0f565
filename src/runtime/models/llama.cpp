// The Llama decoder family: Llama, Mistral, Qwen2 (q/k/v biases), Qwen3 (q/k RMSNorm over head_dim).
// Pre-norm blocks: x += o(attn(rope(q(n(x))), rope(k(n(x))), v(n(x)))); x += down(silu(gate(n(x))) * up(n(x))).
// Compare transformers' modeling_llama.py / modeling_qwen3.py.
#include "models/internal.h"
#include "palign/base/error.h"

namespace palign::runtime {

void resolve_llama_weights(const ModelConfig& c, const WeightSource& src, ModelWeights& w) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, hd = c.head_dim;
  const int64_t q_out = c.n_head * hd, kv_out = c.n_kv_head * hd;
  // Checkpoints of *ForCausalLM prefix the body with "model."; a bare *Model checkpoint does not.
  const std::string pre = src.has("model.embed_tokens.weight") || !src.has("embed_tokens.weight") ? "model." : "";
  w.embed = src.take(pre + "embed_tokens.weight", {c.vocab_size, D}, w);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = pre + "layers." + std::to_string(i) + ".";
    LayerWeights lw;
    lw.attn_norm = src.take(p + "input_layernorm.weight", {D}, w);
    lw.q = src.take(p + "self_attn.q_proj.weight", {q_out, D}, w);
    lw.k = src.take(p + "self_attn.k_proj.weight", {kv_out, D}, w);
    lw.v = src.take(p + "self_attn.v_proj.weight", {kv_out, D}, w);
    lw.o = src.take(p + "self_attn.o_proj.weight", {D, q_out}, w);
    if (c.attention_bias) {
      lw.q_b = src.take(p + "self_attn.q_proj.bias", {q_out}, w);
      lw.k_b = src.take(p + "self_attn.k_proj.bias", {kv_out}, w);
      lw.v_b = src.take(p + "self_attn.v_proj.bias", {kv_out}, w);
    }
    if (c.attention_out_bias) lw.o_b = src.take(p + "self_attn.o_proj.bias", {D}, w);
    if (c.qk_norm) {
      lw.q_norm = src.take(p + "self_attn.q_norm.weight", {hd}, w);
      lw.k_norm = src.take(p + "self_attn.k_norm.weight", {hd}, w);
    }
    lw.mlp_norm = src.take(p + "post_attention_layernorm.weight", {D}, w);
    lw.gate = src.take(p + "mlp.gate_proj.weight", {F, D}, w);
    lw.up = src.take(p + "mlp.up_proj.weight", {F, D}, w);
    lw.down = src.take(p + "mlp.down_proj.weight", {D, F}, w);
    if (c.mlp_bias) {
      lw.gate_b = src.take(p + "mlp.gate_proj.bias", {F}, w);
      lw.up_b = src.take(p + "mlp.up_proj.bias", {F}, w);
      lw.down_b = src.take(p + "mlp.down_proj.bias", {D}, w);
    }
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = src.take(pre + "norm.weight", {D}, w);
  if (c.head == HeadKind::kSequenceClassification) {
    w.head = src.take("score.weight", {c.num_labels, D}, w);
  } else if (c.tie_word_embeddings) {
    w.head = w.embed;
  } else {
    PALIGN_CHECK(src.has("lm_head.weight"), ErrorCode::kInvalidArgument, "[runtime.Model] ", src.origin(),
                 ": config.json says tie_word_embeddings=false but there is no lm_head.weight");
    w.head = src.take("lm_head.weight", {c.vocab_size, D}, w);
  }
  w.inv_freq = rope_inv_freq(c);
}

at::Tensor llama_layer(const ModelConfig& c, const LayerWeights& lw, int64_t layer, const at::Tensor& x,
                       const BatchPlan& plan, const ForwardOptions& opts) {
  const int64_t B = plan.B, T = plan.T, hd = c.head_dim;
  at::Tensor h = rms_norm(x, lw.attn_norm, c.norm_eps);
  trace(opts, layer, "attn_norm", h);
  at::Tensor q = project(h, lw.q, lw.q_b, layer, LinearKind::kQ, plan, opts).view({B, T, c.n_head, hd});
  at::Tensor k = project(h, lw.k, lw.k_b, layer, LinearKind::kK, plan, opts).view({B, T, c.n_kv_head, hd});
  at::Tensor v = project(h, lw.v, lw.v_b, layer, LinearKind::kV, plan, opts).view({B, T, c.n_kv_head, hd});
  if (c.qk_norm) {
    q = rms_norm(q, lw.q_norm, c.norm_eps);
    k = rms_norm(k, lw.k_norm, c.norm_eps);
  }
  q = apply_rope(q.transpose(1, 2), plan);  // [B, H, T, hd]
  k = apply_rope(k.transpose(1, 2), plan);  // [B, Hkv, T, hd]
  v = v.transpose(1, 2);
  trace(opts, layer, "q", q);
  trace(opts, layer, "k", k);
  trace(opts, layer, "v", v);
  at::Tensor a = attend(c, plan, layer, q, k, v);
  at::Tensor attn_out = project(a, lw.o, lw.o_b, layer, LinearKind::kO, plan, opts);
  trace(opts, layer, "attn_out", attn_out);
  at::Tensor r = x + attn_out;
  h = rms_norm(r, lw.mlp_norm, c.norm_eps);
  at::Tensor gate = project(h, lw.gate, lw.gate_b, layer, LinearKind::kGate, plan, opts);
  at::Tensor up = project(h, lw.up, lw.up_b, layer, LinearKind::kUp, plan, opts);
  at::Tensor ffn = project(at::silu(gate) * up, lw.down, lw.down_b, layer, LinearKind::kDown, plan, opts);
  trace(opts, layer, "ffn_out", ffn);
  return r + ffn;
}

}  // namespace palign::runtime
