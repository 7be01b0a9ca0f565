// The endpoints' bodies (request_body.h): each field's type and range, with the field named in the error.
#include "request_body.h"

#include <algorithm>
#include <set>

#include "palign/base/error.h"
#include "palign/server/auth.h"

namespace palign::server::detail {

namespace {

// Options that name files on the server's disk: a client may not choose them (the server's own are set at start).
// `models` may name the server's adapters, which the handler checks.
const std::set<std::string> kServerFileOptions = {"vectors", "history", "reward",     "reward-model",
                                                  "user",    "expert",  "antiexpert", "user-pairs"};

// An integer JSON value as int64, an unsigned one past its range taken as its largest value.
int64_t as_int64(const json& v) {
  if (v.is_number_unsigned()) return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
  return v.get<int64_t>();
}

int64_t int_field(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer())
    fail(400, std::string("'") + name + "' must be an integer, got " + v->type_name(), name, "invalid_type");
  const int64_t x = as_int64(*v);
  if (x < lo || x > hi)
    fail(400,
         std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
             v->dump(),
         name, "invalid_value");
  return x;
}

double number_field(const json& body, const char* name, double fallback, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) fail(400, std::string("'") + name + "' must be a number, got " + v->type_name(), name);
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi))
    fail(400, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi), name,
         "invalid_value");
  return x;
}

std::string string_field(const json& body, const char* name, bool required) {
  const json* v = field(body, name);
  if (!v) {
    if (required) fail(400, std::string("'") + name + "' is required: a string", name);
    return "";
  }
  if (!v->is_string()) fail(400, std::string("'") + name + "' must be a string, got " + v->type_name(), name);
  return v->get<std::string>();
}

// An integer field of any value (absent: nullopt).
std::optional<int64_t> any_integer(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) fail(400, std::string("'") + name + "' must be an integer", name);
  return as_int64(*v);
}

// A seed: any integer, negative ones taken as their 64-bit two's complement.
std::optional<uint64_t> seed_field(const json& body) {
  const json* seed = field(body, "seed");
  if (!seed) return std::nullopt;
  if (!seed->is_number_integer()) fail(400, "'seed' must be an integer", "seed");
  return seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
}

// A message's content: a string, or a list of parts whose text parts are joined.
std::string content_text(const json& content, size_t index) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) fail(400, "'" + param + "' must be a string or a list of content parts", param);
  std::string out;
  for (const auto& part : content) {
    const json* type = part.is_object() ? field(part, "type") : nullptr;
    const json* text = part.is_object() ? field(part, "text") : nullptr;
    if (!type || *type != "text" || !text || !text->is_string())
      fail(400, "'" + param + "' may hold only text parts ({\"type\": \"text\", \"text\": \"...\"})", param);
    out += text->get<std::string>();
  }
  return out;
}

}  // namespace

void fail(int status, const std::string& message, const std::string& param, const std::string& code) {
  HttpError e;
  e.status = status;
  e.message = message;
  e.param = param;
  e.code = code;
  if (status == 401) e.type = "authentication_error";
  if (status == 403) e.type = "permission_error";
  if (status == 404) e.type = "not_found_error";
  if (status == 429) e.type = "rate_limit_error";
  if (status >= 500) e.type = "server_error";
  throw e;
}

