// LoRA adapters' PEFT directory I/O (see lora.h): adapter_config.json and adapter_model.safetensors as PEFT's
// save_pretrained writes them. Compare PEFT's utils/save_and_load.py (tensor names: the adapter name is removed on
// save, so "lora_A.weight").
#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "lora_internal.h"
#include "palign/base/error.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/safetensors.h"

namespace palign::runtime {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lora_detail;

// ---- PEFT directory I/O ----

void LoraAdapter::save(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(dir), ErrorCode::kIo, "[runtime.LoraAdapter.save] cannot create ", dir.string(),
               ": ", ec.message());
  // PEFT's LoraConfig.to_dict() for a causal LM, written as save_pretrained does (indent 2, sorted keys).
  json cfg = {
      {"alpha_pattern", json::object()},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", config_.base_model.empty() ? json(nullptr) : json(config_.base_model)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"lora_alpha", config_.alpha},
      {"lora_dropout", config_.dropout},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", config_.r},
      {"rank_pattern", json::object()},
      {"revision", nullptr},
      {"target_modules", config_.target_modules},
      {"task_type", model_.head == HeadKind::kSequenceClassification ? "SEQ_CLS" : "CAUSAL_LM"},
      {"use_rslora", config_.use_rslora},
  };
  // PEFT writes integral alphas as ints (lora_alpha: 16).
  if (config_.alpha == std::floor(config_.alpha) && std::abs(config_.alpha) < 1e15)
    cfg["lora_alpha"] = static_cast<int64_t>(config_.alpha);
  {
    std::ofstream out(dir / kConfigFile);
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[runtime.LoraAdapter.save] cannot write ", (dir / kConfigFile).string());
    out << cfg.dump(2) << "\n";
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[runtime.LoraAdapter.save] cannot write ", (dir / kConfigFile).string());
  }
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, t] : named_parameters()) tensors.emplace_back(name, t.detach());
  save_safetensors(dir / kWeightsFile, tensors, {{"format", "pt"}});
}

namespace {

// A field that palign does not implement must be absent, null, false or empty.
bool is_unset(const json& j, const char* key) {
  if (!j.contains(key)) return true;
  const json& v = j[key];
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_array() && v.empty()) ||
         (v.is_object() && v.empty()) || (v.is_string() && v.get<std::string>().empty());
}

}  // namespace

