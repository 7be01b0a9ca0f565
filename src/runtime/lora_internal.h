// Private to the LoRA sources (lora.cpp, lora_io.cpp): the adapter's file names and shape helpers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "palign/runtime/config.h"
#include "palign/runtime/model.h"

namespace palign::runtime::lora_detail {

inline constexpr int64_t kKinds = static_cast<int64_t>(LinearKind::kSentinel);
inline constexpr const char* kConfigFile = "adapter_config.json";
inline constexpr const char* kWeightsFile = "adapter_model.safetensors";

std::optional<LinearKind> kind_from_name(std::string_view name);
bool is_mlp(LinearKind kind);
// (in, out) features of one linear of a Llama-family model.
std::pair<int64_t, int64_t> linear_dims(const ModelConfig& c, LinearKind kind);
std::string shape_str(at::IntArrayRef s);
std::string describe(const ModelConfig& c);
// Throws kUnsupported for GPT-2 (where names the caller).
void check_arch(const ModelConfig& c, const char* where);

}  // namespace palign::runtime::lora_detail
