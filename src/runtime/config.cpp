// config.json parsing and writing for the supported architectures (see config.h).
#include "palign/runtime/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "palign/base/error.h"

namespace palign::runtime {

using nlohmann::json;

std::string_view arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama:
      return "llama";
    case Arch::kMistral:
      return "mistral";
    case Arch::kQwen2:
      return "qwen2";
    case Arch::kQwen3:
      return "qwen3";
    case Arch::kGpt2:
      return "gpt2";
    case Arch::kSentinel:
      break;
  }
  return "unknown";
}

namespace {

struct ArchRow {
  const char* name;
  Arch arch;
  HeadKind head;
};
constexpr ArchRow kArchitectures[] = {
    {"LlamaForCausalLM", Arch::kLlama, HeadKind::kCausalLm},
    {"MistralForCausalLM", Arch::kMistral, HeadKind::kCausalLm},
    {"Qwen2ForCausalLM", Arch::kQwen2, HeadKind::kCausalLm},
    {"Qwen3ForCausalLM", Arch::kQwen3, HeadKind::kCausalLm},
    {"GPT2LMHeadModel", Arch::kGpt2, HeadKind::kCausalLm},
    {"LlamaForSequenceClassification", Arch::kLlama, HeadKind::kSequenceClassification},
    {"Qwen2ForSequenceClassification", Arch::kQwen2, HeadKind::kSequenceClassification},
    {"MistralForSequenceClassification", Arch::kMistral, HeadKind::kSequenceClassification},
    {"Qwen3ForSequenceClassification", Arch::kQwen3, HeadKind::kSequenceClassification},
};

std::string supported_list() {
  std::string s;
  for (const auto& r : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

// Reads key as an integer, accepting integral floats; returns fallback when absent or null.
// No dimension of a real model comes near 2^31; a larger one is a damaged config.json (and products of two would
// overflow).
constexpr int64_t kMaxDim = int64_t{1} << 31;

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (std::abs(x) < 9.0e18 && x == std::trunc(x)) return static_cast<int64_t>(x);
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path, ": '", key, "' must be an integer, got ",
               v.dump());
}

double get_double(const json& j, const char* key, double fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  PALIGN_CHECK(j[key].is_number() && std::isfinite(j[key].get<double>()), ErrorCode::kInvalidArgument,
               "[runtime.ModelConfig] ", path, ": '", key, "' must be a finite number, got ", j[key].dump());
  return j[key].get<double>();
}

// Reads key as a string; returns fallback when absent or null.
std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& path) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  PALIGN_CHECK(j[key].is_string(), ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path, ": '", key,
               "' must be a string, got ", j[key].dump(), "; fix config.json");
  return j[key].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null() || !j[key].is_boolean()) return fallback;
  return j[key].get<bool>();
}

std::optional<int64_t> get_opt_int(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (j[key].is_number_integer()) return j[key].get<int64_t>();
  if (j[key].is_array() && !j[key].empty() && j[key][0].is_number_integer()) return j[key][0].get<int64_t>();
  return std::nullopt;
}

