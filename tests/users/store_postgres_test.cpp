// The PostgreSQL store beyond what every engine shares (store_test.cpp runs those on both): replicas (several stores on
// one database, as several servers hold them) reading each other's acknowledged events at once and neither losing
// nor duplicating concurrent feedback for one user; connections terminated mid-transaction; a stopped database;
// migration of an old schema, a newer schema and a foreign database refused; a new database opened by many at once.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/users/online_model.h"
#include "palign/users/store.h"
#include "postgres_cluster.h"
#include "store_events.h"
#include "test_util.h"

using namespace palign;
using namespace palign::users;
using palign::test::choice;
using palign::test::error_code_of;
using palign::test::test_prior;

namespace {

test::PostgresCluster* cluster_or_skip() {
  auto& cluster = test::PostgresCluster::shared();
  if (cluster.available()) return &cluster;
  if (test::PostgresCluster::required()) ADD_FAILURE() << cluster.why();
  return nullptr;
}

#define PALIGN_NEED_POSTGRES(var)                          \
  test::PostgresCluster* var = cluster_or_skip();          \
  if (!var) {                                              \
    if (test::PostgresCluster::required()) return;         \
    GTEST_SKIP() << test::PostgresCluster::shared().why(); \
  }

std::string db_of(const std::string& url) { return url.substr(14, url.find('?') - 14); }

// The state replayed from the stored events equals the stored one bit for bit, and every key is stored once.
void expect_consistent(ProfileStore& store, const std::string& user, size_t expected_events) {
  const auto events = store.events(user);
  std::set<std::string> keys;
  for (const auto& e : events) EXPECT_TRUE(keys.insert(e.key).second) << "key " << e.key << " stored twice";
  EXPECT_EQ(events.size(), expected_events) << user;
  const auto stored = store.profile(user), replayed = store.rebuild(user);
  EXPECT_EQ(stored.posterior.mean, replayed.posterior.mean) << user;
  EXPECT_EQ(stored.posterior.covariance, replayed.posterior.covariance) << user;
  EXPECT_EQ(stored.events, static_cast<int64_t>(events.size()));
  EXPECT_EQ(stored.last_event, events.empty() ? 0 : events.back().id);
}

}  // namespace

