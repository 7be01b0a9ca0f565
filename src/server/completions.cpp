// POST /v1/chat/completions and /v1/completions as OpenAI defines them, personalized per request: the request's
// `palign` object (a strategy and its options, the fields of decoding::StrategyOptions) or the server's default
// strategy, with the profile of the request's `user`. sample, steer and fusion over the server's adapters decode as
// rows of the continuous-batching scheduler; the other strategies decode the whole request on the strategy worker.
// Streams are server-sent events of OpenAI's chunk objects ending with `data: [DONE]`.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "palign/base/error.h"
#include "palign/decoding/steering.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/generate.h"
#include "palign/server/profiles.h"
#include "palign/users/online_model.h"
#include "server_internal.h"

namespace palign::server {

using detail::Caller;
using detail::fail;
using detail::field;
using detail::json;
using Clock = std::chrono::steady_clock;

namespace {

// Options that name files on the server's disk: a client may not choose them (the server's own are set at start).
const std::set<std::string> kServerFileOptions = {"models", "vectors", "history",    "reward",    "reward-model",
                                                  "user",   "expert",  "antiexpert", "user-pairs"};

int64_t int_field(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer())
    fail(400, std::string("'") + name + "' must be an integer, got " + v->type_name(), name, "invalid_type");
  const auto x = v->get<int64_t>();
  if (x < lo || x > hi)
    fail(400,
         std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
             std::to_string(x),
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

// A message's content: a string, or a list of parts whose text parts are joined.
std::string content_text(const json& content, size_t index) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) fail(400, "'" + param + "' must be a string or a list of content parts", param);
  std::string out;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      fail(400, "'" + param + "' may hold only text parts ({\"type\": \"text\", \"text\": \"...\"})", param);
    out += part["text"].get<std::string>();
  }
  return out;
}

