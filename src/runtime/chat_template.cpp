// Chat templates (palign/runtime/chat_template.h): recognises ChatML, Llama-3 and Mistral / Llama-2 [INST] Jinja
// sources by their marker tokens and renders conversations the way the canonical templates do:
//   ChatML:  <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
//   Llama-3: {bos}<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|> ... [assistant header]
//   Mistral: {bos}[INST] {user} [/INST]{assistant}{eos}[INST] ... (system text + "\n\n" before the first user turn)
#include "palign/runtime/chat_template.h"

#include "palign/base/error.h"
#include "unicode.h"

namespace palign::runtime {

namespace {

constexpr std::string_view kLlama3Bos = "<|begin_of_text|>";
constexpr std::string_view kMistralBos = "<s>";
constexpr std::string_view kMistralEos = "</s>";

// Jinja's trim filter is Python's str.strip(): str.isspace() characters at both ends.
bool is_python_space(char32_t cp) { return unicode::is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::string python_strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t pos = begin;
    if (!is_python_space(unicode::next_code_point(s, pos))) break;
    begin = pos;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_python_space(unicode::next_code_point(s, pos))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

void check_roles(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    PALIGN_CHECK(role == "system" || role == "user" || role == "assistant", ErrorCode::kInvalidArgument,
                 "[runtime.ChatTemplate.apply] message ", i, " has role \"", role,
                 "\"; use \"system\", \"user\" or \"assistant\"");
  }
}

std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          std::string_view bos) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos;
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + python_strip(messages[i].content) +
           "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Mistral-7B-Instruct's template: roles must alternate user/assistant starting with user; an optional system
// message comes first and is prepended to the first user message. add_generation_prompt adds nothing.
std::string render_mistral(const std::vector<ChatMessage>& messages, std::string_view bos, std::string_view eos) {
  size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    first = 1;
  }
  std::string out(bos);
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool expect_user = (i - first) % 2 == 0;
    PALIGN_CHECK(m.role == (expect_user ? "user" : "assistant"), ErrorCode::kInvalidArgument,
                 "[runtime.ChatTemplate.apply] message ", i, " has role \"", m.role, "\" but the [INST] template needs ",
                 expect_user ? "\"user\"" : "\"assistant\"",
                 " there; conversations must alternate user/assistant (an optional system message goes first)");
    if (expect_user) {
      std::string content = m.content;
      if (i == first && first == 1) content = system + "\n\n" + content;
      out += "[INST] " + content + " [/INST]";
    } else {
      out += m.content;
      out += eos;
    }
  }
  return out;
}

std::string_view first_line(std::string_view s) {
  const size_t nl = s.find('\n');
  std::string_view line = s.substr(0, nl);
  return line.size() > 120 ? line.substr(0, 120) : line;
}

}  // namespace

std::string_view chat_template_kind_name(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kChatML: return "chatml";
    case ChatTemplateKind::kLlama3: return "llama3";
    case ChatTemplateKind::kMistral: return "mistral";
    case ChatTemplateKind::kSentinel: break;
  }
  return "unknown";
}

ChatTemplate ChatTemplate::detect(std::string_view jinja_source) {
  PALIGN_CHECK(!jinja_source.empty(), ErrorCode::kInvalidArgument,
               "[runtime.ChatTemplate.detect] the chat template source is empty; pass tokenizer_config.json's "
               "\"chat_template\" or name a template (chatml, llama3, mistral)");
  if (jinja_source.find("<|start_header_id|>") != std::string_view::npos) return ChatTemplate(ChatTemplateKind::kLlama3);
  if (jinja_source.find("<|im_start|>") != std::string_view::npos) return ChatTemplate(ChatTemplateKind::kChatML);
  if (jinja_source.find("[INST]") != std::string_view::npos) return ChatTemplate(ChatTemplateKind::kMistral);
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.ChatTemplate.detect] unrecognised chat template starting \"",
               first_line(jinja_source), "\"; palign renders ChatML (<|im_start|>), Llama-3 (<|start_header_id|>) and "
               "Mistral ([INST]) templates; name one of chatml, llama3, mistral instead");
}

ChatTemplate ChatTemplate::from_name(std::string_view name) {
  for (auto kind : {ChatTemplateKind::kChatML, ChatTemplateKind::kLlama3, ChatTemplateKind::kMistral}) {
    if (name == chat_template_kind_name(kind)) return ChatTemplate(kind);
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ChatTemplate.from_name] unknown chat template \"", name,
               "\"; expected chatml, llama3 or mistral");
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  check_roles(messages);
  switch (kind_) {
    case ChatTemplateKind::kChatML:
      return render_chatml(messages, add_generation_prompt);
    case ChatTemplateKind::kLlama3:
      return render_llama3(messages, add_generation_prompt, bos_token_.empty() ? kLlama3Bos : bos_token_);
    case ChatTemplateKind::kMistral:
      return render_mistral(messages, bos_token_.empty() ? kMistralBos : bos_token_,
                            eos_token_.empty() ? kMistralEos : eos_token_);
    case ChatTemplateKind::kSentinel:
      break;
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ChatTemplate.apply] the template kind is not set; build it "
               "with ChatTemplate::detect or ChatTemplate::from_name");
}

}  // namespace palign::runtime
