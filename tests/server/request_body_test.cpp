// The endpoints' bodies read apart from the server (request_body.h): what each field becomes, each bad field's error
// (status, the field named), and a body the handlers answered with a 500 before the checks moved here.
#include "request_body.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace {

using palign::server::detail::BodyLimits;
using palign::server::detail::HttpError;
using palign::server::detail::json;
namespace detail = palign::server::detail;

const BodyLimits kLimits{256, 8, 1024};

// The HttpError fn throws (status 0 when it throws none).
HttpError error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const HttpError& e) {
    return e;
  }
  return HttpError{0, "", "", "", ""};
}

detail::CompletionBody chat(const json& extra = json::object()) {
  json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "Why?"}}}}};
  body.update(extra);
  return detail::parse_completion_body(body.dump(), true, "m", true, kLimits);
}

void expect_chat_error(const json& extra, int status, const std::string& param, const std::string& says = "") {
  const HttpError e = error_of([&] { (void)chat(extra); });
  EXPECT_EQ(e.status, status) << extra.dump() << ": " << e.message;
  EXPECT_EQ(e.param, param) << extra.dump() << ": " << e.message;
  EXPECT_NE(e.message.find(says), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
}

TEST(RequestBody, CompletionFieldsAndDefaults) {
  const auto plain = chat();
  EXPECT_EQ(plain.prompt_text, "Why?");
  EXPECT_EQ(plain.messages, json::parse(R"([{"role": "user", "content": "Why?"}])"));
  EXPECT_EQ(plain.max_tokens, 256);
  EXPECT_EQ(plain.n, 1);
  EXPECT_FALSE(plain.seed);
  EXPECT_EQ(plain.user, "anonymous");
  EXPECT_FALSE(plain.stream);
  EXPECT_FALSE(plain.palign);

  const auto full =
      chat({{"messages",
             {{{"role", "system"}, {"content", "Be brief."}},
              {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "A"}}, {{"type", "text"}, {"text", "B"}}}}}}},
            {"max_completion_tokens", 9},
            {"temperature", 0},
            {"top_p", 0.5},
            {"n", 3},
            {"seed", -1},
            {"stop", {"x", ""}},
            {"stream", true},
            {"stream_options", {{"include_usage", true}}},
            {"user", "ann"},
            {"palign", {{"strategy", "best_of_n"}, {"best_of", 2}, {"adapters", "profile"}}}});
  EXPECT_EQ(full.prompt_text, "AB");
  EXPECT_EQ(full.messages[0]["content"], "Be brief.");
  EXPECT_EQ(full.max_tokens, 9);
  EXPECT_EQ(full.temperature, 0.0);
  EXPECT_EQ(full.top_p, 0.5);
  EXPECT_EQ(full.n, 3);
  EXPECT_EQ(full.seed, UINT64_MAX);  // a negative seed is its two's complement
  EXPECT_EQ(full.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(full.stream && full.include_usage);
  EXPECT_EQ(full.user, "ann");
  ASSERT_TRUE(full.palign);
  EXPECT_EQ(full.palign->strategy, "best_of_n");
  EXPECT_EQ(full.palign->options.best_of, 2);
  EXPECT_EQ(full.palign->given, std::vector<std::string>{"best-of"});
  EXPECT_TRUE(full.palign->mix_profile);

  const auto text = detail::parse_completion_body(R"({"model": "m", "prompt": ["Once"]})", false, "m", false, kLimits);
  EXPECT_EQ(text.prompt, "Once");
  EXPECT_EQ(text.prompt_text, "Once");
  const auto big_seed = chat({{"seed", 18446744073709551615ull}});
  EXPECT_EQ(big_seed.seed, UINT64_MAX);
}

