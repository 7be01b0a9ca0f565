// `palign serve`: an OpenAI-compatible HTTP server (cpp-httplib) that answers each request in its user's way and learns
// from their feedback. DESIGN.md's one request path: the request's `user` (namespaced by the API key's tenant) ->
// the user's posterior from the profile store -> a decoding strategy (the request's `palign` object, what OpenAI
// clients send through extra_body, else the server's default) -> rows of the continuous-batching scheduler
// (scheduler.h: sample, steer and fusion over the server's adapters, each row its own steering deltas, adapter or
// adapter mix, fusion weights and sampler) or, for strategies that decode whole requests (best_of_n, args, cd_block,
// contrast, prompt), one strategy call on a strategy worker thread.
//
// Endpoints:
//   GET  /v1/models                     the served model
//   POST /v1/chat/completions           messages through the model's chat template; n, stream (server-sent events)
//   POST /v1/completions                a prompt string
//   POST /v1/feedback                   a choice among a response's choices (response_id, choice), two texts
//                                       (prompt, chosen, rejected), a rating, or a stated preference; answered once
//                                       the event is durable in the store, with the user's new version
//   GET    /v1/users/{id}               weights with their uncertainty, events, version
//   DELETE /v1/users/{id}               the user with every event
//   POST   /v1/users/{id}/elicit        the pair of responses to a prompt the user's answer would teach palign most
//   GET/POST /v1/admin/keys, DELETE /v1/admin/keys/{hash}, GET /v1/admin/users   (admin keys only)
//   GET  /health, GET /metrics          liveness; Prometheus text (requests, tokens, queue, batch, latency)
// Errors are OpenAI's error objects: {"error": {"message", "type", "param", "code"}} with 400, 401, 403, 404, 413,
// 429, 500 or 503.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "palign/server/scheduler.h"

namespace palign::server {

struct ServerLimits {
  size_t max_body_bytes = size_t{4} << 20;  // 413 beyond
  int64_t max_messages = 256;
  int64_t max_n = 8;
  int64_t max_tokens = 1024;        // per choice
  int64_t request_timeout_s = 300;  // a request (streamed or not) is cancelled after this long
  size_t max_remembered = 16384;    // responses remembered for feedback by id (oldest forgotten first)
  std::string validate() const;
};

struct ServerOptions {
  std::filesystem::path model;    // a model directory (causal LM with tokenizer.json)
  std::string model_name;         // the id of /v1/models and the "model" requests send ("": the directory's name)
  std::filesystem::path store;    // the profile store (SQLite; created when missing)
  std::filesystem::path reward;   // the users' scorer (a reward with named dimensions); "": choice and rating
                                  // feedback are refused, statements still taken
  std::filesystem::path prior;    // a palign.prior for new users ("": N(0, I) over the scorer's dimensions)
  std::filesystem::path vectors;  // steering vectors for the steer strategy ("": steer refused)
  // LoRA adapters (PEFT directories) by name: a request's palign.adapter names one, palign.adapters mixes several
  // (a soup: Σ_k w_k Δ_k) or "profile" (the user's weights over the adapters' names); sample and steer rows only.
  std::vector<std::pair<std::string, std::filesystem::path>> adapters;
  std::filesystem::path api_keys;  // "": no keys, and the server binds loopback only
  std::string host = "127.0.0.1";
  int port = 8000;                  // 0: a free port (bind() returns it)
  std::string strategy = "sample";  // for a request without palign.strategy
  SchedulerOptions scheduler;
  ServerLimits limits;
  int threads = 64;             // HTTP worker threads (each streaming client holds one)
  int strategy_workers = 1;     // threads running whole-request strategies (best_of_n, args, ...) at once (more: for
                                // machines with cores to spare beside the batch; on 2 cores 2 gave nothing)
  std::ostream* log = nullptr;  // access log and start notes (null: none)
  int64_t drain_timeout_ms = 30000;  // stop(): how long in-flight requests may finish
};

class Server {
 public:
  // Loads the model, tokenizer, chat template, store, scorer, prior, vectors and keys. Throws palign::Error:
  // kInvalidArgument (bad options, a host other than loopback without --api-keys, a default strategy the server
  // cannot run), kNotFound (a missing file), and what the loaders throw.
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port. Throws kIo when it cannot.
  int bind();
  // Serves until stop() (from another thread or a signal handler's thread). Returns when the listener has stopped.
  void run();
  // Graceful stop: new requests get 503, in-flight ones finish within drain_timeout_ms (then are cancelled), the
  // listener stops. The store is durable at every acknowledgement, so nothing needs flushing. Safe to call twice.
  void stop();
  // Notes for the operator printed at start (e.g. no keys: loopback only).
  const std::vector<std::string>& notes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace palign::server
