// Chat template tests, driven by tests/data/chat_templates/chat_templates.json: detection of the kind from real
// Jinja sources, renderings checked character for character, and the error cases (unknown template, unknown name,
// bad role order, unknown role) with their ErrorCode.
#include "palign/runtime/chat_template.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

#include "test_util.h"

namespace {

using nlohmann::json;
using palign::ErrorCode;
using palign::runtime::ChatMessage;
using palign::runtime::ChatTemplate;

const std::filesystem::path kCases = std::filesystem::path(PALIGN_TEST_DATA_DIR) / "chat_templates/chat_templates.json";

json load_cases() {
  std::ifstream in(kCases);
  EXPECT_TRUE(in.good()) << kCases;
  return json::parse(in);
}

std::vector<ChatMessage> messages_of(const json& list) {
  std::vector<ChatMessage> out;
  for (const json& m : list) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}

ErrorCode code_named(const std::string& name) {
  for (int i = 0; i < static_cast<int>(ErrorCode::kSentinel); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    if (palign::error_code_name(code) == name) return code;
  }
  ADD_FAILURE() << "unknown error code name " << name;
  return ErrorCode::kSentinel;
}

ChatTemplate template_for(const json& doc, const json& c) {
  const ChatTemplate detected = ChatTemplate::detect(doc["templates"][c["template"].get<std::string>()].get<std::string>());
  return ChatTemplate(detected.kind(), c.value("bos_token", std::string()), c.value("eos_token", std::string()));
}

TEST(ChatTemplate, RendersEveryCaseOfTheDataFile) {
  const json doc = load_cases();
  int matched = 0;
  for (const json& c : doc["cases"]) {
    const std::string got = template_for(doc, c).apply(messages_of(c["messages"]), c["add_generation_prompt"]);
    EXPECT_EQ(got, c["expected"].get<std::string>()) << c["name"];
    matched += got == c["expected"].get<std::string>() ? 1 : 0;
  }
  std::printf("chat template renderings: %d/%zu match\n", matched, doc["cases"].size());
}

TEST(ChatTemplate, ErrorCasesOfTheDataFile) {
  const json doc = load_cases();
  for (const json& c : doc["errors"]) {
    const ChatTemplate t = template_for(doc, c);
    EXPECT_EQ(palign::test::error_code_of([&] { t.apply(messages_of(c["messages"])); }), code_named(c["code"])) << c["name"];
  }
}

TEST(ChatTemplate, DetectsKindsAndRejectsUnknownTemplates) {
  const json doc = load_cases();
  for (const json& c : doc["detect"]) {
    const std::string source =
        c.contains("source_key") ? doc["templates"][c["source_key"].get<std::string>()].get<std::string>() : c["source"].get<std::string>();
    if (c.contains("kind")) {
      EXPECT_EQ(palign::runtime::chat_template_kind_name(ChatTemplate::detect(source).kind()), c["kind"].get<std::string>());
    } else {
      EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::detect(source); }), code_named(c["code"]));
    }
  }
  for (const json& c : doc["from_name"]) {
    const std::string name = c["name"];
    if (c.contains("kind")) {
      EXPECT_EQ(palign::runtime::chat_template_kind_name(ChatTemplate::from_name(name).kind()), c["kind"].get<std::string>());
    } else {
      EXPECT_EQ(palign::test::error_code_of([&] { ChatTemplate::from_name(name); }), code_named(c["code"]));
    }
  }
}

}  // namespace
