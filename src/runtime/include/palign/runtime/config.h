// config.json of a Hugging Face model directory, normalised into one plain struct. Understands the hub's usual form
// (rope_theta + rope_scaling) and transformers 5's re-serialised form (rope_parameters), GPT-2's n_embd/n_layer
// names, and the *ForSequenceClassification heads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace palign::runtime {

// The decoder family; Llama, Mistral, Qwen2 and Qwen3 share one implementation with flags.
enum class Arch { kLlama, kMistral, kQwen2, kQwen3, kGpt2, kSentinel };
enum class HeadKind { kCausalLm, kSequenceClassification, kSentinel };
enum class RopeType { kDefault, kLinear, kLlama3, kSentinel };
enum class Activation { kSilu, kGeluTanh, kGelu, kSentinel };

std::string_view arch_name(Arch arch);

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                    // linear and llama3
  double low_freq_factor = 1.0;           // llama3
  double high_freq_factor = 4.0;          // llama3
  int64_t original_max_position = 8192;   // llama3

  bool operator==(const RopeConfig&) const = default;
};

struct ModelConfig {
  std::string architecture;  // as written in config.json, e.g. "Qwen2ForCausalLM"
  Arch arch = Arch::kLlama;
  HeadKind head = HeadKind::kCausalLm;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_kv_head = 0;
  int64_t head_dim = 0;
  int64_t max_position = 0;       // the longest context the model supports
  double norm_eps = 1e-5;         // rms_norm_eps or layer_norm_epsilon
  Activation activation = Activation::kSilu;
  RopeConfig rope;                // unused by GPT-2 (learned positions)
  bool tie_word_embeddings = false;
  bool attention_bias = false;    // q/k/v biases (Qwen2 always; Llama when attention_bias)
  bool attention_out_bias = false;  // o_proj bias (Llama attention_bias)
  bool mlp_bias = false;
  bool qk_norm = false;           // Qwen3: RMSNorm over head_dim on q and k before RoPE
  std::optional<int64_t> sliding_window;  // Mistral: keys older than this many positions are masked
  int64_t num_labels = 1;         // sequence classification
  std::vector<std::string> id2label;
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  // Append new fields here.

  // Parses config.json text; path is only used in messages. Throws palign::Error: kInvalidArgument for malformed
  // JSON or inconsistent sizes (e.g. hidden_size not divisible by heads without head_dim), kUnsupported for an
  // architecture or rope type palign does not implement (naming it and listing the supported ones).
  static ModelConfig parse(std::string_view json_text, const std::string& path = "config.json");
  static ModelConfig load(const std::filesystem::path& config_json);
  // config.json in the Hugging Face form (hub style, rope_scaling), for models palign writes.
  std::string to_json() const;

  bool operator==(const ModelConfig&) const = default;  // every field, so a new one takes part by itself
};

// Whether two configs give the same hidden states from the same weights: equal in every field but those of the
// output head (architecture name, head kind, labels, tied embeddings) and the special-token ids. Built on the
// defaulted operator==, so a field added to ModelConfig counts here without an edit (e.g. a policy and the reward
// model trained on its backbone compare equal).
bool same_body(const ModelConfig& a, const ModelConfig& b);

}  // namespace palign::runtime
