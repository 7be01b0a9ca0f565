#include "palign/users/store.h"

#include <sqlite3.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "palign/base/error.h"

namespace palign::users {

using nlohmann::json;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The schema, as the steps that take a store from version v − 1 to v (kMigrations[v − 1]). A new store runs them
// all; an older one the ones it lacks.
const char* const kMigrations[] = {
    // 1: users, append-only events, derived versions.
    "CREATE TABLE users(user_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, scorer TEXT NOT NULL,"
    "  names TEXT NOT NULL, prior_mean BLOB NOT NULL, prior_covariance BLOB NOT NULL);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, time_ms INTEGER NOT NULL,"
    "  type TEXT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX events_by_user ON events(user_id, id);"
    "CREATE TABLE versions(user_id TEXT NOT NULL, version INTEGER NOT NULL, last_event INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL, events INTEGER NOT NULL, observations INTEGER NOT NULL, statement TEXT NOT NULL,"
    "  mean BLOB NOT NULL, covariance BLOB NOT NULL, PRIMARY KEY(user_id, version));",
    // 2: idempotency keys (a client's retry of an event is not stored twice).
    "ALTER TABLE events ADD COLUMN key TEXT;"
    "CREATE UNIQUE INDEX events_by_key ON events(user_id, key) WHERE key IS NOT NULL;",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kStoreSchema);

std::string blob_of(const std::vector<double>& v) {
  std::string s(v.size() * sizeof(double), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// One prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::filesystem::path& file) : db_(db), file_(file) {
    check(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr), "prepare");
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& s) {
    check(sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT), "bind");
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v), "bind");
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& b) {
    check(sqlite3_bind_blob(stmt_, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT), "bind");
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(stmt_, i), "bind");
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc, "step");
    return false;
  }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
  }
  std::vector<double> doubles(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    const auto n = static_cast<size_t>(sqlite3_column_bytes(stmt_, col));
    PALIGN_CHECK(n % sizeof(double) == 0, ErrorCode::kInvalidArgument, "[users.store] ", file_.string(),
                 ": a stored vector of ", n, " bytes is damaged");
    std::vector<double> v(n / sizeof(double));
    if (n) std::memcpy(v.data(), p, n);
    return v;
  }

  void check(int rc, const char* what) const;

 private:
  sqlite3* db_;
  const std::filesystem::path& file_;
  sqlite3_stmt* stmt_ = nullptr;
};

// SQLite's result codes as palign's errors, each with what to do.
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::filesystem::path& file, const char* what) {
  const std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB)
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.store] ", file.string(),
                 " is not a palign store (not an SQLite database); pass --store a new file or a palign store");
  if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM || primary == SQLITE_IOERR ||
      primary == SQLITE_FULL || primary == SQLITE_AUTH)
    PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot ", what, " the store ", file.string(), ": ", msg,
                 "; pass --store a file in a writable directory");
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    PALIGN_THROW(ErrorCode::kConflict, "[users.store] the store ", file.string(),
                 " stayed locked by another process; try again");
  PALIGN_THROW(ErrorCode::kInternal, "[users.store] ", file.string(), ": ", what, ": ", msg);
}

void Stmt::check(int rc, const char* what) const {
  if (rc != SQLITE_OK) throw_sqlite(db_, rc, file_, what);
}

}  // namespace

struct ProfileStore::Impl {
  std::filesystem::path file;
  sqlite3* db = nullptr;
  bool read_only = false;
  int schema = 0;

  ~Impl() {
    if (db) sqlite3_close_v2(db);
  }

  void exec(const std::string& sql, const char* what = "write") {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw_sqlite(db, rc, file, what);
  }

  // A write transaction: BEGIN IMMEDIATE (the write lock first, so that a read inside sees the latest state), rolled
  // back unless committed.
  class Txn {
   public:
    explicit Txn(Impl& s) : s_(s) {
      PALIGN_CHECK(!s.read_only, ErrorCode::kIo, "[users.store] ", s.file.string(),
                   " is open read-only; open it for writing");
      s_.exec("BEGIN IMMEDIATE", "lock");
    }
    ~Txn() {
      if (!done_) sqlite3_exec(s_.db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
      s_.exec("COMMIT", "commit to");
      done_ = true;
    }

   private:
    Impl& s_;
    bool done_ = false;
  };

