// Shared forward pieces: batch planning (positions, masks), RoPE, RMSNorm, hooked projections (apply_linear in
// kernels/linear.cpp), and causal GQA attention over a KV cache. Compare transformers' modeling_llama.py
// (eager_attention_forward, apply_rotary_pos_emb, LlamaRotaryEmbedding, _compute_llama3_parameters).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t layer, LinearKind kind,
                   const BatchPlan& plan, const ForwardOptions& opts) {
  at::Tensor y = apply_linear(x, w, b, plan.kernel);
  if (opts.linear_hook) opts.linear_hook->apply(layer, kind, x, y);
  return y;
}

namespace {
// One query row against keys [lo, hi] of one cached head: scaled dot products, softmax, weighted sum of values.
// Sixteen lane-wise partial sums keep the dot product vectorisable (two AVX2 registers) without reassociating float
// math. Compiled twice, for baseline x86-64 and for AVX2 (no FMA: both give the same bits), and chosen by the call's
// linear kernel (runtime/linear.h), the one run-time dispatch of the forward.
[[gnu::always_inline]] inline void attend_one_body(const float* q, const float* keys, const float* values, int64_t lo,
                                                   int64_t hi, int64_t hd, float scale, float* scores, float* out) {
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  if (hi < lo) return;
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t j = lo; j <= hi; ++j) {
    const float* k = keys + j * hd;
    float lanes[16] = {};
    int64_t d = 0;
    for (; d + 16 <= hd; d += 16)
      for (int lane = 0; lane < 16; ++lane) lanes[lane] += q[d + lane] * k[d + lane];
    for (int lane = 0; lane < 8; ++lane) lanes[lane] += lanes[lane + 8];
    float dot = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (; d < hd; ++d) dot += q[d] * k[d];
    scores[j - lo] = dot * scale;
    max_score = std::max(max_score, scores[j - lo]);
  }
  float sum = 0.0f;
  for (int64_t j = lo; j <= hi; ++j) sum += (scores[j - lo] = std::exp(scores[j - lo] - max_score));
  const float inv_sum = 1.0f / sum;
  for (int64_t j = lo; j <= hi; ++j) {
    const float p = scores[j - lo] * inv_sum;
    const float* v = values + j * hd;
    for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
  }
}

void attend_one_baseline(const float* q, const float* keys, const float* values, int64_t lo, int64_t hi, int64_t hd,
                         float scale, float* scores, float* out) {
  attend_one_body(q, keys, values, lo, hi, hd, scale, scores, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) void attend_one_avx2(const float* q, const float* keys, const float* values, int64_t lo,
                                                     int64_t hi, int64_t hd, float scale, float* scores, float* out) {
  attend_one_body(q, keys, values, lo, hi, hd, scale, scores, out);
}
#else
constexpr auto attend_one_avx2 = attend_one_baseline;
#endif

// Decode step (T = 1, float32, no autograd): every row and head reads its keys straight from the cache, with no
// gather of non-contiguous rows and no tiny gemm per row and head (40 of them per layer for 10 rows).
at::Tensor attend_decode(const ModelConfig& c, const BatchPlan& plan, const at::Tensor& q, const at::Tensor& ck,
                         const at::Tensor& cv) {
  const int64_t B = plan.B, H = c.n_head, Hkv = c.n_kv_head, G = H / Hkv, hd = c.head_dim, cap = ck.size(2);
  const at::Tensor qc = q.contiguous();  // [B, H, 1, hd]
  at::Tensor out = at::empty({B, 1, H * hd}, q.options());
  const float* q_data = qc.data_ptr<float>();
  const float* k_data = ck.data_ptr<float>();
  const float* v_data = cv.data_ptr<float>();
  float* out_data = out.data_ptr<float>();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const auto attend_one = plan.kernel == LinearKernel::kBlas ? attend_one_baseline : attend_one_avx2;
  at::parallel_for(0, B * H, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(plan.L));
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t b = idx / H, head = idx % H;
      // Query position start_b attends keys [start_b - window + 1, start_b]; a row with no token this step attends
      // only what is cached (its output is not read).
      const int64_t hi = plan.start[b] + std::min<int64_t>(plan.n_tokens[b], 1) - 1;
      const int64_t lo = c.sliding_window ? std::max<int64_t>(0, plan.start[b] - *c.sliding_window + 1) : 0;
      const int64_t cache_offset = ((plan.seq[b] * Hkv) + head / G) * cap * hd;
      attend_one(q_data + idx * hd, k_data + cache_offset, v_data + cache_offset, lo, hi, hd, scale, scores.data(),
                 out_data + idx * hd);
    }
  });
  return out;
}
}  // namespace

at::Tensor attend(const ModelConfig& c, const BatchPlan& plan, int64_t layer, const at::Tensor& q,
                  const at::Tensor& k_new, const at::Tensor& v_new) {
  const int64_t B = plan.B, T = plan.T, H = c.n_head, Hkv = c.n_kv_head, G = H / Hkv, hd = c.head_dim;
  if (plan.cache && T == 1 && !at::GradMode::is_enabled() && q.scalar_type() == at::kFloat) {
    at::Tensor& ck = plan.cache->k(layer);
    at::Tensor& cv = plan.cache->v(layer);
    if (ck.scalar_type() == at::kFloat && ck.is_contiguous() && cv.is_contiguous() && !q.requires_grad()) {
      for (int64_t b = 0; b < B; ++b) {
        if (plan.n_tokens[b] == 0) continue;
        ck[plan.seq[b]].narrow(1, plan.start[b], 1).copy_(k_new[b]);
        cv[plan.seq[b]].narrow(1, plan.start[b], 1).copy_(v_new[b]);
      }
      return attend_decode(c, plan, q, ck, cv);
    }
  }
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
