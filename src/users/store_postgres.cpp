// The profile store on PostgreSQL (`--store postgresql://…`): the SQLite store's schema and guarantees on a database
// that several replicas share. A pool of connections serves the process's threads. A write transaction first takes a
// transaction-scoped advisory lock on its user (pg_advisory_xact_lock), so writers of one user serialise across every
// replica while writers of different users proceed at once, and a transaction that reads the user's latest version
// inside the lock sees every earlier commit. A commit returns once PostgreSQL has flushed it (synchronous_commit on,
// the default): what palign acknowledges is durable. Every read goes to the database, so a replica never serves a
// cached posterior: an event acknowledged by one replica shapes the next request to any replica.
#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "palign/base/error.h"
#include "store_db.h"

#if PALIGN_HAVE_POSTGRESQL
#include <pqxx/pqxx>
#endif

namespace palign::users::detail {

bool is_postgres_url(const std::string& where) {
  return where.rfind("postgresql://", 0) == 0 || where.rfind("postgres://", 0) == 0;
}

#if PALIGN_HAVE_POSTGRESQL

namespace {

// A parameter as libpqxx passes it: text (blobs in bytea's hex form) or null.
struct PgParam {
  bool null = true;
  std::string text;
};

}  // namespace
}  // namespace palign::users::detail

namespace pqxx {
template <>
struct string_traits<palign::users::detail::PgParam> {
  using T = palign::users::detail::PgParam;
  static constexpr const char* name() noexcept { return "palign parameter"; }
  static constexpr bool has_null() noexcept { return true; }
  static bool is_null(const T& v) { return v.null; }
  static T null() { return {}; }
  static void from_string(const char* s, T& v) { v = {false, s}; }
  static std::string to_string(const T& v) { return v.text; }
};
}  // namespace pqxx

