// The profile store on SQLite: one file in WAL mode, synchronous=FULL, one connection shared by the process's threads
// through a mutex; writers in other processes wait for the write lock (BEGIN IMMEDIATE, busy timeout).
#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "palign/base/error.h"
#include "store_db.h"

namespace palign::users::detail {

namespace {

// SQLite's result codes as palign's errors, each with what to do.
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::string& file, const char* what) {
  const std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.store] ", file,
                 primary == SQLITE_NOTADB ? " is not a palign store (not an SQLite database)"
                                          : " is damaged (the SQLite file is corrupt)",
                 "; pass --store a new file or a palign store, or restore this one from a backup");
  if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM || primary == SQLITE_IOERR ||
      primary == SQLITE_FULL || primary == SQLITE_AUTH)
    PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot ", what, " the store ", file, ": ", msg,
                 "; pass --store a file in a writable directory with free space");
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    PALIGN_THROW(ErrorCode::kConflict, "[users.store] the store ", file,
                 " stayed locked by another process; try again");
  PALIGN_THROW(ErrorCode::kInternal, "[users.store] ", file, ": ", what, ": ", msg);
}

const std::vector<std::string> kSqliteMigrations = {
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

class SqliteDb final : public StoreDb {
 public:
  SqliteDb(sqlite3* db, std::string file, bool read_only) : db_(db), file_(std::move(file)), read_only_(read_only) {}
  ~SqliteDb() override { sqlite3_close_v2(db_); }

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* stmt = nullptr;
    check(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), "read");
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> guard(stmt, sqlite3_finalize);
    for (size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      const SqlValue& p = params[i];
      switch (p.kind) {
        case SqlValue::Kind::kNull:
          check(sqlite3_bind_null(stmt, at), "bind");
          break;
        case SqlValue::Kind::kInt:
          check(sqlite3_bind_int64(stmt, at, p.i), "bind");
          break;
        case SqlValue::Kind::kText:
          check(sqlite3_bind_text(stmt, at, p.s.data(), static_cast<int>(p.s.size()), SQLITE_TRANSIENT), "bind");
          break;
        case SqlValue::Kind::kBlob:
          check(sqlite3_bind_blob(stmt, at, p.s.data(), static_cast<int>(p.s.size()), SQLITE_TRANSIENT), "bind");
          break;
      }
    }
    std::vector<SqlRow> rows;
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) check(rc, "read");
      SqlRow row(static_cast<size_t>(sqlite3_column_count(stmt)));
      for (int c = 0; c < std::ssize(row); ++c) {
        SqlValue& v = row[static_cast<size_t>(c)];
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_NULL:
            break;
          case SQLITE_INTEGER:
            v = SqlValue(static_cast<int64_t>(sqlite3_column_int64(stmt, c)));
            break;
          case SQLITE_BLOB: {
            const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, c));
            v = SqlValue::blob(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c))));
            break;
          }
          default: {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
            v = SqlValue(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c))));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void script(const std::string& sql) override { exec(sql, "write"); }

  void begin_write(const std::string&) override {
    PALIGN_CHECK(!read_only_, ErrorCode::kIo, "[users.store] ", file_, " is open read-only; open it for writing");
    // The write lock first, so that a read inside sees the latest state.
    exec("BEGIN IMMEDIATE", "lock");
  }
  void commit() override { exec("COMMIT", "commit to"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

  void exec(const std::string& sql, const char* what) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, file_, what);
  }
  void check(int rc, const char* what) const {
    if (rc != SQLITE_OK) throw_sqlite(db_, rc, file_, what);
  }

 private:
  sqlite3* db_;
  std::string file_;
  bool read_only_;
};

class SqliteEngine final : public StoreEngine {
 public:
  SqliteEngine(std::unique_ptr<SqliteDb> db, std::string file) : db_(std::move(db)), file_(std::move(file)) {}
  Lease acquire() override {
    mutex_.lock();
    return Lease(this, db_.get());
  }
  const std::string& where() const override { return file_; }
  const std::vector<std::string>& migrations() const override { return kSqliteMigrations; }
  bool empty(StoreDb& db) override { return db.query("SELECT count(*) FROM sqlite_master").at(0).at(0).i == 0; }
  bool has_table(StoreDb& db, const std::string& table) override {
    return db.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", {table}).at(0).at(0).i == 1;
  }

 protected:
  void release(StoreDb*) noexcept override { mutex_.unlock(); }

 private:
  std::unique_ptr<SqliteDb> db_;
  std::string file_;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<StoreEngine> open_sqlite(const std::string& file, bool create, bool read_only, int busy_timeout_ms) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(file, ec);
  PALIGN_CHECK(exists || (create && !read_only), ErrorCode::kNotFound, "[users.store] no store at ", file,
               "; create one with `palign user create --store ", file, " ...`");
  PALIGN_CHECK(!exists || std::filesystem::is_regular_file(file, ec), ErrorCode::kInvalidArgument, "[users.store] ",
               file, " is not a file; pass --store a file");
  sqlite3* raw = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file.c_str(), &raw, flags | SQLITE_OPEN_FULLMUTEX, nullptr);
  auto db = std::make_unique<SqliteDb>(raw, file, read_only);
  if (rc != SQLITE_OK) throw_sqlite(raw, rc, file, "open");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  // Reading the schema first tells a foreign file (NOTADB) from a store.
  db->query("SELECT count(*) FROM sqlite_master", {});
  if (!read_only) {
    // WAL: readers do not block the writer; synchronous=FULL: a committed transaction is on disk.
    db->exec("PRAGMA journal_mode=WAL", "open");
    db->exec("PRAGMA synchronous=FULL", "open");
  }
  return std::make_unique<SqliteEngine>(std::move(db), file);
}

}  // namespace palign::users::detail