  void require_user(const std::string& user) const {
    Stmt q(db, "SELECT 1 FROM users WHERE user_id = ?", file);
    q.bind(1, user);
    PALIGN_CHECK(q.step(), ErrorCode::kNotFound, "[users.store] no user '", user, "' in ", file.string(),
                 "; create it with `palign user create --store ", file.string(), " --user ", user, " ...`");
  }

  UserState latest(const std::string& user) const {
    require_user(user);
    UserState s;
    {
      Stmt q(db, "SELECT scorer, names, prior_mean, prior_covariance FROM users WHERE user_id = ?", file);
      q.bind(1, user);
      q.step();
      s.user_id = user;
      s.scorer = q.text(0);
      s.prior.names = json::parse(q.text(1)).get<std::vector<std::string>>();
      s.prior.mean = q.doubles(2);
      s.prior.covariance = q.doubles(3);
    }
    Stmt v(db,
           "SELECT version, last_event, events, observations, statement, mean, covariance FROM versions "
           "WHERE user_id = ? ORDER BY version DESC LIMIT 1",
           file);
    v.bind(1, user);
    PALIGN_CHECK(v.step(), ErrorCode::kInvalidArgument, "[users.store] ", file.string(), ": user '", user,
                 "' has no version; the store is damaged (rebuild it with `palign user rebuild`)");
    s.version = v.int64(0);
    s.last_event = v.int64(1);
    s.events = v.int64(2);
    s.observations = v.int64(3);
    s.statement = v.text(4);
    s.posterior.names = s.prior.names;
    s.posterior.mean = v.doubles(5);
    s.posterior.covariance = v.doubles(6);
    return s;
  }

  std::vector<FeedbackEvent> events(const std::string& user) const {
    require_user(user);
    std::vector<FeedbackEvent> out;
    Stmt q(db, "SELECT id, time_ms, body FROM events WHERE user_id = ? ORDER BY id", file);
    q.bind(1, user);
    while (q.step()) {
      FeedbackEvent e = event_from_json(json::parse(q.text(2)));
      e.id = q.int64(0);
      e.time_ms = q.int64(1);
      out.push_back(std::move(e));
    }
    return out;
  }

  void write_version(const UserState& s) {
    Stmt q(db,
           "INSERT INTO versions(user_id, version, last_event, time_ms, events, observations, statement, mean, "
           "covariance) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
           file);
    q.bind(1, s.user_id).bind(2, s.version).bind(3, s.last_event).bind(4, now_ms()).bind(5, s.events);
    q.bind(6, s.observations).bind(7, s.statement).bind_blob(8, blob_of(s.posterior.mean));
    q.bind_blob(9, blob_of(s.posterior.covariance));
    q.step();
  }

  void insert_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer) {
    Stmt q(db,
           "INSERT INTO users(user_id, created_ms, scorer, names, prior_mean, prior_covariance) "
           "VALUES(?, ?, ?, ?, ?, ?)",
           file);
    q.bind(1, user).bind(2, now_ms()).bind(3, scorer).bind(4, json(prior.names).dump());
    q.bind_blob(5, blob_of(prior.mean)).bind_blob(6, blob_of(prior.covariance));
    q.step();
  }

  // Inserts one event (its id and time set). Returns false (and sets e.id to the stored one) for a duplicate key.
  bool insert_event(const std::string& user, FeedbackEvent& e) {
    if (!e.key.empty()) {
      Stmt q(db, "SELECT id FROM events WHERE user_id = ? AND key = ?", file);
      q.bind(1, user).bind(2, e.key);
      if (q.step()) {
        e.id = q.int64(0);
        return false;
      }
    }
    if (e.time_ms == 0) e.time_ms = now_ms();
    FeedbackEvent body = e;
    body.id = 0;
    body.time_ms = 0;
    Stmt q(db, "INSERT INTO events(user_id, time_ms, type, body, key) VALUES(?, ?, ?, ?, ?)", file);
    q.bind(1, user).bind(2, e.time_ms).bind(3, event_type_name(e.type)).bind(4, event_to_json(body).dump());
    if (e.key.empty())
      q.bind_null(5);
    else
      q.bind(5, e.key);
    q.step();
    e.id = sqlite3_last_insert_rowid(db);
    return true;
  }
};

