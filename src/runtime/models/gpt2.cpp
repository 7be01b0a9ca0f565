// GPT-2: learned positions, LayerNorm, fused Conv1D c_attn ([in, out] layout, viewed here as [out, in] linears),
// gelu_new MLP. Compare transformers' modeling_gpt2.py.
#include "models/internal.h"
#include "palign/base/error.h"

namespace palign::runtime {

void resolve_gpt2_weights(const ModelConfig& c, const WeightSource& src, ModelWeights& w) {
  const int64_t D = c.hidden_size, F = c.intermediate_size;
  // GPT2LMHeadModel checkpoints prefix "transformer."; the original hub gpt2 files do not.
  const std::string pre = src.has("transformer.wte.weight") ? "transformer." : "";
  w.embed = src.take(pre + "wte.weight", {c.vocab_size, D}, w);
  w.pos_embed = src.take(pre + "wpe.weight", {c.max_position, D}, w);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = pre + "h." + std::to_string(i) + ".";
    LayerWeights lw;
    lw.attn_norm = src.take(p + "ln_1.weight", {D}, w);
    lw.attn_norm_b = src.take(p + "ln_1.bias", {D}, w);
    at::Tensor c_attn = src.take(p + "attn.c_attn.weight", {D, 3 * D}, w).t();  // [3D, D]
    at::Tensor c_attn_b = src.take(p + "attn.c_attn.bias", {3 * D}, w);
    // Views: Conv1D's [in, out] storage is already the layout at::linear multiplies fastest (see model.cpp).
    lw.q = c_attn.narrow(0, 0, D);
    lw.k = c_attn.narrow(0, D, D);
    lw.v = c_attn.narrow(0, 2 * D, D);
    lw.q_b = c_attn_b.narrow(0, 0, D);
    lw.k_b = c_attn_b.narrow(0, D, D);
    lw.v_b = c_attn_b.narrow(0, 2 * D, D);
    lw.o = src.take(p + "attn.c_proj.weight", {D, D}, w).t();
    lw.o_b = src.take(p + "attn.c_proj.bias", {D}, w);
    lw.mlp_norm = src.take(p + "ln_2.weight", {D}, w);
    lw.mlp_norm_b = src.take(p + "ln_2.bias", {D}, w);
    lw.up = src.take(p + "mlp.c_fc.weight", {D, F}, w).t();
    lw.up_b = src.take(p + "mlp.c_fc.bias", {F}, w);
    lw.down = src.take(p + "mlp.c_proj.weight", {F, D}, w).t();
    lw.down_b = src.take(p + "mlp.c_proj.bias", {D}, w);
    w.layers.push_back(std::move(lw));
  }
  w.final_norm = src.take(pre + "ln_f.weight", {D}, w);
  w.final_norm_b = src.take(pre + "ln_f.bias", {D}, w);
  if (c.tie_word_embeddings || !src.has("lm_head.weight")) {
    w.head = w.embed;
  } else {
    w.head = src.take("lm_head.weight", {c.vocab_size, D}, w);
  }
}

at::Tensor gpt2_layer(const ModelConfig& c, const LayerWeights& lw, int64_t layer, const at::Tensor& x,
                      const BatchPlan& plan, const ForwardOptions& opts) {
  const int64_t B = plan.B, T = plan.T, hd = c.head_dim, D = c.hidden_size;
  at::Tensor h = at::layer_norm(x, {D}, lw.attn_norm, lw.attn_norm_b, c.norm_eps);
  trace(opts, layer, "attn_norm", h);
  at::Tensor q = project(h, lw.q, lw.q_b, layer, LinearKind::kQ, plan, opts).view({B, T, c.n_head, hd}).transpose(1, 2);
  at::Tensor k = project(h, lw.k, lw.k_b, layer, LinearKind::kK, plan, opts).view({B, T, c.n_head, hd}).transpose(1, 2);
  at::Tensor v = project(h, lw.v, lw.v_b, layer, LinearKind::kV, plan, opts).view({B, T, c.n_head, hd}).transpose(1, 2);
  trace(opts, layer, "q", q);
  trace(opts, layer, "k", k);
  trace(opts, layer, "v", v);
  at::Tensor a = attend(c, plan, layer, q, k, v);
  at::Tensor attn_out = project(a, lw.o, lw.o_b, layer, LinearKind::kO, plan, opts);
  trace(opts, layer, "attn_out", attn_out);
  at::Tensor r = x + attn_out;
  h = at::layer_norm(r, {D}, lw.mlp_norm, lw.mlp_norm_b, c.norm_eps);
  at::Tensor up = project(h, lw.up, lw.up_b, layer, LinearKind::kUp, plan, opts);
  at::Tensor act = c.activation == Activation::kGeluTanh ? at::gelu(up, "tanh") : at::gelu(up);
  at::Tensor ffn = project(act, lw.down, lw.down_b, layer, LinearKind::kDown, plan, opts);
  trace(opts, layer, "ffn_out", ffn);
  return r + ffn;
}

}  // namespace palign::runtime
