// Chat templates: recognises the common Jinja templates of tokenizer_config.json (ChatML, Llama-3, Mistral /
// Llama-2 [INST]) by their structure and renders conversations with them in C++. Not a Jinja interpreter: a template
// it does not recognise is a clear kUnsupported error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace palign::runtime {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatTemplateKind { kChatML, kLlama3, kMistral, kSentinel };

std::string_view chat_template_kind_name(ChatTemplateKind kind);

class ChatTemplate {
 public:
  // Recognises a Jinja chat template source. Throws palign::Error(kUnsupported) naming the template's first line
  // when it is none of the known kinds, and kInvalidArgument when source is empty.
  static ChatTemplate detect(std::string_view jinja_source);
  // Parses a kind name: "chatml", "llama3", "mistral". Throws kInvalidArgument for another name.
  static ChatTemplate from_name(std::string_view name);
  explicit ChatTemplate(ChatTemplateKind kind, std::string bos_token = {}, std::string eos_token = {})
      : kind_(kind), bos_token_(std::move(bos_token)), eos_token_(std::move(eos_token)) {}

  ChatTemplateKind kind() const { return kind_; }
  // Renders messages as the template would (including the BOS text where the template writes it), ending with the
  // assistant header when add_generation_prompt. Throws kInvalidArgument for an unknown role or an order the
  // template rejects (e.g. [INST] templates need user/assistant alternation).
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

 private:
  ChatTemplateKind kind_;
  std::string bos_token_;
  std::string eos_token_;
};

}  // namespace palign::runtime
