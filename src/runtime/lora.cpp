// LoRA adapters (see lora.h): the adapter, merging, and the batched per-row hook. PEFT directory I/O is
// lora_io.cpp; the per-row vector kernel kernels/lora_rows.cpp. Compare PEFT's tuners/lora/{config,layer,model}.py.
#include "palign/runtime/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "kernels/kernels.h"
#include "lora_internal.h"
#include "palign/base/error.h"

namespace palign::runtime {

namespace fs = std::filesystem;
using nlohmann::json;

namespace lora_detail {

std::optional<LinearKind> kind_from_name(std::string_view name) {
  for (int64_t k = 0; k < kKinds; ++k)
    if (linear_kind_name(static_cast<LinearKind>(k)) == name) return static_cast<LinearKind>(k);
  return std::nullopt;
}

bool is_mlp(LinearKind kind) {
  return kind == LinearKind::kGate || kind == LinearKind::kUp || kind == LinearKind::kDown;
}

// (in, out) features of one linear of a Llama-family model.
std::pair<int64_t, int64_t> linear_dims(const ModelConfig& c, LinearKind kind) {
  const int64_t D = c.hidden_size, F = c.intermediate_size, q = c.n_head * c.head_dim, kv = c.n_kv_head * c.head_dim;
  switch (kind) {
    case LinearKind::kQ:
      return {D, q};
    case LinearKind::kK:
    case LinearKind::kV:
      return {D, kv};
    case LinearKind::kO:
      return {q, D};
    case LinearKind::kGate:
    case LinearKind::kUp:
      return {D, F};
    case LinearKind::kDown:
      return {F, D};
    case LinearKind::kSentinel:
      break;
  }
  PALIGN_ASSERT(false, "bad LinearKind");
  return {0, 0};
}

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string describe(const ModelConfig& c) {
  return detail::concat(c.architecture.empty() ? std::string(arch_name(c.arch)) : c.architecture, " (", c.n_layer,
                        " layers, hidden ", c.hidden_size, ", intermediate ", c.intermediate_size, ", ", c.n_head, "x",
                        c.head_dim, " q, ", c.n_kv_head, "x", c.head_dim, " kv)");
}

void check_arch(const ModelConfig& c, const char* where) {
  PALIGN_CHECK(c.arch != Arch::kGpt2, ErrorCode::kUnsupported, "[runtime.lora.", where,
               "] GPT-2 LoRA is not supported: its attention is one fused Conv1D c_attn (fan_in_fan_out) that palign "
               "splits into q/k/v; use a Llama, Mistral, Qwen2 or Qwen3 base");
}

}  // namespace lora_detail

using namespace lora_detail;

namespace {
at::Generator make_cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }
}  // namespace

// ---- LoraConfig ----