void parse_rope(const json& j, ModelConfig& c, const std::string& path) {
  // Hub form: rope_theta at the top, rope_scaling {rope_type|type, factor, ...}; transformers 5: rope_parameters
  // {rope_type, rope_theta, factor, ...}.
  c.rope.theta = get_double(j, "rope_theta", c.arch == Arch::kGpt2 ? 0.0 : 10000.0, path);
  const json* scaling = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    scaling = &j["rope_parameters"];
    c.rope.theta = get_double(*scaling, "rope_theta", c.rope.theta, path);
  } else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    scaling = &j["rope_scaling"];
  }
  if (!scaling) return;
  std::string type = "default";
  if (scaling->contains("rope_type") && (*scaling)["rope_type"].is_string())
    type = (*scaling)["rope_type"].get<std::string>();
  else if (scaling->contains("type") && (*scaling)["type"].is_string())
    type = (*scaling)["type"].get<std::string>();
  if (type == "default") {
    c.rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    c.rope.type = RopeType::kLinear;
    c.rope.factor = get_double(*scaling, "factor", 1.0, path);
  } else if (type == "llama3") {
    c.rope.type = RopeType::kLlama3;
    c.rope.factor = get_double(*scaling, "factor", 8.0, path);
    c.rope.low_freq_factor = get_double(*scaling, "low_freq_factor", 1.0, path);
    c.rope.high_freq_factor = get_double(*scaling, "high_freq_factor", 4.0, path);
    c.rope.original_max_position = get_int(*scaling, "original_max_position_embeddings", 8192, path);
    PALIGN_CHECK(c.rope.high_freq_factor != c.rope.low_freq_factor, ErrorCode::kInvalidArgument,
                 "[runtime.ModelConfig] ", path, ": llama3 rope scaling needs high_freq_factor != low_freq_factor");
    PALIGN_CHECK(c.rope.low_freq_factor > 0 && c.rope.high_freq_factor > 0 && c.rope.original_max_position > 0,
                 ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
                 ": llama3 rope scaling needs positive low_freq_factor, high_freq_factor and "
                 "original_max_position_embeddings");
  } else {
    PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path, ": rope type '", type,
                 "' is not supported (supported: default, linear, llama3)");
  }
  PALIGN_CHECK(c.rope.factor > 0, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
               ": rope factor must be positive");
}

}  // namespace

