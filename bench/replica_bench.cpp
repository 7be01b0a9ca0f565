// Replicas on one PostgreSQL store, loopback only: 1, 2 and 4 `palign serve` servers (in this process, each with its
// own model, scorer and store connection pool, as separate processes would hold them) on one database of a throwaway
// cluster (initdb and pg_ctl in a temporary directory, default durability: fsync and synchronous_commit on).
// Concurrent clients send choice feedback for many users, each request to the next replica in turn; every 10th event
// is sent again to another replica (a client retry under the same key). After each acknowledgement the client reads
// the user from a different replica: the time until that read shows the acknowledged version is the propagation
// delay (goal: p99 <= 100 ms).
// Checks, for every run: 0 events lost (every acknowledged key is stored), 0 duplicated (no key stored twice, each
// retry answered with the stored id), and every user's stored posterior equals a replay of their stored events.
// Prints events per second with 1, 2 and 4 replicas and the ratio to 1 replica.
// Usage: replica_bench [--events N] [--clients C] [--users U]
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench_util.h"
#include "palign/server/server.h"
#include "palign/users/store.h"
#include "postgres_cluster.h"

using namespace palign;
namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

const fs::path kModel = fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
const fs::path kScorer = fs::path(PALIGN_SOURCE_DIR) / "tests" / "data" / "hf" / "models" / "llama_rm_multi";

struct RunResult {
  bool ok = false;
  double seconds = 0;
  int64_t acknowledged = 0, retries = 0;
  std::vector<double> propagation_ms;
};

