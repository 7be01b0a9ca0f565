#include "palign/users/store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "palign/base/error.h"
#include "store_db.h"

namespace palign::users {

using detail::SqlRow;
using detail::SqlValue;
using detail::StoreDb;
using nlohmann::json;

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string blob_of(const std::vector<double>& v) {
  std::string s(v.size() * sizeof(double), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace

struct ProfileStore::Impl {
  std::unique_ptr<detail::StoreEngine> engine;
  std::filesystem::path file;  // the file, or the URL without its password
  bool read_only = false;
  int schema = 0;

  const std::string& where() const { return engine->where(); }

  // Typed reads of a column, naming the store when a value is not what the schema says.
  int64_t int64(const SqlRow& row, size_t c) const {
    PALIGN_CHECK(row.at(c).kind == SqlValue::Kind::kInt, ErrorCode::kInvalidArgument, "[users.store] ", where(),
                 ": a stored integer is damaged");
    return row[c].i;
  }
  const std::string& text(const SqlRow& row, size_t c) const {
    PALIGN_CHECK(row.at(c).kind == SqlValue::Kind::kText, ErrorCode::kInvalidArgument, "[users.store] ", where(),
                 ": a stored text is damaged");
    return row[c].s;
  }
  std::vector<double> doubles(const SqlRow& row, size_t c) const {
    const SqlValue& v = row.at(c);
    PALIGN_CHECK(v.kind == SqlValue::Kind::kBlob && v.s.size() % sizeof(double) == 0, ErrorCode::kInvalidArgument,
                 "[users.store] ", where(), ": a stored vector of ", v.s.size(), " bytes is damaged");
    std::vector<double> out(v.s.size() / sizeof(double));
    if (!out.empty()) std::memcpy(out.data(), v.s.data(), v.s.size());
    return out;
  }

  // A write transaction holding `lock` (a user, or "" for the whole store), rolled back unless committed.
  class Txn {
   public:
    Txn(const Impl& s, StoreDb& db, const std::string& lock) : db_(db) {
      PALIGN_CHECK(!s.read_only, ErrorCode::kIo, "[users.store] ", s.where(),
                   " is open read-only; open it for writing");
      db_.begin_write(lock);
    }
    ~Txn() {
      if (!done_) db_.rollback();
    }
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    void commit() {
      db_.commit();
      done_ = true;
    }

   private:
    StoreDb& db_;
    bool done_ = false;
  };

  bool has_user(StoreDb& db, const std::string& user) const {
    return !db.query("SELECT 1 FROM users WHERE user_id = ?", {user}).empty();
  }

  void require_user(StoreDb& db, const std::string& user) const {
    PALIGN_CHECK(has_user(db, user), ErrorCode::kNotFound, "[users.store] no user '", user, "' in ", where(),
                 "; create it with `palign user create --store ", where(), " --user ", user, " ...`");
  }

  UserState latest(StoreDb& db, const std::string& user) const {
    const auto users =
        db.query("SELECT scorer, names, prior_mean, prior_covariance FROM users WHERE user_id = ?", {user});
    PALIGN_CHECK(!users.empty(), ErrorCode::kNotFound, "[users.store] no user '", user, "' in ", where(),
                 "; create it with `palign user create --store ", where(), " --user ", user, " ...`");
    UserState s;
    s.user_id = user;
    s.scorer = text(users[0], 0);
    const json names = json::parse(text(users[0], 1), nullptr, false);
    PALIGN_CHECK(
        names.is_array() && std::all_of(names.begin(), names.end(), [](const json& n) { return n.is_string(); }),
        ErrorCode::kInvalidArgument, "[users.store] ", where(), ": user '", user,
        "' has damaged dimension names; restore the store from a backup");
    s.prior.names = names.get<std::vector<std::string>>();
    s.prior.mean = doubles(users[0], 2);
    s.prior.covariance = doubles(users[0], 3);
    const auto v = db.query(
        "SELECT version, last_event, events, observations, statement, mean, covariance FROM versions "
        "WHERE user_id = ? ORDER BY version DESC LIMIT 1",
        {user});
    PALIGN_CHECK(!v.empty(), ErrorCode::kInvalidArgument, "[users.store] ", where(), ": user '", user,
                 "' has no version; the store is damaged (rebuild it with `palign user rebuild`)");
    s.version = int64(v[0], 0);
    s.last_event = int64(v[0], 1);
    s.events = int64(v[0], 2);
    s.observations = int64(v[0], 3);
    s.statement = text(v[0], 4);
    s.posterior.names = s.prior.names;
    s.posterior.mean = doubles(v[0], 5);
    s.posterior.covariance = doubles(v[0], 6);
    return s;
  }

  std::vector<FeedbackEvent> events(StoreDb& db, const std::string& user) const {
    require_user(db, user);
    std::vector<FeedbackEvent> out;
    for (const auto& row : db.query("SELECT id, time_ms, body FROM events WHERE user_id = ? ORDER BY id", {user})) {
      const json body = json::parse(text(row, 2), nullptr, false);
      PALIGN_CHECK(!body.is_discarded(), ErrorCode::kInvalidArgument, "[users.store] ", where(), ": event ",
                   int64(row, 0), " of user '", user, "' is damaged; restore the store from a backup");
      FeedbackEvent e = event_from_json(body);
      e.id = int64(row, 0);
      e.time_ms = int64(row, 1);
      out.push_back(std::move(e));
    }
    return out;
  }

  void write_version(StoreDb& db, const UserState& s) const {
    db.query(
        "INSERT INTO versions(user_id, version, last_event, time_ms, events, observations, statement, mean, "
        "covariance) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {s.user_id, s.version, s.last_event, now_ms(), s.events, s.observations, s.statement,
         SqlValue::blob(blob_of(s.posterior.mean)), SqlValue::blob(blob_of(s.posterior.covariance))});
  }

  void insert_user(StoreDb& db, const std::string& user, const DimensionWeights& prior,
                   const std::string& scorer) const {
    db.query(
        "INSERT INTO users(user_id, created_ms, scorer, names, prior_mean, prior_covariance) "
        "VALUES(?, ?, ?, ?, ?, ?)",
        {user, now_ms(), scorer, json(prior.names).dump(), SqlValue::blob(blob_of(prior.mean)),
         SqlValue::blob(blob_of(prior.covariance))});
  }

  void delete_rows(StoreDb& db, const std::string& user) const {
    for (const char* table : {"events", "versions", "users"})
      db.query(std::string("DELETE FROM ") + table + " WHERE user_id = ?", {user});
  }

  // Inserts one event (its id and time set). Returns false (and sets e.id to the stored one) for a duplicate key.
  bool insert_event(StoreDb& db, const std::string& user, FeedbackEvent& e) const {
    if (!e.key.empty()) {
      const auto found = db.query("SELECT id FROM events WHERE user_id = ? AND key = ?", {user, e.key});
      if (!found.empty()) {
        e.id = int64(found[0], 0);
        return false;
      }
    }
    if (e.time_ms == 0) e.time_ms = now_ms();
    FeedbackEvent body = e;
    body.id = 0;
    body.time_ms = 0;
    const auto id = db.query("INSERT INTO events(user_id, time_ms, type, body, key) VALUES(?, ?, ?, ?, ?) RETURNING id",
                             {user, e.time_ms, event_type_name(e.type), event_to_json(body).dump(),
                              e.key.empty() ? SqlValue() : SqlValue(e.key)});
    e.id = int64(id.at(0), 0);
    return true;
  }

  // Creates the schema or migrates it forward; each step one transaction under the store-wide lock, re-reading the
  // schema inside it, so that two processes opening a new store at once do each step once.
  int migrate(StoreDb& db) const {
    const auto& steps = engine->migrations();
    int schema = read_schema(db);
    if (schema < 0) {
      Txn txn(*this, db, "");
      if (!engine->has_table(db, "meta")) {
        refuse_foreign(db);
        db.script("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
        db.query("INSERT INTO meta(key, value) VALUES('format', 'palign.store'), ('schema', '0')");
      }
      txn.commit();
      schema = read_schema(db);
    }
    for (int v = schema + 1; v <= kStoreSchema; ++v) {
      Txn txn(*this, db, "");
      if (read_schema(db) < v) {
        db.script(steps[static_cast<size_t>(v - 1)]);
        db.query("UPDATE meta SET value = ? WHERE key = 'schema'", {std::to_string(v)});
      }
      txn.commit();
    }
    return std::max(schema, kStoreSchema);
  }

  // A database without palign's meta table must hold no table at all to become a store.
  void refuse_foreign(StoreDb& db) const {
    PALIGN_CHECK(engine->empty(db), ErrorCode::kInvalidArgument, "[users.store] ", where(),
                 " is a database but not a palign store; pass --store a new file or an empty database");
  }

  // The store's schema version: -1 when there is no meta table yet (a new store, or not a store: migrate() tells
  // them apart under the lock), 0 for a store whose creation stopped before its first step.
  int read_schema(StoreDb& db) const {
    if (!engine->has_table(db, "meta")) return -1;
    std::map<std::string, std::string> meta;
    for (const auto& row : db.query("SELECT key, value FROM meta")) meta[text(row, 0)] = text(row, 1);
    PALIGN_CHECK(meta["format"] == "palign.store", ErrorCode::kInvalidArgument, "[users.store] ", where(),
                 " is a database but not a palign store; pass --store a new file or a palign store");
    const int schema = std::atoi(meta["schema"].c_str());
    PALIGN_CHECK(schema >= 1 || meta["schema"] == "0", ErrorCode::kInvalidArgument, "[users.store] ", where(),
                 " has no schema version; it is not a palign store");
    return schema;
  }
};

ProfileStore::ProfileStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProfileStore::~ProfileStore() = default;

std::unique_ptr<ProfileStore> ProfileStore::open(const std::filesystem::path& where, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->read_only = options.read_only;
  const std::string location = where.string();
  impl->engine = detail::is_postgres_url(location)
                     ? detail::open_postgres(location, options.pool_size)
                     : detail::open_sqlite(location, options.create, options.read_only, options.busy_timeout_ms);
  impl->file = impl->engine->where();
  auto db = impl->engine->acquire();
  int schema = impl->read_schema(*db);
  PALIGN_CHECK(schema <= kStoreSchema, ErrorCode::kUnsupported, "[users.store] ", impl->where(),
               " was written by a newer palign (store schema ", schema, ", this palign reads up to ", kStoreSchema,
               "); upgrade palign");
  if (!options.read_only) {
    schema = impl->migrate(*db);
  } else {
    if (schema < 0) impl->refuse_foreign(*db);
    PALIGN_CHECK(schema == kStoreSchema, ErrorCode::kIo, "[users.store] ", impl->where(), " has store schema ", schema,
                 " and must be migrated to ", kStoreSchema, "; open it once for writing");
  }
  impl->schema = schema;
  return std::unique_ptr<ProfileStore>(new ProfileStore(std::move(impl)));
}

const std::filesystem::path& ProfileStore::path() const { return impl_->file; }
int ProfileStore::schema() const { return impl_->schema; }

void ProfileStore::ping() const {
  auto db = impl_->engine->acquire();
  db->query("SELECT 1", {});
}

UserState ProfileStore::create_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer,
                                    const std::string& statement) {
  PALIGN_CHECK(!user.empty(), ErrorCode::kInvalidArgument, "[users.store] a user needs a non-empty id");
  UserState state = initial_state(user, prior, scorer);
  {
    auto db = impl_->engine->acquire();
    Impl::Txn txn(*impl_, *db, user);
    PALIGN_CHECK(!impl_->has_user(*db, user), ErrorCode::kConflict, "[users.store] user '", user,
                 "' already exists in ", impl_->where(), "; pick another id or delete it first");
    impl_->insert_user(*db, user, state.prior, scorer);
    impl_->write_version(*db, state);
    txn.commit();
  }
  if (statement.empty()) return state;
  // A statement given at creation is the user's first event, so that the state stays a function of the events.
  FeedbackEvent e;
  e.type = EventType::kStatement;
  e.text = statement;
  return append(user, {e}).state;
}

bool ProfileStore::ensure_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer) {
  PALIGN_CHECK(!user.empty(), ErrorCode::kInvalidArgument, "[users.store] a user needs a non-empty id");
  auto db = impl_->engine->acquire();
  if (impl_->has_user(*db, user)) return false;
  const UserState state = initial_state(user, prior, scorer);
  Impl::Txn txn(*impl_, *db, user);
  if (impl_->has_user(*db, user)) return false;  // created meanwhile, by another thread or replica
  impl_->insert_user(*db, user, state.prior, scorer);
  impl_->write_version(*db, state);
  txn.commit();
  return true;
}

bool ProfileStore::has_user(const std::string& user) const {
  auto db = impl_->engine->acquire();
  return impl_->has_user(*db, user);
}

std::vector<std::string> ProfileStore::users() const {
  auto db = impl_->engine->acquire();
  std::vector<std::string> out;
  for (const auto& row : db->query("SELECT user_id FROM users ORDER BY user_id")) out.push_back(impl_->text(row, 0));
  return out;
}

UserState ProfileStore::profile(const std::string& user) const {
  auto db = impl_->engine->acquire();
  return impl_->latest(*db, user);
}

std::vector<VersionInfo> ProfileStore::versions(const std::string& user) const {
  auto db = impl_->engine->acquire();
  impl_->require_user(*db, user);
  std::vector<VersionInfo> out;
  for (const auto& row : db->query(
           "SELECT version, last_event, time_ms, events FROM versions WHERE user_id = ? ORDER BY version", {user}))
    out.push_back({impl_->int64(row, 0), impl_->int64(row, 1), impl_->int64(row, 2), impl_->int64(row, 3)});
  return out;
}

std::vector<FeedbackEvent> ProfileStore::events(const std::string& user) const {
  auto db = impl_->engine->acquire();
  return impl_->events(*db, user);
}

ProfileStore::Appended ProfileStore::append(const std::string& user, std::vector<FeedbackEvent> events) {
  auto db = impl_->engine->acquire();
  Impl::Txn txn(*impl_, *db, user);
  Appended out;
  UserState state = impl_->latest(*db, user);
  // Check every event against the state it will meet before storing any.
  for (const auto& e : events)
    if (e.type != EventType::kUndo) check_event(state, e);
  bool has_undo = false;
  for (auto& e : events) {
    if (e.type == EventType::kUndo) {
      const auto target = db->query("SELECT type FROM events WHERE user_id = ? AND id = ?", {user, e.target});
      PALIGN_CHECK(!target.empty() && impl_->text(target[0], 0) != "undo", ErrorCode::kInvalidArgument,
                   "[users.store] undo of event ", e.target, ", which is not a choice, rating or statement of user '",
                   user, "'; see `palign user history`");
    }
    e.scorer = e.scorer.empty() ? state.scorer : e.scorer;
    if (!impl_->insert_event(*db, user, e)) {
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
    state = replay(user, state.prior, state.scorer, impl_->events(*db, user));
    state.version = version;
  }
  for (const auto& id : out.ids) state.last_event = std::max(state.last_event, id);
  ++state.version;
  impl_->write_version(*db, state);
  txn.commit();
  out.state = std::move(state);
  return out;
}

UserState ProfileStore::rebuild(const std::string& user) const {
  auto db = impl_->engine->acquire();
  const UserState latest = impl_->latest(*db, user);
  UserState s = replay(user, latest.prior, latest.scorer, impl_->events(*db, user));
  s.version = latest.version;
  return s;
}

UserState ProfileStore::store_rebuilt(const std::string& user) {
  auto db = impl_->engine->acquire();
  Impl::Txn txn(*impl_, *db, user);
  const UserState latest = impl_->latest(*db, user);
  UserState s = replay(user, latest.prior, latest.scorer, impl_->events(*db, user));
  s.version = latest.version + 1;
  impl_->write_version(*db, s);
  txn.commit();
  return s;
}

void ProfileStore::delete_user(const std::string& user) {
  auto db = impl_->engine->acquire();
  Impl::Txn txn(*impl_, *db, user);
  impl_->require_user(*db, user);
  impl_->delete_rows(*db, user);
  txn.commit();
}

json ProfileStore::export_user(const std::string& user) const {
  auto db = impl_->engine->acquire();
  const UserState s = impl_->latest(*db, user);
  json events = json::array();
  for (const auto& e : impl_->events(*db, user)) events.push_back(event_to_json(e));
  return {{"format", "palign.user"},
          {"version", 1},
          {"user_id", user},
          {"scorer", s.scorer},
          {"prior", {{"names", s.prior.names}, {"mean", s.prior.mean}, {"covariance", s.prior.covariance}}},
          {"events", events}};
}

UserState ProfileStore::import_user(const json& j, bool replace) {
  auto bad = [](const std::string& what) { PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.import] ", what); };
  // json's value() throws its own exceptions for a field of another type: the types are checked here.
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() || j["format"] != "palign.user")
    bad("not a palign user export (its \"format\" must be \"palign.user\"); export one with `palign user export`");
  const json version = j.contains("version") ? j["version"] : json(0);
  if (!version.is_number() || version.get<double>() != 1)
    bad("a user export of version " + version.dump() + "; this palign reads version 1");
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
  auto db = impl_->engine->acquire();
  Impl::Txn txn(*impl_, *db, user);
  if (impl_->has_user(*db, user)) {
    PALIGN_CHECK(replace, ErrorCode::kConflict, "[users.import] user '", user, "' already exists in ", impl_->where(),
                 "; delete it first or import with --replace");
    impl_->delete_rows(*db, user);
  }
  impl_->insert_user(*db, user, state.prior, scorer);
  impl_->write_version(*db, state);
  std::map<int64_t, int64_t> renumbered;
  for (auto& e : events) {
    const int64_t old_id = e.id;
    if (e.type == EventType::kUndo) e.target = renumbered.at(e.target);
    e.id = 0;
    impl_->insert_event(*db, user, e);
    if (old_id) renumbered[old_id] = e.id;
  }
  if (!events.empty()) {
    UserState replayed = replay(user, prior, scorer, impl_->events(*db, user));
    replayed.version = 1;
    impl_->write_version(*db, replayed);
    state = replayed;
  }
  txn.commit();
  return state;
}

}  // namespace palign::users
