// Model loading, saving and the architecture-independent part of the forward pass (input checks, embeddings,
// final norm, LM / classification heads). The layers live in models/llama.cpp and models/gpt2.cpp.
#include "palign/runtime/model.h"

#include <fstream>
#include <optional>

#include "models/internal.h"
#include "palign/base/error.h"
#include "palign/runtime/platform.h"
#include "palign/runtime/safetensors.h"

namespace palign::runtime {

namespace fs = std::filesystem;

std::string_view linear_kind_name(LinearKind kind) {
  switch (kind) {
    case LinearKind::kQ: return "q_proj";
    case LinearKind::kK: return "k_proj";
    case LinearKind::kV: return "v_proj";
    case LinearKind::kO: return "o_proj";
    case LinearKind::kGate: return "gate_proj";
    case LinearKind::kUp: return "up_proj";
    case LinearKind::kDown: return "down_proj";
    case LinearKind::kSentinel: break;
  }
  return "unknown";
}

namespace {
std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

at::Tensor WeightSource::take(const std::string& name, std::vector<int64_t> shape, ModelWeights& weights) const {
  auto it = tensors_.find(name);
  PALIGN_CHECK(it != tensors_.end(), ErrorCode::kInvalidArgument, "[runtime.Model] ", origin_, ": missing weight '",
               name, "'; the checkpoint does not match config.json");
  const at::Tensor& t = it->second;
  PALIGN_CHECK(t.sizes().vec() == shape, ErrorCode::kInvalidArgument, "[runtime.Model] ", origin_, ": weight '", name,
               "' has shape ", shape_str(t.sizes()), " but config.json implies ", shape_str(shape));
  weights.named.emplace_back(name, t);
  return t;
}

std::vector<std::string> WeightSource::unused(const ModelWeights& weights) const {
  std::map<std::string, bool> used;
  for (const auto& [name, t] : weights.named) used[name] = true;
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_)
    if (!used.count(name)) out.push_back(name);
  return out;
}

Model::Model(ModelConfig config, std::unique_ptr<ModelWeights> weights, std::string stored_dtype, ModelOptions options)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      stored_dtype_(std::move(stored_dtype)),
      options_(options) {
  check_linear_kernel(options_.linear_kernel, "runtime.Model");
}
Model::~Model() = default;

namespace {

// Inference layout: a linear weight W [out, in] that does not require grad is kept as the contiguous W^T [in, out]
// and used through the view W = (W^T).t(), so at::linear multiplies x by W^T as stored. With W itself, OpenBLAS
// 0.3.21 packs the whole matrix into scratch before every multiply of more than ~1200 / out rows (the LM head always;
// a 3-row forward cost ~3x a 1-row one). The copy replaces the original in the layers, the head (and the tied
// embedding) and `named`, so the model still holds one copy of each weight; a caller that keeps its own tensors
// (from_weights) keeps those alive too. Weights that require grad stay the caller's leaves, so gradients reach them.
void use_transposed_layout(ModelWeights& w) {
  // original -> (original, view of its transposed copy); holding the original keeps its address from being reused.
  std::map<const c10::TensorImpl*, std::pair<at::Tensor, at::Tensor>> done;
  const auto relayout = [&](at::Tensor& t) {
    if (!t.defined() || t.dim() != 2 || t.requires_grad()) return;
    if (t.stride(0) == 1 && t.stride(1) >= t.size(0)) return;  // already [in, out] in memory (GPT-2's Conv1D)
    auto [it, fresh] = done.try_emplace(t.unsafeGetTensorImpl());
    if (fresh) it->second = {t, t.t().contiguous().t()};
    t = it->second.second;
  };
  for (LayerWeights& lw : w.layers)
    for (at::Tensor* t : {&lw.q, &lw.k, &lw.v, &lw.o, &lw.gate, &lw.up, &lw.down}) relayout(*t);
  const bool tied = w.head.defined() && w.head.is_same(w.embed);
  relayout(w.head);
  // The embedding lookup gathers D strided floats per token from the shared [D, V] copy; negligible next to a layer.
  if (tied) w.embed = w.head;
  for (auto& [name, t] : w.named) {
    const auto it = done.find(t.unsafeGetTensorImpl());
    if (it != done.end()) t = it->second.second;
  }
}

std::unique_ptr<ModelWeights> resolve(const ModelConfig& config, const WeightSource& src) {
  auto w = std::make_unique<ModelWeights>();
  if (config.arch == Arch::kGpt2) {
    PALIGN_CHECK(config.head == HeadKind::kCausalLm, ErrorCode::kUnsupported,
                 "[runtime.Model] GPT-2 sequence classification is not supported");
    resolve_gpt2_weights(config, src, *w);
  } else {
    resolve_llama_weights(config, src, *w);
  }
  for (const auto& [name, t] : w->named) w->requires_grad = w->requires_grad || t.requires_grad();
  use_transposed_layout(*w);
  return w;
}
}  // namespace

std::unique_ptr<Model> Model::load(const fs::path& dir, const ModelOptions& options) {
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, "[runtime.Model] model directory ", dir.string(),
               " does not exist; pass a Hugging Face model directory to --model");
  ModelConfig config = ModelConfig::load(dir / "config.json");
  match_blas_threads();
  WeightFiles files = WeightFiles::open_dir(dir);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& name : files.names()) {
    // Rotary caches and attention-mask buffers of old checkpoints are not weights.
    if (name.find("rotary_emb.inv_freq") != std::string::npos || name.ends_with(".attn.bias") ||
        name.ends_with(".attn.masked_bias"))
      continue;
    tensors[name] = files.get_f32(name);
  }
  auto weights = resolve(config, WeightSource(std::move(tensors), dir.string()));
  return std::unique_ptr<Model>(
      new Model(std::move(config), std::move(weights), std::string(dtype_name(files.dominant_dtype())), options));
}

