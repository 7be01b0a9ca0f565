// The profile store: incremental versions equal the replay of their events bit for bit, idempotency keys, undo,
// export / import, deletion, bad events storing nothing, two processes appending at once, and a writer killed
// (SIGKILL) mid-stream losing no acknowledged event — each on both engines (SQLite, and PostgreSQL on a throwaway
// cluster); and for SQLite: schema versions and migration, foreign files, read-only paths, a full disk, damaged files.
#include "palign/users/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "postgres_cluster.h"
#include "store_events.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::users;
using palign::test::choice;
using palign::test::error_code_of;
using palign::test::test_prior;

namespace {

void expect_same_state(const UserState& a, const UserState& b) {
  EXPECT_EQ(a.posterior.mean, b.posterior.mean);  // bit for bit: one code path computes both
  EXPECT_EQ(a.posterior.covariance, b.posterior.covariance);
  EXPECT_EQ(a.observations, b.observations);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.statement, b.statement);
  EXPECT_EQ(a.last_event, b.last_event);
}

int64_t count_rows(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  int64_t n = -1;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

void raw_exec(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
}

// The tests every engine must pass: SQLite (a file) and PostgreSQL (a database of a throwaway cluster).
class Stores : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (postgres()) {
      auto& cluster = test::PostgresCluster::shared();
      if (!cluster.available()) {
        if (test::PostgresCluster::required()) FAIL() << cluster.why();
        GTEST_SKIP() << cluster.why();
      }
    }
  }
  bool postgres() const { return GetParam() == "postgresql"; }
  // A new, empty store: a file in the test's directory, or a new database.
  std::string location(const std::string& name) {
    if (!postgres()) return (dir_.path() / (name + ".db")).string();
    return test::PostgresCluster::shared().create_database(name);
  }
  int64_t count(const std::string& where, const std::string& sql) {
    if (!postgres()) return count_rows(where, sql);
    const std::string db = where.substr(14, where.find('?') - 14);  // postgresql:///DB?…
    return std::stoll(test::PostgresCluster::shared().psql(db, sql));
  }
  test::TempDir dir_{"store"};
};

INSTANTIATE_TEST_SUITE_P(Engines, Stores, testing::Values("sqlite", "postgresql"),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace

TEST_P(Stores, IncrementalVersionsEqualTheReplay) {
  const std::string where = location("p");
  auto store = ProfileStore::open(where);
  EXPECT_EQ(store->schema(), kStoreSchema);
  store->create_user("ana", test_prior(), "scorer-1");
  Rng rng(1);
  UserState last;
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<FeedbackEvent> events;
    for (int i = 0; i < 1 + batch % 3; ++i) events.push_back(choice(rng, i % 2));
    last = store->append("ana", events).state;
  }
  FeedbackEvent rating;
  rating.type = EventType::kRating;
  rating.responses = {"ok"};
  rating.scores = {{0.5, -1.0, 2.0}};
  rating.rating = -1;
  FeedbackEvent statement;
  statement.type = EventType::kStatement;
  statement.text = "shorter answers, please";
  statement.dimension = "length";
  statement.direction = -1;
  statement.strength = 2;
  FeedbackEvent neither = choice(rng, -1);
  last = store->append("ana", {rating, statement, neither}).state;
  const UserState stored = store->profile("ana"), rebuilt = store->rebuild("ana");
  std::printf("  %lld events, %lld observations, version %lld; length weight %.4f\n",
              static_cast<long long>(stored.events), static_cast<long long>(stored.observations),
              static_cast<long long>(stored.version), stored.posterior.mean[0]);
  expect_same_state(stored, rebuilt);
  expect_same_state(stored, last);
  EXPECT_EQ(stored.version, 11);
  EXPECT_EQ(stored.statement, "shorter answers, please");
  EXPECT_EQ(stored.events, 22);        // 19 choices in 10 batches, a rating, a statement, a neither
  EXPECT_EQ(stored.observations, 21);  // "neither" is stored and learnt nothing from
  EXPECT_EQ(store->versions("ana").size(), 12u);
  const auto events = store->events("ana");
  ASSERT_EQ(events.size(), 22u);
  for (size_t i = 1; i < events.size(); ++i) EXPECT_LT(events[i - 1].id, events[i].id);
  EXPECT_GT(events[0].time_ms, 0);
  EXPECT_EQ(events[0].scorer, "scorer-1");
  // The same events through the model directly.
  OnlineUserModel model(test_prior());
  for (const auto& e : events) {
    if (e.type == EventType::kChoice && e.choice >= 0)
      model.observe_choice(e.scores[static_cast<size_t>(e.choice)], {e.scores[static_cast<size_t>(1 - e.choice)]});
    if (e.type == EventType::kRating) model.observe_rating(e.scores[0], e.rating);
    if (e.type == EventType::kStatement) model.observe_statement(e.dimension, e.direction, e.strength);
  }
  EXPECT_EQ(model.posterior().mean, stored.posterior.mean);
  // Reopening reads the same state.
  store.reset();
  expect_same_state(ProfileStore::open(where)->profile("ana"), stored);
}