TEST(PostgresStore, ReplicasShareUsersWithoutLosingOrDuplicatingEvents) {
  PALIGN_NEED_POSTGRES(cluster);
  const std::string url = cluster->create_database("replicas");
  // Two replicas, each a store of its own (its own pool), as two `palign serve --store URL` hold them.
  std::vector<std::unique_ptr<ProfileStore>> replicas;
  for (int r = 0; r < 2; ++r) replicas.push_back(ProfileStore::open(url, {.pool_size = 4}));
  const std::vector<std::string> users = {"ann", "ben", "cat"};
  const int threads = 6, per_thread = 40;
  std::atomic<int> stale{0}, duplicates_answered{0}, failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        Rng rng(1000 + t);
        ProfileStore& mine = *replicas[t % 2];
        ProfileStore& other = *replicas[(t + 1) % 2];
        for (int i = 0; i < per_thread; ++i) {
          const std::string& user = users[(t + i) % users.size()];
          mine.ensure_user(user, test_prior(), "");  // every thread races to create every user
          const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
          const auto event = choice(rng, i % 2, key);
          const auto acked = mine.append(user, {event});
          // A client retry through the other replica (every 5th event) is answered with the stored id.
          if (i % 5 == 0) {
            const auto retry = other.append(user, {event});
            if (retry.stored == 0 && retry.ids[0] == acked.ids[0]) ++duplicates_answered;
          }
          // Read-your-writes across replicas: the other replica's next read reflects the acknowledged event.
          if (other.profile(user).version < acked.state.version) ++stale;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  thread %d: %s\n", t, e.what());
        ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(duplicates_answered.load(), threads * per_thread / 5);
  size_t total = 0;
  for (const auto& user : users) {
    const size_t n = replicas[0]->events(user).size();
    total += n;
    expect_consistent(*replicas[1], user, n);
    // Each acknowledged append made one version: versions are dense and end at the event count.
    const auto versions = replicas[0]->versions(user);
    ASSERT_EQ(versions.size(), n + 1);
    for (size_t v = 0; v < versions.size(); ++v) EXPECT_EQ(versions[v].version, static_cast<int64_t>(v));
  }
  std::printf(
      "  %d threads on 2 replicas: %zu events stored of %d sent once (+%d retries answered by id), 0 stale "
      "reads across replicas\n",
      threads, total, threads * per_thread, duplicates_answered.load());
  EXPECT_EQ(total, static_cast<size_t>(threads * per_thread));
}

TEST(PostgresStore, TerminatedConnectionsLoseNoAcknowledgedEvent) {
  PALIGN_NEED_POSTGRES(cluster);
  const std::string url = cluster->create_database("dropped");
  auto store = ProfileStore::open(url, {.pool_size = 2});
  store->create_user("dan", test_prior(), "");
  std::atomic<bool> done{false};
  std::set<int64_t> acked;
  std::set<std::string> acked_keys;
  int refused = 0, sent = 0;
  std::map<std::string, int> messages;
  // An administrator (or a failover) terminates the store's connections every few milliseconds, mid-transaction or
  // between them, while a client sends feedback and retries what was refused under the same key.
  std::thread killer([&] {
    while (!done) {
      cluster->psql(db_of(url), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
                                    db_of(url) + "' AND pid <> pg_backend_pid()");
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
  });
  Rng rng(9);
  for (int i = 0; i < 300; ++i) {
    const auto event = choice(rng, i % 2, "d" + std::to_string(i));
    for (int attempt = 0; attempt < 20; ++attempt) {
      ++sent;
      try {
        const auto out = store->append("dan", {event});
        acked.insert(out.ids[0]);
        acked_keys.insert(event.key);
        break;
      } catch (const Error& e) {
        ++refused;
        EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
        std::string what = e.what();
        messages[what.substr(0, what.find(" ("))]++;
      }
    }
  }
  done = true;
  killer.join();
  const auto events = store->events("dan");
  std::set<int64_t> stored;
  for (const auto& e : events) stored.insert(e.id);
  size_t found = 0;
  for (int64_t id : acked) found += stored.count(id);
  std::printf(
      "  %d appends sent, %d refused by a terminated connection, %zu acknowledged, %zu of them stored, %zu "
      "events stored\n",
      sent, refused, acked.size(), found, events.size());
  for (const auto& [m, n] : messages) std::printf("    %dx %s\n", n, m.c_str());
  EXPECT_GT(refused, 0) << "no connection was terminated mid-stream; the test did not exercise the fault";
  EXPECT_EQ(found, acked.size());
  EXPECT_EQ(acked_keys.size(), 300u);
  expect_consistent(*store, "dan", 300);  // retries under one key: nothing applied twice
}

TEST(PostgresStore, AStoppedDatabaseIsAClearErrorAndComesBack) {
  PALIGN_NEED_POSTGRES(cluster);
  const std::string url = cluster->create_database("stopped");
  auto store = ProfileStore::open(url);
  store->create_user("eva", test_prior(), "");
  Rng rng(3);
  store->append("eva", {choice(rng, 0, "e1")});
  cluster->restart("immediate");  // a crash of the database server: the pool's connections all break
  int refused = 0;
  for (int i = 0; i < 3; ++i) {
    try {
      store->append("eva", {choice(rng, 1, "e2")});
      break;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
      ++refused;
    }
  }
  EXPECT_LE(refused, 2);  // the broken connection is dropped, the next one connects afresh
  expect_consistent(*store, "eva", 2);
  // A URL that reaches no server, and one naming no database.
  const std::string nowhere = "postgresql:///x?host=" + cluster->dir() + "&port=1&user=postgres";
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(nowhere); }), ErrorCode::kIo);
  std::string message = test::error_message_of([&] { ProfileStore::open(nowhere); });
  EXPECT_NE(message.find("is PostgreSQL running"), std::string::npos);
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(cluster->url("no_such_database")); }), ErrorCode::kIo);
  // The password never reaches a message.
  message =
      test::error_message_of([&] { ProfileStore::open("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2"); });
  std::printf("  %s\n", message.c_str());
  EXPECT_NE(message.find("u:***@127.0.0.1"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret"), std::string::npos) << message;
}

TEST(PostgresStore, MigratesOldSchemasAndRefusesForeignDatabases) {
  PALIGN_NEED_POSTGRES(cluster);
  const std::string old = cluster->create_database("old");
  cluster->psql(db_of(old),
                "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                "INSERT INTO meta VALUES('format', 'palign.store'), ('schema', '1');"
                "CREATE TABLE users(user_id TEXT PRIMARY KEY, created_ms BIGINT NOT NULL, scorer TEXT NOT NULL,"
                "  names TEXT NOT NULL, prior_mean BYTEA NOT NULL, prior_covariance BYTEA NOT NULL);"
                "CREATE TABLE events(id BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, time_ms BIGINT NOT NULL,"
                "  type TEXT NOT NULL, body TEXT NOT NULL);"
                "CREATE TABLE versions(user_id TEXT NOT NULL, version BIGINT NOT NULL, last_event BIGINT NOT NULL,"
                "  time_ms BIGINT NOT NULL, events BIGINT NOT NULL, observations BIGINT NOT NULL, statement TEXT "
                "  NOT NULL, mean BYTEA NOT NULL, covariance BYTEA NOT NULL, PRIMARY KEY(user_id, version));"
                "INSERT INTO users VALUES('old', 1, '', '[\"a\"]', '\\x0000000000000000', '\\x000000000000f03f');"
                "INSERT INTO events(user_id, time_ms, type, body) VALUES('old', 1, 'statement',"
                "  '{\"type\":\"statement\",\"text\":\"hi\"}');"
                "INSERT INTO versions VALUES('old', 0, 0, 1, 0, 0, '', '\\x0000000000000000', "
                "'\\x000000000000f03f');");
  {
    auto store = ProfileStore::open(old);
    EXPECT_EQ(store->schema(), kStoreSchema);
    EXPECT_EQ(store->rebuild("old").statement, "hi");
    FeedbackEvent e;
    e.type = EventType::kStatement;
    e.text = "again";
    e.key = "k";
    EXPECT_EQ(store->append("old", {e}).stored, 1);
    EXPECT_EQ(store->append("old", {e}).stored, 0);  // the key column came with the migration
    EXPECT_EQ(store->profile("old").posterior.covariance, std::vector<double>{1.0});
  }
  cluster->psql(db_of(old), "UPDATE meta SET value = '99' WHERE key = 'schema'");
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(old); }), ErrorCode::kUnsupported);
  const std::string foreign = cluster->create_database("foreign");
  cluster->psql(db_of(foreign), "CREATE TABLE t(x INT); INSERT INTO t VALUES(1);");
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(foreign); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cluster->psql(db_of(foreign), "SELECT count(*) FROM t"), "1\n");  // and left as it was
  // A new database opened by many at once (replicas starting together) is created once.
  const std::string fresh = cluster->create_database("fresh");
  std::atomic<int> ok{0};
  std::vector<std::thread> openers;
  for (int i = 0; i < 6; ++i)
    openers.emplace_back([&] {
      try {
        if (ProfileStore::open(fresh, {.pool_size = 1})->schema() == kStoreSchema) ++ok;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  opener: %s\n", e.what());
      }
    });
  for (auto& t : openers) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(cluster->psql(db_of(fresh), "SELECT value FROM meta WHERE key = 'schema'"),
            std::to_string(kStoreSchema) + "\n");
}