json error_body(const HttpError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

std::string error_text(const HttpError& e) {
  return error_body(e).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string client_message(const std::string& what) {
  if (!what.empty() && what[0] == '[') {
    const auto end = what.find("] ");
    if (end != std::string::npos) return what.substr(end + 2);
  }
  return what;
}

json parse_object(std::string_view body, bool empty_is_object) {
  json j = json::parse(body.empty() && empty_is_object ? std::string_view("{}") : body, nullptr, false);
  if (j.is_discarded()) fail(400, "the request body is not valid JSON");
  if (!j.is_object()) fail(400, "the request body must be a JSON object");
  return j;
}

void check_user_id(const std::string& user) {
  if (user.empty() || user.size() > 256) fail(400, "a user id has 1 to 256 characters", "user");
  for (unsigned char c : user)
    if (c < 0x20 || c == 0x7f) fail(400, "a user id may not hold control characters", "user");
  // A path's id is URL-decoded bytes; the store keeps text (PostgreSQL refuses what is not UTF-8).
  try {
    (void)json(user).dump();
  } catch (const json::type_error&) {
    fail(400, "a user id must be UTF-8 text", "user");
  }
}

std::optional<PalignBody> parse_palign(const json& body) {
  const json* palign = field(body, "palign");
  if (!palign) return std::nullopt;
  if (!palign->is_object()) fail(400, "'palign' must be an object: {\"strategy\": NAME, options...}", "palign");
  PalignBody out;
  json opts = *palign;
  if (const json* s = field(opts, "strategy")) {
    if (!s->is_string()) fail(400, "'palign.strategy' must be a string", "palign.strategy");
    out.strategy = s->get<std::string>();
  }
  const json* one = field(opts, "adapter");
  const json* mix = field(opts, "adapters");
  if (one && mix) fail(400, "give 'palign.adapter' or 'palign.adapters', not both", "palign.adapters");
  if (one) {
    if (!one->is_string()) fail(400, "'palign.adapter' must be an adapter's name", "palign.adapter");
    out.adapter = one->get<std::string>();
    if (out.adapter.empty()) fail(400, "'palign.adapter' must be an adapter's name", "palign.adapter");
  } else if (mix) {
    if (mix->is_string() && mix->get<std::string>() == "profile") {
      out.mix_profile = true;
    } else if (mix->is_object() && !mix->empty()) {
      for (const auto& [name, w] : mix->items()) {
        if (!w.is_number()) fail(400, "'palign.adapters." + name + "' must be a number", "palign.adapters");
        out.mix.emplace_back(name, w.get<double>());
      }
    } else {
      fail(400, "'palign.adapters' must be {\"NAME\": weight, ...} or \"profile\"", "palign.adapters");
    }
  }
  opts.erase("strategy");
  opts.erase("adapter");
  opts.erase("adapters");
  try {
    out.options = decoding::StrategyOptions::from_json(opts.dump(), &out.given);
  } catch (const Error& e) {
    fail(400, client_message(e.what()), "palign", "invalid_strategy");
  }
  for (const auto& name : out.given)
    if (kServerFileOptions.count(name))
      fail(400,
           "'palign." + name + "' names a file on the server, which a client may not choose; the server's " +
               "models, vectors and scorer are set when it starts",
           "palign." + name);
  return out;
}

CompletionBody parse_completion_body(std::string_view text, bool chat, const std::string& served,
                                     bool has_chat_template, const BodyLimits& limits) {
  const json body = parse_object(text, false);
  CompletionBody out;
  const json* model = field(body, "model");
  if (!model || !model->is_string()) fail(400, "'model' is required: a string", "model");
  out.model = model->get<std::string>();
  if (out.model != served)
    fail(404, "The model '" + out.model + "' does not exist; this server serves '" + served + "'", "model",
         "model_not_found");
  if (const json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    fail(400, "'logprobs' is not supported by this server", "logprobs");

  // The prompt.
  if (chat) {
    if (!has_chat_template) fail(400, "this model has no chat template; use /v1/completions with a prompt", "messages");
    const json* messages = field(body, "messages");
    if (!messages || !messages->is_array() || messages->empty())
      fail(400, "'messages' is required: a non-empty array of {\"role\", \"content\"}", "messages");
    if (std::ssize(*messages) > limits.max_messages)
      fail(400, "'messages' has more than " + std::to_string(limits.max_messages) + " messages", "messages");
    out.messages = json::array();
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& m = (*messages)[i];
      const std::string param = "messages[" + std::to_string(i) + "]";
      const json* role = m.is_object() ? field(m, "role") : nullptr;
      if (!role || !role->is_string()) fail(400, "'" + param + "' must be an object with a string 'role'", param);
      const std::string content = content_text(m.contains("content") ? m["content"] : json(nullptr), i);
      out.messages.push_back({{"role", *role}, {"content", content}});
      if (*role == "user") out.prompt_text = content;
    }
  } else {
    const json* p = field(body, "prompt");
    if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (!p || !p->is_string()) fail(400, "'prompt' is required: a string (or a list of one string)", "prompt");
    out.prompt_text = out.prompt = p->get<std::string>();
    if (out.prompt.empty()) fail(400, "'prompt' is empty", "prompt");
  }

  // Generation options.
  out.max_tokens = int_field(body, "max_tokens", std::min<int64_t>(256, limits.max_tokens), 1, limits.max_tokens);
  out.max_tokens = int_field(body, "max_completion_tokens", out.max_tokens, 1, limits.max_tokens);
  out.temperature = number_field(body, "temperature", 1.0, 0.0, 2.0);
  out.top_p = number_field(body, "top_p", 1.0, 1e-9, 1.0);
  for (const char* name : {"frequency_penalty", "presence_penalty"})
    if (number_field(body, name, 0.0, -2.0, 2.0) != 0.0)
      fail(400, std::string("'") + name + "' is not supported by this server; leave it 0", name);
  out.n = int_field(body, "n", 1, 1, limits.max_n);
  out.seed = seed_field(body);
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string())
      out.stop.push_back(stop->get<std::string>());
    else if (stop->is_array() && stop->size() <= 4 &&
             std::all_of(stop->begin(), stop->end(), [](const json& s) { return s.is_string(); }))
      for (const auto& s : *stop) out.stop.push_back(s.get<std::string>());
    else
      fail(400, "'stop' must be a string or a list of up to 4 strings", "stop");
    std::erase_if(out.stop, [](const std::string& s) { return s.empty(); });
  }
  const json* stream = field(body, "stream");
  if (stream && !stream->is_boolean()) fail(400, "'stream' must be a boolean", "stream");
  out.stream = stream && stream->get<bool>();
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) fail(400, "'stream_options' must be an object", "stream_options");
    if (const json* iu = field(*so, "include_usage")) {
      if (!iu->is_boolean()) fail(400, "'stream_options.include_usage' must be a boolean", "stream_options");
      out.include_usage = iu->get<bool>();
    }
  }
  const json* user = field(body, "user");
  if (user && !user->is_string()) fail(400, "'user' must be a string", "user");
  if (user) out.user = user->get<std::string>();
  check_user_id(out.user);
  out.palign = parse_palign(body);
  return out;
}

