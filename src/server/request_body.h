// What a client sends to each endpoint, read and checked apart from the handlers: a body becomes a typed request or
// an HttpError (400 or 404) naming the field at fault. Nothing here needs the model, the store or the tensor library,
// so the checks are fuzzed on their own (fuzz/request_body_fuzz.cpp). The handlers then apply what needs the server's
// state: its adapters and strategies, a remembered response's choices, the tokenizer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "palign/decoding/strategy_options.h"
#include "palign/users/feedback.h"

namespace palign::server::detail {

using json = nlohmann::json;

// An error answered as OpenAI's error object.
struct HttpError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault ("": none)
  std::string code;   // e.g. "model_not_found", "invalid_api_key" ("": none)
};

// Throws the HttpError of status (its type follows from the status).
[[noreturn]] void fail(int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "");
json error_body(const HttpError& e);
// The error object as the response's body (bytes that are not UTF-8, as a URL's path may bring, replaced).
std::string error_text(const HttpError& e);

// A request body's field, or null when it is absent or JSON null.
inline const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

// palign's messages start with "[module] "; clients see the sentence.
std::string client_message(const std::string& what);

// The body as a JSON object (an empty body is {} where empty_is_object).
json parse_object(std::string_view body, bool empty_is_object);

// A user id as a request names it: 1 to 256 characters of UTF-8, no control characters.
void check_user_id(const std::string& user);

// What the server's limits allow a request (ServerLimits' fields).
struct BodyLimits {
  int64_t max_messages = 256;
  int64_t max_n = 8;
  int64_t max_tokens = 1024;
};

// A request's `palign` object: a strategy (empty: the server's default), its options, and an adapter or a mix of
// the server's adapters. The options that name files on the server are refused here; `models` is left to the
// handler, which knows the server's adapters.
struct PalignBody {
  std::string strategy;
  decoding::StrategyOptions options;
  std::vector<std::string> given;  // the options set, as StrategyOptions names them
  std::string adapter;             // palign.adapter ("": none)
  bool mix_profile = false;        // palign.adapters: "profile" (the user's weights over the adapters' names)
  std::vector<std::pair<std::string, double>> mix;  // palign.adapters: {name: weight}, in the body's order
};
std::optional<PalignBody> parse_palign(const json& body);

// POST /v1/chat/completions (chat) and /v1/completions.
struct CompletionBody {
  std::string model;
  json messages;            // chat: [{"role", "content"}] with each content as its text
  std::string prompt;       // completions: the prompt
  std::string prompt_text;  // what the scorer reads: the last user message (chat) or the prompt
  int64_t max_tokens = 0;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t n = 1;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // non-empty strings, at most 4
  bool stream = false;
  bool include_usage = false;
  std::string user = "anonymous";
  std::optional<PalignBody> palign;
};
// served: the model the server serves (another is 404). has_chat_template: false refuses chat requests.
CompletionBody parse_completion_body(std::string_view body, bool chat, const std::string& served,
                                     bool has_chat_template, const BodyLimits& limits);

// POST /v1/feedback: an event for the user, with the texts given or a remembered response's id. With response_id
// the handler fills the event's prompt and responses from the response (checking index or choice against them).
struct FeedbackBody {
  std::string user;
  std::string response_id;        // "": the texts are in the body
  users::FeedbackEvent event;     // type, key, text, dimension, direction, strength, rating, prompt, responses, choice
  std::optional<int64_t> index;   // rating with response_id: the choice rated (default 0)
  std::optional<int64_t> choice;  // choice with response_id: the preferred choice's index or -1
};
FeedbackBody parse_feedback_body(std::string_view body);

// POST /v1/users/{id}/elicit.
struct ElicitBody {
  std::string prompt;
  int64_t candidates = 4;
  int64_t max_tokens = 48;  // clamped to 1..max_tokens
  std::optional<uint64_t> seed;
  std::optional<PalignBody> palign;
};
ElicitBody parse_elicit_body(std::string_view body, const BodyLimits& limits);

// POST /v1/admin/keys.
struct KeyBody {
  std::string tenant;
  bool admin = false;
};
KeyBody parse_key_body(std::string_view body);

}  // namespace palign::server::detail
