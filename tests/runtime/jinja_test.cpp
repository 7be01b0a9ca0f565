// Jinja interpreter tests (src/runtime/jinja.h). tests/data/chat_templates/jinja_cases.json holds one small
// hand-written template per construct — whitespace control, trim/lstrip blocks, loop variables, scoping, namespace,
// macros and call blocks, slicing, filters, tests, str methods, Python str() of values, tojson, Undefined, Markup —
// with what jinja2 (configured as transformers configures it) renders or raises; every case must agree byte for
// byte. The cases written here cover what jinja2 cannot produce: palign's unsupported constructs and syntax errors
// (code and template line in the message) and the runaway guards.
#include "jinja.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "test_util.h"

namespace {

using Json = nlohmann::ordered_json;
using palign::ErrorCode;
using palign::runtime::jinja::RenderOptions;
using palign::runtime::jinja::Template;

std::string render(const std::string& source, const Json& context = Json::object(), const RenderOptions& options = {}) {
  return Template::parse(source).render(context, options);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// strftime_now() at the fixture's instant, formatted in UTC.
RenderOptions fixed_clock(const std::string& iso) {
  std::tm tm{};
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
              &tm.tm_sec);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = timegm(&tm);
  RenderOptions options;
  options.strftime_now = [t](const std::string& format) {
    std::tm utc{};
    gmtime_r(&t, &utc);
    char buf[256];
    return std::string(buf, std::strftime(buf, sizeof(buf), format.c_str(), &utc));
  };
  return options;
}

TEST(Jinja, RendersEveryCaseLikeJinja2) {
  std::ifstream in(std::filesystem::path(PALIGN_TEST_DATA_DIR) / "chat_templates/jinja_cases.json");
  ASSERT_TRUE(in.good()) << "tests/data/chat_templates/jinja_cases.json (regenerate with make_fixtures.py)";
  const Json doc = Json::parse(in);
  const RenderOptions options = fixed_clock(doc["strftime_now"].get<std::string>());
  size_t matched = 0;
  for (const Json& c : doc["cases"]) {
    const std::string name = c["name"];
    std::string got, error;
    ErrorCode code = ErrorCode::kSentinel;
    try {
      got = render(c["template"].get<std::string>(), c["context"], options);
    } catch (const palign::Error& e) {
      error = e.what();
      code = e.code();
    }
    bool ok = false;
    if (name.rfind("unsupported_", 0) == 0) {
      // jinja2 renders these; palign refuses them rather than render something else.
      ok = code == ErrorCode::kUnsupported;
      EXPECT_TRUE(ok) << name << ": expected kUnsupported, got " << (error.empty() ? "\"" + got + "\"" : error);
    } else if (c.contains("expected")) {
      ok = error.empty() && got == c["expected"].get<std::string>();
      EXPECT_TRUE(ok) << name << "\n  template: " << c["template"].get<std::string>()
                      << "\n  jinja2: " << c["expected"].dump()
                      << "\n  palign: " << (error.empty() ? Json(got).dump() : error);
    } else {
      ok = code == ErrorCode::kInvalidArgument && ends_with(error, c["message"].get<std::string>());
      EXPECT_TRUE(ok) << name << "\n  template: " << c["template"].get<std::string>() << "\n  jinja2 raised "
                      << c["error"].get<std::string>() << ": " << c["message"].get<std::string>()
                      << "\n  palign: " << (error.empty() ? "rendered " + Json(got).dump() : error);
    }
    matched += ok ? 1 : 0;
  }
  std::printf("jinja cases: %zu/%zu match\n", matched, doc["cases"].size());
  EXPECT_EQ(matched, doc["cases"].size());
}

struct ErrorCase {
  std::string source;
  std::string needle;  // the construct the message must name
  int line;
};

TEST(Jinja, UnsupportedConstructsNameTheConstructAndLine) {
  const std::vector<ErrorCase> cases = {
      {"{% include 'x.jinja' %}", "include", 1},
      {"a\n{% extends 'base.jinja' %}", "extends", 2},
      {"{% import 'm.jinja' as m %}", "import", 1},
      {"{% from 'm.jinja' import x %}", "from", 1},
      {"{% block b %}{% endblock %}", "block", 1},
      {"{% autoescape true %}{% endautoescape %}", "autoescape", 1},
      {"\n\n{{ x|wordwrap(3) }}", "unknown filter 'wordwrap'", 3},
      {"{{ x|groupby('a') }}", "unknown filter 'groupby'", 1},
      {"{% if x\n is prime %}{% endif %}", "unknown test 'prime'", 2},
      {"{% do x.append(1) %}", "unknown tag '{% do %}'", 1},
      {"{% for x in y recursive %}{% endfor %}", "recursive", 1},
      {"{{ '\\N{DASH}' }}", "\\N{...}", 1},
      // Render-time: jinja2 would render these, palign refuses.
      {"\n{{ '{:>5}'.format(1) }}", "format specs", 2},
      {"{{ 'a'.encode() }}", "the str method 'encode'", 1},
      {"{{ 2 ** 63 }}", "beyond 64 bits", 1},
      {"{{ 'a'.upper }}", "printing a builtin_function_or_method", 1},
      {"{{ [1]|map('string') }}", "printing a generator", 1},
      {"{{ (1).bit_length() }}", "bit_length", 1},
  };
  for (const ErrorCase& c : cases) {
    ErrorCode code = ErrorCode::kSentinel;
    std::string message;
    try {
      render(c.source, Json{{"x", 1}, {"y", Json::array()}});
      ADD_FAILURE() << c.source << ": no error";
      continue;
    } catch (const palign::Error& e) {
      code = e.code();
      message = e.what();
    }
    EXPECT_EQ(code, ErrorCode::kUnsupported) << c.source << ": " << message;
    EXPECT_NE(message.find(c.needle), std::string::npos) << c.source << ": " << message;
    EXPECT_NE(message.find("line " + std::to_string(c.line) + ":"), std::string::npos) << c.source << ": " << message;
  }
}

TEST(Jinja, SyntaxErrorsNameTheLine) {
  const std::vector<ErrorCase> cases = {
      {"{% if x %}\nunclosed", "needs 'elif' or 'else' or 'endif'", 1},
      {"a\n\n{{ x + }}", "unexpected 'end of print statement'", 3},
      {"{% endfor %}", "'{% endfor %}'", 1},
      {"{{ x ) }}", "unexpected ')'", 1},
      {"{% for %}{% endfor %}", "expected", 1},
      {"\n{{ 'abc }}", "unterminated string", 2},
      {"{# no end", "comment", 1},
      {"{% set 1 = 2 %}", "can't assign", 1},
      {"{% macro m(a=1, b) %}{% endmacro %}", "non-default argument", 1},
      {"{% break %}", "outside of a for loop", 1},
      {"{% for x in y %}{% macro m() %}{% break %}{% endmacro %}{% endfor %}", "outside of a for loop", 1},
      {"{{ x is defined is defined }}", "cannot chain multiple tests", 1},
      {"{% if %}{% endif %}", "expected an expression, got 'end of statement block'", 1},
      {"{{ x !y }}", "unexpected character '!'", 1},
      {"{% raw %}never closed", "endraw", 1},
  };
  for (const ErrorCase& c : cases) {
    ErrorCode code = ErrorCode::kSentinel;
    std::string message;
    try {
      Template::parse(c.source);
      ADD_FAILURE() << c.source << ": parsed";
      continue;
    } catch (const palign::Error& e) {
      code = e.code();
      message = e.what();
    }
    EXPECT_EQ(code, ErrorCode::kInvalidArgument) << c.source << ": " << message;
    EXPECT_NE(message.find(c.needle), std::string::npos) << c.source << ": " << message;
    EXPECT_NE(message.find("line " + std::to_string(c.line) + ":"), std::string::npos) << c.source << ": " << message;
  }
  EXPECT_EQ(palign::test::error_code_of([] { Template::parse("\xff\xfe"); }), ErrorCode::kInvalidArgument);
}

TEST(Jinja, RuntimeErrorsNameTheLine) {
  const std::string message = palign::test::error_message_of([] {
    render("{% for m in messages %}\n{{ m.content + 1 }}{% endfor %}",
           Json{{"messages", Json::array({Json{{"content", "a"}}})}});
  });
  EXPECT_NE(message.find("line 2:"), std::string::npos) << message;
  EXPECT_NE(message.find("can only concatenate str (not \"int\") to str"), std::string::npos) << message;
}

TEST(Jinja, RunawayTemplatesHitAGuard) {
  const std::string recursion =
      palign::test::error_message_of([] { render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); });
  EXPECT_NE(recursion.find("nests macro calls more than 200 deep"), std::string::npos) << recursion;