FeedbackBody parse_feedback_body(std::string_view text) {
  const json body = parse_object(text, true);
  FeedbackBody out;
  out.user = string_field(body, "user", true);
  check_user_id(out.user);
  users::FeedbackEvent& e = out.event;
  e.key = string_field(body, "key", false);
  out.response_id = string_field(body, "response_id", false);
  const bool remembered = !out.response_id.empty();
  const auto rating = any_integer(body, "rating");
  if (const json* statement = field(body, "statement")) {
    if (!statement->is_string() || statement->get<std::string>().empty())
      fail(400, "'statement' must be a non-empty string", "statement");
    e.type = users::EventType::kStatement;
    e.text = statement->get<std::string>();
    e.dimension = string_field(body, "dimension", false);
    if (!e.dimension.empty()) {
      const json* dir = field(body, "direction");
      if (!dir || !dir->is_number())
        fail(400, "'direction' (a number, e.g. 1 or -1) comes with 'dimension'", "direction");
      e.direction = dir->get<double>();
      if (const json* st = field(body, "strength")) {
        if (!st->is_number()) fail(400, "'strength' must be a number", "strength");
        e.strength = st->get<double>();
      }
    }
  } else if (rating) {
    if (*rating != 1 && *rating != -1) fail(400, "'rating' must be 1 (up) or -1 (down)", "rating");
    e.type = users::EventType::kRating;
    e.rating = static_cast<int>(*rating);
    if (remembered) {
      out.index = any_integer(body, "index");
    } else {
      e.prompt = string_field(body, "prompt", true);
      e.responses = {string_field(body, "response", true)};
    }
  } else {
    e.type = users::EventType::kChoice;
    if (remembered) {
      out.choice = any_integer(body, "choice");
      if (!out.choice)
        fail(400, "'choice' (the preferred choice's index, or -1 for none) comes with 'response_id'", "choice");
    } else {
      e.prompt = string_field(body, "prompt", true);
      e.responses = {string_field(body, "chosen", true), string_field(body, "rejected", true)};
      e.choice = 0;
    }
  }
  return out;
}

ElicitBody parse_elicit_body(std::string_view text, const BodyLimits& limits) {
  const json body = parse_object(text, true);
  ElicitBody out;
  out.prompt = string_field(body, "prompt", true);
  if (out.prompt.empty()) fail(400, "'prompt' is empty", "prompt");
  const json* n = field(body, "candidates");
  if (n && !n->is_number_integer()) fail(400, "'candidates' must be an integer", "candidates");
  if (n) out.candidates = as_int64(*n);
  if (out.candidates < 2 || out.candidates > limits.max_n)
    fail(400, "'candidates' must be between 2 and " + std::to_string(limits.max_n), "candidates");
  const json* mt = field(body, "max_tokens");
  if (mt && !mt->is_number_integer()) fail(400, "'max_tokens' must be an integer", "max_tokens");
  out.max_tokens = std::clamp<int64_t>(mt ? as_int64(*mt) : out.max_tokens, 1, limits.max_tokens);
  out.seed = seed_field(body);
  out.palign = parse_palign(body);
  return out;
}

KeyBody parse_key_body(std::string_view text) {
  const json body = parse_object(text, true);
  KeyBody out;
  const json* tenant = field(body, "tenant");
  if (!tenant || !tenant->is_string()) fail(400, "'tenant' is required: a string", "tenant");
  out.tenant = tenant->get<std::string>();
  if (const auto err = check_tenant(out.tenant); !err.empty()) fail(400, err, "tenant");
  if (const json* admin = field(body, "admin")) {
    if (!admin->is_boolean()) fail(400, "'admin' must be a boolean", "admin");
    out.admin = admin->get<bool>();
  }
  return out;
}

}  // namespace palign::server::detail
