// Fuzzes the HTTP endpoints' bodies through the checks the handlers run (src/server/request_body.h). The first byte
// picks the endpoint: 'c' POST /v1/chat/completions, 't' /v1/completions, 'f' /v1/feedback, 'e' /v1/users/{id}/elicit,
// 'k' /v1/admin/keys, 'u' a user id as a URL path brings it (any other byte: its value modulo 6); the rest is the
// body. A body is either accepted, within the server's limits, or refused with a 400 or 404 whose error object
// serializes; anything else escapes and is a finding.
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "request_body.h"

namespace {

namespace detail = palign::server::detail;
using detail::json;

const detail::BodyLimits kLimits{8, 4, 64};

void check(bool ok) {
  if (!ok) std::abort();
}

void check_user(const std::string& user) {
  check(!user.empty() && user.size() <= 256);
  (void)json(user).dump();
}

void check_palign(const std::optional<detail::PalignBody>& p) {
  if (!p) return;
  for (const auto& name : p->given)
    check(name != "vectors" && name != "history" && name != "reward" && name != "reward-model" && name != "user" &&
          name != "expert" && name != "antiexpert" && name != "user-pairs");
  check(!(p->mix_profile && !p->mix.empty()));
  check(p->adapter.empty() || (!p->mix_profile && p->mix.empty()));
}

void run(char endpoint, std::string_view body) {
  switch (endpoint) {
    case 'c':
    case 't': {
      const bool chat = endpoint == 'c';
      const auto r = detail::parse_completion_body(body, chat, "default", true, kLimits);
      check(r.model == "default");
      check(r.max_tokens >= 1 && r.max_tokens <= kLimits.max_tokens);
      check(r.n >= 1 && r.n <= kLimits.max_n);
      check(r.temperature >= 0 && r.temperature <= 2 && r.top_p > 0 && r.top_p <= 1);
      check(r.stop.size() <= 4);
      for (const auto& s : r.stop) check(!s.empty());
      check_user(r.user);
      if (chat) {
        check(r.messages.is_array() && !r.messages.empty() && std::ssize(r.messages) <= kLimits.max_messages);
        for (const auto& m : r.messages) check(m["role"].is_string() && m["content"].is_string());
        (void)r.messages.dump();  // what the chat template receives
      } else {
        check(!r.prompt.empty() && r.prompt == r.prompt_text);
      }
      check_palign(r.palign);
      break;
    }
    case 'f': {
      const auto r = detail::parse_feedback_body(body);
      check_user(r.user);
      const auto& e = r.event;
      switch (e.type) {
        case palign::users::EventType::kStatement:
          check(!e.text.empty());
          break;
        case palign::users::EventType::kRating:
          check(e.rating == 1 || e.rating == -1);
          check(r.response_id.empty() ? e.responses.size() == 1 : e.responses.empty());
          break;
        case palign::users::EventType::kChoice:
          check(r.response_id.empty() ? e.responses.size() == 2 && e.choice == 0 : r.choice.has_value());
          break;
        default:
          check(false);
      }
      break;
    }
    case 'e': {
      const auto r = detail::parse_elicit_body(body, kLimits);
      check(!r.prompt.empty());
      check(r.candidates >= 2 && r.candidates <= kLimits.max_n);
      check(r.max_tokens >= 1 && r.max_tokens <= kLimits.max_tokens);
      check_palign(r.palign);
      break;
    }
    case 'k': {
      const auto r = detail::parse_key_body(body);
      check(!r.tenant.empty() && r.tenant.size() <= 64);
      break;
    }
    default:
      detail::check_user_id(std::string(body));
      check_user(std::string(body));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto text = palign::fuzz::as_text(data, size);
  static const std::string kEndpoints = "ctfeku";
  char endpoint = text[0];
  if (kEndpoints.find(endpoint) == std::string::npos) endpoint = kEndpoints[static_cast<uint8_t>(endpoint) % 6];
  try {
    run(endpoint, text.substr(1));
  } catch (const detail::HttpError& e) {
    check(!e.message.empty() &&
          ((e.status == 400 && e.type == "invalid_request_error") || (e.status == 404 && e.type == "not_found_error")));
    (void)detail::error_body(e).dump();  // strict: a message quoting bytes that are not UTF-8 throws
  }
  return 0;
}