json usage_json(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

std::string finish_reason(const runtime::GenerateResult& r) { return r.finish_reason == "stop" ? "stop" : "length"; }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

const runtime::LoraAdapter* Server::Impl::request_adapter(const json& palign, const decoding::Personalization& profile,
                                                          std::string* described) {
  const json* one = field(palign, "adapter");
  const json* mix = field(palign, "adapters");
  if (!one && !mix) return nullptr;
  if (one && mix) fail(400, "give 'palign.adapter' or 'palign.adapters', not both", "palign.adapters");
  const auto known = [&](const std::string& name, const std::string& param) -> const runtime::LoraAdapter* {
    const auto it = adapters.find(name);
    if (it == adapters.end()) {
      std::string names;
      for (const auto& [n, a] : adapters) names += (names.empty() ? "" : ", ") + n;
      fail(400, "no adapter '" + name + "' on this server" + (names.empty() ? " (it has none)" : "; it has " + names),
           param);
    }
    return it->second.get();
  };
  if (one) {
    if (!one->is_string()) fail(400, "'palign.adapter' must be an adapter's name", "palign.adapter");
    *described = one->get<std::string>();
    return known(*described, "palign.adapter");
  }
  // A mix: {name: weight} or "profile" (the user's weights over the adapters' names; a name it does not weigh: 0).
  std::vector<std::string> names;
  std::vector<double> weights;
  if (mix->is_string() && mix->get<std::string>() == "profile") {
    for (const auto& [name, adapter] : adapters) {
      names.push_back(name);
      const auto w = profile.weights.find(name);
      weights.push_back(w == profile.weights.end() ? 0.0 : w->second);
    }
    if (names.empty())
      fail(400, "this server has no adapters to mix (start it with --adapter NAME=DIR)", "palign.adapters");
  } else if (mix->is_object() && !mix->empty()) {
    for (const auto& [name, w] : mix->items()) {
      if (!w.is_number()) fail(400, "'palign.adapters." + name + "' must be a number", "palign.adapters");
      (void)known(name, "palign.adapters");
      names.push_back(name);
      weights.push_back(w.get<double>());
    }
  } else {
    fail(400, "'palign.adapters' must be {\"NAME\": weight, ...} or \"profile\"", "palign.adapters");
  }
  std::string key;
  for (size_t k = 0; k < names.size(); ++k) {
    char w[32];
    std::snprintf(w, sizeof w, "%.6g", weights[k]);
    key += (k ? "," : "") + names[k] + "=" + w;
  }
  *described = key;
  std::lock_guard lock(mixes_mutex);
  auto it = mixes.find(key);
  if (it == mixes.end()) {
    if (mixes.size() >= 256)
      fail(400, "this server already holds 256 different adapter mixes; reuse one or restart it", "palign.adapters");
    std::vector<const runtime::LoraAdapter*> parts;
    for (const auto& n : names) parts.push_back(adapters.at(n).get());
    it = mixes.emplace(key, std::make_unique<runtime::LoraAdapter>(runtime::lora_soup(parts, weights))).first;
  }
  return it->second.get();
}

Server::Impl::Decoding Server::Impl::decode(const std::string& store_user, const json* palign,
                                            std::vector<int64_t> prompt, const std::string& prompt_text,
                                            const runtime::GenerateOptions& generate, int64_t n) {
  Decoding d;
  d.strategy = options.strategy;
  decoding::StrategyOptions strategy_options;
  std::vector<std::string> given;
  if (palign) {
    if (!palign->is_object()) fail(400, "'palign' must be an object: {\"strategy\": NAME, options...}", "palign");
    json opts = *palign;
    if (const json* s = field(opts, "strategy")) {
      if (!s->is_string()) fail(400, "'palign.strategy' must be a string", "palign.strategy");
      d.strategy = s->get<std::string>();
    }
    opts.erase("strategy");
    opts.erase("adapter");
    opts.erase("adapters");
    try {
      (void)decoding::find_strategy(d.strategy);
      strategy_options = decoding::StrategyOptions::from_json(opts.dump(), &given);
    } catch (const Error& e) {
      const std::string what = e.what();
      fail(400, what.substr(what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2), "palign",
           "invalid_strategy");
    }
    for (const auto& name : given) {
      // fusion's models may be the server's adapters, by name (fused as rows of one batched pass).
      if (name == "models" && !strategy_options.models.empty()) {
        bool all_adapters = true;
        std::string list = strategy_options.models + ",";
        for (size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1)
          all_adapters &= adapters.count(list.substr(at, comma - at)) > 0;
        if (all_adapters) continue;
        fail(400, "'palign.models' may name only this server's adapters (--adapter NAME=DIR), comma-separated",
             "palign.models");
      }
      if (kServerFileOptions.count(name))
        fail(400,
             "'palign." + name + "' names a file on the server, which a client may not choose; the server's " +
                 "models, vectors and scorer are set when it starts",
             "palign." + name);
    }
  }
  std::vector<users::FeedbackEvent> events;
  d.state = state_of(store_user, &events);
  const decoding::Personalization profile = personalization_of(d.state, events, options.reward);
  d.prompt_tokens = std::ssize(prompt);
  const runtime::LoraAdapter* adapter = palign ? request_adapter(*palign, profile, &d.adapter) : nullptr;
  if (adapter && d.strategy != "sample" && d.strategy != "steer")
    fail(400, "'palign.adapter' and 'palign.adapters' apply to the sample and steer strategies", "palign.adapter");
  // fusion over the server's adapters (the only models a request may name) is a row of K sequences in the batch.
  const bool fusion_rows = d.strategy == "fusion" && !strategy_options.models.empty();
  if (d.strategy == "sample" || d.strategy == "steer" || fusion_rows) {
    RowRequest personal;  // the rows' personalization
    personal.adapter = adapter;
    if (d.strategy == "steer") {
      if (vectors.empty())
        fail(400, "this server has no steering vectors (start it with --vectors FILE)", "palign.strategy");
      personal.steering =
          decoding::request_steering_deltas(vectors, strategy_options.weights, &profile, strategy_options.lambda);
    } else if (fusion_rows) {
      decoding::check_options_belong("fusion", given);
      std::map<std::string, const runtime::LoraAdapter*> held;
      for (const auto& [name, a] : adapters) held.emplace(name, a.get());
      auto fused = decoding::request_fusion_experts(held, strategy_options.models, strategy_options.weights, &profile);
      for (size_t k = 0; k < fused.names.size(); ++k) d.fusion[fused.names[k]] = fused.weights[k];
      personal.fusion_experts = std::move(fused.experts);
      personal.fusion_weights = std::move(fused.weights);
    } else if (!given.empty()) {
      fail(400, "the sample strategy takes no options, got 'palign." + given[0] + "'", "palign." + given[0]);
    }
    for (int64_t i = 0; i < n; ++i) {
      RowRequest row = personal;
      row.prompt = prompt;
      row.sampling = generate.sampling;
      row.sampling.seed = generate.sampling.seed + static_cast<uint64_t>(i);
      row.max_new_tokens = generate.max_new_tokens;
      row.stop_ids = generate.stop_ids;
      row.stop_strings = generate.stop_strings;
      auto ticket = scheduler->submit(std::move(row));
      if (!ticket) {
        for (auto& t : d.tickets) t->cancel();
        fail(429, "the server is busy (its queue is full); retry shortly", "", "queue_full");
      }
      d.tickets.push_back(std::move(ticket));
    }
    return d;
  }
  // A whole-request strategy on the worker, with what the server holds in memory.
  decoding::StrategyInputs inputs;
  if (!vectors.empty()) inputs.vectors = &vectors;
  for (const auto& [name, a] : adapters) inputs.adapters.emplace(name, a.get());
  if (reward)
    inputs.reward = [this, &d](const std::string& p, const std::vector<std::string>& responses) {
      const auto scores = score(p, responses);
      std::vector<double> out;
      for (const auto& s : scores) {
        double r = 0;
        for (size_t k = 0; k < s.size(); ++k) r += d.state.posterior.mean[k] * s[k];
        out.push_back(r);
      }
      return out;
    };
  decoding::StrategyRequest request;
  request.prompt = std::move(prompt);
  request.prompt_text = prompt_text;
  request.options = generate;
  request.n = n;
  worker->run([&] {
    const decoding::StrategySetup setup{model.get(),      options.model, &*tokenizer, "",
                                        strategy_options, &profile,      inputs};
    const auto strategy = decoding::make_strategy(d.strategy, setup, given);
    d.results = strategy->generate(request);
    if (strategy->built_prompt_tokens() >= 0) d.prompt_tokens = strategy->built_prompt_tokens();
  });
  return d;
}

std::vector<runtime::GenerateResult> Server::Impl::finish(Decoding& d, Clock::time_point deadline) {
  if (d.tickets.empty()) return d.results;
  std::vector<runtime::GenerateResult> out;
  for (auto& t : d.tickets) {
    auto s = t->wait(SIZE_MAX, deadline);
    if (!s.done) {
      for (auto& other : d.tickets) other->cancel();
      fail(504,
           "the request ran past the server's timeout of " + std::to_string(options.limits.request_timeout_s) +
               " s; ask for fewer tokens",
           "", "timeout");
    }
    if (!s.error.empty()) fail(500, "decoding failed: " + s.error);
    out.push_back(std::move(s.result));
  }
  return out;
}

void Server::Impl::count(const Decoding& d, const std::vector<runtime::GenerateResult>& results) {
  std::vector<double> first_token;  // seconds from submission to each row's first token
  for (const auto& t : d.tickets)
    if (const auto s = t->wait(SIZE_MAX, Clock::now()); s.first_token_ns >= 0)
      first_token.push_back(s.first_token_ns * 1e-9);
  std::lock_guard lock(metrics.mutex);
  for (double s : first_token) {
    auto& f = metrics.first_token[d.strategy];
    f.first += s;
    ++f.second;
  }
  metrics.prompt_tokens += d.prompt_tokens;
  for (const auto& r : results) metrics.completion_tokens += std::ssize(r.ids);
  auto& l = metrics.latency[d.strategy];
  l.first += std::chrono::duration<double>(Clock::now() - d.start).count();
  ++l.second;
}

void Server::Impl::completions(const httplib::Request& req, httplib::Response& res, const Caller& caller, bool chat) {
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) fail(400, "the request body is not valid JSON");
  if (!body.is_object()) fail(400, "the request body must be a JSON object");
  const json* model_field = field(body, "model");
  if (!model_field || !model_field->is_string()) fail(400, "'model' is required: a string", "model");
  if (model_field->get<std::string>() != model_name)
    fail(404,
         "The model '" + model_field->get<std::string>() + "' does not exist; this server serves '" + model_name + "'",
         "model", "model_not_found");
  if (const json* lp = field(body, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()) && !lp->is_null())
    fail(400, "'logprobs' is not supported by this server", "logprobs");

  // The prompt.
  std::string prompt_text, rendered;
  if (chat) {
    if (!this->chat) fail(400, "this model has no chat template; use /v1/completions with a prompt", "messages");
    const json* messages = field(body, "messages");
    if (!messages || !messages->is_array() || messages->empty())
      fail(400, "'messages' is required: a non-empty array of {\"role\", \"content\"}", "messages");
    if (std::ssize(*messages) > options.limits.max_messages)
      fail(400, "'messages' has more than " + std::to_string(options.limits.max_messages) + " messages", "messages");
    json clean = json::array();
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& m = (*messages)[i];
      const std::string param = "messages[" + std::to_string(i) + "]";
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        fail(400, "'" + param + "' must be an object with a string 'role'", param);
      const std::string text = content_text(m.contains("content") ? m["content"] : json(nullptr), i);
      clean.push_back({{"role", m["role"]}, {"content", text}});
      if (m["role"] == "user") prompt_text = text;
    }
    rendered = this->chat->apply_json(clean.dump());
  } else {
    const json* p = field(body, "prompt");
    if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (!p || !p->is_string()) fail(400, "'prompt' is required: a string (or a list of one string)", "prompt");
    prompt_text = rendered = p->get<std::string>();
    if (rendered.empty()) fail(400, "'prompt' is empty", "prompt");
  }
  const auto encoded = tokenizer->encode(rendered, /*add_special=*/!chat);
  std::vector<int64_t> prompt(encoded.begin(), encoded.end());
  if (prompt.empty()) fail(400, "the prompt encodes to no tokens", chat ? "messages" : "prompt");

  // Generation options.
  runtime::GenerateOptions gen;
  const int64_t max_tokens = std::min<int64_t>(256, options.limits.max_tokens);
  gen.max_new_tokens = int_field(body, "max_tokens", max_tokens, 1, options.limits.max_tokens);
  gen.max_new_tokens = int_field(body, "max_completion_tokens", gen.max_new_tokens, 1, options.limits.max_tokens);
  const double temperature = number_field(body, "temperature", 1.0, 0.0, 2.0);
  gen.sampling.greedy = temperature == 0.0;
  if (!gen.sampling.greedy) gen.sampling.temperature = static_cast<float>(temperature);
  gen.sampling.top_p = static_cast<float>(number_field(body, "top_p", 1.0, 1e-9, 1.0));
  for (const char* name : {"frequency_penalty", "presence_penalty"})
    if (number_field(body, name, 0.0, -2.0, 2.0) != 0.0)
      fail(400, std::string("'") + name + "' is not supported by this server; leave it 0", name);
  const int64_t n = int_field(body, "n", 1, 1, options.limits.max_n);
  const json* seed = field(body, "seed");
  if (seed && !seed->is_number_integer()) fail(400, "'seed' must be an integer", "seed");
  gen.sampling.seed = seed ? static_cast<uint64_t>(seed->get<int64_t>()) : (next_id.load() * 7919 + unix_now());
  if (const json* stop = field(body, "stop")) {
    if (stop->is_string())
      gen.stop_strings.push_back(stop->get<std::string>());
    else if (stop->is_array() && stop->size() <= 4 &&
             std::all_of(stop->begin(), stop->end(), [](const json& s) { return s.is_string(); }))
      for (const auto& s : *stop) gen.stop_strings.push_back(s.get<std::string>());
    else
      fail(400, "'stop' must be a string or a list of up to 4 strings", "stop");
    std::erase_if(gen.stop_strings, [](const std::string& s) { return s.empty(); });
  }
  gen.stop_ids = stop_ids;
  const json* stream_field = field(body, "stream");
  if (stream_field && !stream_field->is_boolean()) fail(400, "'stream' must be a boolean", "stream");
  const bool stream = stream_field && stream_field->get<bool>();
  bool include_usage = false;
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) fail(400, "'stream_options' must be an object", "stream_options");
    if (const json* iu = field(*so, "include_usage")) {
      if (!iu->is_boolean()) fail(400, "'stream_options.include_usage' must be a boolean", "stream_options");
      include_usage = iu->get<bool>();
    }
  }
  const json* user_field = field(body, "user");
  if (user_field && !user_field->is_string()) fail(400, "'user' must be a string", "user");
  const std::string user = user_field ? user_field->get<std::string>() : "anonymous";
  const std::string stored = store_user(caller, user);

  auto d = std::make_shared<Decoding>(decode(stored, field(body, "palign"), std::move(prompt), prompt_text, gen, n));
  const std::string id = new_id(chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = unix_now();
  const auto deadline = Clock::now() + std::chrono::seconds(options.limits.request_timeout_s);
  json palign_out = {{"strategy", d->strategy},
                     {"user", user},
                     {"profile_version", d->state.version},
                     {"weights", d->state.posterior.as_map()}};
  if (!d->adapter.empty()) palign_out["adapter"] = d->adapter;
  if (!d->fusion.empty()) palign_out["fusion"] = d->fusion;
  const char* object = chat ? "chat.completion" : "text_completion";

  if (!stream) {
    const auto results = finish(*d, deadline);
    count(*d, results);
    json choices = json::array();
    int64_t completion = 0;
    std::vector<std::string> texts;
    for (size_t i = 0; i < results.size(); ++i) {
      completion += std::ssize(results[i].ids);
      texts.push_back(results[i].text);
      json c = {{"index", i}, {"logprobs", nullptr}, {"finish_reason", finish_reason(results[i])}};
      if (chat)
        c["message"] = {{"role", "assistant"}, {"content", results[i].text}};
      else
        c["text"] = results[i].text;
      choices.push_back(c);
    }
    remember(id, {stored, prompt_text, texts});
    res.set_content(json{{"id", id},
                         {"object", object},
                         {"created", created},
                         {"model", model_name},
                         {"choices", choices},
                         {"usage", usage_json(d->prompt_tokens, completion)},
                         {"palign", palign_out}}
                        .dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
    return;
  }

  // Streamed: one chunk per new piece of text of any choice, then each choice's finish, usage, [DONE].
  const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  auto chunk = [=, this](const json& choice) {
    json c = {{"id", id},
              {"object", chunk_object},
              {"created", created},
              {"model", model_name},
              {"choices", json::array({choice})}};
    return "data: " + c.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
  };
  auto piece = [chat](size_t index, const std::string& text, bool first) {
    json c = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
    if (chat) {
      c["delta"] = first ? json{{"role", "assistant"}, {"content", text}} : json{{"content", text}};
    } else {
      c["text"] = text;
    }
    return c;
  };
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [=, this](size_t, httplib::DataSink& sink) {
        const size_t N = d->tickets.empty() ? d->results.size() : d->tickets.size();
        std::vector<size_t> sent(N, 0);
        std::vector<bool> done(N, false);
        std::vector<runtime::GenerateResult> results(N);
        auto write = [&](const std::string& s) {
          if (!sink.write(s.data(), s.size())) {
            for (auto& t : d->tickets) t->cancel();
            return false;
          }
          return true;
        };
        if (chat)  // the first chunk of each choice carries the role, as OpenAI's do
          for (size_t i = 0; i < N; ++i)
            if (!write(chunk(piece(i, "", true)))) return false;
        size_t left = N;
        bool timed_out = false;
        while (left > 0) {
          for (size_t i = 0; i < N; ++i) {
            if (done[i]) continue;
            RowTicket::Snapshot s;
            if (d->tickets.empty()) {
              s.done = true, s.result = d->results[i], s.text = d->results[i].text;
            } else {
              const auto wait_until = std::min(deadline, Clock::now() + std::chrono::milliseconds(N > 1 ? 5 : 200));
              s = d->tickets[i]->wait(sent[i], wait_until);
            }
            if (s.text.size() > sent[i]) {
              if (!write(chunk(piece(i, s.text.substr(sent[i]), false)))) return false;
              sent[i] = s.text.size();
            }
            if (s.done) {
              done[i] = true, --left;
              results[i] = s.result;
              json c = {{"index", i}, {"logprobs", nullptr}, {"finish_reason", finish_reason(s.result)}};
              if (chat)
                c["delta"] = json::object();
              else
                c["text"] = "";
              if (!write(chunk(c))) return false;
            }
          }
          if (left > 0 && Clock::now() >= deadline) {
            for (auto& t : d->tickets) t->cancel();
            timed_out = true;
            break;
          }
        }
        if (!timed_out) {
          count(*d, results);
          std::vector<std::string> texts;
          int64_t completion = 0;
          for (const auto& r : results) texts.push_back(r.text), completion += std::ssize(r.ids);
          remember(id, {stored, prompt_text, texts});
          if (include_usage) {
            json u = {{"id", id},
                      {"object", chunk_object},
                      {"created", created},
                      {"model", model_name},
                      {"choices", json::array()},
                      {"usage", usage_json(d->prompt_tokens, completion)},
                      {"palign", palign_out}};
            if (!write("data: " + u.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n")) return false;
          }
        } else {
          const json e =
              detail::error_body({504, "the stream ran past the server's timeout", "server_error", "", "timeout"});
          if (!write("data: " + e.dump() + "\n\n")) return false;
        }
        if (!write("data: [DONE]\n\n")) return false;
        sink.done();
        return true;
      },
      [d](bool success) {
        if (!success)
          for (auto& t : d->tickets) t->cancel();
      });
}

}  // namespace palign::server