TEST_P(Stores, IdempotencyKeysAndUndo) {
  auto store = ProfileStore::open(location("p"));
  store->create_user("bo", test_prior(), "");
  Rng rng(2);
  const auto a = choice(rng, 0, "req-1"), b = choice(rng, 1, "req-2");
  const auto first = store->append("bo", {a, b});
  EXPECT_EQ(first.stored, 2);
  const auto retry = store->append("bo", {a});
  EXPECT_EQ(retry.stored, 0);
  EXPECT_EQ(retry.ids[0], first.ids[0]);
  EXPECT_EQ(store->events("bo").size(), 2u);
  EXPECT_EQ(store->profile("bo").version, 1);  // a retry makes no new version

  FeedbackEvent undo;
  undo.type = EventType::kUndo;
  undo.target = first.ids[0];
  const auto after = store->append("bo", {undo}).state;
  OnlineUserModel only_b(test_prior());
  only_b.observe_choice(b.scores[1], {b.scores[0]});
  EXPECT_EQ(after.posterior.mean, only_b.posterior().mean);
  EXPECT_EQ(after.events, 1);
  expect_same_state(store->rebuild("bo"), store->profile("bo"));
  // Events after an undo continue incrementally from the replayed state.
  const auto c = choice(rng, 0);
  const auto later = store->append("bo", {c}).state;
  expect_same_state(store->rebuild("bo"), later);
  // An undo of an unknown event or of an undo stores nothing.
  FeedbackEvent bad_undo;
  bad_undo.type = EventType::kUndo;
  bad_undo.target = 9999;
  EXPECT_EQ(error_code_of([&] { store->append("bo", {bad_undo}); }), ErrorCode::kInvalidArgument);
  bad_undo.target = store->events("bo")[2].id;
  EXPECT_EQ(error_code_of([&] { store->append("bo", {bad_undo}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->events("bo").size(), 4u);
}

TEST_P(Stores, ExportImportAndDelete) {
  const std::string file = location("a");
  auto store = ProfileStore::open(file);
  store->create_user("cy", test_prior(), "s", "more jokes");
  Rng rng(3);
  const auto appended = store->append("cy", {choice(rng), choice(rng, 1), choice(rng)});
  FeedbackEvent undo;
  undo.type = EventType::kUndo;
  undo.target = appended.ids[1];
  store->append("cy", {undo});
  const auto exported = store->export_user("cy");
  // Through text, as a file would carry it.
  const auto reparsed = nlohmann::json::parse(exported.dump());
  auto other = ProfileStore::open(location("b"));
  other->create_user("zed", test_prior(), "s");  // ids differ in the new store: the undo's target is renumbered
  other->append("zed", {choice(rng)});
  const auto imported = other->import_user(reparsed);
  const auto original = store->profile("cy");
  EXPECT_EQ(imported.posterior.mean, original.posterior.mean);
  EXPECT_EQ(imported.posterior.covariance, original.posterior.covariance);
  EXPECT_EQ(imported.statement, "more jokes");
  EXPECT_EQ(other->events("cy").size(), 5u);
  expect_same_state(other->rebuild("cy"), other->profile("cy"));
  EXPECT_EQ(error_code_of([&] { other->import_user(reparsed); }), ErrorCode::kConflict);
  other->import_user(reparsed, /*replace=*/true);
  EXPECT_EQ(other->events("cy").size(), 5u);
  EXPECT_EQ(error_code_of([&] { other->import_user(nlohmann::json{{"format", "x"}}); }), ErrorCode::kInvalidArgument);
  auto broken = reparsed;
  broken["events"][1]["choice"] = 7;  // [0] is the statement the user was created with
  EXPECT_EQ(error_code_of([&] { other->import_user(broken, true); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(other->events("cy").size(), 5u);  // a failed import leaves what was there

  store->delete_user("cy");
  EXPECT_FALSE(store->has_user("cy"));
  store.reset();
  EXPECT_EQ(count(file, "SELECT count(*) FROM events WHERE user_id = 'cy'"), 0);
  EXPECT_EQ(count(file, "SELECT count(*) FROM versions WHERE user_id = 'cy'"), 0);
  EXPECT_EQ(count(file, "SELECT count(*) FROM users WHERE user_id = 'cy'"), 0);
  auto reopened = ProfileStore::open(file);
  EXPECT_EQ(error_code_of([&] { reopened->delete_user("cy"); }), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { reopened->profile("cy"); }), ErrorCode::kNotFound);
}

TEST(Store, SchemaVersionsAndForeignFiles) {
  test::TempDir dir("store");
  // A store of schema 1 (written as the first palign stores were) migrates forward, keeping its events.
  const auto old = dir.path() / "old.db";
  raw_exec(
      old,
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES('format', 'palign.store'), ('schema', '1');"
      "CREATE TABLE users(user_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, scorer TEXT NOT NULL,"
      "  names TEXT NOT NULL, prior_mean BLOB NOT NULL, prior_covariance BLOB NOT NULL);"
      "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, time_ms INTEGER NOT NULL,"
      "  type TEXT NOT NULL, body TEXT NOT NULL);"
      "CREATE INDEX events_by_user ON events(user_id, id);"
      "CREATE TABLE versions(user_id TEXT NOT NULL, version INTEGER NOT NULL, last_event INTEGER NOT NULL,"
      "  time_ms INTEGER NOT NULL, events INTEGER NOT NULL, observations INTEGER NOT NULL, statement TEXT NOT NULL,"
      "  mean BLOB NOT NULL, covariance BLOB NOT NULL, PRIMARY KEY(user_id, version));"
      "INSERT INTO users VALUES('old', 1, '', '[\"a\"]', zeroblob(8), x'000000000000F03F');"
      "INSERT INTO events(user_id, time_ms, type, body) VALUES('old', 1, 'statement', "
      "  '{\"type\":\"statement\",\"text\":\"hi\"}');"
      "INSERT INTO versions VALUES('old', 0, 0, 1, 0, 0, '', zeroblob(8), x'000000000000F03F');");
  {
    auto store = ProfileStore::open(old);
    EXPECT_EQ(store->schema(), kStoreSchema);
    EXPECT_EQ(store->events("old").size(), 1u);
    EXPECT_EQ(store->rebuild("old").statement, "hi");
    FeedbackEvent e;
    e.type = EventType::kStatement;
    e.text = "again";
    e.key = "k";
    EXPECT_EQ(store->append("old", {e}).stored, 1);
    EXPECT_EQ(store->append("old", {e}).stored, 0);  // the key column came with the migration
  }
  EXPECT_EQ(count_rows(old, "SELECT value FROM meta WHERE key = 'schema'"), kStoreSchema);
  // A newer schema is refused.
  raw_exec(old, "UPDATE meta SET value = '99' WHERE key = 'schema'");
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(old); }), ErrorCode::kUnsupported);
  // Not SQLite at all.
  const auto text = dir.path() / "notes.txt";
  std::ofstream(text) << "this is not a database, just some text that is long enough to have a header\n";
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(text); }), ErrorCode::kInvalidArgument);
  // SQLite, but someone else's.
  const auto foreign = dir.path() / "foreign.db";
  raw_exec(foreign, "CREATE TABLE t(x); INSERT INTO t VALUES(1);");
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(foreign); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(count_rows(foreign, "SELECT count(*) FROM t"), 1);  // and left as it was
  // A directory, a missing file without create, a path that cannot be written.
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(dir.path()); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(dir.path() / "none.db", {.create = false}); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(error_code_of([&] { ProfileStore::open(dir.path() / "missing" / "dir" / "p.db"); }), ErrorCode::kIo);
  EXPECT_EQ(error_code_of([&] { ProfileStore::open("/proc/palign-store.db"); }), ErrorCode::kIo);
  // Read-only: reads work, writes are refused.
  {
    auto w = ProfileStore::open(dir.path() / "ro.db");
    w->create_user("r", test_prior(), "");
  }
  auto ro = ProfileStore::open(dir.path() / "ro.db", {.read_only = true});
  EXPECT_EQ(ro->profile("r").version, 0);
  Rng rng(4);
  EXPECT_EQ(error_code_of([&] { ro->append("r", {choice(rng)}); }), ErrorCode::kIo);
}