LoraAdapter LoraAdapter::load(const fs::path& dir, const ModelConfig& model) {
  const char* where = "[runtime.LoraAdapter.load] ";
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, where, "adapter directory ", dir.string(),
               " does not exist; pass a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)");
  std::string missing;
  for (const char* f : {kConfigFile, kWeightsFile})
    if (!fs::is_regular_file(dir / f)) missing += (missing.empty() ? "" : ", ") + std::string(f);
  if (!fs::is_regular_file(dir / kWeightsFile) && fs::is_regular_file(dir / "adapter_model.bin"))
    PALIGN_THROW(ErrorCode::kUnsupported, where, dir.string(),
                 " holds adapter_model.bin (a pickle); save the adapter with safe_serialization=True");
  PALIGN_CHECK(missing.empty(), ErrorCode::kNotFound, where, dir.string(), " lacks ", missing);

  json j;
  {
    std::ifstream in(dir / kConfigFile);
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, where, (dir / kConfigFile).string(), " is not valid JSON: ", e.what());
    }
  }
  PALIGN_CHECK(j.is_object(), ErrorCode::kInvalidArgument, where, (dir / kConfigFile).string(),
               " must hold a JSON object");
  const std::string origin = (dir / kConfigFile).string();
  // A peft_type of another JSON type (an object, found by fuzzing) is reported as what it is.
  const json peft = j.value("peft_type", json("(none)"));
  const std::string peft_type = peft.is_string() ? peft.get<std::string>() : peft.dump();
  PALIGN_CHECK(peft_type == "LORA", ErrorCode::kUnsupported, where, origin, ": peft_type is ", peft_type,
               "; only LORA adapters are supported");
  check_arch(model, "load");
  const std::string bias = j.contains("bias") && j["bias"].is_string() ? j["bias"].get<std::string>() : "none";
  PALIGN_CHECK(bias == "none", ErrorCode::kUnsupported, where, origin, ": bias is '", bias,
               "'; only bias \"none\" is supported");
  PALIGN_CHECK(is_unset(j, "fan_in_fan_out"), ErrorCode::kUnsupported, where, origin,
               ": fan_in_fan_out is true (GPT-2 style Conv1D weights); palign adapts [out, in] Linear layers only");
  PALIGN_CHECK(is_unset(j, "use_dora"), ErrorCode::kUnsupported, where, origin, ": DoRA (use_dora) is not supported");
  PALIGN_CHECK(is_unset(j, "layers_to_transform"), ErrorCode::kUnsupported, where, origin,
               ": layers_to_transform is set; palign supports adapters over all layers only");
  PALIGN_CHECK(is_unset(j, "modules_to_save"), ErrorCode::kUnsupported, where, origin,
               ": modules_to_save is set (fully trained extra modules); palign supports pure LoRA adapters only");
  PALIGN_CHECK(is_unset(j, "rank_pattern") && is_unset(j, "alpha_pattern"), ErrorCode::kUnsupported, where, origin,
               ": rank_pattern / alpha_pattern (per-module ranks) are not supported");

  LoraConfig lc;
  try {
    // An integer, or a number with an integral value (json's get<int64_t>() of a float beyond int64 is undefined).
    const json& r = j.at("r");
    const double r_value = r.is_number() ? r.get<double>() : 0.5;
    PALIGN_CHECK(r.is_number_integer() || (r_value == std::trunc(r_value) && std::abs(r_value) < 9.0e18),
                 ErrorCode::kInvalidArgument, where, origin, ": r must be an integer, got ", r.dump());
    lc.r = r.is_number_integer() ? r.get<int64_t>() : static_cast<int64_t>(r_value);
    lc.alpha = j.contains("lora_alpha") ? j["lora_alpha"].get<double>() : static_cast<double>(lc.r);
    if (j.contains("lora_dropout") && !j["lora_dropout"].is_null()) lc.dropout = j["lora_dropout"].get<double>();
    lc.use_rslora = j.value("use_rslora", false);
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      lc.base_model = j["base_model_name_or_path"].get<std::string>();
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, where, origin, ": r, lora_alpha, lora_dropout: ", e.what());
  }
  const json tm = j.value("target_modules", json());
  if (tm.is_string()) {
    const std::string s = tm.get<std::string>();
    if (s == "all-linear") {
      lc.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    } else {
      PALIGN_CHECK(kind_from_name(s), ErrorCode::kUnsupported, where, origin, ": target_modules is the regex '", s,
                   "'; give a list of module names");
      lc.target_modules = {s};
    }
  } else {
    PALIGN_CHECK(tm.is_array() && !tm.empty(), ErrorCode::kInvalidArgument, where, origin,
                 ": target_modules must be a non-empty list");
    lc.target_modules.clear();
    for (const auto& m : tm) {
      PALIGN_CHECK(m.is_string(), ErrorCode::kInvalidArgument, where, origin, ": target_modules must hold strings");
      const std::string name = m.get<std::string>();
      PALIGN_CHECK(kind_from_name(name), ErrorCode::kUnsupported, where, origin, ": target module '", name,
                   "' is not supported; palign adapts q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
      lc.target_modules.push_back(name);
    }
  }
  const std::string err = lc.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, where, origin, ": ", err);

  LoraAdapter out(model, lc);
  const fs::path weights_path = dir / kWeightsFile;
  SafetensorsFile file = SafetensorsFile::open(weights_path);
  // PEFT: base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}[.{adapter}].weight
  static const std::regex kName(R"(^(?:.*\.)?layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.[^.]+)?\.weight$)");
  for (const auto& [name, info] : file.tensors()) {
    std::smatch m;
    PALIGN_CHECK(std::regex_match(name, m, kName), ErrorCode::kUnsupported, where, weights_path.string(), ": tensor '",
                 name, "' is not a LoRA A/B weight of a Llama-family linear");
    const int64_t layer = std::stoll(m[1].str());
    const auto kind = kind_from_name(m[3].str());
    PALIGN_CHECK(kind && (m[2].str() == "mlp") == is_mlp(*kind), ErrorCode::kUnsupported, where, weights_path.string(),
                 ": tensor '", name, "' adapts an unknown module '", m[2].str(), ".", m[3].str(), "'");
    PALIGN_CHECK(layer < model.n_layer, ErrorCode::kInvalidArgument, where, weights_path.string(), ": tensor '", name,
                 "' is for layer ", layer, " but the model ", describe(model), " has ", model.n_layer, " layers");
    PALIGN_CHECK(out.targets(*kind), ErrorCode::kInvalidArgument, where, weights_path.string(), ": tensor '", name,
                 "' adapts ", m[3].str(), ", which adapter_config.json's target_modules does not list");
    const bool is_b = m[4].str() == "B";
    const auto [in, o] = linear_dims(model, *kind);
    const std::vector<int64_t> want = is_b ? std::vector<int64_t>{o, lc.r} : std::vector<int64_t>{lc.r, in};
    PALIGN_CHECK(info.shape == want, ErrorCode::kInvalidArgument, where, weights_path.string(), ": tensor '", name,
                 "' has shape ", shape_str(info.shape), " but r = ", lc.r, " and the model ", describe(model), " need ",
                 shape_str(want));
    at::Tensor& dst = is_b ? out.b_[out.slot(layer, *kind)] : out.a_[out.slot(layer, *kind)];
    PALIGN_CHECK(!dst.defined(), ErrorCode::kInvalidArgument, where, weights_path.string(), ": two tensors for '", name,
                 "' (different adapter names in one file?)");
    dst = file.get_f32(name).clone();  // own the data: the mapping is read-only and training updates in place
  }
  for (int64_t layer = 0; layer < model.n_layer; ++layer) {
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      if (!out.targets(kind)) continue;
      const size_t s = out.slot(layer, kind);
      for (bool is_b : {false, true})
        PALIGN_CHECK((is_b ? out.b_[s] : out.a_[s]).defined(), ErrorCode::kInvalidArgument, where,
                     weights_path.string(), " lacks '", peft_tensor_name(layer, kind, is_b), "' (target_modules lists ",
                     linear_kind_name(kind), ")");
    }
  }
  return out;
}

}  // namespace palign::runtime