ProfileStore::ProfileStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProfileStore::~ProfileStore() = default;

std::unique_ptr<ProfileStore> ProfileStore::open(const std::filesystem::path& file, const StoreOptions& options) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(file, ec);
  PALIGN_CHECK(exists || (options.create && !options.read_only), ErrorCode::kNotFound, "[users.store] no store at ",
               file.string(), "; create one with `palign user create --store ", file.string(), " ...`");
  PALIGN_CHECK(!exists || std::filesystem::is_regular_file(file, ec), ErrorCode::kInvalidArgument, "[users.store] ",
               file.string(), " is not a file; pass --store a file");
  auto impl = std::make_unique<Impl>();
  impl->file = file;
  impl->read_only = options.read_only;
  const int flags = options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file.c_str(), &impl->db, flags | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) throw_sqlite(impl->db, rc, file, "open");
  sqlite3_extended_result_codes(impl->db, 1);
  sqlite3_busy_timeout(impl->db, options.busy_timeout_ms);
  // Reading the schema first tells a foreign file (NOTADB) from a store.
  int schema = 0;
  {
    Stmt has_meta(impl->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", file);
    has_meta.step();
    if (has_meta.int64(0) == 1) {
      Stmt q(impl->db, "SELECT key, value FROM meta", file);
      std::map<std::string, std::string> meta;
      while (q.step()) meta[q.text(0)] = q.text(1);
      PALIGN_CHECK(meta["format"] == "palign.store", ErrorCode::kInvalidArgument, "[users.store] ", file.string(),
                   " is an SQLite database but not a palign store; pass --store a new file or a palign store");
      schema = std::atoi(meta["schema"].c_str());
      PALIGN_CHECK(schema >= 1, ErrorCode::kInvalidArgument, "[users.store] ", file.string(),
                   " has no schema version; it is not a palign store");
    } else {
      Stmt tables(impl->db, "SELECT count(*) FROM sqlite_master", file);
      tables.step();
      PALIGN_CHECK(tables.int64(0) == 0, ErrorCode::kInvalidArgument, "[users.store] ", file.string(),
                   " is an SQLite database but not a palign store; pass --store a new file or a palign store");
    }
  }
  PALIGN_CHECK(schema <= kStoreSchema, ErrorCode::kUnsupported, "[users.store] ", file.string(),
               " was written by a newer palign (store schema ", schema, ", this palign reads up to ", kStoreSchema,
               "); upgrade palign");
  if (!options.read_only) {
    // WAL: readers do not block the writer; synchronous=FULL: a committed transaction is on disk.
    impl->exec("PRAGMA journal_mode=WAL", "open");
    impl->exec("PRAGMA synchronous=FULL", "open");
    if (schema == 0) {
      Impl::Txn txn(*impl);
      // Another process may have created it meanwhile.
      Stmt again(impl->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", file);
      again.step();
      if (again.int64(0) == 0) {
        impl->exec(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta(key, value) VALUES('format', 'palign.store'), ('schema', '0')",
            "create");
      }
      txn.commit();
      Stmt q(impl->db, "SELECT value FROM meta WHERE key = 'schema'", file);
      q.step();
      schema = std::atoi(q.text(0).c_str());
    }
    if (schema < kStoreSchema) {
      // Each step re-reads the schema under the write lock, so two processes migrating at once do it once.
      for (int v = schema + 1; v <= kStoreSchema; ++v) {
        Impl::Txn txn(*impl);
        Stmt q(impl->db, "SELECT value FROM meta WHERE key = 'schema'", file);
        q.step();
        const int current = std::atoi(q.text(0).c_str());
        if (current < v) {
          impl->exec(kMigrations[v - 1], "migrate");
          impl->exec("UPDATE meta SET value = '" + std::to_string(v) + "' WHERE key = 'schema'", "migrate");
        }
        txn.commit();
      }
      schema = kStoreSchema;
    }
  } else {
    PALIGN_CHECK(schema == kStoreSchema, ErrorCode::kIo, "[users.store] ", file.string(), " has store schema ", schema,
                 " and must be migrated to ", kStoreSchema, "; open it once for writing");
  }
  impl->schema = schema;
  return std::unique_ptr<ProfileStore>(new ProfileStore(std::move(impl)));
}

const std::filesystem::path& ProfileStore::path() const { return impl_->file; }
int ProfileStore::schema() const { return impl_->schema; }

UserState ProfileStore::create_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer,
                                    const std::string& statement) {
  PALIGN_CHECK(!user.empty(), ErrorCode::kInvalidArgument, "[users.store] a user needs a non-empty id");
  UserState state = initial_state(user, prior, scorer);
  {
    Impl::Txn txn(*impl_);
    PALIGN_CHECK(!has_user(user), ErrorCode::kConflict, "[users.store] user '", user, "' already exists in ",
                 impl_->file.string(), "; pick another id or delete it first");
    impl_->insert_user(user, state.prior, scorer);
    impl_->write_version(state);
    txn.commit();
  }
  if (statement.empty()) return state;
  // A statement given at creation is the user's first event, so that the state stays a function of the events.
  FeedbackEvent e;
  e.type = EventType::kStatement;
  e.text = statement;
  return append(user, {e}).state;
}

