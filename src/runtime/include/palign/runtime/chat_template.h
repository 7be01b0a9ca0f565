// Chat templates: renders a conversation with the Jinja chat template of a model's tokenizer_config.json exactly as
// transformers' apply_chat_template does (jinja2 in an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks,
// loopcontrols and the {% generation %} block; messages, tools, documents, add_generation_prompt, bos_token,
// eos_token and extra template variables in the context). One interpreter renders every template
// (src/runtime/jinja.h); a template using Jinja outside the supported subset is a kUnsupported error naming the
// construct and its line, never a silently different prompt.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace palign::runtime {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ... (the template decides which it accepts)
  std::string content;
};

// The template of palign's own fortune models (models/default, `palign train tokenizer`): they have no roles and
// continue text, so every turn but an assistant's starts a fresh text after the BOS token, an assistant's continues
// the turn before it, and the generation prompt adds nothing: the model continues the last turn.
inline constexpr std::string_view kContinuationChatTemplate =
    "{%- for message in messages -%}\n"
    "{%- if message['role'] != 'assistant' -%}{{ bos_token }}{%- endif -%}\n"
    "{{- message['content'] -}}\n"
    "{%- endfor -%}\n";

struct ChatTemplateOptions {
  // The instant strftime_now() formats, in UTC. Unset: the current local time at each apply(), as transformers'
  // datetime.now() (tests fix it so that renderings are reproducible).
  std::optional<std::chrono::system_clock::time_point> fixed_time;
  // A rendering that grows past this many bytes fails (kInvalidArgument) instead of exhausting memory.
  size_t max_output_bytes = size_t{1} << 24;

  // An error message, or empty when the options are usable.
  std::string validate() const;
};

// A parsed chat template. Immutable; apply() may be called concurrently.
class ChatTemplate {
 public:
  // Parses the Jinja source (tokenizer_config.json's "chat_template"). bos_token / eos_token are the tokenizer's
  // special-token texts; an empty one is left undefined in the template, as transformers leaves out special tokens
  // a tokenizer lacks. Throws palign::Error naming the line: kInvalidArgument for an empty source or a syntax error,
  // kUnsupported for a construct outside the supported Jinja subset.
  static ChatTemplate parse(std::string_view jinja_source, std::string bos_token = {}, std::string eos_token = {},
                            ChatTemplateOptions options = {});

  // Loads the chat template a model directory ships, found as transformers finds it: template_file when given, else
  // DIR/chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or the entry named "default" of
  // a list). bos_token / eos_token come from tokenizer_config.json (strings or added-token objects with "content");
  // DIR needs nothing else. Throws kNotFound for a missing DIR or template_file, kInvalidArgument for a malformed
  // tokenizer_config.json, kUnsupported when DIR ships no template (the message names --chat-template), plus what
  // parse() throws.
  static ChatTemplate from_model_dir(const std::filesystem::path& dir, const std::filesystem::path& template_file = {},
                                     ChatTemplateOptions options = {});

  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;
  ~ChatTemplate();

  // Renders messages (each {"role", "content"}), with tools and documents None. Throws palign::Error:
  // kInvalidArgument when the template rejects the conversation (its raise_exception() message ends the error's
  // message) or fails on it as jinja2 would (an undefined value used, a type error); kUnsupported for a construct
  // palign does not implement.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  // Renders OpenAI-style messages given as JSON text: an array of objects with "role", "content" (a string, null or
  // a list of parts) and any other fields (tool_calls, tool_call_id, name, reasoning_content, ...), which reach the
  // template as they are. extra_context_json, when not empty, is a JSON object of further template variables
  // (tools, documents, enable_thinking, date_string, ...; it may override bos_token / eos_token but not messages or
  // add_generation_prompt). Throws kInvalidArgument for malformed JSON, plus what apply() throws.
  std::string apply_json(std::string_view messages_json, bool add_generation_prompt = true,
                         std::string_view extra_context_json = {}) const;

  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  ChatTemplate(std::unique_ptr<const jinja::Template> tmpl, std::string bos_token, std::string eos_token,
               ChatTemplateOptions options);

  std::unique_ptr<const jinja::Template> template_;
  std::string bos_token_;
  std::string eos_token_;
  ChatTemplateOptions options_;
};

}  // namespace palign::runtime
