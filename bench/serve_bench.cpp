// palign serve under load, on the shipped default model, loopback only. Checks first (batched rows give the tokens
// the same requests give one at a time), then:
//   1. Personalized batches against unpersonalized ones, in the scheduler (interleaved rounds, best of each):
//      16 rows of 16 users with 16 different steering vectors, and 16 rows with 16 different LoRA adapters, against
//      16 unpersonalized rows (target: >= 70% of their throughput); the same 16 plain requests served one at a time;
//      16 fusion rows, each user their own weights over 2 shared LoRA experts (2 sequences a row), in one batch and one
//      at a time (as the strategy worker decoded fusion before it joined the batch).
//   2. A load test over HTTP: 32 concurrent streaming clients as 32 different users with mixed strategies (sample,
//      some of them with an adapter, steer, best_of_n, fusion of two adapters), each giving feedback between its
//      requests: errors, lost events (every acknowledged event
//      must be in the store afterwards), p50/p99 time to first token and per-token latency.
//   3. (--long MODEL_DIR TOKENS) A long prompt prefilled in chunks of 256 tokens through the scheduler, against the
//      runtime's one-shot prefill (runtime::generate), each in a child process of its own so that its peak memory
//      (ru_maxrss) is its own: seconds and peak resident memory of each. The one-shot prefill's attention holds
//      heads x T^2 scores; the chunked one heads x 256 x T.
// Usage: serve_bench [--quick] | serve_bench --long MODEL_DIR TOKENS
#include <httplib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "bench_util.h"
#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/steering_vectors.h"
#include "palign/server/scheduler.h"
#include "palign/server/server.h"
#include "palign/users/store.h"

using namespace palign;
using namespace palign::server;
namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

const fs::path kModel = fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
const fs::path kScorer = fs::path(PALIGN_SOURCE_DIR) / "tests" / "data" / "hf" / "models" / "llama_rm_multi";

// Runs the rows together and returns their outputs' ids.
std::vector<std::vector<int64_t>> run_together(Scheduler& s, const std::vector<RowRequest>& rows) {
  std::vector<std::shared_ptr<RowTicket>> tickets;
  for (const auto& r : rows) tickets.push_back(s.submit(r));
  std::vector<std::vector<int64_t>> out;
  for (auto& t : tickets) out.push_back(t->wait(SIZE_MAX, Steady::now() + std::chrono::minutes(10)).result.ids);
  return out;
}

std::vector<std::vector<int64_t>> run_one_by_one(Scheduler& s, const std::vector<RowRequest>& rows) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& r : rows)
    out.push_back(s.submit(r)->wait(SIZE_MAX, Steady::now() + std::chrono::minutes(10)).result.ids);
  return out;
}