bool ProfileStore::has_user(const std::string& user) const {
  Stmt q(impl_->db, "SELECT 1 FROM users WHERE user_id = ?", impl_->file);
  q.bind(1, user);
  return q.step();
}

std::vector<std::string> ProfileStore::users() const {
  std::vector<std::string> out;
  Stmt q(impl_->db, "SELECT user_id FROM users ORDER BY user_id", impl_->file);
  while (q.step()) out.push_back(q.text(0));
  return out;
}

UserState ProfileStore::profile(const std::string& user) const { return impl_->latest(user); }

std::vector<VersionInfo> ProfileStore::versions(const std::string& user) const {
  impl_->require_user(user);
  std::vector<VersionInfo> out;
  Stmt q(impl_->db, "SELECT version, last_event, time_ms, events FROM versions WHERE user_id = ? ORDER BY version",
         impl_->file);
  q.bind(1, user);
  while (q.step()) out.push_back({q.int64(0), q.int64(1), q.int64(2), q.int64(3)});
  return out;
}

std::vector<FeedbackEvent> ProfileStore::events(const std::string& user) const { return impl_->events(user); }

ProfileStore::Appended ProfileStore::append(const std::string& user, std::vector<FeedbackEvent> events) {
  Impl::Txn txn(*impl_);
  Appended out;
  UserState state = impl_->latest(user);
  // Check every event against the state it will meet before storing any.
  for (const auto& e : events)
    if (e.type != EventType::kUndo) check_event(state, e);
  bool has_undo = false;
  for (auto& e : events) {
    if (e.type == EventType::kUndo) {
      Stmt q(impl_->db, "SELECT type FROM events WHERE user_id = ? AND id = ?", impl_->file);
      q.bind(1, user).bind(2, e.target);
      PALIGN_CHECK(q.step() && q.text(0) != "undo", ErrorCode::kInvalidArgument, "[users.store] undo of event ",
                   e.target, ", which is not a choice, rating or statement of user '", user,
                   "'; see `palign user history`");
    }
    e.scorer = e.scorer.empty() ? state.scorer : e.scorer;
    if (!impl_->insert_event(user, e)) {
      out.ids.push_back(e.id);
      continue;
    }
    out.ids.push_back(e.id);
    ++out.stored;
    if (e.type == EventType::kUndo) {
      has_undo = true;
    } else if (!has_undo) {
      apply_event(state, e);
    }
  }
  if (out.stored == 0) {
    txn.commit();
    out.state = state;
    return out;
  }
  if (has_undo) {
    const int64_t version = state.version;
    state = replay(user, state.prior, state.scorer, impl_->events(user));
    state.version = version;
  }
  for (const auto& id : out.ids) state.last_event = std::max(state.last_event, id);
  ++state.version;
  impl_->write_version(state);
  txn.commit();
  out.state = std::move(state);
  return out;
}