ModelConfig ModelConfig::parse(std::string_view text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path, " is not valid JSON (", e.what(), ")");
  }
  PALIGN_CHECK(j.is_object(), ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path, " is not a JSON object");
  ModelConfig c;
  PALIGN_CHECK(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                   j["architectures"][0].is_string(),
               ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
               " has no \"architectures\" list; supported architectures: ", supported_list());
  c.architecture = j["architectures"][0].get<std::string>();
  bool found = false;
  for (const auto& r : kArchitectures) {
    if (c.architecture == r.name) c.arch = r.arch, c.head = r.head, found = true;
  }
  PALIGN_CHECK(found, ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path, ": architecture '", c.architecture,
               "' is not supported (supported: ", supported_list(), ")");

  if (c.arch == Arch::kGpt2) {
    c.vocab_size = get_int(j, "vocab_size", 50257, path);
    c.hidden_size = get_int(j, "n_embd", get_int(j, "hidden_size", 768, path), path);
    c.n_layer = get_int(j, "n_layer", 12, path);
    c.n_head = get_int(j, "n_head", 12, path);
    c.n_kv_head = c.n_head;
    PALIGN_CHECK(c.hidden_size > 0 && c.hidden_size <= kMaxDim, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ",
                 path, ": n_embd (", c.hidden_size, ") must be between 1 and ", kMaxDim);
    c.intermediate_size = get_int(j, "n_inner", 4 * c.hidden_size, path);
    c.max_position = get_int(j, "n_positions", 1024, path);
    c.norm_eps = get_double(j, "layer_norm_epsilon", 1e-5, path);
    const std::string act = get_string(j, "activation_function", "gelu_new", path);
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
      c.activation = Activation::kGeluTanh;
    else if (act == "gelu")
      c.activation = Activation::kGelu;
    else
      PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path, ": activation_function '", act,
                   "' is not supported (gelu_new, gelu)");
    PALIGN_CHECK(get_bool(j, "scale_attn_weights", true) && !get_bool(j, "scale_attn_by_inverse_layer_idx", false) &&
                     !get_bool(j, "reorder_and_upcast_attn", false),
                 ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path,
                 ": GPT-2 attention variants other than scale_attn_weights=true are not supported");
    c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", true);
    c.attention_bias = true;
    c.attention_out_bias = true;
    c.mlp_bias = true;
  } else {
    c.vocab_size = get_int(j, "vocab_size", 0, path);
    c.hidden_size = get_int(j, "hidden_size", 0, path);
    c.intermediate_size = get_int(j, "intermediate_size", 0, path);
    c.n_layer = get_int(j, "num_hidden_layers", 0, path);
    c.n_head = get_int(j, "num_attention_heads", 0, path);
    c.n_kv_head = get_int(j, "num_key_value_heads", c.n_head, path);
    c.max_position = get_int(j, "max_position_embeddings", 2048, path);
    c.norm_eps = get_double(j, "rms_norm_eps", 1e-6, path);
    const std::string act = get_string(j, "hidden_act", "silu", path);
    PALIGN_CHECK(act == "silu" || act == "swish", ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path,
                 ": hidden_act '", act, "' is not supported (silu)");
    c.activation = Activation::kSilu;
    c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false);
    c.mlp_bias = get_bool(j, "mlp_bias", false);
    if (c.arch == Arch::kQwen2) {
      c.attention_bias = true;  // Qwen2 always has q/k/v biases and no o_proj bias
    } else if (c.arch == Arch::kQwen3) {
      c.attention_bias = get_bool(j, "attention_bias", false);
      c.attention_out_bias = c.attention_bias;
      c.qk_norm = true;
    } else if (c.arch == Arch::kLlama) {
      c.attention_bias = get_bool(j, "attention_bias", false);
      c.attention_out_bias = c.attention_bias;
    }
    if (c.arch == Arch::kMistral) {
      if (auto w = get_opt_int(j, "sliding_window")) c.sliding_window = *w;
    } else if (c.arch == Arch::kQwen2 || c.arch == Arch::kQwen3) {
      if (get_bool(j, "use_sliding_window", false))
        PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.ModelConfig] ", path,
                     ": use_sliding_window=true (per-layer sliding windows) is not supported");
    }
    parse_rope(j, c, path);
  }
  PALIGN_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.n_layer > 0 && c.n_head > 0 && c.n_kv_head > 0 &&
                   c.intermediate_size > 0 && c.max_position > 0,
               ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
               ": vocab_size, hidden_size, intermediate_size, layers, heads and max positions must be positive");
  PALIGN_CHECK(c.n_head % c.n_kv_head == 0, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
               ": num_attention_heads (", c.n_head, ") must be a multiple of num_key_value_heads (", c.n_kv_head, ")");
  const int64_t default_head_dim = c.hidden_size / c.n_head;
  c.head_dim = c.arch == Arch::kGpt2 ? default_head_dim : get_int(j, "head_dim", default_head_dim, path);
  if (!j.contains("head_dim") || j["head_dim"].is_null() || c.arch == Arch::kGpt2)
    PALIGN_CHECK(c.hidden_size % c.n_head == 0, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
                 ": hidden_size (", c.hidden_size, ") is not divisible by the heads (", c.n_head,
                 ") and no head_dim is given");
  PALIGN_CHECK(c.head_dim > 0 && (c.arch == Arch::kGpt2 || c.head_dim % 2 == 0), ErrorCode::kInvalidArgument,
               "[runtime.ModelConfig] ", path, ": head_dim must be positive and even for RoPE");
  // Values the forward would accept and turn into all-NaN logits.
  PALIGN_CHECK(c.arch == Arch::kGpt2 || (std::isfinite(c.rope.theta) && c.rope.theta > 0), ErrorCode::kInvalidArgument,
               "[runtime.ModelConfig] ", path, ": rope_theta must be a positive number, got ", c.rope.theta);
  PALIGN_CHECK(std::isfinite(c.norm_eps) && c.norm_eps >= 0, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ",
               path, ": the norm epsilon (rms_norm_eps / layer_norm_epsilon) must be a number >= 0, got ", c.norm_eps);
  PALIGN_CHECK(!c.sliding_window || *c.sliding_window > 0, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
               ": sliding_window must be positive (null: no window), got ", c.sliding_window.value_or(0));

  if (c.head == HeadKind::kSequenceClassification) {
    std::vector<std::string> labels;
    if (j.contains("id2label") && j["id2label"].is_object()) {
      labels.resize(j["id2label"].size());
      for (auto it = j["id2label"].begin(); it != j["id2label"].end(); ++it) {
        size_t idx = 0;
        try {
          idx = std::stoul(it.key());
        } catch (...) {
          PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path, ": id2label key '", it.key(),
                       "' is not an index");
        }
        PALIGN_CHECK(idx < labels.size() && it.value().is_string(), ErrorCode::kInvalidArgument,
                     "[runtime.ModelConfig] ", path, ": id2label must map 0..n-1 to names");
        labels[idx] = it.value().get<std::string>();
      }
    }
    c.num_labels = get_int(j, "num_labels", labels.empty() ? 2 : static_cast<int64_t>(labels.size()), path);
    PALIGN_CHECK(c.num_labels >= 1, ErrorCode::kInvalidArgument, "[runtime.ModelConfig] ", path,
                 ": num_labels must be at least 1");
    if (static_cast<int64_t>(labels.size()) == c.num_labels) c.id2label = labels;
    if (c.id2label.empty())
      for (int64_t i = 0; i < c.num_labels; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  }
  c.pad_token_id = get_opt_int(j, "pad_token_id");
  c.bos_token_id = get_opt_int(j, "bos_token_id");
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
    if (e.is_array())
      for (const auto& x : e)
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int64_t>());
  }
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& config_json) {
  std::ifstream in(config_json);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[runtime.ModelConfig] cannot read ", config_json.string(),
               "; a model directory needs config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), config_json.string());
}

