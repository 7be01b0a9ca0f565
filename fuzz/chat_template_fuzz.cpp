// Fuzzes chat templates: the input is a Jinja template (tokenizer_config.json's "chat_template"), parsed and rendered
// with a fixed conversation as transformers' apply_chat_template would.
#include <chrono>
#include <vector>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using palign::runtime::ChatMessage;
  static const std::vector<ChatMessage> messages = {
      {"system", "You are terse."}, {"user", "Hi <b>there</b>"}, {"assistant", "Hello."}, {"user", "Again?"}};
  palign::runtime::ChatTemplateOptions options;
  options.fixed_time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  options.max_output_bytes = size_t{1} << 20;
  try {
    const auto tmpl = palign::runtime::ChatTemplate::parse(palign::fuzz::as_text(data, size), "<s>", "</s>", options);
    (void)tmpl.apply(messages, /*add_generation_prompt=*/true);
    (void)tmpl.apply_json(R"([{"role": "user", "content": [{"type": "text", "text": "x"}]}])", false,
                          R"({"tools": [{"type": "function", "function": {"name": "f"}}]})");
  } catch (const palign::Error&) {
  }
  return 0;
}