UserState ProfileStore::rebuild(const std::string& user) const {
  const UserState latest = impl_->latest(user);
  UserState s = replay(user, latest.prior, latest.scorer, impl_->events(user));
  s.version = latest.version;
  return s;
}

UserState ProfileStore::store_rebuilt(const std::string& user) {
  Impl::Txn txn(*impl_);
  UserState s = rebuild(user);
  ++s.version;
  impl_->write_version(s);
  txn.commit();
  return s;
}

void ProfileStore::delete_user(const std::string& user) {
  Impl::Txn txn(*impl_);
  impl_->require_user(user);
  for (const char* table : {"events", "versions", "users"}) {
    Stmt q(impl_->db, std::string("DELETE FROM ") + table + " WHERE user_id = ?", impl_->file);
    q.bind(1, user);
    q.step();
  }
  txn.commit();
}

json ProfileStore::export_user(const std::string& user) const {
  const UserState s = impl_->latest(user);
  json events = json::array();
  for (const auto& e : impl_->events(user)) events.push_back(event_to_json(e));
  return {{"format", "palign.user"},
          {"version", 1},
          {"user_id", user},
          {"scorer", s.scorer},
          {"prior", {{"names", s.prior.names}, {"mean", s.prior.mean}, {"covariance", s.prior.covariance}}},
          {"events", events}};
}

UserState ProfileStore::import_user(const json& j, bool replace) {
  auto bad = [](const std::string& what) { PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.import] ", what); };
  if (!j.is_object() || j.value("format", "") != "palign.user")
    bad("not a palign user export (its \"format\" must be \"palign.user\"); export one with `palign user export`");
  if (j.value("version", 0) != 1)
    bad("a user export of version " + j.value("version", json(0)).dump() +
        "; this "
        "palign reads version 1");
  std::string user, scorer;
  DimensionWeights prior;
  std::vector<FeedbackEvent> events;
  try {
    user = j.at("user_id").get<std::string>();
    scorer = j.value("scorer", "");
    prior.names = j.at("prior").at("names").get<std::vector<std::string>>();
    prior.mean = j.at("prior").at("mean").get<std::vector<double>>();
    prior.covariance = j.at("prior").at("covariance").get<std::vector<double>>();
    for (const auto& e : j.at("events")) events.push_back(event_from_json(e));
  } catch (const json::exception& e) {
    bad(std::string("a malformed user export: ") + e.what());
  }
  PALIGN_CHECK(!user.empty(), ErrorCode::kInvalidArgument, "[users.import] the export has an empty user_id");
  UserState state = initial_state(user, prior, scorer);
  // Replaying here checks every event (and the undo targets) before anything is written.
  (void)replay(user, prior, scorer, events);
  Impl::Txn txn(*impl_);
  if (has_user(user)) {
    PALIGN_CHECK(replace, ErrorCode::kConflict, "[users.import] user '", user, "' already exists in ",
                 impl_->file.string(), "; delete it first or import with --replace");
    for (const char* table : {"events", "versions", "users"}) {
      Stmt q(impl_->db, std::string("DELETE FROM ") + table + " WHERE user_id = ?", impl_->file);
      q.bind(1, user);
      q.step();
    }
  }
  impl_->insert_user(user, state.prior, scorer);
  impl_->write_version(state);
  std::map<int64_t, int64_t> renumbered;
  for (auto& e : events) {
    const int64_t old_id = e.id;
    if (e.type == EventType::kUndo) e.target = renumbered.at(e.target);
    e.id = 0;
    impl_->insert_event(user, e);
    if (old_id) renumbered[old_id] = e.id;
  }
  if (!events.empty()) {
    UserState replayed = replay(user, prior, scorer, impl_->events(user));
    replayed.version = 1;
    impl_->write_version(replayed);
    state = replayed;
  }
  txn.commit();
  return state;
}

}  // namespace palign::users