  RenderOptions small_output;
  small_output.max_output_bytes = 1000;
  const std::string output = palign::test::error_message_of(
      [&] { render("{% for i in range(100) %}{{ 'x' * 20 }}{% endfor %}", Json::object(), small_output); });
  EXPECT_NE(output.find("rendered more than 1000 bytes"), std::string::npos) << output;

  RenderOptions few_steps;
  few_steps.max_steps = 10000;
  const std::string steps = palign::test::error_message_of([&] {
    render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", Json::object(), few_steps);
  });
  EXPECT_NE(steps.find("ran more than 10000 steps"), std::string::npos) << steps;

  const std::string deep = palign::test::error_message_of(
      [] { Template::parse("{{ " + std::string(1000, '(') + "1" + std::string(1000, ')') + " }}"); });
  EXPECT_NE(deep.find("nests expressions or blocks more than"), std::string::npos) << deep;
}

TEST(Jinja, ATemplateRendersManyContextsIndependently) {
  const Template t = Template::parse(
      "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }} {{ d }}");
  EXPECT_EQ(t.render(Json{{"xs", {1, 2}}, {"d", Json{{"b", 1}, {"a", 2}}}}), "3 {'b': 1, 'a': 2}");
  EXPECT_EQ(t.render(Json{{"xs", {5}}, {"d", nullptr}}), "5 None");
  EXPECT_EQ(palign::test::error_code_of([&] { t.render(Json::array()); }), ErrorCode::kInvalidArgument);
}

TEST(Jinja, StrftimeNowIsUndefinedWithoutAClock) {
  EXPECT_EQ(render("{{ strftime_now is defined }}"), "False");
  RenderOptions clock;
  clock.strftime_now = [](const std::string& format) { return "<" + format + ">"; };
  EXPECT_EQ(render("{{ strftime_now is defined }} {{ strftime_now('%Y') }}", Json::object(), clock), "True <%Y>");
}

}  // namespace
