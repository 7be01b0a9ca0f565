// LoRA adapters (Hu et al., 2021) over the Llama-family linears, stored and read in PEFT's directory format, applied
// through ForwardOptions::linear_hook (no change to the base weights), merged into / out of a model's weights, and
// applied per row of a batch (several adapters, one base pass). Compare PEFT's tuners/lora/layer.py.
//
// Shapes: per adapted (layer, linear) A [r, in] and B [out, r], float32. The delta of a linear y = x Wᵀ + b is
//   y += scaling · (dropout(x) Aᵀ) Bᵀ,   scaling = alpha / r  (alpha / √r with use_rslora),
// which is the linear with weight W + scaling · B A.
//
// Usage:
//   auto model = Model::load("models/Qwen2.5-0.5B");
//   // A fresh adapter (PEFT's init: A ~ U(-1/√in, 1/√in), B = 0) leaves every output unchanged.
//   LoraAdapter lora = LoraAdapter::init(model->config(), {.r = 16, .alpha = 32, .target_modules = {"q_proj",
//                                                          "k_proj", "v_proj", "o_proj"}}, /*seed=*/0);
//   for (at::Tensor& p : lora.parameters()) p.requires_grad_(true);      // train A and B, the base stays frozen
//   lora.set_training(true);                                              // lora_dropout on x while training
//   auto out = model->forward_uncached(batch, {.linear_hook = &lora});
//   lora.save("out/adapter");                                             // PEFT's directory layout
//   LoraAdapter back = LoraAdapter::load("out/adapter", model->config());  // PEFT-saved adapters load too
//   auto merged = merge_lora(*model, back);                                // W + scaling·B·A, no hook needed
//   // Different users' adapters in one batch: row b uses per_row[b] (nullptr = the base model).
//   LoraBatchHook hook({&alice, nullptr, &bob});
//   model->forward(batch3, cache, {.linear_hook = &hook});
//
// Only Llama, Mistral, Qwen2 and Qwen3 bases (q/k/v/o/gate/up/down_proj); GPT-2's fused Conv1D c_attn is kUnsupported.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "palign/runtime/config.h"
#include "palign/runtime/model.h"

namespace palign::runtime {

// adapter_config.json's fields that palign uses (PEFT's LoraConfig).
struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;   // lora_alpha
  double dropout = 0;  // lora_dropout, on x, only while training
  // PEFT's module names: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  bool use_rslora = false;
  std::string base_model;  // base_model_name_or_path (informational)

  std::string validate() const;  // "" when valid
  double scaling() const;        // alpha / r, or alpha / sqrt(r) with use_rslora
};

// One LoRA adapter for one base model shape. Applies itself as a LinearHook. Copies are shallow: they share the A
// and B tensors (and the dropout generator).
class LoraAdapter : public LinearHook {
 public:
  // A new adapter as PEFT initialises one (init_lora_weights=True): A kaiming-uniform(a=√5), i.e. U(-1/√in, 1/√in),
  // from a CPU generator seeded with seed (layer by layer, q..down order); B = 0. Throws kInvalidArgument when
  // lora.validate() fails, kUnsupported for a GPT-2 base.
  static LoraAdapter init(const ModelConfig& model, const LoraConfig& lora, uint64_t seed);
  // Reads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) for a base of shape model.
  // Throws palign::Error: kNotFound (no directory or a missing file, naming it), kUnsupported (peft_type not LORA,
  // bias, fan_in_fan_out, DoRA, layers_to_transform, modules_to_save, rank/alpha patterns, target modules other than
  // the seven Llama ones, tensors palign does not know, a GPT-2 base), kInvalidArgument (malformed JSON, invalid r or
  // alpha, a tensor missing or of a shape that does not fit the model, naming both).
  static LoraAdapter load(const std::filesystem::path& dir, const ModelConfig& model);
  // Writes adapter_config.json and adapter_model.safetensors as PEFT's save_pretrained does. Throws kIo.
  void save(const std::filesystem::path& dir) const;

  const LoraConfig& config() const { return config_; }
  const ModelConfig& model_config() const { return model_; }
  double scaling() const { return config_.scaling(); }
  bool targets(LinearKind kind) const;
  // A [r, in] and B [out, r] of one linear (the stored tensors, not copies: in-place updates and requires_grad_
  // affect the adapter); undefined when the linear is not adapted. Throws kInvalidArgument for a layer out of range.
  at::Tensor lora_a(int64_t layer, LinearKind kind) const;
  at::Tensor lora_b(int64_t layer, LinearKind kind) const;
  // Every A and B, layer by layer, q..down, A before B (the stored tensors: set requires_grad on them to train).
  std::vector<at::Tensor> parameters() const;
  // The same under PEFT's names, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  static std::string peft_tensor_name(int64_t layer, LinearKind kind, bool lora_b);

