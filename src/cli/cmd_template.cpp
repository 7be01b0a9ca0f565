// palign template: render a conversation with a model's chat template, exactly as the model would see it.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/runtime/chat_template.h"

namespace palign::cli {

namespace fs = std::filesystem;

namespace {

struct TemplateFlags {
  std::string model, messages, chat_template, context;
  bool no_generation_prompt = false, json = false;
};

// A file's text; "-" reads standard input.
std::string read_input(const std::string& path, const char* flag) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  PALIGN_CHECK(fs::is_regular_file(path), ErrorCode::kNotFound, "[cli.template] ", flag, " file ", path,
               " does not exist");
  std::ifstream in(path, std::ios::binary);
  PALIGN_CHECK(in.good(), ErrorCode::kIo, "[cli.template] cannot read ", flag, " file ", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int run_template(const TemplateFlags& f) {
  const auto tmpl = runtime::ChatTemplate::from_model_dir(resolve_model_dir(f.model), f.chat_template);
  const std::string text = tmpl.apply_json(read_input(f.messages, "--messages"), !f.no_generation_prompt,
                                           f.context.empty() ? std::string() : read_input(f.context, "--context"));
  if (f.json) {
    print_json_line(nlohmann::json{{"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

Command add_template(CLI::App& root) {
  auto f = std::make_shared<TemplateFlags>();
  CLI::App* app = root.add_subcommand("template", "Print a conversation exactly as a model's chat template renders it");
  app->add_option(
      "--model", f->model,
      "Model directory (tokenizer_config.json or chat_template.jinja is enough; default: the shipped model)");
  app->add_option("--messages", f->messages,
                  "JSON file of OpenAI-style messages [{\"role\", \"content\", ...}] (- reads standard input)")
      ->required();
  app->add_flag("--no-generation-prompt", f->no_generation_prompt, "Leave out the assistant turn's opening");
  app->add_flag("--json", f->json, "Print one line {\"text\": ...}");
  app->add_option("--chat-template", f->chat_template, "Jinja chat template file to use instead of the model's");
  app->add_option("--context", f->context,
                  "JSON file of extra template variables (tools, documents, enable_thinking, ...)");
  return {app, [f] { return run_template(*f); }};
}

}  // namespace palign::cli