RunResult run(test::PostgresCluster& cluster, int replicas, int events, int clients, int users) {
  RunResult r;
  const std::string url = cluster.create_database("replicas" + std::to_string(replicas));
  std::vector<std::unique_ptr<server::Server>> servers;
  std::vector<int> ports;
  std::vector<std::thread> serving;
  for (int i = 0; i < replicas; ++i) {
    server::ServerOptions o;
    o.model = kModel;
    o.store = url;
    o.reward = kScorer;
    o.port = 0;
    o.threads = 2 * clients;
    servers.push_back(std::make_unique<server::Server>(o));
    ports.push_back(servers.back()->bind());
  }
  for (auto& s : servers) serving.emplace_back([&s] { s->run(); });
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> acked_keys;  // user -> acknowledged keys
  std::vector<std::string> failures;
  std::atomic<int> next{0};
  const auto fail = [&](const std::string& what) {
    std::lock_guard lock(mutex);
    if (failures.size() < 5) failures.push_back(what);
  };
  const auto t0 = Steady::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      std::vector<std::unique_ptr<httplib::Client>> to;
      for (int p : ports) {
        to.push_back(std::make_unique<httplib::Client>("127.0.0.1", p));
        to.back()->set_read_timeout(60);
      }
      std::vector<double> delays;
      int64_t acked = 0, retried = 0;
      for (int i; (i = next++) < events;) {
        const std::string user = "u" + std::to_string(i % users);
        const std::string key = "e" + std::to_string(i);
        const json body = {{"user", user},
                           {"prompt", "Tell me about the sea."},
                           {"chosen", " The sea is wide " + std::to_string(i % 17)},
                           {"rejected", " Water." + std::string(static_cast<size_t>(i % 5), '!')},
                           {"key", key}};
        const size_t a = static_cast<size_t>(i % replicas), b = static_cast<size_t>((i + 1) % replicas);
        const auto res = to[a]->Post("/v1/feedback", body.dump(), "application/json");
        if (!res || res->status != 200) {
          fail("feedback to replica " + std::to_string(a) + ": " + (res ? res->body : "no response"));
          continue;
        }
        const json out = json::parse(res->body);
        const int64_t version = out.at("version").get<int64_t>(), id = out.at("event_id").get<int64_t>();
        {
          std::lock_guard lock(mutex);
          acked_keys[user].insert(key);
        }
        ++acked;
        // The next read of this user from another replica must show the acknowledged version.
        const auto since = Steady::now();
        for (;;) {
          const auto got = to[b]->Get("/v1/users/" + user);
          if (got && got->status == 200 && json::parse(got->body).at("version").get<int64_t>() >= version) break;
          if (Steady::now() - since > std::chrono::seconds(5)) {
            fail("replica " + std::to_string(b) + " did not show " + user + "'s version " + std::to_string(version));
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        delays.push_back(std::chrono::duration<double, std::milli>(Steady::now() - since).count());
        if (i % 10 == 0) {  // a client retry, through another replica
          const auto again = to[b]->Post("/v1/feedback", body.dump(), "application/json");
          if (!again || again->status != 200 || json::parse(again->body).at("event_id").get<int64_t>() != id ||
              json::parse(again->body).at("stored").get<bool>())
            fail("the retry of " + key + " was not answered with its stored id");
          ++retried;
        }
      }
      std::lock_guard lock(mutex);
      r.acknowledged += acked;
      r.retries += retried;
      r.propagation_ms.insert(r.propagation_ms.end(), delays.begin(), delays.end());
    });
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  for (auto& s : servers) s->stop();
  for (auto& t : serving) t.join();
  servers.clear();
  // Every acknowledged event stored once, and each posterior a replay of the stored events.
  auto store = users::ProfileStore::open(url);
  int64_t lost = 0, duplicated = 0, stored = 0, mismatched = 0;
  for (const auto& [user, keys] : acked_keys) {
    std::map<std::string, int> seen;
    for (const auto& e : store->events(user)) ++seen[e.key];
    for (const auto& [k, n] : seen) duplicated += n - 1, stored += n;
    for (const auto& k : keys) lost += seen.count(k) ? 0 : 1;
    const auto profile = store->profile(user), replay = store->rebuild(user);
    if (profile.posterior.mean != replay.posterior.mean || profile.posterior.covariance != replay.posterior.covariance)
      ++mismatched;
  }
  std::printf(
      "  %d replica(s): %lld events acknowledged (+%lld retries) in %.1f s, %lld stored, %lld lost, %lld "
      "duplicated, %lld posteriors differing from their replay\n",
      replicas, static_cast<long long>(r.acknowledged), static_cast<long long>(r.retries), r.seconds,
      static_cast<long long>(stored), static_cast<long long>(lost), static_cast<long long>(duplicated),
      static_cast<long long>(mismatched));
  for (const auto& f : failures) std::fprintf(stderr, "    %s\n", f.c_str());
  r.ok = failures.empty() && lost == 0 && duplicated == 0 && mismatched == 0 && r.acknowledged == events &&
         stored == events;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int events = 10000, clients = 16, users = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--events")) events = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) clients = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--users")) users = std::atoi(argv[i + 1]);
  }
  if (events < 1 || clients < 1 || users < 1) {
    std::fprintf(stderr, "usage: replica_bench [--events N] [--clients C] [--users U], each at least 1\n");
    return 2;
  }
  auto& cluster = test::PostgresCluster::shared();
  if (!cluster.available()) {
    std::fprintf(stderr, "replica_bench: %s\n", cluster.why().c_str());
    return 1;
  }
  std::printf("%d feedback events from %d concurrent clients over %d users, loopback, %u cores\n", events, clients,
              users, std::thread::hardware_concurrency());
  // Warm-up: a short run (PostgreSQL's caches, the servers' first requests).
  if (!run(cluster, 2, 200, clients, 20).ok) return 1;
  std::map<int, RunResult> results;
  for (int replicas : {1, 2, 4}) {
    results[replicas] = run(cluster, replicas, events, clients, users);
    if (!results[replicas].ok) {
      std::fprintf(stderr, "FAIL: %d replicas lost, duplicated or mis-replayed events\n", replicas);
      return 1;
    }
  }
  std::printf("\n%-10s %12s %10s %18s %18s\n", "replicas", "events/s", "vs 1", "propagation p50", "propagation p99");
  const double base = results[1].acknowledged / results[1].seconds;
  for (const auto& [n, r] : results) {
    const double rate = r.acknowledged / r.seconds;
    std::printf("%-10d %12.0f %9.2fx %15.2f ms %15.2f ms\n", n, rate, rate / base,
                bench_util::percentile(r.propagation_ms, 0.5), bench_util::percentile(r.propagation_ms, 0.99));
  }
  const double p99 = std::max(bench_util::percentile(results[2].propagation_ms, 0.99),
                              bench_util::percentile(results[4].propagation_ms, 0.99));
  std::printf("propagation p99 across replicas %.2f ms (goal <= 100 ms: %s)\n", p99, p99 <= 100 ? "met" : "not met");
  return 0;
}