TEST_P(Stores, BadEventsStoreNothing) {
  auto store = ProfileStore::open(location("p"));
  store->create_user("dee", test_prior(), "scorer-1");
  Rng rng(5);
  EXPECT_EQ(error_code_of([&] { store->append("nobody", {choice(rng)}); }), ErrorCode::kNotFound);
  auto short_scores = choice(rng);
  short_scores.scores[1] = {1.0, 2.0};
  EXPECT_EQ(error_code_of([&] { store->append("dee", {choice(rng), short_scores}); }), ErrorCode::kInvalidArgument);
  auto other_scorer = choice(rng);
  other_scorer.scorer = "scorer-2";
  EXPECT_EQ(error_code_of([&] { store->append("dee", {other_scorer}); }), ErrorCode::kInvalidArgument);
  FeedbackEvent unknown_dim;
  unknown_dim.type = EventType::kStatement;
  unknown_dim.dimension = "politeness";
  unknown_dim.direction = 1;
  EXPECT_EQ(error_code_of([&] { store->append("dee", {unknown_dim}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->events("dee").size(), 0u);
  EXPECT_EQ(store->profile("dee").version, 0);
  EXPECT_EQ(error_code_of([&] { store->create_user("dee", test_prior(), ""); }), ErrorCode::kConflict);
  EXPECT_EQ(error_code_of([&] { store->create_user("", test_prior(), ""); }), ErrorCode::kInvalidArgument);
  // Malformed event JSON, each a one-line error.
  for (const char* text : {R"({"type": "wave"})", R"({"type": "choice", "responses": ["a", "b"]})",
                           R"({"type": "choice", "responses": ["a", "b"], "scores": [[1]], "choice": 0})",
                           R"({"type": "choice", "responses": ["a", "b"], "scores": [[1], [2]], "choice": 2})",
                           R"({"type": "rating", "responses": ["a"], "scores": [[1]], "rating": 0})",
                           R"({"type": "statement"})", R"({"type": "undo", "target": "x"})", R"([1, 2])"}) {
    EXPECT_EQ(error_code_of([&] { event_from_json(nlohmann::json::parse(text)); }), ErrorCode::kInvalidArgument)
        << text;
  }
  // Every event type survives its JSON form.
  const auto e = choice(rng, 1, "key");
  const auto back = event_from_json(event_to_json(e));
  EXPECT_EQ(back.scores, e.scores);
  EXPECT_EQ(back.choice, 1);
  EXPECT_EQ(back.key, "key");
}

// Integer fields out of range or mistyped, found by fuzzing: a choice of 1e300 was undefined behaviour (a float
// converted to int), one of 2^32 + 1 wrapped to 1 and was taken.
TEST(Store, EventIntegersOutOfRangeAreClearErrors) {
  const std::string pair = R"("type": "choice", "responses": ["a", "b"], "scores": [[1], [2]])";
  for (const std::string choice : {"1e300", "4294967297", "-2147483649", "0.5", "true", "\"1\""}) {
    const auto j = nlohmann::json::parse("{" + pair + R"(, "choice": )" + choice + "}");
    EXPECT_EQ(palign::test::error_message_of([&] { event_from_json(j); }),
              "[users.event] the event's \"choice\" is not an integer (the preferred response's index, -1 for neither)")
        << choice;
  }
  EXPECT_EQ(event_from_json(nlohmann::json::parse("{" + pair + R"(, "choice": 1.0})")).choice, 1);
  EXPECT_EQ(palign::test::error_message_of(
                [] { event_from_json(nlohmann::json::parse(R"({"type": "undo", "target": 1e19})")); }),
            "[users.event] the event's \"target\" is not an integer (the id of the event to take back)");
  EXPECT_EQ(palign::test::error_message_of(
                [] { event_from_json(nlohmann::json::parse(R"({"type": "statement", "text": "x", "id": -1e300})")); }),
            "[users.event] the event's \"id\" is not an integer");
}

// A user export whose "format" or "version" is of another type, found by fuzzing: json's own type_error escaped
// import_user.
TEST(Store, ImportOfAMistypedExportIsAClearError) {
  const auto dir = palign::test::fresh_dir("import_mistyped");
  auto store = ProfileStore::open(dir / "store.db");
  const std::string not_export =
      "[users.import] not a palign user export (its \"format\" must be \"palign.user\"); export one with `palign "
      "user export`";
  for (const char* text : {R"({"format": 1})", R"({"format": null})", R"({"format": ["palign.user"]})", "[]"}) {
    EXPECT_EQ(palign::test::error_message_of([&] { store->import_user(nlohmann::json::parse(text)); }), not_export)
        << text;
  }
  EXPECT_EQ(palign::test::error_message_of(
                [&] { store->import_user(nlohmann::json::parse(R"({"format": "palign.user", "version": "1"})")); }),
            "[users.import] a user export of version \"1\"; this palign reads version 1");
  EXPECT_EQ(palign::test::error_message_of(
                [&] { store->import_user(nlohmann::json::parse(R"({"format": "palign.user", "version": 1e300})")); }),
            "[users.import] a user export of version 1e+300; this palign reads version 1");
  EXPECT_EQ(palign::test::error_message_of(
                [&] { store->import_user(nlohmann::json::parse(R"({"format": "palign.user", "version": 2})")); }),
            "[users.import] a user export of version 2; this palign reads version 1");
  std::filesystem::remove_all(dir);
}

TEST_P(Stores, TwoProcessesAppendingAtOnce) {
  const std::string file = location("p");
  ProfileStore::open(file)->create_user("eve", test_prior(), "");
  const int per_process = 150;
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    const pid_t pid = fork();
    if (pid == 0) {
      int code = 0;
      try {
        auto store = ProfileStore::open(file);
        Rng rng(100 + p);
        for (int i = 0; i < per_process; ++i) {
          // Every 10th event is sent twice (a client retry): its key keeps it single.
          const std::string key = "p" + std::to_string(p) + "-" + std::to_string(i);
          store->append("eve", {choice(rng, i % 2, key)});
          if (i % 10 == 0) store->append("eve", {choice(rng, i % 2, key)});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        code = 1;
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto store = ProfileStore::open(file);
  const auto events = store->events("eve");
  std::set<std::string> keys;
  for (const auto& e : events) keys.insert(e.key);
  std::printf("  %zu events stored by 2 processes (%d each, every 10th sent twice), %zu distinct keys\n", events.size(),
              per_process, keys.size());
  EXPECT_EQ(events.size(), 2u * per_process);
  EXPECT_EQ(keys.size(), 2u * per_process);
  expect_same_state(store->rebuild("eve"), store->profile("eve"));
  EXPECT_EQ(store->profile("eve").version, 2 * per_process);
}

TEST_P(Stores, KilledWriterLosesNoAcknowledgedEvent) {
  const std::string file = location("p");
  ProfileStore::open(file)->create_user("fay", test_prior(), "");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto store = ProfileStore::open(file);
    Rng rng(7);
    for (int i = 0;; ++i) {
      const auto ids = store->append("fay", {choice(rng, i % 2, "k" + std::to_string(i))}).ids;
      const std::string ack = std::to_string(ids[0]) + "\n";  // acknowledged: printed after append returned
      if (write(fds[1], ack.data(), ack.size()) < 0) _exit(1);
    }
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  std::vector<int64_t> acked;
  long long id = 0;
  while (acked.size() < 60 && std::fscanf(in, "%lld", &id) == 1) acked.push_back(id);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  while (std::fscanf(in, "%lld", &id) == 1) acked.push_back(id);  // what was printed before the kill
  std::fclose(in);
  EXPECT_TRUE(WIFSIGNALED(status));
  auto store = ProfileStore::open(file);
  const auto events = store->events("fay");
  std::set<int64_t> stored;
  for (const auto& e : events) {
    EXPECT_TRUE(stored.insert(e.id).second);
    EXPECT_EQ(e.scores.size(), 2u);  // whole events only
  }
  size_t found = 0;
  for (int64_t a : acked) found += stored.count(a);
  std::printf("  killed the writer after %zu acknowledgements: %zu of them in the store, %zu events stored\n",
              acked.size(), found, events.size());
  EXPECT_EQ(found, acked.size());
  EXPECT_GE(events.size(), acked.size());
  const auto profile = store->profile("fay");
  EXPECT_EQ(profile.last_event, events.back().id);  // the version and its events were committed together
  expect_same_state(store->rebuild("fay"), profile);
}

TEST(Store, AFullDiskRefusesWritesAndKeepsWhatWasAcknowledged) {
  test::TempDir dir("store");
  const auto file = dir.path() / "p.db";
  ProfileStore::open(file)->create_user("gus", test_prior(), "");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    // The child's files may not grow past 1 MiB (RLIMIT_FSIZE): writes beyond fail with EFBIG, as on a full disk.
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{1024 * 1024, 1024 * 1024};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto store = ProfileStore::open(file);
    Rng rng(11);
    for (int i = 0; i < 100000; ++i) {
      std::string line;
      try {
        const auto ids = store->append("gus", {choice(rng, i % 2, "f" + std::to_string(i))}).ids;
        line = "ack " + std::to_string(ids[0]) + "\n";
      } catch (const Error& e) {
        line = std::string("error ") + std::string(error_code_name(e.code())) + " " + e.what() + "\n";
      }
      if (write(fds[1], line.data(), line.size()) < 0) _exit(1);
      if (line.rfind("error", 0) == 0) break;
    }
    _exit(0);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  std::set<int64_t> acked;
  std::string error;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, in)) {
    const std::string line = buf;
    if (line.rfind("ack ", 0) == 0) acked.insert(std::stoll(line.substr(4)));
    if (line.rfind("error ", 0) == 0) error = line;
  }
  std::fclose(in);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::printf("  %zu events acknowledged before the disk filled; then: %s", acked.size(), error.c_str());
  EXPECT_GT(acked.size(), 10u);
  EXPECT_EQ(error.rfind("error io ", 0), 0u) << error;
  EXPECT_NE(error.find("writable directory with free space"), std::string::npos) << error;
  // With room again, the store holds every acknowledged event, each version is its replay, and writing goes on.
  auto store = ProfileStore::open(file);
  const auto events = store->events("gus");
  std::set<int64_t> stored;
  for (const auto& e : events) stored.insert(e.id);
  for (int64_t a : acked) EXPECT_TRUE(stored.count(a)) << "acknowledged event " << a << " lost";
  EXPECT_EQ(events.size(), acked.size());  // the refused append stored nothing
  expect_same_state(store->rebuild("gus"), store->profile("gus"));
  Rng rng(12);
  EXPECT_EQ(store->append("gus", {choice(rng)}).stored, 1);
}

TEST(Store, ADamagedStoreIsAClearError) {
  test::TempDir dir("store");
  const auto file = dir.path() / "p.db";
  {
    auto store = ProfileStore::open(file);
    store->create_user("hal", test_prior(), "");
    Rng rng(13);
    for (int i = 0; i < 200; ++i) store->append("hal", {choice(rng, i % 2)});
  }
  const auto size = std::filesystem::file_size(file);
  ASSERT_GT(size, 3 * 4096u);
  // A damaged event body and a damaged stored vector: named, with what to do.
  raw_exec(file, "UPDATE events SET body = '{not json' WHERE id = 5");
  auto store = ProfileStore::open(file);
  std::string message = test::error_message_of([&] { store->events("hal"); });
  std::printf("  %s\n", message.c_str());
  EXPECT_NE(message.find("event 5 of user 'hal' is damaged"), std::string::npos);
  raw_exec(file, "UPDATE versions SET mean = x'0102' WHERE version = (SELECT max(version) FROM versions)");
  EXPECT_EQ(error_code_of([&] { store->profile("hal"); }), ErrorCode::kInvalidArgument);
  store.reset();
  // Pages overwritten with garbage (a disk error, a bad copy): every read is an error or a whole answer, no crash.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(4096, '\xA5');
    f.seekp(2 * 4096);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  int errors = 0;
  try {
    auto damaged = ProfileStore::open(file);
    for (int i = 0; i < 3; ++i) {
      try {
        (void)damaged->users();
        (void)damaged->events("hal");
        (void)damaged->profile("hal");
      } catch (const Error& e) {
        ++errors;
        EXPECT_TRUE(e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kNotFound) << e.what();
        if (i == 0) std::printf("  %s\n", e.what());
      }
    }
  } catch (const Error& e) {
    ++errors;
    std::printf("  %s\n", e.what());
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  EXPECT_GT(errors, 0);
  // A truncated file.
  std::filesystem::resize_file(file, size / 2);
  message = test::error_message_of([&] {
    auto damaged = ProfileStore::open(file);
    (void)damaged->events("hal");
    (void)damaged->profile("hal");
  });
  std::printf("  %s\n", message.c_str());
  EXPECT_NE(message.find(file.string()), std::string::npos);
}
