// Chat templates (palign/runtime/chat_template.h): builds the render context transformers' apply_chat_template
// builds — messages, tools=None, documents=None, add_generation_prompt, the special tokens, then the caller's extra
// variables — and renders it with the Jinja interpreter (jinja.h). strftime_now() formats the fixed instant in UTC
// or the current local time, with C strftime as Python's datetime.strftime does.
#include "palign/runtime/chat_template.h"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "jinja.h"
#include "palign/base/error.h"

namespace palign::runtime {

namespace {

using Json = nlohmann::ordered_json;

// Python's datetime.strftime on a naive datetime: %f is the microseconds, %z and %Z are empty, the rest is C's
// strftime.
std::string format_time(const std::string& python_format,
                        const std::optional<std::chrono::system_clock::time_point>& fixed) {
  const auto now = fixed ? *fixed : std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::string format;
  for (size_t i = 0; i < python_format.size(); ++i) {
    if (python_format[i] != '%' || i + 1 >= python_format.size()) {
      format.push_back(python_format[i]);
      continue;
    }
    const char c = python_format[++i];
    if (c == 'f') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "%06lld", static_cast<long long>(micros < 0 ? micros + 1000000 : micros));
      format += buf;
    } else if (c != 'z' && c != 'Z') {
      format.push_back('%');
      format.push_back(c);
    }
  }
  std::tm tm{};
  if (fixed) {
    gmtime_r(&t, &tm);
  } else {
    localtime_r(&t, &tm);
  }
  if (format.empty()) return "";
  std::string buf(256, '\0');
  for (int attempt = 0; attempt < 8; ++attempt) {
    const size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
    if (n > 0) return buf.substr(0, n);
    buf.resize(buf.size() * 4);
  }
  return "";  // a format that renders nothing (e.g. "%p" in some locales)
}

Json parse_json(std::string_view text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ChatTemplate.apply_json] ", what,
                 " is not valid JSON: ", e.what());
  }
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PALIGN_CHECK(in.good(), ErrorCode::kIo, "[runtime.ChatTemplate] cannot read ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A special token of tokenizer_config.json: a string, or an added-token object {"content": ...}; empty when absent.
std::string config_token(const Json& config, const char* key, const std::filesystem::path& path) {
  if (!config.contains(key) || config[key].is_null()) return {};
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  PALIGN_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), ErrorCode::kInvalidArgument,
               "[runtime.ChatTemplate] ", path.string(), ": \"", key,
               "\" must be a string or an object with a string \"content\"");
  return v["content"].get<std::string>();
}

}  // namespace

ChatTemplate ChatTemplate::from_model_dir(const std::filesystem::path& dir, const std::filesystem::path& template_file,
                                          ChatTemplateOptions options) {
  namespace fs = std::filesystem;
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kNotFound, "[runtime.ChatTemplate] model directory ", dir.string(),
               " does not exist");
  const fs::path config_path = dir / "tokenizer_config.json";
  Json config = Json::object();
  if (fs::exists(config_path)) {
    try {
      config = Json::parse(read_text(config_path));
    } catch (const nlohmann::json::exception& e) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.ChatTemplate] ", config_path.string(),
                   " is not valid JSON: ", e.what());
    }
    PALIGN_CHECK(config.is_object(), ErrorCode::kInvalidArgument, "[runtime.ChatTemplate] ", config_path.string(),
                 " must be a JSON object");
  }
  std::string source;
  if (!template_file.empty()) {
    PALIGN_CHECK(fs::is_regular_file(template_file), ErrorCode::kNotFound, "[runtime.ChatTemplate] chat template file ",
                 template_file.string(), " does not exist");
    source = read_text(template_file);
  } else if (fs::exists(dir / "chat_template.jinja")) {
    source = read_text(dir / "chat_template.jinja");
  } else if (config.contains("chat_template")) {
    const Json& ct = config["chat_template"];
    if (ct.is_string()) {
      source = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const Json& entry : ct)
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
            entry["template"].is_string())
          source = entry["template"].get<std::string>();
    }
  }
  PALIGN_CHECK(!source.empty(), ErrorCode::kUnsupported, "[runtime.ChatTemplate] ", dir.string(),
               " ships no chat template (no chat_template.jinja, no \"chat_template\" in tokenizer_config.json); give "
               "one with --chat-template FILE");
  return parse(source, config_token(config, "bos_token", config_path), config_token(config, "eos_token", config_path),
               std::move(options));
}

std::string ChatTemplateOptions::validate() const {
  if (max_output_bytes == 0) return "max_output_bytes must be positive";
  return {};
}

ChatTemplate::ChatTemplate(std::unique_ptr<const jinja::Template> tmpl, std::string bos_token, std::string eos_token,
                           ChatTemplateOptions options)
    : template_(std::move(tmpl)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)),
      options_(std::move(options)) {}

ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::parse(std::string_view jinja_source, std::string bos_token, std::string eos_token,
                                 ChatTemplateOptions options) {
  PALIGN_CHECK(!jinja_source.empty(), ErrorCode::kInvalidArgument,
               "[runtime.ChatTemplate.parse] the chat template source is empty; pass tokenizer_config.json's "
               "\"chat_template\"");
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[runtime.ChatTemplate.parse] ", problem);
  auto tmpl = std::make_unique<const jinja::Template>(jinja::Template::parse(jinja_source));
  return ChatTemplate(std::move(tmpl), std::move(bos_token), std::move(eos_token), std::move(options));
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  Json list = Json::array();
  for (const ChatMessage& m : messages) list.push_back(Json{{"role", m.role}, {"content", m.content}});
  return apply_json(list.dump(), add_generation_prompt);
}

std::string ChatTemplate::apply_json(std::string_view messages_json, bool add_generation_prompt,
                                     std::string_view extra_context_json) const {
  Json messages = parse_json(messages_json, "the messages");
  PALIGN_CHECK(messages.is_array(), ErrorCode::kInvalidArgument,
               "[runtime.ChatTemplate.apply_json] the messages must be a JSON array of message objects, got ",
               messages.type_name());
  for (size_t i = 0; i < messages.size(); ++i) {
    PALIGN_CHECK(messages[i].is_object(), ErrorCode::kInvalidArgument, "[runtime.ChatTemplate.apply_json] message ", i,
                 " must be a JSON object with \"role\" and \"content\", got ", messages[i].type_name());
  }
  Json context = Json::object();
  context["messages"] = std::move(messages);
  context["tools"] = nullptr;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  if (!bos_token_.empty()) context["bos_token"] = bos_token_;
  if (!eos_token_.empty()) context["eos_token"] = eos_token_;
  if (!extra_context_json.empty()) {
    const Json extra = parse_json(extra_context_json, "the extra context");
    PALIGN_CHECK(extra.is_object(), ErrorCode::kInvalidArgument,
                 "[runtime.ChatTemplate.apply_json] the extra context must be a JSON object of template variables, "
                 "got ",
                 extra.type_name());
    for (const auto& [key, value] : extra.items()) {
      PALIGN_CHECK(key != "messages" && key != "add_generation_prompt", ErrorCode::kInvalidArgument,
                   "[runtime.ChatTemplate.apply_json] the extra context may not set \"", key,
                   "\"; pass it as apply_json's own argument");
      context[key] = value;
    }
  }
  jinja::RenderOptions render;
  render.max_output_bytes = options_.max_output_bytes;
  const auto fixed = options_.fixed_time;
  render.strftime_now = [fixed](const std::string& format) { return format_time(format, fixed); };
  return template_->render(context, render);
}

}  // namespace palign::runtime
