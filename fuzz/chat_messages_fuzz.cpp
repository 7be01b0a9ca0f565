// Fuzzes the messages a client sends (ChatTemplate::apply_json, what /v1/chat/completions renders) through real chat
// templates: the input is the messages JSON; a line starting with "\n--\n" after it, when present, is the extra
// context JSON (tools, documents, ...).
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/chat_template.h"

namespace {

const std::vector<std::unique_ptr<palign::runtime::ChatTemplate>>& templates() {
  static const auto all = [] {
    std::vector<std::unique_ptr<palign::runtime::ChatTemplate>> t;
    palign::runtime::ChatTemplateOptions options;
    options.fixed_time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    options.max_output_bytes = size_t{1} << 20;
    const auto dir = palign::fuzz::source_dir() / "tests" / "data" / "chat_templates" / "templates";
    for (const char* name : {"Qwen-Qwen3-0.6B.jinja", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
                             "HuggingFaceTB-SmolLM3-3B.jinja", "canonical-gemma.jinja"}) {
      std::ifstream in(dir / name);
      std::stringstream source;
      source << in.rdbuf();
      t.push_back(std::make_unique<palign::runtime::ChatTemplate>(
          palign::runtime::ChatTemplate::parse(source.str(), "<s>", "</s>", options)));
    }
    t.push_back(std::make_unique<palign::runtime::ChatTemplate>(
        palign::runtime::ChatTemplate::parse(palign::runtime::kContinuationChatTemplate, "<s>", "</s>", options)));
    return t;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view messages = palign::fuzz::as_text(data, size), extra;
  if (const size_t cut = messages.find("\n--\n"); cut != std::string_view::npos) {
    extra = messages.substr(cut + 4);
    messages = messages.substr(0, cut);
  }
  for (const auto& tmpl : templates()) {
    try {
      (void)tmpl->apply_json(messages, /*add_generation_prompt=*/true, extra);
    } catch (const palign::Error&) {
    }
  }
  return 0;
}