// The child of --long: prefills `tokens` random ids of the model and decodes 4 tokens, chunked through the scheduler
// or in one shot; prints "seconds peak_mib first_token".
int long_child(const fs::path& dir, int64_t tokens, bool chunked) {
  at::NoGradGuard no_grad;
  const auto model = runtime::Model::load(dir);
  std::vector<int64_t> prompt(static_cast<size_t>(tokens));
  for (int64_t i = 0; i < tokens; ++i)
    prompt[static_cast<size_t>(i)] = 3 + (i * 7919) % (model->config().vocab_size - 3);
  const auto t0 = Steady::now();
  int64_t first = -1;
  if (chunked) {
    Scheduler s(*model, nullptr, {.max_batch = 1, .prefill_chunk = 256});
    RowRequest r;
    r.prompt = prompt;
    r.sampling.greedy = true;
    r.max_new_tokens = 4;
    first = s.submit(r)->wait(SIZE_MAX, Steady::now() + std::chrono::hours(1)).result.ids.at(0);
  } else {
    runtime::GenerateOptions o;
    o.sampling.greedy = true;
    o.max_new_tokens = 4;
    first = runtime::generate(*model, nullptr, prompt, o).at(0).ids.at(0);
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%.3f %.1f %lld\n", seconds, usage.ru_maxrss / 1024.0, static_cast<long long>(first));
  return 0;
}

int long_prompt(const char* self, const std::string& dir, const std::string& tokens) {
  std::printf("a %s-token prompt on %s, 4 tokens decoded (each run in its own process)\n", tokens.c_str(), dir.c_str());
  std::string firsts[2];
  for (int chunked = 1; chunked >= 0; --chunked) {
    const std::string cmd = std::string(self) + " --long-child " + dir + " " + tokens + " " + std::to_string(chunked);
    FILE* p = popen(cmd.c_str(), "r");
    char line[256] = {0};
    const bool read = p && std::fgets(line, sizeof line, p);
    const int status = p ? pclose(p) : -1;
    double seconds = 0, mib = 0;
    long long first = -1;
    if (!read || status != 0 || std::sscanf(line, "%lf %lf %lld", &seconds, &mib, &first) != 3) {
      std::printf("  %-34s failed (exit status %d)\n", chunked ? "scheduler, chunks of 256" : "one-shot prefill",
                  status);
      continue;
    }
    firsts[chunked] = std::to_string(first);
    std::printf("  %-34s %8.2f s  peak %8.1f MiB\n", chunked ? "scheduler, chunks of 256" : "one-shot prefill", seconds,
                mib);
  }
  if (!firsts[0].empty() && firsts[0] != firsts[1]) {
    std::printf("FAIL: the first greedy token differs (%s chunked, %s one-shot)\n", firsts[1].c_str(),
                firsts[0].c_str());
    return 1;
  }
  return firsts[1].empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "--long-child") == 0)
    return long_child(argv[2], std::stoll(argv[3]), std::strcmp(argv[4], "1") == 0);
  if (argc == 4 && std::strcmp(argv[1], "--long") == 0) return long_prompt(argv[0], argv[2], argv[3]);
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  at::NoGradGuard no_grad;
  const auto model = runtime::Model::load(kModel);
  const auto tokenizer = runtime::Tokenizer::from_dir(kModel);
  const auto& c = model->config();
  const int64_t rows_n = 16, new_tokens = quick ? 24 : 48;
  const std::vector<std::string> prompts = {"Why did the",  "A computer is", "Love is",          "The cat",
                                            "Never trust",  "Q: What is",    "In the beginning", "Life is",
                                            "My wife said", "The trouble",   "Science",          "A man walks",
                                            "Politics is",  "Food for",      "Time flies",       "Every day"};

  // ---- 1. Personalized batches in the scheduler ----
  std::vector<RowRequest> plain, steered, adapted, fused;
  std::vector<runtime::LoraAdapter> adapters;
  for (int64_t i = 0; i < rows_n; ++i) adapters.push_back(bench_util::random_expert(c, 100 + i));
  at::manual_seed(7);
  for (int64_t i = 0; i < rows_n; ++i) {
    RowRequest r;
    const auto ids = tokenizer.encode(prompts[static_cast<size_t>(i)], true);
    r.prompt.assign(ids.begin(), ids.end());
    r.sampling.seed = static_cast<uint64_t>(i);
    r.max_new_tokens = new_tokens;  // no stop ids: every row decodes the same number of tokens
    plain.push_back(r);
    RowRequest s = r;
    s.steering[1 + i % (c.n_layer - 1)] = at::randn({c.hidden_size}) * 2.0;  // each user their own vector
    steered.push_back(s);
    RowRequest a = r;
    a.adapter = &adapters[static_cast<size_t>(i)];
    adapted.push_back(a);
    RowRequest f = r;  // each user their own weights over two experts all rows share
    f.fusion_experts = {&adapters[0], &adapters[1]};
    const double w = static_cast<double>(i) / (rows_n - 1);
    f.fusion_weights = {w, 1.0 - w};
    fused.push_back(f);
  }
  Scheduler scheduler(*model, &tokenizer, {.max_batch = rows_n});
  Scheduler fusion_scheduler(*model, &tokenizer, {.max_batch = 2 * rows_n});  // a fusion row is 2 sequences
  // Checks: batched rows equal the same requests one at a time (steered, adapted and fused too), greedy: a batch of
  // another size rounds differently in the last bits, which may flip a sampled token (seen on some CPUs) but not an
  // argmax short of a near-tie.
  for (const auto* set : {&plain, &steered, &adapted, &fused}) {
    Scheduler& on = set == &fused ? fusion_scheduler : scheduler;
    std::vector<RowRequest> greedy = *set;
    for (auto& r : greedy) r.sampling.greedy = true;
    const auto together = run_together(on, greedy), alone = run_one_by_one(on, greedy);
    for (int64_t i = 0; i < rows_n; ++i)
      if (together[static_cast<size_t>(i)] != alone[static_cast<size_t>(i)]) {
        const auto &x = together[static_cast<size_t>(i)], &y = alone[static_cast<size_t>(i)];
        size_t at = 0;
        while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
        std::fprintf(stderr, "FAIL: row %lld of set %d decoded differently in a batch than alone (from token %zu)\n",
                     static_cast<long long>(i),
                     static_cast<int>(set == &plain     ? 0
                                      : set == &steered ? 1
                                      : set == &adapted ? 2
                                                        : 3),
                     at);
        return 1;
      }
  }
  if (run_together(scheduler, steered) == run_together(scheduler, plain)) {
    std::fprintf(stderr, "FAIL: the steering vectors changed nothing\n");
    return 1;
  }
  if (run_together(fusion_scheduler, fused) == run_together(scheduler, plain)) {
    std::fprintf(stderr, "FAIL: the fusion weights changed nothing\n");
    return 1;
  }
  std::printf(
      "checks: %lld rows batched = one at a time (plain, 16 steering vectors, 16 adapters, 16 fusion weights)\n",
      static_cast<long long>(rows_n));
  const int rounds = quick ? 2 : 4;
  const auto t = bench_util::best_interleaved(
      rounds, {[&] { run_together(scheduler, plain); }, [&] { run_together(scheduler, steered); },
               [&] { run_together(scheduler, adapted); }, [&] { run_one_by_one(scheduler, plain); },
               [&] { run_together(fusion_scheduler, fused); }, [&] { run_one_by_one(fusion_scheduler, fused); }});
  const double tokens = static_cast<double>(rows_n * new_tokens);
  std::printf("\n16 rows x %lld tokens (best of %d interleaved rounds)\n", static_cast<long long>(new_tokens), rounds);
  std::printf("  %-36s %8.0f tok/s\n", "unpersonalized, one batch", tokens / t[0]);
  std::printf("  %-36s %8.0f tok/s  %.2fx of unpersonalized (target >= 0.70)\n", "16 steering vectors, one batch",
              tokens / t[1], t[0] / t[1]);
  std::printf("  %-36s %8.0f tok/s  %.2fx of unpersonalized (target >= 0.70)\n", "16 LoRA adapters, one batch",
              tokens / t[2], t[0] / t[2]);
  std::printf("  %-36s %8.0f tok/s  %.2fx of one batch\n", "unpersonalized, one at a time", tokens / t[3], t[0] / t[3]);
  std::printf("  %-36s %8.0f tok/s  %.2fx of unpersonalized (2 sequences a row)\n", "16 fusion weights, one batch",
              tokens / t[4], t[0] / t[4]);
  std::printf("  %-36s %8.0f tok/s  %.2fx of the fusion batch\n", "16 fusion weights, one at a time", tokens / t[5],
              t[4] / t[5]);

  // ---- 2. Load over HTTP ----
  const fs::path dir = fs::temp_directory_path() / ("palign_serve_bench_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<scoring::SteeringVector> vectors;
  const std::vector<std::string> names = {"helpful", "concise", "formal", "humorous"};
  for (size_t k = 0; k < names.size(); ++k)
    vectors.push_back({names[k], static_cast<int64_t>(k + 1), at::randn({c.hidden_size}) * 2.0});
  scoring::save_steering_vectors(dir / "vectors.safetensors", vectors);
  adapters[0].save(dir / "e0");
  adapters[1].save(dir / "e1");
  // The load test with 1 and with 2 strategy workers (whole-request strategies, here best_of_n, beside the batch).
  const auto load = [&](int workers) -> bool {
    ServerOptions o;
    o.adapters = {{"e0", dir / "e0"}, {"e1", dir / "e1"}};
    o.model = kModel;
    o.store = dir / ("users-" + std::to_string(workers) + ".db");
    o.reward = kScorer;
    o.vectors = dir / "vectors.safetensors";
    o.port = 0;
    o.threads = 48;
    o.scheduler.max_batch = 32;
    o.strategy_workers = workers;
    Server srv(o);
    const int port = srv.bind();
    std::thread serving([&] { srv.run(); });

    const int clients = 32, per_client = quick ? 2 : 4;
    const std::vector<std::string> strategies = {"sample", "steer", "best_of_n", "fusion"};
    std::atomic<int> errors{0}, requests{0};
    std::mutex stats_mutex;
    std::vector<double> ttft, per_token;
    std::map<std::string, int64_t> acknowledged;  // user -> events the server acknowledged as stored
    std::vector<std::string> first_errors;
    const auto t0 = Steady::now();
    std::vector<std::thread> threads;
    for (int ci = 0; ci < clients; ++ci)
      threads.emplace_back([&, ci] {
        httplib::Client cl("127.0.0.1", port);
        cl.set_read_timeout(600);
        const std::string user = "load-" + std::to_string(ci);
        const auto error = [&](const std::string& what) {
          ++errors;
          std::lock_guard lock(stats_mutex);
          if (first_errors.size() < 5) first_errors.push_back(user + ": " + what);
        };
        for (int k = 0; k < per_client; ++k) {
          const std::string strategy = strategies[static_cast<size_t>((ci + k) % strategies.size())];
          json body = {{"model", "default"},
                       {"messages", {{{"role", "user"}, {"content", prompts[static_cast<size_t>((ci + k) % 16)]}}}},
                       {"max_tokens", 24},
                       {"n", 2},
                       {"seed", ci * 100 + k},
                       {"user", user},
                       {"stream", true},
                       {"palign", {{"strategy", strategy}}}};
          if (strategy == "best_of_n") body["palign"]["best_of"] = 2;
          if (strategy == "fusion") body["palign"]["models"] = "e0,e1", body["palign"]["weights"] = "0.7,0.3";
          if (strategy == "sample" && ci % 2 == 1) body["palign"]["adapter"] = ci % 4 == 1 ? "e0" : "e1";
          const auto start = Steady::now();
          double first = -1;
          auto last = start;
          int64_t chunks = 0;
          std::string buffer, id;
          httplib::Request req;
          req.method = "POST";
          req.path = "/v1/chat/completions";
          req.headers = {{"Content-Type", "application/json"}};
          req.body = body.dump();
          req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
            const auto now = Steady::now();
            buffer.append(data, n);
            size_t pos;
            while ((pos = buffer.find("\n\n")) != std::string::npos) {
              const std::string event = buffer.substr(0, pos);
              buffer.erase(0, pos + 2);
              if (event.rfind("data: {", 0) != 0) continue;
              const json e = json::parse(event.substr(6), nullptr, false);
              if (e.is_discarded() || !e.contains("choices")) continue;
              if (id.empty()) id = e.value("id", "");
              for (const auto& ch : e["choices"])
                if (ch.contains("delta") && ch["delta"].contains("content") &&
                    !ch["delta"]["content"].get<std::string>().empty()) {
                  if (first < 0) first = std::chrono::duration<double>(now - start).count();
                  ++chunks;
                  std::lock_guard lock(stats_mutex);
                  if (chunks > 1) per_token.push_back(std::chrono::duration<double>(now - last).count());
                  last = now;
                }
            }
            return true;
          };
          httplib::Response res;
          httplib::Error err = httplib::Error::Success;
          const bool sent = cl.send(req, res, err);
          ++requests;
          if (!sent || res.status != 200) {
            error(sent ? "chat HTTP " + std::to_string(res.status) : "chat request failed: " + httplib::to_string(err));
            continue;
          }
          {
            std::lock_guard lock(stats_mutex);
            if (first >= 0) ttft.push_back(first);
          }
          // Feedback between requests: the user's choice between the two answers.
          auto fb = cl.Post("/v1/feedback", json{{"user", user}, {"response_id", id}, {"choice", k % 2}}.dump(),
                            "application/json");
          if (!fb || fb->status != 200) {
            error("feedback HTTP " + std::to_string(fb ? fb->status : 0) + (fb ? " " + fb->body : ""));
            continue;
          }
          const json ack = json::parse(fb->body);
          if (ack.value("stored", false)) {
            std::lock_guard lock(stats_mutex);
            ++acknowledged[user];
          }
        }
      });
    for (auto& th : threads) th.join();
    const double wall = std::chrono::duration<double>(Steady::now() - t0).count();
    srv.stop();
    serving.join();
    // Every acknowledged event is in the store.
    int64_t lost = 0, stored_total = 0;
    {
      const auto store = users::ProfileStore::open(o.store, {.create = false, .read_only = true});
      for (const auto& [user, n] : acknowledged) {
        const int64_t stored = std::ssize(store->events(user));
        stored_total += stored;
        lost += std::max<int64_t>(0, n - stored);
      }
    }
    std::printf(
        "\nload: %d streaming clients (32 users; sample with and without adapters, steer, best_of_n, fusion), %d "
        "requests with n = 2 and feedback after each, %d strategy worker%s, %.1f s\n",
        clients, requests.load(), workers, workers == 1 ? "" : "s", wall);
    std::printf("  errors %d, events acknowledged %lld, in the store %lld, lost %lld\n", errors.load(),
                static_cast<long long>(std::accumulate(acknowledged.begin(), acknowledged.end(), int64_t{0},
                                                       [](int64_t a, const auto& p) { return a + p.second; })),
                static_cast<long long>(stored_total), static_cast<long long>(lost));
    std::printf("  time to first token  p50 %.3f s  p99 %.3f s\n", bench_util::percentile(ttft, 0.5),
                bench_util::percentile(ttft, 0.99));
    std::printf("  per-token latency    p50 %.1f ms  p99 %.1f ms\n", 1e3 * bench_util::percentile(per_token, 0.5),
                1e3 * bench_util::percentile(per_token, 0.99));
    for (const auto& e : first_errors) std::printf("  error: %s\n", e.c_str());
    return errors == 0 && lost == 0;
  };
  bool ok = true;
  for (int workers : {1, 2}) ok &= load(workers);
  fs::remove_all(dir);
  return ok ? 0 : 1;
}