TEST(RequestBody, CompletionErrorsNameTheField) {
  EXPECT_EQ(error_of([] { (void)detail::parse_completion_body("{not json", true, "m", true, kLimits); }).message,
            "the request body is not valid JSON");
  EXPECT_EQ(error_of([] { (void)detail::parse_completion_body("[1]", true, "m", true, kLimits); }).message,
            "the request body must be a JSON object");
  expect_chat_error({{"model", "gpt-4"}}, 404, "model", "gpt-4");
  expect_chat_error({{"model", 4}}, 400, "model");
  expect_chat_error({{"logprobs", true}}, 400, "logprobs");
  expect_chat_error({{"messages", json::array()}}, 400, "messages");
  expect_chat_error({{"messages", {{{"content", "x"}}}}}, 400, "messages[0]", "role");
  expect_chat_error({{"messages", {{{"role", "user"}, {"content", 5}}}}}, 400, "messages[0].content");
  expect_chat_error({{"messages", json::array({json::array()})}}, 400, "messages[0]");
  expect_chat_error({{"max_tokens", "ten"}}, 400, "max_tokens");
  expect_chat_error({{"max_tokens", 0}}, 400, "max_tokens");
  expect_chat_error({{"max_tokens", 1025}}, 400, "max_tokens", "1025");
  // An integer past int64 is out of range and said as sent, not wrapped to a negative one.
  expect_chat_error({{"max_tokens", 18446744073709551615ull}}, 400, "max_tokens", "got 18446744073709551615");
  expect_chat_error({{"n", 9}}, 400, "n");
  expect_chat_error({{"temperature", 2.5}}, 400, "temperature");
  expect_chat_error({{"top_p", 0}}, 400, "top_p");
  expect_chat_error({{"presence_penalty", 1}}, 400, "presence_penalty", "not supported");
  expect_chat_error({{"seed", 1.5}}, 400, "seed");
  expect_chat_error({{"stop", {"a", "b", "c", "d", "e"}}}, 400, "stop");
  expect_chat_error({{"stream", "yes"}}, 400, "stream");
  expect_chat_error({{"stream_options", {{"include_usage", 1}}}}, 400, "stream_options");
  expect_chat_error({{"user", 5}}, 400, "user");
  expect_chat_error({{"user", ""}}, 400, "user", "1 to 256");
  expect_chat_error({{"user", "a\tb"}}, 400, "user", "control");
  expect_chat_error({{"palign", 1}}, 400, "palign");
  expect_chat_error({{"palign", {{"strategy", 1}}}}, 400, "palign.strategy");
  expect_chat_error({{"palign", {{"bogus", 1}}}}, 400, "palign", "bogus");
  expect_chat_error({{"palign", {{"lambda", "big"}}}}, 400, "palign", "lambda");
  expect_chat_error({{"palign", {{"reward", "/etc"}}}}, 400, "palign.reward", "file on the server");
  expect_chat_error({{"palign", {{"adapter", 1}}}}, 400, "palign.adapter");
  expect_chat_error({{"palign", {{"adapter", "a"}, {"adapters", "profile"}}}}, 400, "palign.adapters", "not both");
  expect_chat_error({{"palign", {{"adapters", {{"a", "x"}}}}}}, 400, "palign.adapters");
  expect_chat_error({{"palign", {{"adapters", json::object()}}}}, 400, "palign.adapters");
  EXPECT_EQ(error_of([] {
              (void)detail::parse_completion_body(R"({"model":"m","messages":[{"role":"user"}]})", true, "m", false,
                                                  kLimits);
            }).message,
            "this model has no chat template; use /v1/completions with a prompt");
  EXPECT_EQ(error_of([] {
              (void)detail::parse_completion_body(R"({"model":"m","prompt":""})", false, "m", false, kLimits);
            }).param,
            "prompt");
  const BodyLimits two{2, 8, 1024};
  EXPECT_EQ(error_of([&] {
              (void)detail::parse_completion_body(
                  R"({"model":"m","messages":[{"role":"user"},{"role":"user"},{"role":"user"}]})", true, "m", true,
                  two);
            }).param,
            "messages");
}

// A content part whose "type" is not a string threw the JSON library's type_error out of the handler (answered as a
// 500 internal error); it is the request's fault, a 400 naming the content.
TEST(RequestBody, ContentPartOfAnotherTypeIsTheClientsError) {
  for (const json part : {json{{"type", 5}, {"text", "x"}}, json{{"type", "text"}, {"text", 5}},
                          json{{"type", nullptr}}, json("text"), json{{"type", "image_url"}}})
    expect_chat_error({{"messages", {{{"role", "user"}, {"content", {part}}}}}}, 400, "messages[0].content",
                      "text parts");
}

