// palign serve: the OpenAI-compatible server (palign/server/server.h); palign key: adds an API key to a key file.
// SIGTERM and SIGINT stop the server gracefully: in-flight requests finish (or are cancelled after --drain-timeout),
// the listener closes; what was acknowledged is already durable in the store.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "common.h"
#include "palign/base/error.h"
#include "palign/server/auth.h"
#include "palign/server/server.h"

namespace palign::cli {

namespace {

struct ServeFlags {
  std::string model;
  server::ServerOptions options;
  bool quiet = false;
};

// SIGTERM and SIGINT write their number to a pipe (async-signal-safe, whichever thread takes the signal: libraries
// start threads of their own before main); a waiter thread reads it and stops the server.
int signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const auto written = ::write(signal_pipe[1], &byte, 1);
}

int run_serve(ServeFlags f) {
  f.options.model = resolve_model_dir(f.model);
  if (!f.quiet) f.options.log = &std::cerr;
  PALIGN_CHECK(::pipe(signal_pipe) == 0, ErrorCode::kIo, "[cli.serve] cannot create a pipe");
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  server::Server srv(f.options);
  const int port = srv.bind();
  for (const auto& note : srv.notes()) std::cerr << "note: " << note << "\n";
  std::cerr << "palign serve: listening on http://" << f.options.host << ":" << port << " (model "
            << f.options.model.filename().string() << ", store " << f.options.store.string() << ")" << std::endl;
  std::atomic<bool> running{true};
  std::thread waiter([&] {
    while (running) {
      pollfd p{signal_pipe[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      unsigned char sig = 0;
      if (::read(signal_pipe[0], &sig, 1) != 1) continue;
      std::cerr << "palign serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                << ": finishing in-flight requests, then stopping" << std::endl;
      srv.stop();
      return;
    }
  });
  srv.run();
  running = false;
  waiter.join();
  std::cerr << "palign serve: stopped" << std::endl;
  return 0;
}

}  // namespace

Command add_serve(CLI::App& root) {
  auto f = std::make_shared<ServeFlags>();
  auto& o = f->options;
  CLI::App* app = root.add_subcommand(
      "serve", "Serve the model over an OpenAI-compatible HTTP API, each request personalized for its user");
  app->add_option("--model", f->model, "Hugging Face model directory (default: the shipped model)");
  app->add_option("--store", o.store, "The profile store (an SQLite file; created when missing)")->required();
  app->add_option("--host", o.host, "Address to bind (anything but loopback needs --api-keys)")->capture_default_str();
  app->add_option("--port", o.port, "Port (0: any free port)")->capture_default_str();
  app->add_option("--api-keys", o.api_keys, "API key file (palign key writes it); none: loopback only, no auth");
  app->add_option("--strategy", o.strategy, "Strategy of requests that name none (sample, steer, best_of_n, ...)")
      ->capture_default_str();
  app->add_option("--reward", o.reward,
                  "The users' scorer: a reward with named dimensions (palign train reward --method multi); needed to "
                  "learn from choices and ratings");
  app->add_option("--prior", o.prior, "Population prior of new users (palign user prior); default N(0, I)");
  app->add_option("--vectors", o.vectors, "Steering vectors (palign train steer) for the steer strategy");
  app->add_option_function<std::vector<std::string>>(
      "--adapter",
      [f](const std::vector<std::string>& values) {
        for (const auto& v : values) {
          const auto eq = v.find('=');
          PALIGN_CHECK(eq != std::string::npos && eq > 0, ErrorCode::kInvalidArgument,
                       "[cli.serve] --adapter takes NAME=DIR, got '", v, "'");
          f->options.adapters.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        }
      },
      "A LoRA adapter (PEFT directory) requests may name (palign.adapter) or mix (palign.adapters); repeatable");
  app->add_option("--model-name", o.model_name, "The model id clients send (default: the directory's name)");
  app->add_option("--max-batch", o.scheduler.max_batch, "Rows decoded together")->capture_default_str();
  app->add_option("--max-queue", o.scheduler.max_queue, "Rows waiting; more are answered 429")->capture_default_str();
  app->add_option("--prefill-chunk", o.scheduler.prefill_chunk, "Prompt tokens per prefill pass of a row")
      ->capture_default_str();
  app->add_option(
      "--kv-budget-mb",
      [f](const std::vector<std::string>& v) {
        f->options.scheduler.kv_budget_bytes = std::stoll(v.at(0)) << 20;
        return true;
      },
      "KV-cache memory budget in MiB; prompts beyond a row's share are refused (default: the model's context)");
  app->add_option("--max-tokens", o.limits.max_tokens, "Most tokens a request may ask for per choice")
      ->capture_default_str();
  app->add_option("--max-n", o.limits.max_n, "Most choices per request")->capture_default_str();
  app->add_option("--max-body", o.limits.max_body_bytes, "Largest request body in bytes")->capture_default_str();
  app->add_option("--timeout", o.limits.request_timeout_s, "Seconds a request or stream may run")
      ->capture_default_str();
  app->add_option("--threads", o.threads, "HTTP worker threads (each streaming client holds one)")
      ->capture_default_str();
  app->add_option("--strategy-workers", o.strategy_workers,
                  "Threads running whole-request strategies (best_of_n, args, cd_block, prompt, contrast) at once")
      ->capture_default_str();
  app->add_option("--drain-timeout-ms", o.drain_timeout_ms, "On SIGTERM, how long in-flight requests may finish")
      ->capture_default_str();
  app->add_flag("--quiet", f->quiet, "No access log");
  return {app, [f] { return run_serve(*f); }};
}

Command add_key(CLI::App& root) {
  struct KeyFlags {
    std::string file, tenant;
    bool admin = false;
  };
  auto f = std::make_shared<KeyFlags>();
  CLI::App* app = root.add_subcommand(
      "key", "Add an API key for palign serve: prints the key once and stores only its SHA-256 in the key file");
  app->add_option("--api-keys", f->file, "The key file (created when missing)")->required();
  app->add_option("--tenant", f->tenant, "The tenant the key belongs to (its users are its own)")->required();
  app->add_flag("--admin", f->admin, "An admin key: may name any tenant's user as TENANT/USER");
  return {app, [f] {
            std::cout << server::add_api_key(f->file, f->tenant, f->admin) << std::endl;
            return 0;
          }};
}

}  // namespace palign::cli