std::string LoraConfig::validate() const {
  if (r < 1) return detail::concat("r must be >= 1 (got ", r, ")");
  if (!(alpha > 0) || !std::isfinite(alpha)) return detail::concat("lora_alpha must be > 0 (got ", alpha, ")");
  if (!(dropout >= 0 && dropout < 1)) return detail::concat("lora_dropout must be in [0, 1) (got ", dropout, ")");
  if (target_modules.empty()) return "target_modules is empty; name at least one of q_proj ... down_proj";
  for (size_t i = 0; i < target_modules.size(); ++i) {
    if (!kind_from_name(target_modules[i]))
      return detail::concat("target module '", target_modules[i],
                            "' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    for (size_t j = 0; j < i; ++j)
      if (target_modules[j] == target_modules[i])
        return detail::concat("target module '", target_modules[i], "' is listed twice");
  }
  return {};
}

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

// ---- LoraAdapter ----

LoraAdapter::LoraAdapter(ModelConfig model, LoraConfig config)
    : model_(std::move(model)),
      config_(std::move(config)),
      a_(static_cast<size_t>(model_.n_layer * kKinds)),
      b_(static_cast<size_t>(model_.n_layer * kKinds)),
      generator_(make_cpu_generator(0)) {}

size_t LoraAdapter::slot(int64_t layer, LinearKind kind) const {
  PALIGN_CHECK(layer >= 0 && layer < model_.n_layer, ErrorCode::kInvalidArgument, "[runtime.LoraAdapter] layer ", layer,
               " is outside the adapter's [0, ", model_.n_layer, ")");
  PALIGN_CHECK(kind != LinearKind::kSentinel, ErrorCode::kInvalidArgument, "[runtime.LoraAdapter] bad LinearKind");
  return static_cast<size_t>(layer * kKinds + static_cast<int64_t>(kind));
}

bool LoraAdapter::targets(LinearKind kind) const {
  for (const auto& m : config_.target_modules)
    if (kind_from_name(m) == kind) return true;
  return false;
}

void LoraAdapter::check_compatible(const ModelConfig& c, const char* where) const {
  check_arch(c, where);
  const bool same = c.n_layer == model_.n_layer && c.hidden_size == model_.hidden_size &&
                    c.intermediate_size == model_.intermediate_size &&
                    c.n_head * c.head_dim == model_.n_head * model_.head_dim &&
                    c.n_kv_head * c.head_dim == model_.n_kv_head * model_.head_dim;
  PALIGN_CHECK(same, ErrorCode::kInvalidArgument, "[runtime.lora.", where, "] the adapter was made for ",
               describe(model_), " but the model is ", describe(c));
}

LoraAdapter LoraAdapter::init(const ModelConfig& model, const LoraConfig& lora, uint64_t seed) {
  check_arch(model, "init");
  const std::string err = lora.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[runtime.lora.init] ", err);
  LoraAdapter out(model, lora);
  at::Generator gen = make_cpu_generator(seed);
  at::NoGradGuard no_grad;
  for (int64_t layer = 0; layer < model.n_layer; ++layer) {
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      if (!out.targets(kind)) continue;
      const auto [in, o] = linear_dims(model, kind);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a=sqrt(5))
      const size_t s = out.slot(layer, kind);
      out.a_[s] = at::empty({lora.r, in}, at::kFloat).uniform_(-bound, bound, gen);
      out.b_[s] = at::zeros({o, lora.r}, at::kFloat);
    }
  }
  out.set_dropout_seed(seed);
  return out;
}

void LoraAdapter::set_dropout_seed(uint64_t seed) { generator_ = make_cpu_generator(seed ^ 0x9e3779b97f4a7c15ULL); }

at::Tensor LoraAdapter::lora_a(int64_t layer, LinearKind kind) const { return a_[slot(layer, kind)]; }
at::Tensor LoraAdapter::lora_b(int64_t layer, LinearKind kind) const { return b_[slot(layer, kind)]; }

std::vector<at::Tensor> LoraAdapter::parameters() const {
  std::vector<at::Tensor> out;
  for (size_t s = 0; s < a_.size(); ++s) {
    if (!a_[s].defined()) continue;
    out.push_back(a_[s]);
    out.push_back(b_[s]);
  }
  return out;
}

std::string LoraAdapter::peft_tensor_name(int64_t layer, LinearKind kind, bool lora_b) {
  return detail::concat("base_model.model.model.layers.", layer, is_mlp(kind) ? ".mlp." : ".self_attn.",
                        linear_kind_name(kind), lora_b ? ".lora_B.weight" : ".lora_A.weight");
}

std::vector<std::pair<std::string, at::Tensor>> LoraAdapter::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (int64_t layer = 0; layer < model_.n_layer; ++layer) {
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      const size_t s = slot(layer, kind);
      if (!a_[s].defined()) continue;
      out.emplace_back(peft_tensor_name(layer, kind, false), a_[s]);
      out.emplace_back(peft_tensor_name(layer, kind, true), b_[s]);
    }
  }
  return out;
}