TEST(RequestBody, FeedbackEvents) {
  const auto choice = detail::parse_feedback_body(R"({"user":"u","prompt":"p","chosen":"a","rejected":"b","key":"k"})");
  EXPECT_EQ(choice.event.type, palign::users::EventType::kChoice);
  EXPECT_EQ(choice.event.responses, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(choice.event.choice, 0);
  EXPECT_EQ(choice.event.key, "k");
  const auto by_id = detail::parse_feedback_body(R"({"user":"u","response_id":"chatcmpl-1","choice":-1})");
  EXPECT_EQ(by_id.response_id, "chatcmpl-1");
  EXPECT_EQ(by_id.choice, -1);
  const auto rating = detail::parse_feedback_body(R"({"user":"u","response_id":"r","rating":-1,"index":2})");
  EXPECT_EQ(rating.event.type, palign::users::EventType::kRating);
  EXPECT_EQ(rating.event.rating, -1);
  EXPECT_EQ(rating.index, 2);
  const auto statement = detail::parse_feedback_body(
      R"({"user":"u","statement":"short","dimension":"length","direction":-1,"strength":0.5})");
  EXPECT_EQ(statement.event.type, palign::users::EventType::kStatement);
  EXPECT_EQ(statement.event.dimension, "length");
  EXPECT_EQ(statement.event.direction, -1.0);
  EXPECT_EQ(statement.event.strength, 0.5);

  const auto param_of = [](const std::string& body) {
    const HttpError e = error_of([&] { (void)detail::parse_feedback_body(body); });
    EXPECT_EQ(e.status, 400) << body;
    return e.param;
  };
  EXPECT_EQ(param_of(R"({"prompt":"p"})"), "user");
  EXPECT_EQ(param_of(R"({"user":""})"), "user");
  EXPECT_EQ(param_of(R"({"user":"u","prompt":"p"})"), "chosen");
  EXPECT_EQ(param_of(R"({"user":"u","prompt":"p","response":"r","rating":3})"), "rating");
  EXPECT_EQ(param_of(R"({"user":"u","rating":"up"})"), "rating");
  EXPECT_EQ(param_of(R"({"user":"u","rating":1,"prompt":"p"})"), "response");
  EXPECT_EQ(param_of(R"({"user":"u","response_id":"r"})"), "choice");
  EXPECT_EQ(param_of(R"({"user":"u","response_id":"r","choice":0.5})"), "choice");
  EXPECT_EQ(param_of(R"({"user":"u","response_id":5})"), "response_id");
  EXPECT_EQ(param_of(R"({"user":"u","statement":""})"), "statement");
  EXPECT_EQ(param_of(R"({"user":"u","statement":"s","dimension":"d"})"), "direction");
  EXPECT_EQ(param_of(R"({"user":"u","statement":"s","dimension":"d","direction":1,"strength":"x"})"), "strength");
  EXPECT_EQ(param_of("[]"), "");
}

TEST(RequestBody, ElicitAndKeys) {
  const auto e = detail::parse_elicit_body(R"({"prompt":"Why","candidates":3,"max_tokens":99999,"seed":7})", kLimits);
  EXPECT_EQ(e.candidates, 3);
  EXPECT_EQ(e.max_tokens, 1024);  // clamped, as before
  EXPECT_EQ(e.seed, 7u);
  EXPECT_EQ(detail::parse_elicit_body(R"({"prompt":"Why","max_tokens":-5})", kLimits).max_tokens, 1);
  const auto elicit_param = [](const std::string& body) {
    return error_of([&] { (void)detail::parse_elicit_body(body, kLimits); }).param;
  };
  EXPECT_EQ(elicit_param(R"({})"), "prompt");
  EXPECT_EQ(elicit_param(R"({"prompt":""})"), "prompt");
  EXPECT_EQ(elicit_param(R"({"prompt":"p","candidates":1})"), "candidates");
  EXPECT_EQ(elicit_param(R"({"prompt":"p","candidates":18446744073709551615})"), "candidates");
  EXPECT_EQ(elicit_param(R"({"prompt":"p","max_tokens":"x"})"), "max_tokens");
  EXPECT_EQ(elicit_param(R"({"prompt":"p","palign":{"history":"/etc/passwd"}})"), "palign.history");

  const auto k = detail::parse_key_body(R"({"tenant":"acme","admin":true})");
  EXPECT_EQ(k.tenant, "acme");
  EXPECT_TRUE(k.admin);
  EXPECT_FALSE(detail::parse_key_body(R"({"tenant":"acme"})").admin);
  const auto key_param = [](const std::string& body) {
    return error_of([&] { (void)detail::parse_key_body(body); }).param;
  };
  EXPECT_EQ(key_param("{}"), "tenant");
  EXPECT_EQ(key_param(R"({"tenant":"a b"})"), "tenant");
  EXPECT_EQ(key_param(R"({"tenant":"acme","admin":"yes"})"), "admin");
}

}  // namespace