std::string ModelConfig::to_json() const {
  json j;
  j["architectures"] = {architecture};
  j["vocab_size"] = vocab_size;
  if (arch == Arch::kGpt2) {
    j["model_type"] = "gpt2";
    j["n_embd"] = hidden_size;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_inner"] = intermediate_size;
    j["n_positions"] = max_position;
    j["n_ctx"] = max_position;
    j["layer_norm_epsilon"] = norm_eps;
    j["activation_function"] = activation == Activation::kGelu ? "gelu" : "gelu_new";
    j["scale_attn_weights"] = true;
  } else {
    j["model_type"] = std::string(arch_name(arch));
    j["hidden_size"] = hidden_size;
    j["intermediate_size"] = intermediate_size;
    j["num_hidden_layers"] = n_layer;
    j["num_attention_heads"] = n_head;
    j["num_key_value_heads"] = n_kv_head;
    j["head_dim"] = head_dim;
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = max_position;
    j["rms_norm_eps"] = norm_eps;
    j["rope_theta"] = rope.theta;
    if (rope.type == RopeType::kLlama3) {
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", rope.factor},
                           {"low_freq_factor", rope.low_freq_factor},
                           {"high_freq_factor", rope.high_freq_factor},
                           {"original_max_position_embeddings", rope.original_max_position}};
    } else if (rope.type == RopeType::kLinear) {
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope.factor}};
    } else {
      j["rope_scaling"] = nullptr;
    }
    j["attention_bias"] = attention_bias;
    j["mlp_bias"] = mlp_bias;
    if (sliding_window) j["sliding_window"] = *sliding_window;
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = "float32";
  if (head == HeadKind::kSequenceClassification) {
    j["num_labels"] = num_labels;
    json id2 = json::object(), l2i = json::object();
    for (size_t i = 0; i < id2label.size(); ++i) {
      id2[std::to_string(i)] = id2label[i];
      l2i[id2label[i]] = i;
    }
    j["id2label"] = id2;
    j["label2id"] = l2i;
  }
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  return j.dump(2);
}

bool same_body(const ModelConfig& a, const ModelConfig& b) {
  auto body = [](ModelConfig c) {
    c.architecture.clear();
    c.head = HeadKind::kCausalLm;
    c.num_labels = 1;
    c.id2label.clear();
    c.tie_word_embeddings = false;
    c.pad_token_id.reset();
    c.bos_token_id.reset();
    c.eos_token_ids.clear();
    return c;
  };
  return body(a) == body(b);
}

}  // namespace palign::runtime