at::Tensor LoraAdapter::delta(int64_t layer, LinearKind kind, const at::Tensor& x) const {
  const size_t s = slot(layer, kind);
  const at::Tensor& a = a_[s];
  if (!a.defined()) return {};
  PALIGN_CHECK(x.size(-1) == a.size(1), ErrorCode::kInvalidArgument, "[runtime.LoraAdapter] ", linear_kind_name(kind),
               " of layer ", layer, " gets ", x.size(-1), " input features but the adapter's A is ",
               shape_str(a.sizes()), "; the adapter was made for ", describe(model_));
  at::Tensor in = x;
  if (training_ && config_.dropout > 0) {
    const double keep = 1.0 - config_.dropout;
    at::Tensor mask = at::empty_like(x).bernoulli_(keep, generator_);
    in = x * mask / keep;
  }
  return at::linear(at::linear(in, a), b_[s]) * config_.scaling();
}

void LoraAdapter::apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const {
  at::Tensor d = delta(layer, kind, x);
  if (d.defined()) y = y + d;
}

// ---- merge / unmerge ----

namespace {

std::unique_ptr<Model> merge_impl(const Model& base, const LoraAdapter& adapter, double sign, const char* where) {
  adapter.check_compatible(base.config(), where);
  std::map<std::string, at::Tensor> named;
  for (auto& [name, t] : base.named_weights()) named.emplace(name, t);
  const std::string pre = named.count("model.embed_tokens.weight") ? "model." : "";
  at::NoGradGuard no_grad;
  const ModelConfig& c = base.config();
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      const at::Tensor a = adapter.lora_a(layer, kind);
      if (!a.defined()) continue;
      const std::string name = detail::concat(pre, "layers.", layer, is_mlp(kind) ? ".mlp." : ".self_attn.",
                                              linear_kind_name(kind), ".weight");
      auto it = named.find(name);
      PALIGN_CHECK(it != named.end(), ErrorCode::kInvalidArgument, "[runtime.lora.", where, "] the model has no '",
                   name, "'");
      const at::Tensor delta = at::mm(adapter.lora_b(layer, kind).detach(), a.detach()) * adapter.scaling();
      it->second = (it->second.detach() + sign * delta).contiguous();
    }
  }
  return Model::from_weights(base.config(), std::move(named), base.options());
}

}  // namespace

std::unique_ptr<Model> merge_lora(const Model& base, const LoraAdapter& adapter) {
  return merge_impl(base, adapter, 1.0, "merge");
}

std::unique_ptr<Model> unmerge_lora(const Model& merged, const LoraAdapter& adapter) {
  return merge_impl(merged, adapter, -1.0, "unmerge");
}

// ---- LoraBatchHook ----

LoraBatchHook::LoraBatchHook(std::vector<const LoraAdapter*> per_row) : n_rows_(static_cast<int64_t>(per_row.size())) {
  const LoraAdapter* first = nullptr;
  for (int64_t row = 0; row < n_rows_; ++row) {
    const LoraAdapter* a = per_row[row];
    if (!a) continue;
    if (!first) first = a;
    a->check_compatible(first->model_config(), "LoraBatchHook");
    auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.adapter == a; });
    if (it == groups_.end()) {
      groups_.push_back({.adapter = a, .rows = {}, .index = {}});
      it = groups_.end() - 1;
    }
    it->rows.push_back(row);
  }
  for (Group& g : groups_) g.index = at::tensor(g.rows, at::kLong);

  // One adapter over every row is already one pair of matmuls per linear; nothing to stack.
  const bool one_for_all = groups_.size() == 1 && static_cast<int64_t>(groups_[0].rows.size()) == n_rows_;
  if (!first || one_for_all || at::GradMode::is_enabled()) return;
  const ModelConfig& c = first->model_config();
  stacked_a_.resize(static_cast<size_t>(c.n_layer * kKinds));
  stacked_b_.resize(stacked_a_.size());
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      int64_t r_max = 0;
      for (const Group& g : groups_) {
        const at::Tensor a = g.adapter->lora_a(layer, kind);
        if (a.defined()) r_max = std::max(r_max, a.size(0));
      }
      if (r_max == 0) continue;
      const auto [in, out] = linear_dims(c, kind);
      at::Tensor sa = at::zeros({n_rows_, in, r_max}), sb = at::zeros({n_rows_, r_max, out});
      for (const Group& g : groups_) {
        const at::Tensor a = g.adapter->lora_a(layer, kind);
        if (!a.defined()) continue;
        const int64_t r = a.size(0);
        const at::Tensor bt = (g.adapter->lora_b(layer, kind).detach() * g.adapter->scaling()).t();  // [r, out]
        for (int64_t row : g.rows) {
          sa[row].narrow(1, 0, r).copy_(a.detach().t());
          sb[row].narrow(0, 0, r).copy_(bt);
        }
      }
      const size_t s = static_cast<size_t>(layer * kKinds + k);
      stacked_a_[s] = sa;
      stacked_b_[s] = sb;
      row_rank_.resize(stacked_a_.size());
      row_rank_[s].assign(static_cast<size_t>(n_rows_), 0);
      for (const Group& g : groups_) {
        const at::Tensor a = g.adapter->lora_a(layer, kind);
        for (int64_t row : g.rows) row_rank_[s][static_cast<size_t>(row)] = a.defined() ? a.size(0) : 0;
      }
    }
  }
}

