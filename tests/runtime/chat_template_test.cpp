// Chat template tests, driven by tests/data/chat_templates/chat_templates.json (written by make_fixtures.py with
// jinja2 configured as transformers' apply_chat_template configures it): every template x conversation must render
// byte for byte what transformers renders, and every conversation a template rejects must fail with jinja2's
// message. Then the API's own contracts: the ChatMessage overload, undefined special tokens, extra context, JSON
// validation, strftime_now's clock and the output limit.
#include "palign/runtime/chat_template.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "palign/base/error.h"
#include "temp_dir.h"
#include "test_util.h"

namespace {

using Json = nlohmann::ordered_json;
using palign::ErrorCode;
using palign::runtime::ChatMessage;
using palign::runtime::ChatTemplate;
using palign::runtime::ChatTemplateOptions;

const std::filesystem::path kDir = std::filesystem::path(PALIGN_TEST_DATA_DIR) / "chat_templates";

Json load_cases() {
  std::ifstream in(kDir / "chat_templates.json");
  EXPECT_TRUE(in.good()) << kDir / "chat_templates.json"
                         << " (regenerate with make_fixtures.py)";
  return Json::parse(in);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "2025-03-14T09:26:53" as a UTC instant.
std::chrono::system_clock::time_point parse_instant(const std::string& iso) {
  std::tm tm{};
  EXPECT_EQ(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                        &tm.tm_sec),
            6)
      << iso;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// The fixture's templates, parsed once, with their special tokens and the fixture's fixed clock.
std::map<std::string, ChatTemplate> parse_templates(const Json& doc) {
  const ChatTemplateOptions options{.fixed_time = parse_instant(doc["strftime_now"].get<std::string>())};
  std::map<std::string, ChatTemplate> out;
  for (const auto& [name, t] : doc["templates"].items()) {
    const auto token = [&](const char* key) { return t[key].is_null() ? std::string() : t[key].get<std::string>(); };
    out.emplace(name, ChatTemplate::parse(read_file(kDir / t["file"].get<std::string>()), token("bos_token"),
                                          token("eos_token"), options));
  }
  return out;
}

std::string render_case(const Json& doc, const std::map<std::string, ChatTemplate>& templates, const Json& c) {
  const Json& conversation = doc["conversations"][c["conversation"].get<std::string>()];
  const std::string context = conversation.contains("context") ? conversation["context"].dump() : std::string();
  return templates.at(c["template"].get<std::string>())
      .apply_json(conversation["messages"].dump(), c["add_generation_prompt"].get<bool>(), context);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST(ChatTemplate, RendersEveryFixtureLikeTransformers) {
  const Json doc = load_cases();
  const auto templates = parse_templates(doc);
  size_t matched = 0;
  for (const Json& c : doc["cases"]) {
    const std::string label = c["template"].get<std::string>() + " x " + c["conversation"].get<std::string>() +
                              (c["add_generation_prompt"].get<bool>() ? " (generation prompt)" : "");
    std::string got;
    try {
      got = render_case(doc, templates, c);
    } catch (const palign::Error& e) {
      ADD_FAILURE() << label << ": " << e.what();
      continue;
    }
    EXPECT_EQ(got, c["expected"].get<std::string>()) << label;
    matched += got == c["expected"].get<std::string>() ? 1 : 0;
  }
  std::printf("chat template renderings: %zu/%zu match (%zu templates)\n", matched, doc["cases"].size(),
              templates.size());
  EXPECT_GE(templates.size(), 10u);
  EXPECT_EQ(matched, doc["cases"].size());
}

TEST(ChatTemplate, RejectsWhatTransformersRejects) {
  const Json doc = load_cases();
  const auto templates = parse_templates(doc);
  size_t matched = 0;
  for (const Json& c : doc["errors"]) {
    const std::string label = c["template"].get<std::string>() + " x " + c["conversation"].get<std::string>();
    const std::string type = c["error"];
    const std::string want = c["message"];
    try {
      render_case(doc, templates, c);
      ADD_FAILURE() << label << ": rendered, but jinja2 raised " << type << ": " << want;
      continue;
    } catch (const palign::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << label << ": " << e.what();
      // Python's RecursionError has no counterpart: palign's call-depth guard stops the same runaway template.
      const bool ok = type == "RecursionError" ? std::string(e.what()).find("nests macro calls") != std::string::npos
                                               : ends_with(e.what(), want);
      EXPECT_TRUE(ok) << label << ": jinja2 raised " << type << ": " << want << "\n  palign: " << e.what();
      matched += ok ? 1 : 0;
    }
  }
  std::printf("chat template errors: %zu/%zu match\n", matched, doc["errors"].size());
  EXPECT_EQ(matched, doc["errors"].size());
}

TEST(ChatTemplate, ChatMessagesRenderAsTheirJson) {
  const Json doc = load_cases();
  const ChatTemplate tmpl = ChatTemplate::parse(read_file(kDir / "templates/canonical-chatml.jinja"));
  const std::vector<ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi \"there\" é"}};
  EXPECT_EQ(tmpl.apply(messages),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi \"there\" é<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(tmpl.apply(messages, /*add_generation_prompt=*/false),
            tmpl.apply_json(R"([{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Hi \"there\" é"}])",
                            false));
}

