// Shared forward pieces: batch planning (positions, masks), RoPE, RMSNorm, linears sized for the BLAS, hooked
// projections, and causal GQA attention over a KV cache. Compare transformers' modeling_llama.py
// (eager_attention_forward, apply_rotary_pos_emb, LlamaRotaryEmbedding, _compute_llama3_parameters).
#include <cmath>

#include "models/internal.h"
#include "palign/base/error.h"

namespace palign::runtime {

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  // inv_freq = 1 / theta^(arange(0, dim, 2) / dim), float32.
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = at::pow(c.rope.theta, exponents).reciprocal();
  if (c.rope.type == RopeType::kLinear) {
    inv_freq = inv_freq / c.rope.factor;
  } else if (c.rope.type == RopeType::kLlama3) {
    const double factor = c.rope.factor, low = c.rope.low_freq_factor, high = c.rope.high_freq_factor;
    const double old_len = static_cast<double>(c.rope.original_max_position);
    const double low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
    at::Tensor wavelen = (2 * M_PI) / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    at::Tensor smooth = (old_len / wavelen - low) / (high - low);
    at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq.contiguous();
}

BatchPlan make_plan(const ModelConfig& c, const ModelWeights& w, const Batch& batch, KvCache* cache) {
  BatchPlan p;
  p.B = batch.ids.size(0);
  p.T = batch.ids.size(1);
  p.cache = cache;
  p.n_tokens = batch.n_tokens.empty() ? std::vector<int64_t>(p.B, p.T) : batch.n_tokens;
  if (batch.seq.empty()) {
    for (int64_t b = 0; b < p.B; ++b) p.seq.push_back(b);
  } else {
    p.seq = batch.seq;
  }
  p.start.assign(p.B, 0);
  if (cache) {
    for (int64_t b = 0; b < p.B; ++b) p.start[b] = cache->length(p.seq[b]);
  }
  int64_t max_end = 0;
  bool uniform = true;
  for (int64_t b = 0; b < p.B; ++b) {
    max_end = std::max(max_end, p.start[b] + p.T);
    uniform = uniform && p.n_tokens[b] == p.T && p.start[b] == p.start[0] && p.seq[b] == p.seq[0] + b;
  }
  p.uniform = uniform;
  p.L = max_end;
  std::vector<int64_t> pos(static_cast<size_t>(p.B * p.T));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t) pos[b * p.T + t] = p.start[b] + t;
  p.positions = at::tensor(pos, at::kLong).view({p.B, p.T});
  p.seq_index = at::tensor(p.seq, at::kLong);

  // masked(b, t, j) = j > start_b + t  ||  (window && start_b + t - j >= window)
  at::Tensor query_pos = p.positions.view({p.B, 1, 1, p.T, 1});
  at::Tensor key_pos = at::arange(p.L, at::kLong).view({1, 1, 1, 1, p.L});
  p.mask = key_pos > query_pos;
  if (c.sliding_window) p.mask = p.mask.logical_or(query_pos - key_pos >= *c.sliding_window);

  if (c.arch != Arch::kGpt2) {
    at::Tensor freqs = p.positions.to(at::kFloat).unsqueeze(-1) * w.inv_freq;  // [B, T, hd/2]
    at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                   // [B, 1, T, hd]
    p.cos = emb.cos();
    p.sin = emb.sin();
  }
  return p;
}

at::Tensor apply_rope(const at::Tensor& x, const BatchPlan& plan) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * plan.cos + rotated * plan.sin;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor variance = x.pow(2).mean(-1, /*keepdim=*/true);
  return w * (x * at::rsqrt(variance + eps));
}

namespace {
// OpenBLAS 0.3.21 (DYNAMIC_ARCH, SkylakeX kernels) multiplies with its small-matrix kernel up to M·N·K = 1e6 and
// otherwise packs both operands first: 10 rows through a 704x256 linear took 96 us in one call and 41 us as two
// calls of 5 rows. One row through the 4096x256 LM head took 250 us as a gemm and 57 us as a gemv.
constexpr int64_t kSmallGemmMacs = 1000000;
constexpr int64_t kMaxSplitRows = 32;  // beyond this one large gemm is as fast
constexpr int64_t kMaxGemvRows = 4;    // 3 rows through the LM head: 186 us as gemvs, 386 us as one gemm
}  // namespace

