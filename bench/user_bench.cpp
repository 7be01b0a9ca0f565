// The online user model and its store. Checks first (one online step equals the batch Laplace fit's direction of
// movement on a one-event history; a stored profile equals its replay), then, best of several rounds:
//   - one online update at K = 10, against its baseline, a batch Laplace refit over a 64-event history (what a model
//     without the online step would redo per event);
//   - choosing the pair to ask among 16 candidates (information, variance, thompson), against one update;
//   - durable events per second through the SQLite store (synchronous=FULL, each append acknowledged after its commit),
//     one event per transaction and 100 per transaction, against raw SQLite inserts of the same rows with the same
//     durability (the cost of the store's own work on top of the disk's).
// Usage: user_bench [DIR for the store files; default: the system temp directory]
#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "palign/base/rng.h"
#include "palign/base/timer.h"
#include "palign/users/online_model.h"
#include "palign/users/store.h"

using namespace palign;
using namespace palign::users;
namespace fs = std::filesystem;
using bench_util::best_seconds;

namespace {

DimensionWeights prior_k(int k) {
  std::vector<std::string> names;
  std::vector<double> cov(static_cast<size_t>(k * k), 0.0);
  for (int i = 0; i < k; ++i) {
    names.push_back("d" + std::to_string(i));
    for (int j = 0; j < k; ++j) cov[static_cast<size_t>(i * k + j)] = (i == j ? 1.0 : 0.3);
  }
  return gaussian_prior(names, std::vector<double>(static_cast<size_t>(k), 0.0), cov);
}

std::vector<double> random_vec(int k, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(k));
  for (auto& x : v) x = rng.normal();
  return v;
}

FeedbackEvent event_of(int k, Rng& rng) {
  FeedbackEvent e;
  e.type = EventType::kChoice;
  e.prompt = "Tell me something about the sea.";
  e.responses = {"The sea is wide and deep.", "Water, mostly."};
  e.scores = {random_vec(k, rng), random_vec(k, rng)};
  e.choice = static_cast<int>(rng.uniform_int(2));
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / "palign_user_bench";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int k = 10;
  const auto prior = prior_k(k);
  Rng rng(1);
  std::vector<std::vector<double>> history;
  for (int i = 0; i < 64; ++i) history.push_back(random_vec(k, rng));

  // Checks.
  {
    OnlineUserModel one(prior);
    one.observe(history[0]);
    const auto batch = batch_laplace(prior, {history[0]});
    double cos = 0, na = 0, nb = 0;
    for (int i = 0; i < k; ++i) {
      const double a = one.posterior().mean[static_cast<size_t>(i)], b = batch.mean[static_cast<size_t>(i)];
      cos += a * b, na += a * a, nb += b * b;
    }
    cos /= std::sqrt(na * nb);
    std::printf("check: one event, online and batch means point the same way (cosine %.6f)\n", cos);
    if (cos < 0.999999) return 1;
    auto store = ProfileStore::open(dir / "check.db");
    store->create_user("u", prior, "");
    for (int i = 0; i < 20; ++i) store->append("u", {event_of(k, rng)});
    const bool same = store->rebuild("u").posterior.mean == store->profile("u").posterior.mean;
    std::printf("check: the stored profile equals its replay: %s\n", same ? "yes" : "NO");
    if (!same) return 1;
  }

  std::printf(
      "\nK = %d, best of 5 rounds\n\n| operation | us | baseline | baseline us | ratio |\n|---|---|---|---|---|\n", k);
  const int updates = 1000;
  const double update = best_seconds(5,
                                     [&] {
                                       OnlineUserModel m(prior);
                                       for (int i = 0; i < updates; ++i)
                                         m.observe(history[static_cast<size_t>(i % 64)]);
                                     }) /
                        updates;
  const double refit = best_seconds(5, [&] { (void)batch_laplace(prior, history); });
  std::printf("| online update (one event) | %.2f | batch Laplace refit of 64 events | %.1f | %.4f |\n", 1e6 * update,
              1e6 * refit, update / refit);
  std::vector<std::vector<double>> candidates;
  for (int c = 0; c < 16; ++c) candidates.push_back(random_vec(k, rng));
  OnlineUserModel model(prior);
  for (const auto& d : history) model.observe(d);
  for (const auto policy : {QueryPolicy::kInformation, QueryPolicy::kVariance, QueryPolicy::kThompson}) {
    Rng q(2);
    const int reps = 200;
    const double choose = best_seconds(5,
                                       [&] {
                                         for (int i = 0; i < reps; ++i)
                                           (void)choose_pair(model.posterior(), candidates, policy, q);
                                       }) /
                          reps;
    std::printf("| choose a pair of 16 candidates (%s) | %.1f | one online update | %.2f | %.1f |\n",
                query_policy_name(policy).c_str(), 1e6 * choose, 1e6 * update, choose / update);
  }

  // Durable events per second.
  std::printf("\n| store | events/s | baseline | baseline events/s | ratio |\n|---|---|---|---|---|\n");
  for (const int batch : {1, 100}) {
    const int events = batch == 1 ? 300 : 5000;
    std::vector<FeedbackEvent> pool;
    for (int i = 0; i < events; ++i) pool.push_back(event_of(k, rng));
    double best_store = 1e30, best_raw = 1e30;
    for (int round = 0; round < 3; ++round) {
      const fs::path file = dir / ("store" + std::to_string(batch) + "_" + std::to_string(round) + ".db");
      auto store = ProfileStore::open(file);
      store->create_user("u", prior, "");
      auto t0 = Clock::now();
      for (int i = 0; i < events; i += batch)
        store->append("u", std::vector<FeedbackEvent>(pool.begin() + i, pool.begin() + std::min(events, i + batch)));
      best_store = std::min(best_store, seconds_since(t0));
      if (std::ssize(store->events("u")) != events) {
        std::printf("check failed: %zu events stored of %d\n", store->events("u").size(), events);
        return 1;
      }
      // Raw SQLite: the same event rows, WAL and synchronous=FULL, no profile versions, no checks.
      sqlite3* db = nullptr;
      sqlite3_open((dir / ("raw" + std::to_string(batch) + "_" + std::to_string(round) + ".db")).c_str(), &db);
      sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE e(id INTEGER PRIMARY KEY, "
                   "user_id TEXT, time_ms INTEGER, type TEXT, body TEXT)",
                   nullptr, nullptr, nullptr);
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "INSERT INTO e(user_id, time_ms, type, body) VALUES('u', 1, 'choice', ?)", -1, &st,
                         nullptr);
      const std::string body = event_to_json(pool[0]).dump();
      t0 = Clock::now();
      for (int i = 0; i < events; i += batch) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
        for (int j = i; j < std::min(events, i + batch); ++j) {
          sqlite3_bind_text(st, 1, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
          sqlite3_step(st);
          sqlite3_reset(st);
        }
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      }
      best_raw = std::min(best_raw, seconds_since(t0));
      sqlite3_finalize(st);
      sqlite3_close(db);
    }
    std::printf("| %d event%s per transaction | %.0f | raw SQLite inserts, same durability | %.0f | %.2f |\n", batch,
                batch == 1 ? "" : "s", events / best_store, events / best_raw, best_raw / best_store);
  }
  fs::remove_all(dir);
  return 0;
}
