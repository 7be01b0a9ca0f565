// The server's lifecycle (load, bind, serve, graceful stop), authentication, OpenAI-shaped errors, the metrics and the
// access log. The endpoints themselves are in completions.cpp and users_api.cpp.
#include <sys/socket.h>

#include <chrono>
#include <iomanip>
#include <sstream>

#include "page.h"
#include "palign/base/error.h"
#include "palign/runtime/generate.h"
#include "palign/users/online_model.h"
#include "palign/users/prior_file.h"
#include "palign/users/scorer.h"
#include "server_internal.h"

namespace palign::server {

namespace fs = std::filesystem;
using detail::Caller;
using detail::fail;
using detail::json;

namespace detail {

StrategyWorker::StrategyWorker(int threads) {
  for (int t = 0; t < threads; ++t)
    threads_.emplace_back([this] {
      while (true) {
        std::function<void()> job;
        {
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
          if (jobs_.empty()) return;
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    });
}

StrategyWorker::~StrategyWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void StrategyWorker::run(const std::function<void()>& fn) {
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::exception_ptr error;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back([&] {
      try {
        fn();
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard l(done_mutex);
      done = true;
      done_cv.notify_all();
    });
  }
  cv_.notify_all();
  std::unique_lock lock(done_mutex);
  done_cv.wait(lock, [&] { return done; });
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

std::string ServerLimits::validate() const {
  if (max_body_bytes < 1024) return "max_body_bytes must be at least 1024";
  if (max_messages < 1 || max_n < 1 || max_tokens < 1) return "max_messages, max_n and max_tokens must be at least 1";
  if (request_timeout_s < 1) return "request_timeout_s must be at least 1";
  return "";
}

namespace {

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

int status_of(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kIo:  // the store cannot be reached or written: nothing was stored, the client may retry
      return 503;
    default:
      return 500;
  }
}

constexpr const char* kStoreUnavailable =
    "the profile store cannot be reached or written; retry (feedback under the same key, which is never stored twice)";

}  // namespace

Server::Impl::Impl(ServerOptions o) : options(std::move(o)) {
  const std::string lerr = options.limits.validate();
  PALIGN_CHECK(lerr.empty(), ErrorCode::kInvalidArgument, "[server] ", lerr);
  PALIGN_CHECK(options.threads >= 2, ErrorCode::kInvalidArgument, "[server] --threads must be at least 2");
  PALIGN_CHECK(options.strategy_workers >= 1 && options.strategy_workers <= 64, ErrorCode::kInvalidArgument,
               "[server] --strategy-workers must be between 1 and 64, got ", options.strategy_workers);
  // What needs no file is checked before anything is loaded or created.
  (void)decoding::find_strategy(options.strategy);
  PALIGN_CHECK(options.strategy != "steer" || !options.vectors.empty(), ErrorCode::kInvalidArgument,
               "[server] --strategy steer needs --vectors FILE");
  PALIGN_CHECK(options.prior.empty() || !options.reward.empty(), ErrorCode::kInvalidArgument,
               "[server] --prior needs --reward, the scorer whose dimensions it weighs");
  PALIGN_CHECK(!options.store.empty(), ErrorCode::kInvalidArgument, "[server] give --store FILE, the profile store");
  auth = !options.api_keys.empty();
  if (auth) {
    keys = KeyRing::load(options.api_keys);
    PALIGN_CHECK(!keys.empty(), ErrorCode::kInvalidArgument, "[server] ", options.api_keys.string(),
                 " holds no keys; add one with `palign key --api-keys ", options.api_keys.string(), " --tenant NAME`");
  }
  PALIGN_CHECK(auth || is_loopback(options.host), ErrorCode::kInvalidArgument, "[server] --host ", options.host,
               " without API keys would serve anyone on the network; give --api-keys FILE (palign "
               "key) or bind 127.0.0.1");
  if (!auth)
    notes.push_back("no API keys configured: serving " + options.host +
                    " only, every caller is the local user (give --api-keys FILE to serve others)");
  model = runtime::Model::load(options.model);
  PALIGN_CHECK(model->config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[server] ",
               options.model.string(), " is not a causal language model");
  PALIGN_CHECK(fs::exists(options.model / "tokenizer.json"), ErrorCode::kNotFound, "[server] ", options.model.string(),
               " has no tokenizer.json; the server needs text in and out");
  tokenizer.emplace(runtime::Tokenizer::from_dir(options.model));
  try {
    chat.emplace(runtime::ChatTemplate::from_model_dir(options.model));
  } catch (const Error& e) {
    notes.push_back("no chat template (" + detail::client_message(e.what()) + "): /v1/chat/completions is refused");
  }
  stop_ids = runtime::default_stop_ids(options.model, *model, &*tokenizer);
  model_name =
      options.model_name.empty() ? fs::weakly_canonical(options.model).filename().string() : options.model_name;
  store = users::ProfileStore::open(options.store);
  if (!options.reward.empty()) {
    reward = scoring::RewardModel::load(options.reward);
    dimensions = users::scorer_dimensions(*reward);
    scorer = users::scorer_fingerprint(options.reward);
    prior = options.prior.empty()
                ? users::prior_dimension_weights(dimensions, std::vector<double>(dimensions.size(), 0.0), 1.0)
                : users::read_prior_file(options.prior, dimensions);
  } else {
    notes.push_back("no --reward: choice and rating feedback are refused (statements are still taken)");
  }
  if (!options.vectors.empty()) vectors = scoring::load_steering_vectors(options.vectors, model->config());
  for (const auto& [name, dir] : options.adapters) {
    PALIGN_CHECK(!name.empty() && !adapters.count(name), ErrorCode::kInvalidArgument, "[server] adapter name '", name,
                 "' is empty or given twice; use --adapter NAME=DIR once per adapter");
    adapters.emplace(name, std::make_unique<runtime::LoraAdapter>(runtime::LoraAdapter::load(dir, model->config())));
  }
  scheduler = std::make_unique<Scheduler>(*model, &*tokenizer, options.scheduler);
  worker = std::make_unique<detail::StrategyWorker>(options.strategy_workers);
  routes();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() { stop(); }

const std::vector<std::string>& Server::notes() const { return impl_->notes; }

int Server::bind() {
  auto& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    PALIGN_CHECK(port > 0, ErrorCode::kIo, "[server] cannot bind ", o.host, "; is the address right?");
  } else {
    PALIGN_CHECK(impl_->http.bind_to_port(o.host, port), ErrorCode::kIo, "[server] cannot bind ", o.host, ":", port,
                 "; is another server on that port? (--port)");
  }
  // A backlog for bursts of clients (httplib's own is 5); listen() on a listening socket only changes it.
  PALIGN_CHECK(::listen(impl_->http.listening_socket(), 1024) == 0, ErrorCode::kIo, "[server] cannot listen on ",
               o.host, ":", port);
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  Impl& s = *impl_;
  std::call_once(s.stopped, [&] {
    s.draining = true;
    s.scheduler->drain(std::chrono::milliseconds(s.options.drain_timeout_ms));
    s.http.stop();
  });
}

Caller Server::Impl::authenticate(const httplib::Request& req) const {
  if (!auth) return {"", true, ""};
  const std::string header = req.get_header_value("Authorization");
  if (header.empty())
    fail(401, "You didn't provide an API key. Send it as the header 'Authorization: Bearer KEY'.", "",
         "missing_api_key");
  const std::string prefix = "Bearer ";
  const std::string key = header.rfind(prefix, 0) == 0 ? header.substr(prefix.size()) : header;
  std::shared_lock lock(keys_mutex);
  const ApiKey* found = keys.find(key);
  if (!found) fail(401, "Incorrect API key provided.", "", "invalid_api_key");
  return {found->tenant, found->admin, found->hash};
}

void Server::Impl::note_store_error(const std::string& what) {
  std::lock_guard lock(store_error_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_store_error < std::chrono::seconds(1)) {
    ++store_errors_unlogged;
    return;
  }
  std::fprintf(stderr, "palign serve: %s", what.c_str());
  if (store_errors_unlogged > 0)
    std::fprintf(stderr, " (and %lld more store errors since the last line)",
                 static_cast<long long>(store_errors_unlogged));
  std::fprintf(stderr, "\n");
  last_store_error = now;
  store_errors_unlogged = 0;
}

std::string Server::Impl::store_user(const Caller& caller, const std::string& user) const {
  detail::check_user_id(user);
  if (caller.tenant.empty()) return user;  // no keys: the local user names store ids directly
  if (user.find('/') != std::string::npos) {
    if (!caller.admin) fail(400, "a user id may not contain '/'", "user");
    return user;  // an admin names TENANT/USER
  }
  return caller.tenant + "/" + user;
}

std::string Server::Impl::new_id(const std::string& prefix) {
  static const uint64_t start =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) & 0xffffffffull;
  std::ostringstream s;
  s << prefix << std::hex << start << "-" << std::dec << ++next_id;
  return s.str();
}

void Server::Impl::remember(const std::string& id, detail::Remembered r) {
  std::lock_guard lock(remembered_mutex);
  remembered.emplace(id, std::move(r));
  remembered_order.push_back(id);
  while (remembered_order.size() > options.limits.max_remembered) {
    remembered.erase(remembered_order.front());
    remembered_order.pop_front();
  }
}

std::optional<detail::Remembered> Server::Impl::recall(const std::string& id) {
  std::lock_guard lock(remembered_mutex);
  const auto it = remembered.find(id);
  if (it == remembered.end()) return std::nullopt;
  return it->second;
}

httplib::Server::Handler Server::Impl::endpoint(
    const std::string& name, std::function<void(const httplib::Request&, httplib::Response&, const Caller&)> fn,
    bool needs_auth) {
  return [this, name, fn = std::move(fn), needs_auth](const httplib::Request& req, httplib::Response& res) {
    try {
      if (draining) fail(503, "the server is shutting down; retry on another replica or later");
      const Caller caller = needs_auth ? authenticate(req) : Caller{};
      fn(req, res, caller);
    } catch (const detail::HttpError& e) {
      res.status = e.status;
      res.set_content(detail::error_text(e), "application/json");
    } catch (const Error& e) {
      detail::HttpError h;
      h.status = status_of(e);
      h.message = detail::client_message(e.what());
      if (e.code() == ErrorCode::kIo && std::string_view(e.what()).starts_with("[users.store]")) {
        // The store's detail (its URL or file) is for the operator's log, not for clients.
        note_store_error(e.what());
        h.message = kStoreUnavailable;
        h.code = "store_unavailable";
      }
      if (h.status >= 500) h.type = "server_error";
      if (h.status == 404) h.type = "not_found_error";
      res.status = h.status;
      res.set_content(detail::error_text(h), "application/json");
    } catch (const std::exception& e) {
      detail::HttpError h{500, std::string("internal error: ") + e.what(), "server_error", "", ""};
      res.status = 500;
      res.set_content(detail::error_text(h), "application/json");
    }
    std::lock_guard lock(metrics.mutex);
    ++metrics.requests[{name, res.status == -1 ? 200 : res.status}];  // httplib sets 200 after the handler
  };
}

std::string Server::Impl::metrics_text() {
  std::ostringstream m;
  m << std::setprecision(9);
  {
    std::lock_guard lock(metrics.mutex);
    m << "# HELP palign_requests_total HTTP requests by endpoint and status.\n# TYPE palign_requests_total counter\n";
    for (const auto& [k, v] : metrics.requests)
      m << "palign_requests_total{endpoint=\"" << k.first << "\",status=\"" << k.second << "\"} " << v << "\n";
    m << "# HELP palign_prompt_tokens_total Prompt tokens of completed requests.\n"
      << "# TYPE palign_prompt_tokens_total counter\npalign_prompt_tokens_total " << metrics.prompt_tokens << "\n";
    m << "# HELP palign_completion_tokens_total Tokens generated for clients.\n"
      << "# TYPE palign_completion_tokens_total counter\npalign_completion_tokens_total " << metrics.completion_tokens
      << "\n";
    m << "# HELP palign_feedback_events_total Feedback events stored.\n"
      << "# TYPE palign_feedback_events_total counter\npalign_feedback_events_total " << metrics.feedback_events
      << "\n";
    m << "# HELP palign_request_seconds Completion latency by strategy.\n# TYPE palign_request_seconds summary\n";
    for (const auto& [k, v] : metrics.latency)
      m << "palign_request_seconds_sum{strategy=\"" << k << "\"} " << v.first << "\n"
        << "palign_request_seconds_count{strategy=\"" << k << "\"} " << v.second << "\n";
    m << "# HELP palign_first_token_seconds Time to first token by strategy.\n"
      << "# TYPE palign_first_token_seconds summary\n";
    for (const auto& [k, v] : metrics.first_token)
      m << "palign_first_token_seconds_sum{strategy=\"" << k << "\"} " << v.first << "\n"
        << "palign_first_token_seconds_count{strategy=\"" << k << "\"} " << v.second << "\n";
  }
  const SchedulerStats s = scheduler->stats();
  m << "# HELP palign_queue_depth Rows waiting for a place in the batch.\n# TYPE palign_queue_depth gauge\n"
    << "palign_queue_depth " << s.queued << "\n"
    << "# HELP palign_active_rows Rows in the batch.\n# TYPE palign_active_rows gauge\npalign_active_rows " << s.active
    << "\n"
    << "# HELP palign_decode_steps_total Batched decode passes.\n# TYPE palign_decode_steps_total counter\n"
    << "palign_decode_steps_total " << s.steps << "\n"
    << "# HELP palign_decode_rows_total Rows summed over decode passes (over steps: the mean batch size).\n"
    << "# TYPE palign_decode_rows_total counter\npalign_decode_rows_total " << s.step_rows << "\n"
    << "# HELP palign_batch_size_max The largest decode batch so far.\n# TYPE palign_batch_size_max gauge\n"
    << "palign_batch_size_max " << s.max_step_rows << "\n"
    << "# HELP palign_prefill_tokens_total Prompt tokens prefilled.\n# TYPE palign_prefill_tokens_total counter\n"
    << "palign_prefill_tokens_total " << s.prefill_tokens << "\n"
    << "# HELP palign_rows_total Rows by how they ended.\n# TYPE palign_rows_total counter\n"
    << "palign_rows_total{end=\"finished\"} " << s.rows_finished << "\n"
    << "palign_rows_total{end=\"cancelled\"} " << s.rows_cancelled << "\n"
    << "palign_rows_total{end=\"failed\"} " << s.rows_failed << "\n";
  return m.str();
}

void Server::Impl::admin_keys(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  if (!auth) fail(400, "this server has no key file (start it with --api-keys FILE)", "", "no_keys");
  if (!caller.admin) fail(403, "managing keys needs an admin key", "", "not_admin");
  if (req.method == "GET") {
    json list = json::array();
    std::shared_lock lock(keys_mutex);
    for (const auto& k : keys.keys()) list.push_back({{"tenant", k.tenant}, {"hash", k.hash}, {"admin", k.admin}});
    res.set_content(json{{"object", "list"}, {"data", list}}.dump(), "application/json");
    return;
  }
  std::unique_lock lock(keys_mutex);
  if (req.method == "POST") {
    const auto [tenant, admin] = detail::parse_key_body(req.body);
    const std::string key = add_api_key(options.api_keys, tenant, admin);
    keys = KeyRing::load(options.api_keys);
    res.set_content(
        json{{"object", "api_key"}, {"key", key}, {"hash", hash_key(key)}, {"tenant", tenant}, {"admin", admin}}.dump(),
        "application/json");
    return;
  }
  const std::string hash = req.matches[1];  // DELETE /v1/admin/keys/{hash}
  if (hash == caller.key_hash) fail(409, "a key cannot delete itself; use another admin key", "", "own_key");
  remove_api_key(options.api_keys, hash);
  keys = KeyRing::load(options.api_keys);
  res.set_content(json{{"object", "api_key"}, {"hash", hash}, {"deleted", true}}.dump(), "application/json");
}

void Server::Impl::admin_users(const httplib::Request& req, httplib::Response& res, const Caller& caller) {
  if (!caller.admin) fail(403, "listing users needs an admin key", "", "not_admin");
  const std::string tenant = req.get_param_value("tenant");
  const std::vector<std::string> ids = store->users();
  json list = json::array();
  for (const auto& id : ids)
    if (tenant.empty() || id.rfind(tenant + "/", 0) == 0) list.push_back(id);
  res.set_content(json{{"object", "list"}, {"data", list}}.dump(), "application/json");
}

void Server::Impl::routes() {
  http.new_task_queue = [n = options.threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  http.set_payload_max_length(options.limits.max_body_bytes);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(detail::error_text({500, "internal error", "server_error", "", ""}), "application/json");
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    detail::HttpError e{res.status, "", "invalid_request_error", "", ""};
    if (res.status == 404)
      e.message = "no endpoint " + req.method + " " + req.path, e.type = "not_found_error";
    else if (res.status == 413)
      e.message = "the request body is larger than this server accepts";
    else
      e.message = "the request could not be handled (HTTP " + std::to_string(res.status) + ")";
    res.set_content(detail::error_text(e), "application/json");
  });
  if (options.log)
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      static std::mutex log_mutex;
      const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::lock_guard lock(log_mutex);
      *options.log << std::put_time(std::gmtime(&now), "%Y-%m-%dT%H:%M:%SZ") << " " << req.remote_addr << " "
                   << req.method << " " << req.path << " " << res.status << " " << req.body.size() << "\n"
                   << std::flush;
    });

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(detail::page_html()), "text/html; charset=utf-8");
  });
  http.Get("/health", endpoint(
                          "health",
                          [this](const httplib::Request&, httplib::Response& res, const Caller&) {
                            // A replica whose store cannot be reached is unhealthy: the balancer routes around it.
                            try {
                              store->ping();
                            } catch (const Error& e) {
                              note_store_error(e.what());
                              fail(503, kStoreUnavailable, "", "store_unavailable");
                            }
                            res.set_content(json{{"status", "ok"}, {"model", model_name}}.dump(), "application/json");
                          },
                          false));
  http.Get("/metrics", endpoint(
                           "metrics",
                           [this](const httplib::Request&, httplib::Response& res, const Caller&) {
                             res.set_content(metrics_text(), "text/plain; version=0.0.4");
                           },
                           false));
  http.Get("/v1/models", endpoint("models", [this](const httplib::Request&, httplib::Response& res, const Caller&) {
             const json m = {{"id", model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "palign"}};
             res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
           }));
  http.Get(R"(/v1/models/([^/]+))",
           endpoint("models", [this](const httplib::Request& req, httplib::Response& res, const Caller&) {
             if (req.matches[1] != model_name)
               fail(404, "The model '" + std::string(req.matches[1]) + "' does not exist", "model", "model_not_found");
             res.set_content(
                 json{{"id", model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "palign"}}.dump(),
                 "application/json");
           }));
  http.Post("/v1/chat/completions",
            endpoint("chat.completions", [this](const httplib::Request& req, httplib::Response& res, const Caller& c) {
              completions(req, res, c, true);
            }));
  http.Post("/v1/completions", endpoint("completions", [this](const httplib::Request& req, httplib::Response& res,
                                                              const Caller& c) { completions(req, res, c, false); }));
  http.Post("/v1/feedback", endpoint("feedback", [this](const httplib::Request& req, httplib::Response& res,
                                                        const Caller& c) { feedback(req, res, c); }));
  http.Get(R"(/v1/users/([^/]+(?:/[^/]+)?))",
           endpoint("users.get", [this](const httplib::Request& req, httplib::Response& res, const Caller& c) {
             get_user(req, res, c);
           }));
  http.Delete(R"(/v1/users/([^/]+(?:/[^/]+)?))",
              endpoint("users.delete", [this](const httplib::Request& req, httplib::Response& res, const Caller& c) {
                delete_user(req, res, c);
              }));
  const auto admin_keys_endpoint = endpoint("admin.keys", [this](const httplib::Request& req, httplib::Response& res,
                                                                 const Caller& c) { admin_keys(req, res, c); });
  http.Get("/v1/admin/keys", admin_keys_endpoint);
  http.Post("/v1/admin/keys", admin_keys_endpoint);
  http.Delete(R"(/v1/admin/keys/(sha256:[0-9a-f]{64}))", admin_keys_endpoint);
  http.Get("/v1/admin/users", endpoint("admin.users", [this](const httplib::Request& req, httplib::Response& res,
                                                             const Caller& c) { admin_users(req, res, c); }));
  http.Post(R"(/v1/users/([^/]+(?:/[^/]+)?)/elicit)",
            endpoint("users.elicit", [this](const httplib::Request& req, httplib::Response& res, const Caller& c) {
              elicit(req, res, c);
            }));
}

}  // namespace palign::server