std::unique_ptr<Model> Model::from_weights(ModelConfig config, std::map<std::string, at::Tensor> named,
                                           const ModelOptions& options) {
  for (auto& [name, t] : named)
    PALIGN_CHECK(t.scalar_type() == at::kFloat, ErrorCode::kInvalidArgument, "[runtime.Model.from_weights] '", name,
                 "' must be float32");
  auto weights = resolve(config, WeightSource(std::move(named), "from_weights"));
  return std::unique_ptr<Model>(new Model(std::move(config), std::move(weights), "F32", options));
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& [name, t] : weights_->named) n += t.numel();
  return n;
}

std::vector<std::pair<std::string, at::Tensor>> Model::named_weights() const { return weights_->named; }

void Model::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(dir), ErrorCode::kIo, "[runtime.Model.save] cannot create ", dir.string(), ": ",
               ec.message());
  {
    std::ofstream out(dir / "config.json");
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[runtime.Model.save] cannot write ", (dir / "config.json").string());
    out << config_.to_json() << "\n";
  }
  save_safetensors(dir / "model.safetensors", weights_->named, {{"format", "pt"}});
}

at::Tensor Model::token_embeddings(const std::vector<int64_t>& ids) const {
  for (int64_t id : ids)
    PALIGN_CHECK(id >= 0 && id < config_.vocab_size, ErrorCode::kInvalidArgument, "[runtime.Model.token_embeddings] id ",
                 id, " is outside the vocabulary [0, ", config_.vocab_size, ")");
  at::NoGradGuard no_grad;
  return at::embedding(weights_->embed, at::tensor(ids, at::kLong)).clone();
}

KvCache Model::make_cache(int64_t n_seq, int64_t initial_capacity) const {
  return KvCache::for_model(config_, n_seq, initial_capacity);
}