void LoraBatchHook::apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const {
  PALIGN_CHECK(x.size(0) == n_rows_, ErrorCode::kInvalidArgument, "[runtime.LoraBatchHook] the batch has ", x.size(0),
               " rows but the hook was built for ", n_rows_);
  bool stacked = !stacked_a_.empty() && !at::GradMode::is_enabled();
  for (const Group& g : groups_)
    if (g.adapter->training() && g.adapter->config().dropout > 0) stacked = false;  // dropout needs the grouped path
  if (!stacked) {
    apply_grouped(layer, kind, x, y);
    return;
  }
  PALIGN_CHECK(layer >= 0 && layer * kKinds < static_cast<int64_t>(stacked_a_.size()) && kind != LinearKind::kSentinel,
               ErrorCode::kInvalidArgument, "[runtime.LoraBatchHook] layer ", layer, " is outside the adapters' [0, ",
               static_cast<int64_t>(stacked_a_.size()) / kKinds, ")");
  const size_t s = static_cast<size_t>(layer * kKinds + static_cast<int64_t>(kind));
  const at::Tensor& a = stacked_a_[s];
  if (!a.defined()) return;
  PALIGN_CHECK(x.size(-1) == a.size(1), ErrorCode::kInvalidArgument, "[runtime.LoraBatchHook] ", linear_kind_name(kind),
               " of layer ", layer, " gets ", x.size(-1), " input features but the adapters' A has ", a.size(1));
  const int64_t in = x.size(-1), r_max = a.size(2), out = stacked_b_[s].size(2);
  if (x.numel() == n_rows_ * in && y.numel() == n_rows_ * out && x.scalar_type() == at::kFloat &&
      y.scalar_type() == at::kFloat && x.is_contiguous() && y.is_contiguous() && x.device().is_cpu() &&
      y.device().is_cpu()) {
    kernels::add_row_deltas(x.data_ptr<float>(), a.data_ptr<float>(), stacked_b_[s].data_ptr<float>(), row_rank_[s], in,
                            r_max, out, y.data_ptr<float>());
    return;
  }
  // x [R, ..., in] as [R, N, in]; y += (x A) (scaling·Bᵀ), rows independent.
  const at::Tensor x3 = x.reshape({n_rows_, -1, x.size(-1)});
  const std::vector<int64_t> y_shape = y.sizes().vec();
  y = at::baddbmm(y.reshape({n_rows_, -1, y.size(-1)}), at::bmm(x3, a), stacked_b_[s]).view(y_shape);
}

void LoraBatchHook::apply_grouped(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor& y) const {
  for (const Group& g : groups_) {
    if (static_cast<int64_t>(g.rows.size()) == n_rows_) {  // one adapter for every row
      g.adapter->apply(layer, kind, x, y);
      continue;
    }
    at::Tensor d = g.adapter->delta(layer, kind, x.index_select(0, g.index));
    if (d.defined()) y = y.index_add(0, g.index, d);
  }
}

}  // namespace palign::runtime
