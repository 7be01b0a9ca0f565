// A loaded transformer (Llama, Mistral, Qwen2, Qwen3, GPT-2; causal LM or sequence-classification head) and its
// forward pass over a batch with a KV cache. Weights are float32 on the CPU (F16/BF16 files are upcast on load), so
// outputs match transformers run in float32. The same forward serves inference and autograd training.
//
// Shapes: B = batch rows, T = tokens per row in this call, L = cached + new positions, D = hidden size,
// V = vocabulary, H = heads, G = query heads per KV head, hd = head_dim.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "palign/runtime/config.h"
#include "palign/runtime/kv_cache.h"
#include "palign/runtime/linear.h"

namespace palign::runtime {

// Which linear layer a hook sees. Names follow PEFT's target_modules.
enum class LinearKind { kQ, kK, kV, kO, kGate, kUp, kDown, kSentinel };
std::string_view linear_kind_name(LinearKind kind);  // "q_proj", ..., GPT-2's fused ones as "c_attn" etc. map here

// Adds a delta to a linear layer's output: y += f(x). LoRA adapters (one per row or one for all) implement it.
// x: [B, T, in] float32; y: [B, T, out] float32, modified in place or replaced.
class LinearHook {
 public:
  virtual ~LinearHook() = default;
  virtual void apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const = 0;
};

struct ForwardOptions {
  enum class Logits { kAll, kLast, kNone };
  // kAll: logits [B, T, V]; kLast: [B, V] at each row's last valid token; kNone: no logits (hidden only).
  // For a sequence-classification model "logits" are the head's scores ([B, T, num_labels] or [B, num_labels]).
  Logits logits = Logits::kAll;
  // Also return the final hidden states (after the final norm) [B, T, D].
  bool return_hidden = false;
  // Called at named points (embed, attn_norm, q, k, v, attn_out, ffn_out, layer_out, final_norm, logits) with
  // layer = -1 outside layers. Cost when unset: one branch per point.
  std::function<void(int64_t layer, std::string_view name, const at::Tensor& value)> trace;
  // Called with each decoder layer's output residual stream [B, T, D]; may modify it in place (steering).
  std::function<void(int64_t layer, at::Tensor& residual)> residual_hook;
  // Borrowed for the call; may be null.
  const LinearHook* linear_hook = nullptr;
  // The small-batch linear kernel of this call (e.g. a benchmark comparing kernels); unset: the model's
  // (ModelOptions). Throws kUnsupported when the CPU cannot run it.
  std::optional<LinearKernel> linear_kernel;
  // Virtual tokens (PEFT's prompt tuning; P-DPO's user tokens): an [E, D] float32 table whose row j is the input
  // embedding of id V + j, so ids in [V, V + E) are valid input (never output: logits stay [V]). GPT-2 adds position
  // embeddings to them as to any token. Gradients reach the table when it requires grad. Undefined: none.
  at::Tensor virtual_tokens;
};

// A batch: row b appends n_tokens[b] tokens (ids[b, :n_tokens[b]], right-padded) to cache sequence seq[b], at
// positions cache.length(seq[b]) + t. Empty n_tokens means all T; empty seq means rows 0..B-1.
struct Batch {
  at::Tensor ids;  // [B, T] int64
  std::vector<int64_t> n_tokens;
  std::vector<int64_t> seq;
};

struct ForwardOutput {
  at::Tensor logits;  // see ForwardOptions::logits
  at::Tensor hidden;  // [B, T, D] when requested
};

struct ModelWeights;  // private: resolved per-layer tensors

// How a model runs, chosen at load.
struct ModelOptions {
  // The small-batch linear kernel of its forwards (runtime/linear.h); a model made from another (merge_lora, the
  // heads of heads.h) keeps the other's.
  LinearKernel linear_kernel = default_linear_kernel();
};

// Immutable after load; forward is const and thread-compatible (each thread brings its own KvCache).
class Model {
 public:
  // Loads config.json and the safetensors weights of a Hugging Face model directory. Throws palign::Error:
  // kNotFound (no directory / config.json / weights), kUnsupported (architecture), kInvalidArgument (a weight
  // missing or of the wrong shape, naming it).
  // Throws kUnsupported for a linear kernel the CPU cannot run.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, const ModelOptions& options = {});
  // Builds a model from float32 tensors under their Hugging Face names (training creates models this way; tensors
  // may require grad, and forward then records the autograd graph).
  static std::unique_ptr<Model> from_weights(ModelConfig config, std::map<std::string, at::Tensor> named,
                                             const ModelOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  // The stored dtype of the loaded files ("F32", "BF16", ...; "F32" for from_weights).
  const std::string& stored_dtype() const { return stored_dtype_; }
  const ModelOptions& options() const { return options_; }
  int64_t n_params() const;
  // The weights under their Hugging Face names, as saved (tied embeddings appear once).
  std::vector<std::pair<std::string, at::Tensor>> named_weights() const;
  // Writes config.json and model.safetensors into dir (created if needed).
  void save(const std::filesystem::path& dir) const;

  KvCache make_cache(int64_t n_seq, int64_t initial_capacity = 64) const;

  // The forward pass. Appends the batch's tokens to the cache. Throws kInvalidArgument for ids outside
  // [0, vocab_size), a context beyond max_position, or bad batch shapes; nothing is appended then.
  ForwardOutput forward(const Batch& batch, KvCache& cache, const ForwardOptions& options = {}) const;
  // The forward pass without a cache: each row's keys are its own tokens (right-padded rows via n_tokens; batch.seq
  // must be empty). Records the autograd graph when the weights require grad (training).
  ForwardOutput forward_uncached(const Batch& batch, const ForwardOptions& options = {}) const;
  // Full recompute of ids [T] or [B, T] without a cache: logits [.., T, V] (scores for classification models).
  // Rows of a [B, T] batch are all T tokens long. Records the autograd graph when the weights require grad.
  at::Tensor forward_full(const at::Tensor& ids, const ForwardOptions& options = {}) const;

  // The input embeddings of ids [K, D] (a copy; GPT-2's position embeddings not added), e.g. to start virtual tokens
  // from. Throws kInvalidArgument for ids outside the vocabulary.
  at::Tensor token_embeddings(const std::vector<int64_t>& ids) const;

  // Sequence-classification scores as transformers computes them: the head's output at the last token of ids that
  // is not pad_token_id (position 0 when every token is padding). ids: [T]; per_position: [T, num_labels].
  at::Tensor pick_sequence_score(const at::Tensor& ids, const at::Tensor& per_position) const;
  // Scores [num_labels] of one sequence (full recompute).
  at::Tensor score(const std::vector<int64_t>& ids) const;

 private:
  Model(ModelConfig config, std::unique_ptr<ModelWeights> weights, std::string stored_dtype, ModelOptions options);
  // cache == nullptr: keys are this call's tokens only (full recompute; the training path).
  ForwardOutput forward_impl(const Batch& batch, KvCache* cache, const ForwardOptions& options) const;
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  std::string stored_dtype_;
  ModelOptions options_;
};

// A content hash of a model: its config and every weight's name and shape, and an even sample of each weight's
// values (at most 64 KiB per tensor). Names what a cache or a reward was computed with.
std::string model_fingerprint(const Model& model);

}  // namespace palign::runtime