namespace {

// Checks the batch before anything touches the cache. Returns ids as int64 [B, T].
at::Tensor check_batch(const ModelConfig& c, const Batch& batch, const KvCache* cache, int64_t n_virtual) {
  PALIGN_CHECK(batch.ids.defined() && batch.ids.dim() == 2, ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] ids must be a [B, T] tensor");
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1);
  PALIGN_CHECK(B >= 1 && T >= 1, ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] empty input: give at least one token (an empty prompt has nothing to "
               "condition on)");
  PALIGN_CHECK(batch.n_tokens.empty() || static_cast<int64_t>(batch.n_tokens.size()) == B,
               ErrorCode::kInvalidArgument, "[runtime.Model.forward] n_tokens has ", batch.n_tokens.size(),
               " entries for ", B, " rows");
  PALIGN_CHECK(batch.seq.empty() || static_cast<int64_t>(batch.seq.size()) == B, ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] seq has ", batch.seq.size(), " entries for ", B, " rows");
  at::Tensor ids = batch.ids.to(at::kLong);
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  PALIGN_CHECK(lo >= 0 && hi < c.vocab_size + n_virtual, ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] token id ", lo < 0 ? lo : hi, " is outside the vocabulary [0, ", c.vocab_size,
               ")", n_virtual > 0 ? " and its " + std::to_string(n_virtual) + " virtual tokens" : std::string());
  std::vector<int64_t> seen;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = batch.n_tokens.empty() ? T : batch.n_tokens[b];
    PALIGN_CHECK(n >= 0 && n <= T, ErrorCode::kInvalidArgument, "[runtime.Model.forward] row ", b, " has ", n,
                 " tokens; must be in [0, ", T, "]");
    const int64_t seq = batch.seq.empty() ? b : batch.seq[b];
    const int64_t start = cache ? cache->length(seq) : 0;  // length() checks the range
    PALIGN_CHECK(std::find(seen.begin(), seen.end(), seq) == seen.end(), ErrorCode::kInvalidArgument,
                 "[runtime.Model.forward] sequence ", seq, " appears twice in one batch");
    seen.push_back(seq);
    PALIGN_CHECK(start + T <= c.max_position, ErrorCode::kInvalidArgument, "[runtime.Model.forward] a context of ",
                 start + n, " tokens exceeds the model's maximum of ", c.max_position,
                 "; shorten the input (the prompt, text or ids)");
  }
  return ids;
}

}  // namespace

ForwardOutput Model::forward(const Batch& batch, KvCache& cache, const ForwardOptions& options) const {
  PALIGN_CHECK(cache.n_layer() == config_.n_layer, ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] the cache has ", cache.n_layer(), " layers, the model ", config_.n_layer);
  return forward_impl(batch, &cache, options);
}

