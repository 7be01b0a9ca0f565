// palign forward / info: raw model outputs and the facts of a model, reward or adapter directory.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/runtime/user_tokens.h"
#include "palign/scoring/reward_model.h"

namespace palign::cli {

using namespace palign::runtime;
namespace fs = std::filesystem;

namespace {
struct ForwardFlags {
  std::string model, ids, output, adapter;
};

int run_forward(const ForwardFlags& f) {
  const auto ids = parse_ids(f.ids, "--ids");
  const fs::path out = f.output;
  PALIGN_CHECK(!out.has_parent_path() || fs::is_directory(out.parent_path()), ErrorCode::kIo, "[cli.forward] folder ",
               out.parent_path().string(), " does not exist; create it first");
  auto model = Model::load(resolve_model_dir(f.model));
  std::optional<LoraAdapter> adapter;
  if (!f.adapter.empty()) adapter.emplace(LoraAdapter::load(f.adapter, model->config()));
  at::Tensor t = at::tensor(ids, at::kLong);
  ForwardOptions fo;
  fo.linear_hook = adapter ? &*adapter : nullptr;
  at::Tensor per_pos = model->forward_full(t, fo);
  if (model->config().head == HeadKind::kSequenceClassification) {
    save_safetensors(out, {{"scores", model->pick_sequence_score(t, per_pos).contiguous()}});
  } else {
    save_safetensors(out, {{"logits", per_pos.contiguous()}});
  }
  return 0;
}

struct InfoFlags {
  std::string model;
  bool json = false;
};

// A LoRA adapter (PEFT's directory): its configuration, parameter count and whether it carries user tokens.
nlohmann::json adapter_info(const fs::path& dir) {
  const nlohmann::json c = read_json_file(dir / "adapter_config.json", "cli.info");
  int64_t params = 0;
  const auto weights = SafetensorsFile::open(dir / "adapter_model.safetensors");
  for (const auto& [name, t] : weights.tensors()) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
  }
  nlohmann::json j{{"kind", "lora_adapter"},
                   {"peft_type", c.value("peft_type", "")},
                   {"base_model", c.value("base_model_name_or_path", nlohmann::json())},
                   {"r", c.value("r", 0)},
                   {"lora_alpha", c.value("lora_alpha", 0.0)},
                   {"target_modules", c.value("target_modules", nlohmann::json::array())},
                   {"parameters", params},
                   {"user_tokens", fs::exists(dir / kUserTokensFile)}};
  if (fs::exists(dir / kUserTokensFile)) {  // pdpo: the users it learned tokens for
    const auto tokens = SafetensorsFile::open(dir / kUserTokensFile);
    const auto users = tokens.metadata().find("users");
    const auto parsed =
        users == tokens.metadata().end() ? nlohmann::json() : nlohmann::json::parse(users->second, nullptr, false);
    j["users"] = parsed.is_array() ? parsed : nlohmann::json::array();
    j["tokens_per_user"] = tokens.tensors().count("generic") ? tokens.tensors().at("generic").shape.at(0) : 0;
  }
  return j;
}

// A `palign train reward` directory: its method, labels, users and the training report (multi: per dimension).
nlohmann::json reward_info(const fs::path& dir) {
  const auto reward = scoring::RewardModel::load(dir);
  const nlohmann::json m = read_json_file(dir / scoring::kRewardManifest, "cli.info");
  nlohmann::json j{{"method", reward->method()},
                   {"labels", reward->labels()},
                   {"personalized", reward->personalized()},
                   {"users", reward->users()},
                   {"backbone", m.contains("backbone") && m["backbone"].is_string() ? m["backbone"] : ""}};
  for (const char* key : {"objectives", "report", "by_dimension"})
    if (m.contains(key)) j[key] = m[key];
  return j;
}

int run_info(const InfoFlags& f) {
  const fs::path dir = resolve_model_dir(f.model);
  nlohmann::json j;
  if (!fs::exists(dir / "config.json") && fs::exists(dir / "adapter_config.json")) {
    j = adapter_info(dir);
    if (fs::exists(dir / scoring::kRewardManifest)) j["reward"] = reward_info(dir);  // arm without dimensions
  } else if (!fs::exists(dir / "config.json") && fs::exists(dir / scoring::kRewardManifest)) {
    j = reward_info(dir);
  } else {
    auto model = Model::load(dir);
    const ModelConfig& c = model->config();
    j = {{"architecture", c.architecture},
         {"family", std::string(arch_name(c.arch))},
         {"parameters", model->n_params()},
         {"dtype", model->stored_dtype()},
         {"vocab_size", c.vocab_size},
         {"context_length", c.max_position},
         {"hidden_size", c.hidden_size},
         {"layers", c.n_layer},
         {"heads", c.n_head},
         {"kv_heads", c.n_kv_head},
         {"head_dim", c.head_dim}};
    if (fs::exists(dir / "tokenizer.json")) j["tokenizer_vocab_size"] = Tokenizer::from_dir(dir).vocab_size();
    if (c.head == HeadKind::kSequenceClassification) j["labels"] = c.id2label;
    if (fs::exists(dir / scoring::kRewardManifest)) j["reward"] = reward_info(dir);  // bt, multi
  }
  if (f.json) {
    print_json_line(j.dump());
    return 0;
  }
  for (auto it = j.begin(); it != j.end(); ++it)
    std::cout << it.key() << ": " << (it.value().is_string() ? it.value().get<std::string>() : it.value().dump())
              << "\n";
  return 0;
}
}  // namespace

Command add_forward(CLI::App& root) {
  auto flags = std::make_shared<ForwardFlags>();
  CLI::App* app = root.add_subcommand(
      "forward", "Write F32 logits [T, V] (or a classifier's scores [num_labels]) of token ids to a safetensors file");
  app->add_option("--model", flags->model, "Hugging Face model directory");
  app->add_option("--ids", flags->ids, "Comma-separated token ids")->required();
  app->add_option("--output", flags->output, "Output .safetensors file")->required();
  app->add_option("--adapter", flags->adapter, "A LoRA adapter (PEFT directory) attached to the model");
  return {app, [flags] { return run_forward(*flags); }};
}

Command add_info(CLI::App& root) {
  auto flags = std::make_shared<InfoFlags>();
  CLI::App* app = root.add_subcommand(
      "info",
      "A model's architecture, parameter count, dtype, vocabulary and context length; a reward directory's method, "
      "labels, users and training report; a LoRA adapter's configuration");
  app->add_option("--model", flags->model, "A model, reward (palign train reward) or LoRA adapter directory");
  app->add_flag("--json", flags->json, "Print one JSON object");
  return {app, [flags] { return run_info(*flags); }};
}

}  // namespace palign::cli