TEST(ChatTemplate, EmptySpecialTokensStayUndefined) {
  const std::string source = "{{ bos_token is defined }} {{ eos_token is defined }} [{{ bos_token }}]";
  EXPECT_EQ(ChatTemplate::parse(source).apply({}), "False False []");
  EXPECT_EQ(ChatTemplate::parse(source, "<s>", "</s>").apply({}), "True True [<s>]");
  const ChatTemplate tmpl = ChatTemplate::parse(source, "<s>", "</s>");
  EXPECT_EQ(tmpl.bos_token(), "<s>");
  EXPECT_EQ(tmpl.eos_token(), "</s>");
}

TEST(ChatTemplate, ExtraContextAndMessageFieldsReachTheTemplate) {
  const ChatTemplate tmpl = ChatTemplate::parse(
      "{{ tools is none }} {{ documents is none }} {{ enable_thinking }} {{ bos_token }}"
      "{% for m in messages %} {{ m.role }}:{{ m.content }}:{{ m.tool_calls[0].function.name }}:{{ m.name }}"
      "{% endfor %}",
      "<s>");
  EXPECT_EQ(tmpl.apply_json(R"([{"role": "assistant", "content": null, "name": "n",
                                 "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}])",
                            true, R"({"enable_thinking": false, "bos_token": "<B>"})"),
            "True True False <B> assistant:None:f:n");
  EXPECT_EQ(ChatTemplate::parse("{{ tools|length }}").apply_json("[]", true, R"({"tools": [{"a": 1}]})"), "1");
}

TEST(ChatTemplate, MalformedInputIsAnInvalidArgument) {
  const ChatTemplate tmpl = ChatTemplate::parse("{{ messages|length }}");
  for (const auto& [messages, extra] :
       std::vector<std::pair<std::string, std::string>>{{"[{\"role\": ", ""},
                                                        {"{\"role\": \"user\"}", ""},
                                                        {"[\"user\"]", ""},
                                                        {"[]", "[1]"},
                                                        {"[]", "{\"messages\": []}"},
                                                        {"[]", "{\"add_generation_prompt\": true}"}}) {
    EXPECT_EQ(palign::test::error_code_of([&] { tmpl.apply_json(messages, true, extra); }), ErrorCode::kInvalidArgument)
        << messages << " / " << extra;
  }
  EXPECT_EQ(palign::test::error_code_of([] { ChatTemplate::parse(""); }), ErrorCode::kInvalidArgument);
  ChatTemplateOptions no_output;
  no_output.max_output_bytes = 0;
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::parse("x", "", "", no_output); }),
            ErrorCode::kInvalidArgument);
}

TEST(ChatTemplate, UnsupportedAndBrokenTemplatesFailAtParse) {
  const std::string include = palign::test::error_message_of([] { ChatTemplate::parse("a\n{% include 'x' %}"); });
  EXPECT_NE(include.find("line 2"), std::string::npos) << include;
  EXPECT_NE(include.find("include"), std::string::npos) << include;
  EXPECT_EQ(palign::test::error_code_of([] { ChatTemplate::parse("{{ x|wordwrap }}"); }), ErrorCode::kUnsupported);
  EXPECT_EQ(palign::test::error_code_of([] { ChatTemplate::parse("{% if x %}"); }), ErrorCode::kInvalidArgument);
}