at::Tensor apply_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / std::max<int64_t>(in, 1);
  const int64_t rows_per_call = kSmallGemmMacs / (out * in);
  const bool split = rows > 1 && rows <= kMaxSplitRows && rows > rows_per_call && rows_per_call >= 2;
  // The out= and gemv calls below record no graph, so training (grad mode) keeps at::linear.
  const bool gemv = rows >= 1 && rows <= kMaxGemvRows && out * in > kSmallGemmMacs;
  if (at::GradMode::is_enabled() || (!split && !gemv)) return at::linear(x, w, b);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  const at::Tensor x2 = x.reshape({rows, in});
  if (gemv) {
    at::Tensor y = at::empty({rows, out}, x.options());
    for (int64_t row = 0; row < rows; ++row) {
      at::Tensor y_row = y[row];
      at::mv_out(y_row, w, x2[row]);
    }
    return (b.defined() ? y + b : y).view(shape);
  }
  const at::Tensor wt = w.t();
  at::Tensor y = at::empty({rows, out}, x.options());
  for (int64_t row = 0; row < rows; row += rows_per_call) {
    const int64_t n = std::min(rows_per_call, rows - row);
    at::Tensor y_part = y.narrow(0, row, n);
    if (b.defined()) {
      at::addmm_out(y_part, b, x2.narrow(0, row, n), wt);
    } else {
      at::mm_out(y_part, x2.narrow(0, row, n), wt);
    }
  }
  return y.view(shape);
}

at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t layer, LinearKind kind,
                   const ForwardOptions& opts) {
  at::Tensor y = apply_linear(x, w, b);
  if (opts.linear_hook) opts.linear_hook->apply(layer, kind, x, y);
  return y;
}

at::Tensor attend(const ModelConfig& c, const BatchPlan& plan, int64_t layer, const at::Tensor& q,
                  const at::Tensor& k_new, const at::Tensor& v_new) {
  const int64_t B = plan.B, T = plan.T, H = c.n_head, Hkv = c.n_kv_head, G = H / Hkv, hd = c.head_dim;
  at::Tensor keys, values;  // [B, Hkv, L, hd]
  if (!plan.cache) {
    keys = k_new;
    values = v_new;
  } else {
    KvCache& cache = *plan.cache;
    at::Tensor& ck = cache.k(layer);
    at::Tensor& cv = cache.v(layer);
    if (plan.uniform) {
      ck.narrow(0, plan.seq[0], B).narrow(2, plan.start[0], T).copy_(k_new);
      cv.narrow(0, plan.seq[0], B).narrow(2, plan.start[0], T).copy_(v_new);
      keys = ck.narrow(0, plan.seq[0], B).narrow(2, 0, plan.L);
      values = cv.narrow(0, plan.seq[0], B).narrow(2, 0, plan.L);
    } else {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t n = plan.n_tokens[b];
        if (n == 0) continue;
        ck[plan.seq[b]].narrow(1, plan.start[b], n).copy_(k_new[b].narrow(1, 0, n));
        cv[plan.seq[b]].narrow(1, plan.start[b], n).copy_(v_new[b].narrow(1, 0, n));
      }
      keys = ck.index_select(0, plan.seq_index).narrow(2, 0, plan.L);
      values = cv.index_select(0, plan.seq_index).narrow(2, 0, plan.L);
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor qg = q.reshape({B, Hkv, G, T, hd});
  at::Tensor scores = at::matmul(qg, keys.unsqueeze(2).transpose(-1, -2)) * scale;  // [B, Hkv, G, T, L]
  scores = scores.masked_fill(plan.mask, -std::numeric_limits<float>::infinity());
  at::Tensor probs = at::softmax(scores, -1);
  at::Tensor out = at::matmul(probs, values.unsqueeze(2));  // [B, Hkv, G, T, hd]
  return out.reshape({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

}  // namespace palign::runtime
