// palign forward / info: raw model outputs and a model directory's facts.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"

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

int run_info(const InfoFlags& f) {
  const fs::path dir = resolve_model_dir(f.model);
  auto model = Model::load(dir);
  const ModelConfig& c = model->config();
  nlohmann::json j{{"architecture", c.architecture},
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
  CLI::App* app = root.add_subcommand("info", "Architecture, parameter count, dtype, vocabulary, context length");
  app->add_option("--model", flags->model, "Hugging Face model directory");
  app->add_flag("--json", flags->json, "Print one JSON object");
  return {app, [flags] { return run_info(*flags); }};
}

}  // namespace palign::cli