namespace palign::users::detail {

namespace {

const std::vector<std::string> kPostgresMigrations = {
    // 1: users, append-only events, derived versions (BIGINT: times are milliseconds since 1970).
    "CREATE TABLE users(user_id TEXT PRIMARY KEY, created_ms BIGINT NOT NULL, scorer TEXT NOT NULL,"
    "  names TEXT NOT NULL, prior_mean BYTEA NOT NULL, prior_covariance BYTEA NOT NULL);"
    "CREATE TABLE events(id BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, time_ms BIGINT NOT NULL,"
    "  type TEXT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX events_by_user ON events(user_id, id);"
    "CREATE TABLE versions(user_id TEXT NOT NULL, version BIGINT NOT NULL, last_event BIGINT NOT NULL,"
    "  time_ms BIGINT NOT NULL, events BIGINT NOT NULL, observations BIGINT NOT NULL, statement TEXT NOT NULL,"
    "  mean BYTEA NOT NULL, covariance BYTEA NOT NULL, PRIMARY KEY(user_id, version));",
    // 2: idempotency keys (a client's retry of an event is not stored twice).
    "ALTER TABLE events ADD COLUMN key TEXT;"
    "CREATE UNIQUE INDEX events_by_key ON events(user_id, key) WHERE key IS NOT NULL;",
};

// The URL without its password, for messages.
std::string redacted(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@', scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

// `?` placeholders as $1, $2, …
std::string numbered(const std::string& sql) {
  std::string out;
  int n = 0;
  bool quoted = false;
  for (const char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

std::string hex_bytea(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + 2 * bytes.size());
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

constexpr int kLockSpace = 1885;  // the advisory locks' first key: palign's store

class PostgresDb final : public StoreDb {
 public:
  PostgresDb(const std::string& url, const std::string& where) : url_(url), where_(where) { connect(); }
  ~PostgresDb() override {
    txn_.reset();
    if (conn_) conn_->disconnect();
  }

  bool broken() const { return broken_ || !conn_ || !conn_->is_open(); }

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    std::vector<PgParam> args;
    args.reserve(params.size());
    for (const auto& p : params) {
      switch (p.kind) {
        case SqlValue::Kind::kNull:
          args.push_back({});
          break;
        case SqlValue::Kind::kInt:
          args.push_back({false, std::to_string(p.i)});
          break;
        case SqlValue::Kind::kText:
          args.push_back({false, p.s});
          break;
        case SqlValue::Kind::kBlob:
          args.push_back({false, hex_bytea(p.s)});
          break;
      }
    }
    // A read outside a transaction is retried once on a fresh connection when the pooled one turns out to be broken
    // (terminated while idle, or the server restarted): it changed nothing.
    return retried(!txn_, "read", [&] {
      pqxx::result r;
      if (txn_) {
        r = txn_->exec_params(numbered(sql), pqxx::prepare::make_dynamic_params(args));
      } else {
        pqxx::nontransaction once(*conn_);
        r = once.exec_params(numbered(sql), pqxx::prepare::make_dynamic_params(args));
      }
      std::vector<SqlRow> rows;
      rows.reserve(r.size());
      for (const auto& row : r) {
        SqlRow out(row.size());
        for (pqxx::row::size_type c = 0; c < row.size(); ++c) {
          const pqxx::field f = row[c];
          if (f.is_null()) continue;
          switch (f.type()) {
            case 20:  // int8
            case 21:  // int2
            case 23:  // int4
              out[c] = SqlValue(f.as<int64_t>());
              break;
            case 17:  // bytea
              out[c] = SqlValue::blob(pqxx::binarystring(f).str());
              break;
            default:
              out[c] = SqlValue(std::string(f.c_str(), f.size()));
          }
        }
        rows.push_back(std::move(out));
      }
      return rows;
    });
  }

  void script(const std::string& sql) override {
    guarded("write", [&] {
      if (txn_) {
        txn_->exec(sql);
      } else {
        pqxx::nontransaction once(*conn_);
        once.exec(sql);
      }
      return 0;
    });
  }

  void begin_write(const std::string& lock) override {
    // Nothing is written before the lock is held, so a broken connection here is retried once on a fresh one.
    retried(true, "lock", [&] {
      txn_ = std::make_unique<pqxx::work>(*conn_);
      if (lock.empty()) {
        txn_->exec_params("SELECT pg_advisory_xact_lock($1, 0)", kLockSpace - 1);
      } else {
        txn_->exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kLockSpace, lock);
      }
      return 0;
    });
  }
  void commit() override {
    guarded("commit to", [&] {
      txn_->commit();
      txn_.reset();
      return 0;
    });
  }
  void rollback() noexcept override { txn_.reset(); }  // a pqxx::work aborts when destroyed uncommitted

 private:
  static std::string first_line(const std::string& s) {
    std::string line = s.substr(0, s.find('\n'));
    return line;
  }

  void connect() {
    txn_.reset();
    conn_.reset();
    try {
      conn_ = std::make_unique<pqxx::connection>(url_);
    } catch (const std::exception& e) {
      PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot connect to the store ", where_, ": ", first_line(e.what()),
                   "; is PostgreSQL running and the URL right?");
    }
    broken_ = false;
  }

  // guarded(f), and when `may_retry` and the connection proves broken, once more on a fresh connection.
  template <typename F>
  auto retried(bool may_retry, const char* what, F&& f) -> decltype(f()) {
    if (!may_retry) return guarded(what, f);
    if (broken_) connect();
    try {
      return guarded(what, f);
    } catch (const Error& e) {
      if (!broken_) throw;
    }
    connect();
    return guarded(what, f);
  }

  // Runs f, turning libpqxx's exceptions into palign's errors, each with what to do.
  template <typename F>
  auto guarded(const char* what, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const pqxx::in_doubt_error& e) {
      broken_ = true;
      txn_.reset();
      PALIGN_THROW(ErrorCode::kIo, "[users.store] the connection to ", where_,
                   " was lost during a commit, which may or may not have happened; retry with the same key");
    } catch (const pqxx::broken_connection& e) {
      broken_ = true;
      txn_.reset();
      PALIGN_THROW(ErrorCode::kIo, "[users.store] lost the connection to the store ", where_, " (",
                   first_line(e.what()), "); nothing was written, try again");
    } catch (const pqxx::insufficient_privilege& e) {
      txn_.reset();
      PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot ", what, " the store ", where_, ": ", first_line(e.what()),
                   "; grant the URL's role the rights on its database");
    } catch (const pqxx::disk_full& e) {
      txn_.reset();
      PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot ", what, " the store ", where_, ": ", first_line(e.what()),
                   "; free space on the database server");
    } catch (const pqxx::sql_error& e) {
      txn_.reset();
      // A server shutting down, or a connection terminated by an administrator, is a lost connection too.
      const std::string state = e.sqlstate();
      if (state.rfind("57P", 0) == 0 || state.rfind("08", 0) == 0) {
        broken_ = true;
        PALIGN_THROW(ErrorCode::kIo, "[users.store] lost the connection to the store ", where_, " (",
                     first_line(e.what()), "); nothing was written, try again");
      }
      PALIGN_THROW(ErrorCode::kInternal, "[users.store] ", where_, ": ", what, ": ", first_line(e.what()));
    } catch (const pqxx::failure& e) {
      broken_ = true;
      txn_.reset();
      PALIGN_THROW(ErrorCode::kIo, "[users.store] cannot ", what, " the store ", where_, ": ", first_line(e.what()),
                   "; try again");
    }
  }

  std::string url_, where_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::work> txn_;
  bool broken_ = false;
};