TEST(ChatTemplate, RaiseExceptionIsTheTemplatesMessage) {
  const ChatTemplate gemma = ChatTemplate::parse(read_file(kDir / "templates/google-gemma-2-2b-it.jinja"), "<bos>");
  try {
    gemma.apply({{"system", "s"}, {"user", "u"}});
    ADD_FAILURE() << "gemma-2 accepted a system message";
  } catch (const palign::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(ends_with(e.what(), "System role not supported")) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, StrftimeNowFormatsTheClock) {
  const std::string source = "{{ strftime_now('%d %b %Y|%B %d, %Y|%H:%M:%S|%f|%z') }}";
  const auto fixed = parse_instant("2025-03-14T09:26:53");
  EXPECT_EQ(ChatTemplate::parse(source, "", "", {.fixed_time = fixed}).apply({}),
            "14 Mar 2025|March 14, 2025|09:26:53|000000|");
  // Without a fixed time it is the current local time: a year of four digits.
  const std::string now = ChatTemplate::parse("{{ strftime_now('%Y') }}").apply({});
  EXPECT_EQ(now.size(), 4u) << now;
}

TEST(ChatTemplate, OutputLimitStopsARunawayTemplate) {
  ChatTemplateOptions options;
  options.max_output_bytes = 1 << 20;
  const ChatTemplate tmpl =
      ChatTemplate::parse("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "", "", options);
  const std::string message = palign::test::error_message_of([&] { tmpl.apply({}); });
  EXPECT_NE(message.find("rendered more than"), std::string::npos) << message;
}

}  // namespace

namespace {

// A model directory's template is found as transformers finds it: an explicit file, then chat_template.jinja, then
// tokenizer_config.json's chat_template (a string or the list's "default"), with bos/eos as strings or added-token
// objects; a directory without one is an error that names --chat-template.
TEST(ChatTemplate, FromModelDirFindsTheTemplateAsTransformersDoes) {
  const palign::test::TempDir dir("chat_template_dir");
  const std::vector<ChatMessage> hi = {{"user", "hi"}};
  dir.write("tokenizer_config.json", Json{{"bos_token", Json{{"content", "<s>"}, {"lstrip", false}}},
                                          {"eos_token", "</s>"},
                                          {"chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}}
                                         .dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(dir.path()).apply(hi), "<s>hi</s>");
  dir.write("tokenizer_config.json",
            Json{{"bos_token", "<s>"},
                 {"chat_template", Json::array({Json{{"name", "tool_use"}, {"template", "tools"}},
                                                Json{{"name", "default"}, {"template", "default {{ bos_token }}"}}})}}
                .dump());
  EXPECT_EQ(ChatTemplate::from_model_dir(dir.path()).apply(hi), "default <s>");
  dir.write("chat_template.jinja", "jinja file");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir.path()).apply(hi), "jinja file");
  const auto override_file = dir.write("other.jinja", "{{ messages | length }}");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir.path(), override_file).apply(hi), "1");

  const palign::test::TempDir bare("chat_template_bare");
  bare.write("tokenizer_config.json", Json{{"bos_token", "<s>"}}.dump());
  const std::string none = palign::test::error_message_of([&] { ChatTemplate::from_model_dir(bare.path()); });
  std::printf("no template: %s\n", none.c_str());
  EXPECT_NE(none.find("--chat-template FILE"), std::string::npos);
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_model_dir(bare.path()); }), ErrorCode::kUnsupported);
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_model_dir(bare / "missing"); }), ErrorCode::kNotFound);
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_model_dir(bare.path(), bare / "none.jinja"); }),
            ErrorCode::kNotFound);
  bare.write("tokenizer_config.json", "{\"bos_token\": ");
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_model_dir(bare.path()); }),
            ErrorCode::kInvalidArgument);
  bare.write("tokenizer_config.json", Json{{"bos_token", 3}, {"chat_template", "x"}}.dump());
  EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_model_dir(bare.path()); }),
            ErrorCode::kInvalidArgument);
}

// palign's own model ships the continuation template: each turn but an assistant's starts a fresh text after the BOS
// token, and the model continues the last one, as the bench prompts it.
TEST(ChatTemplate, TheShippedModelContinuesTheUsersText) {
  const std::filesystem::path shipped =
      std::filesystem::path(PALIGN_TEST_DATA_DIR) / ".." / ".." / "models" / "default";
  const ChatTemplate tmpl = ChatTemplate::from_model_dir(shipped);
  EXPECT_EQ(tmpl.apply({{"user", "Why did the"}}), "<|endoftext|>Why did the");
  EXPECT_EQ(tmpl.apply({{"system", "Be funny."}, {"user", "Why"}, {"assistant", " not?"}, {"user", "A cat"}}, false),
            "<|endoftext|>Be funny.<|endoftext|>Why not?<|endoftext|>A cat");
  std::ifstream in(shipped / "tokenizer_config.json");
  EXPECT_EQ(Json::parse(in)["chat_template"].get<std::string>(), palign::runtime::kContinuationChatTemplate)
      << "models/default/tokenizer_config.json and `palign train tokenizer` ship the same template";
}

}  // namespace