ForwardOutput Model::forward_impl(const Batch& batch, KvCache* cache, const ForwardOptions& options) const {
  const at::Tensor& virt = options.virtual_tokens;
  PALIGN_CHECK(!virt.defined() || (virt.dim() == 2 && virt.size(1) == config_.hidden_size &&
                                   virt.scalar_type() == at::kFloat),
               ErrorCode::kInvalidArgument, "[runtime.Model.forward] virtual tokens must be a float32 [E, ",
               config_.hidden_size, "] table");
  const int64_t n_virtual = virt.defined() ? virt.size(0) : 0;
  Batch checked = batch;
  checked.ids = check_batch(config_, batch, cache, n_virtual);
  PALIGN_CHECK(cache || checked.seq.empty(), ErrorCode::kInvalidArgument,
               "[runtime.Model.forward] sequence ids need a cache");
  if (cache) {
    int64_t needed = 0;
    for (int64_t b = 0; b < checked.ids.size(0); ++b)
      needed = std::max(needed, cache->length(checked.seq.empty() ? b : checked.seq[b]) + checked.ids.size(1));
    cache->reserve(needed);
  }
  // Inference mode unless something may record a graph: weights that require grad, or a hook (a LoRA adapter or a
  // steering vector being trained over a frozen base) while grad mode is on.
  std::optional<c10::InferenceMode> inference;
  const bool hooked = options.linear_hook || options.residual_hook || (virt.defined() && virt.requires_grad());
  if (!weights_->requires_grad && !(hooked && at::GradMode::is_enabled())) inference.emplace();
  const ModelWeights& w = *weights_;
  const ModelConfig& c = config_;
  BatchPlan plan = make_plan(c, w, checked, cache);
  plan.kernel = options.linear_kernel.value_or(options_.linear_kernel);
  if (options.linear_kernel) check_linear_kernel(plan.kernel, "runtime.Model.forward");

  at::Tensor x;  // [B, T, D]
  if (n_virtual > 0 && checked.ids.max().item<int64_t>() >= c.vocab_size) {
    const at::Tensor is_virtual = checked.ids.ge(c.vocab_size);
    x = at::where(is_virtual.unsqueeze(-1), at::embedding(virt, (checked.ids - c.vocab_size).clamp_min(0)),
                  at::embedding(w.embed, checked.ids.clamp_max(c.vocab_size - 1)));
  } else {
    x = at::embedding(w.embed, checked.ids);
  }
  if (c.arch == Arch::kGpt2) x = x + at::embedding(w.pos_embed, plan.positions);
  trace(options, -1, "embed", x);
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    x = c.arch == Arch::kGpt2 ? gpt2_layer(c, w.layers[layer], layer, x, plan, options)
                              : llama_layer(c, w.layers[layer], layer, x, plan, options);
    if (options.residual_hook) options.residual_hook(layer, x);
    trace(options, layer, "layer_out", x);
  }
  if (cache)
    for (int64_t b = 0; b < plan.B; ++b) cache->set_length(plan.seq[b], plan.start[b] + plan.n_tokens[b]);
  x = c.arch == Arch::kGpt2 ? at::layer_norm(x, {c.hidden_size}, w.final_norm, w.final_norm_b, c.norm_eps)
                            : rms_norm(x, w.final_norm, c.norm_eps);
  trace(options, -1, "final_norm", x);

  ForwardOutput out;
  if (options.return_hidden) out.hidden = x;
  if (options.logits == ForwardOptions::Logits::kAll) {
    out.logits = apply_linear(x, w.head, {}, plan.kernel);
  } else if (options.logits == ForwardOptions::Logits::kLast) {
    std::vector<int64_t> last(plan.B);
    for (int64_t b = 0; b < plan.B; ++b) last[b] = std::max<int64_t>(plan.n_tokens[b] - 1, 0);
    at::Tensor idx = at::tensor(last, at::kLong).view({plan.B, 1, 1}).expand({plan.B, 1, c.hidden_size});
    out.logits = apply_linear(x.gather(1, idx).squeeze(1), w.head, {}, plan.kernel);  // [B, V]
  }
  if (out.logits.defined()) trace(options, -1, "logits", out.logits);
  return out;
}

ForwardOutput Model::forward_uncached(const Batch& batch, const ForwardOptions& options) const {
  return forward_impl(batch, nullptr, options);
}

at::Tensor Model::forward_full(const at::Tensor& ids, const ForwardOptions& options) const {
  PALIGN_CHECK(ids.defined() && (ids.dim() == 1 || ids.dim() == 2), ErrorCode::kInvalidArgument,
               "[runtime.Model.forward_full] ids must be [T] or [B, T]");
  const bool single = ids.dim() == 1;
  Batch batch{.ids = single ? ids.unsqueeze(0) : ids, .n_tokens = {}, .seq = {}};
  ForwardOptions opts = options;
  opts.logits = ForwardOptions::Logits::kAll;
  at::Tensor logits = forward_impl(batch, nullptr, opts).logits;
  return single ? logits.squeeze(0) : logits;
}

at::Tensor Model::pick_sequence_score(const at::Tensor& ids, const at::Tensor& per_position) const {
  // transformers: last_non_pad_token = (arange(T) * (ids != pad)).argmax(-1)
  const int64_t T = ids.size(0);
  int64_t pick = 0;
  auto acc = ids.to(at::kLong).contiguous();
  const int64_t* p = acc.data_ptr<int64_t>();
  for (int64_t t = T - 1; t >= 0; --t) {
    if (!config_.pad_token_id || p[t] != *config_.pad_token_id) {
      pick = t;
      break;
    }
  }
  return per_position[pick];
}

at::Tensor Model::score(const std::vector<int64_t>& ids) const {
  PALIGN_CHECK(config_.head == HeadKind::kSequenceClassification, ErrorCode::kInvalidArgument,
               "[runtime.Model.score] ", config_.architecture, " is not a sequence-classification model");
  at::Tensor t = at::tensor(ids, at::kLong);
  PALIGN_CHECK(t.numel() > 0, ErrorCode::kInvalidArgument, "[runtime.Model.score] empty input");
  return pick_sequence_score(t, forward_full(t));
}

}  // namespace palign::runtime