class PostgresEngine final : public StoreEngine {
 public:
  PostgresEngine(std::string url, int pool_size) : url_(std::move(url)), where_(redacted(url_)), size_(pool_size) {
    // The first connection at once: a bad URL or a stopped server fails the opening.
    idle_.push_back(std::make_unique<PostgresDb>(url_, where_));
    open_ = 1;
  }
  Lease acquire() override {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    if (!idle_.empty()) {
      auto db = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, db.release());
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(this, new PostgresDb(url_, where_));
    } catch (...) {
      std::lock_guard again(mutex_);
      --open_;
      available_.notify_one();
      throw;
    }
  }
  const std::string& where() const override { return where_; }
  const std::vector<std::string>& migrations() const override { return kPostgresMigrations; }
  bool empty(StoreDb& db) override {
    return db.query("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").at(0).at(0).i == 0;
  }
  bool has_table(StoreDb& db, const std::string& table) override {
    return db.query("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?", {table})
               .at(0)
               .at(0)
               .i == 1;
  }

 protected:
  void release(StoreDb* db) noexcept override {
    std::unique_ptr<PostgresDb> owned(static_cast<PostgresDb*>(db));
    owned->rollback();
    std::lock_guard lock(mutex_);
    if (owned->broken()) {
      --open_;  // dropped: the next acquire connects afresh
    } else {
      idle_.push_back(std::move(owned));
    }
    available_.notify_one();
  }

 private:
  std::string url_, where_;
  int size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PostgresDb>> idle_;
  int open_ = 0;
};

}  // namespace

std::unique_ptr<StoreEngine> open_postgres(const std::string& url, int pool_size) {
  PALIGN_CHECK(pool_size >= 1, ErrorCode::kInvalidArgument, "[users.store] the connection pool needs at least 1");
  return std::make_unique<PostgresEngine>(url, pool_size);
}

#else

std::unique_ptr<StoreEngine> open_postgres(const std::string& url, int) {
  PALIGN_THROW(ErrorCode::kUnsupported, "[users.store] ", url.substr(0, url.find("://") + 3),
               "… needs PostgreSQL support, and this palign was built without libpqxx; install libpqxx-dev "
               "(scripts/setup) and rebuild");
}

#endif

}  // namespace palign::users::detail
