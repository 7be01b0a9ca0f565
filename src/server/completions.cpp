// POST /v1/chat/completions and /v1/completions as OpenAI defines them, personalized per request: the request's
// `palign` object (a strategy and its options, the fields of decoding::StrategyOptions) or the server's default
// strategy, with the profile of the request's `user`. sample, steer and fusion over the server's adapters decode as
// rows of the continuous-batching scheduler; the other strategies decode the whole request on the strategy worker.
// Streams are server-sent events of OpenAI's chunk objects ending with `data: [DONE]`.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

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
using detail::json;
using Clock = std::chrono::steady_clock;

namespace {

json usage_json(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

std::string finish_reason(const runtime::GenerateResult& r) { return r.finish_reason == "stop" ? "stop" : "length"; }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

const runtime::LoraAdapter* Server::Impl::request_adapter(const detail::PalignBody& palign,
                                                          const decoding::Personalization& profile,
                                                          std::string* described) {
  if (palign.adapter.empty() && !palign.mix_profile && palign.mix.empty()) return nullptr;
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
  if (!palign.adapter.empty()) {
    *described = palign.adapter;
    return known(*described, "palign.adapter");
  }
  // A mix: {name: weight} or "profile" (the user's weights over the adapters' names; a name it does not weigh: 0).
  std::vector<std::string> names;
  std::vector<double> weights;
  if (palign.mix_profile) {
    for (const auto& [name, adapter] : adapters) {
      names.push_back(name);
      const auto w = profile.weights.find(name);
      weights.push_back(w == profile.weights.end() ? 0.0 : w->second);
    }
    if (names.empty())
      fail(400, "this server has no adapters to mix (start it with --adapter NAME=DIR)", "palign.adapters");
  } else {
    for (const auto& [name, w] : palign.mix) {
      (void)known(name, "palign.adapters");
      names.push_back(name);
      weights.push_back(w);
    }
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

Server::Impl::Decoding Server::Impl::decode(const std::string& store_user,
                                            const std::optional<detail::PalignBody>& palign,
                                            std::vector<int64_t> prompt, const std::string& prompt_text,
                                            const runtime::GenerateOptions& generate, int64_t n) {
  Decoding d;
  d.strategy = options.strategy;
  decoding::StrategyOptions strategy_options;
  std::vector<std::string> given;
  if (palign) {
    if (!palign->strategy.empty()) d.strategy = palign->strategy;
    try {
      (void)decoding::find_strategy(d.strategy);
    } catch (const Error& e) {
      fail(400, detail::client_message(e.what()), "palign", "invalid_strategy");
    }
    strategy_options = palign->options;
    given = palign->given;
    // fusion's models may be the server's adapters, by name (fused as rows of one batched pass).
    if (std::count(given.begin(), given.end(), "models")) {
      bool all_adapters = !strategy_options.models.empty();
      std::string list = strategy_options.models + ",";
      for (size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1)
        all_adapters &= adapters.count(list.substr(at, comma - at)) > 0;
      if (!all_adapters)
        fail(400, "'palign.models' may name only this server's adapters (--adapter NAME=DIR), comma-separated",
             "palign.models");
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
  const detail::CompletionBody body =
      detail::parse_completion_body(req.body, chat, model_name, this->chat.has_value(), body_limits());
  const std::string& prompt_text = body.prompt_text;
  const std::string rendered = chat ? this->chat->apply_json(body.messages.dump()) : body.prompt;
  const auto encoded = tokenizer->encode(rendered, /*add_special=*/!chat);
  std::vector<int64_t> prompt(encoded.begin(), encoded.end());
  if (prompt.empty()) fail(400, "the prompt encodes to no tokens", chat ? "messages" : "prompt");

  runtime::GenerateOptions gen;
  gen.max_new_tokens = body.max_tokens;
  gen.sampling.greedy = body.temperature == 0.0;
  if (!gen.sampling.greedy) gen.sampling.temperature = static_cast<float>(body.temperature);
  gen.sampling.top_p = static_cast<float>(body.top_p);
  const int64_t n = body.n;
  gen.sampling.seed = body.seed ? *body.seed : (next_id.load() * 7919 + unix_now());
  gen.stop_strings = body.stop;
  gen.stop_ids = stop_ids;
  const bool stream = body.stream;
  const bool include_usage = body.include_usage;
  const std::string& user = body.user;
  const std::string stored = store_user(caller, user);

  auto d = std::make_shared<Decoding>(decode(stored, body.palign, std::move(prompt), prompt_text, gen, n));
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
