// The server's state and what its endpoint files share (server.cpp: lifecycle, auth, errors, metrics;
// completions.cpp: /v1/chat/completions and /v1/completions; users_api.cpp: feedback and users).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "palign/decoding/strategy.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"
#include "palign/scoring/steering_vectors.h"
#include "palign/server/auth.h"
#include "palign/server/scheduler.h"
#include "palign/server/server.h"
#include "palign/users/store.h"
#include "request_body.h"

namespace palign::server::detail {

using json = nlohmann::json;

// httplib's server with its listening socket reachable: the library listens with a backlog of 5, too few for a burst
// of clients (their connections then fail or wait a second for a SYN retry), so bind() raises it.
class HttpServer : public httplib::Server {
 public:
  socket_t listening_socket() const { return svr_sock_; }
};

// Who is calling: the key's tenant ("" without keys) and whether it may name any tenant's users.
struct Caller {
  std::string tenant;
  bool admin = false;
  std::string key_hash;  // "": no keys
};

// A response kept for feedback by id.
struct Remembered {
  std::string store_user;
  std::string prompt;  // the prompt's text as the scorer reads it (the last user message for a chat)
  std::vector<std::string> texts;
};

// Runs whole-request strategies on a pool of threads (at most that many at once, the rest in order of arrival).
class StrategyWorker {
 public:
  explicit StrategyWorker(int threads);
  ~StrategyWorker();
  // Runs fn on a worker thread and waits for it; rethrows what it throws.
  void run(const std::function<void()>& fn);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

struct Metrics {
  std::mutex mutex;
  std::map<std::pair<std::string, int>, int64_t> requests;        // (endpoint, status) -> count
  std::map<std::string, std::pair<double, int64_t>> latency;      // strategy -> (seconds summed, requests)
  std::map<std::string, std::pair<double, int64_t>> first_token;  // strategy -> (seconds summed, rows)
  int64_t prompt_tokens = 0, completion_tokens = 0, feedback_events = 0;
};

}  // namespace palign::server::detail

namespace palign::server {

struct Server::Impl {
  explicit Impl(ServerOptions options);

  // Setup.
  ServerOptions options;
  std::string model_name;
  std::unique_ptr<runtime::Model> model;
  std::optional<runtime::Tokenizer> tokenizer;
  std::optional<runtime::ChatTemplate> chat;
  std::vector<int64_t> stop_ids;
  std::unique_ptr<users::ProfileStore> store;
  std::unique_ptr<scoring::RewardModel> reward;  // the users' scorer (may be null)
  std::mutex reward_mutex;
  std::string scorer;                   // its fingerprint
  std::vector<std::string> dimensions;  // its dimension names
  users::DimensionWeights prior;
  std::vector<scoring::SteeringVector> vectors;
  std::map<std::string, std::unique_ptr<runtime::LoraAdapter>> adapters;  // by name
  // Adapter mixes made for requests, by their weights ("a=0.5,b=0.5"); kept for the server's life (rows borrow them).
  std::mutex mixes_mutex;
  std::map<std::string, std::unique_ptr<runtime::LoraAdapter>> mixes;
  // The adapter of a request's palign.adapter / palign.adapters (null: none), and its description for the response.
  const runtime::LoraAdapter* request_adapter(const detail::PalignBody& palign,
                                              const decoding::Personalization& profile, std::string* described);
  detail::BodyLimits body_limits() const {
    return {options.limits.max_messages, options.limits.max_n, options.limits.max_tokens};
  }
  bool auth = false;  // --api-keys given: every request carries a key (the ring may change: admin endpoints)
  KeyRing keys;
  mutable std::shared_mutex keys_mutex;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<detail::StrategyWorker> worker;
  std::vector<std::string> notes;
  detail::HttpServer http;
  std::atomic<bool> draining{false};
  std::once_flag stopped;
  detail::Metrics metrics;
  std::mutex remembered_mutex;
  std::unordered_map<std::string, detail::Remembered> remembered;
  std::deque<std::string> remembered_order;
  std::atomic<uint64_t> next_id{0};

  // server.cpp
  void routes();
  detail::Caller authenticate(const httplib::Request& req) const;
  // The store's id of a user named in a request (tenant-namespaced). Throws 400 for a malformed id.
  std::string store_user(const detail::Caller& caller, const std::string& user) const;
  // Writes a store error's detail to stderr for the operator, at most once a second (a stopped database under load
  // fails every request).
  void note_store_error(const std::string& what);
  std::mutex store_error_mutex;
  std::chrono::steady_clock::time_point last_store_error{};
  int64_t store_errors_unlogged = 0;
  // A handler wrapped with errors, draining, metrics and the access log.
  httplib::Server::Handler endpoint(
      const std::string& name,
      std::function<void(const httplib::Request&, httplib::Response&, const detail::Caller&)> fn,
      bool needs_auth = true);
  std::string new_id(const std::string& prefix);
  void remember(const std::string& id, detail::Remembered r);
  std::optional<detail::Remembered> recall(const std::string& id);
  std::string metrics_text();

  // completions.cpp
  // One request's outputs being decoded: rows of the scheduler (streamable), or a whole-request strategy's results.
  struct Decoding {
    std::string strategy;
    std::string adapter;                   // the adapter or mix the rows decode with ("": none)
    std::map<std::string, double> fusion;  // fusion rows: each expert adapter's weight
    std::vector<std::shared_ptr<RowTicket>> tickets;
    std::vector<runtime::GenerateResult> results;  // whole-request strategies: already done
    int64_t prompt_tokens = 0;
    users::UserState state;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  // Starts decoding n outputs of prompt for the user (personalization: the request's palign object, may be null,
  // else the server's default strategy with the user's profile).
  Decoding decode(const std::string& store_user, const std::optional<detail::PalignBody>& palign,
                  std::vector<int64_t> prompt, const std::string& prompt_text, const runtime::GenerateOptions& generate,
                  int64_t n);
  // Waits for every output (cancelling those still running at the deadline).
  std::vector<runtime::GenerateResult> finish(Decoding& d, std::chrono::steady_clock::time_point deadline);
  void count(const Decoding& d, const std::vector<runtime::GenerateResult>& results);
  void completions(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller, bool chat);

  // users_api.cpp
  // The user's state: stored, or the prior for a user palign has not seen.
  users::UserState state_of(const std::string& store_user, std::vector<users::FeedbackEvent>* events = nullptr);
  void feedback(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  void get_user(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  void delete_user(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  void elicit(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  // server.cpp: /v1/admin/keys (POST adds, GET lists, DELETE removes) and /v1/admin/users (GET lists, ?tenant=).
  void admin_keys(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  void admin_users(const httplib::Request& req, httplib::Response& res, const detail::Caller& caller);
  // The K scores of each response under the users' scorer (400 when the server has none).
  std::vector<std::vector<double>> score(const std::string& prompt, const std::vector<std::string>& responses);
};

}  // namespace palign::server