  // Training mode applies lora_dropout (when > 0) to x, from a generator seeded at init (set_dropout_seed). The
  // generator makes a training-mode adapter unsafe to share between threads; in eval mode apply() is thread-safe.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  void set_dropout_seed(uint64_t seed);

  // scaling · (dropout(x) Aᵀ) Bᵀ for x [..., in]: [..., out]; undefined when the linear is not adapted.
  at::Tensor delta(int64_t layer, LinearKind kind, const at::Tensor& x) const;
  // y += delta(x) (out of place, so autograd sees it).
  void apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const override;

  // Throws kInvalidArgument unless model has the shapes this adapter was made for; kUnsupported for GPT-2.
  void check_compatible(const ModelConfig& model, const char* where) const;

 private:
  LoraAdapter(ModelConfig model, LoraConfig config);
  size_t slot(int64_t layer, LinearKind kind) const;

  ModelConfig model_;
  LoraConfig config_;
  std::vector<at::Tensor> a_, b_;  // [n_layer * kinds], undefined where not adapted
  bool training_ = false;
  mutable at::Generator generator_;
};

// A new model whose adapted weights are W + scaling·B·A (computed without autograd); every other weight is shared
// with base. Throws kInvalidArgument when the adapter does not fit base.
std::unique_ptr<Model> merge_lora(const Model& base, const LoraAdapter& adapter);
// The inverse: W − scaling·B·A (exact up to float32 rounding).
std::unique_ptr<Model> unmerge_lora(const Model& merged, const LoraAdapter& adapter);

// A soup of adapters (Personalized / Rewarded Soups): one adapter whose delta is Σ_k weights[k] · Δ_k, Δ_k = scaling_k
// · B_k A_k, so merging it gives θ_0 + Σ_k w_k Δθ_k exactly. Rank Σ_k r_k (A stacked, each B scaled by w_k · scaling_k,
// scaling 1); targets the union of the adapters' linears (zeros where one does not adapt a linear); any real weights.
// Serves like any adapter: merged, attached, or per row of a batch. Throws kInvalidArgument for no adapters, weights
// of the wrong count, adapters for different model shapes.
LoraAdapter lora_soup(const std::vector<const LoraAdapter*>& adapters, const std::vector<double>& weights);

// Row b of a batch gets per_row[b]'s delta (nullptr: the base model for that row); the base linears run once for the
// batch. Two paths give the same deltas:
//  - grouped: rows are grouped by adapter, each distinct adapter costs a pair of small matmuls per linear (plus an
//    index_select / index_add when it covers only some rows). Used while grad mode is on, so autograd reaches the
//    adapters, and by any adapter in training mode with dropout.
//  - stacked: with grad mode off (e.g. under c10::InferenceMode), delta = bmm(bmm(x, A), B) per linear over per-row
//    A [R, in, r] and scaling·Bᵀ [R, r, out] (zeros for base rows, ranks padded with zeros): 2 ops, not ~5 per group.
//    The stacks are built in the constructor when it runs with grad mode off, and cost R adapters' memory. With one
//    token per row (a decode step) the same stacks are applied in plain loops, each row over its own rank: no ATen
//    op at all, y changed in place.
// note: the stacks are a snapshot of the adapters' weights at construction; build a new hook after changing them.
// Borrows the adapters; they must outlive the hook. Throws kInvalidArgument when adapters have different shapes.
class LoraBatchHook : public LinearHook {
 public:
  explicit LoraBatchHook(std::vector<const LoraAdapter*> per_row);
  // Throws kInvalidArgument when x has a different number of rows than per_row.
  void apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const override;
  // True when the stacked path is available: built with grad mode off, over rows of several adapters or base rows.
  bool stacked() const { return !stacked_a_.empty(); }

 private:
  struct Group {
    const LoraAdapter* adapter = nullptr;
    std::vector<int64_t> rows;
    at::Tensor index;  // rows as int64 [n]
  };
  void apply_grouped(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const;
  int64_t n_rows_ = 0;
  std::vector<Group> groups_;
  // Per (layer, kind): A [R, in, r_max] and scaling·Bᵀ [R, r_max, out]; undefined where no row's adapter adapts the
  // linear. Empty when the hook has no stacked path.
  std::vector<at::Tensor> stacked_a_, stacked_b_;
  // Per (layer, kind): each row's rank there (0: its adapter leaves the linear alone, or a base row). A decode step
  // (one token per row) runs the stacked path as plain loops over these instead of two bmm.
  std::vector<std::vector<int64_t>> row_rank_;
};

}  // namespace palign::runtime
