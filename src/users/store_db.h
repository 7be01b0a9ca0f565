// The profile store's database connections (private to palign_users): the one SQL surface that store.cpp's logic is
// written against, and its two engines, SQLite (one file, one connection) and PostgreSQL (a server, a pool of
// connections shared by every thread and, through the database, by every replica).
//
// SQL is written once with `?` placeholders; an engine translates them. The few schema differences (integer widths,
// blob types, auto-increment) live in each engine's migrations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace palign::users::detail {

// A parameter or a column value. Blobs are raw bytes (the stored vectors of doubles).
struct SqlValue {
  enum class Kind { kNull, kInt, kText, kBlob };
  Kind kind = Kind::kNull;
  int64_t i = 0;
  std::string s;

  SqlValue() = default;
  SqlValue(int64_t v) : kind(Kind::kInt), i(v) {}                  // NOLINT(google-explicit-constructor)
  SqlValue(std::string v) : kind(Kind::kText), s(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  SqlValue(const char* v) : SqlValue(std::string(v)) {}            // NOLINT(google-explicit-constructor)
  static SqlValue blob(std::string bytes) {
    SqlValue v(std::move(bytes));
    v.kind = Kind::kBlob;
    return v;
  }
};
using SqlRow = std::vector<SqlValue>;

// One connection. Not thread-safe: a caller holds it through a Lease.
class StoreDb {
 public:
  virtual ~StoreDb() = default;
  // One statement with `?` placeholders; its rows. Throws palign errors naming the store.
  virtual std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
  // Several statements without parameters (migrations).
  virtual void script(const std::string& sql) = 0;
  // A write transaction that serialises with every other writer of `lock` (a user id; "" for the whole store, as the
  // migrations take it), in this process or another. What it reads inside is the latest committed state.
  virtual void begin_write(const std::string& lock) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
};

// The connections of one store: SQLite's single connection behind a mutex, or PostgreSQL's pool.
class StoreEngine {
 public:
  virtual ~StoreEngine() = default;

  // A connection held until the lease ends (then returned to the pool, or its mutex released).
  class Lease {
   public:
    Lease(StoreEngine* engine, StoreDb* db) : engine_(engine), db_(db) {}
    Lease(Lease&& o) noexcept : engine_(o.engine_), db_(o.db_) { o.engine_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (engine_) engine_->release(db_);
    }
    StoreDb& operator*() const { return *db_; }
    StoreDb* operator->() const { return db_; }

   private:
    StoreEngine* engine_;
    StoreDb* db_;
  };

  virtual Lease acquire() = 0;
  // Where the store is, for messages: the file, or the URL without its password.
  virtual const std::string& where() const = 0;
  // The migrations in this engine's dialect: kStoreSchema steps.
  virtual const std::vector<std::string>& migrations() const = 0;
  // True for a database that holds no table yet (a new store).
  virtual bool empty(StoreDb& db) = 0;
  // True when the database has a table named `table`.
  virtual bool has_table(StoreDb& db, const std::string& table) = 0;

 protected:
  virtual void release(StoreDb* db) noexcept = 0;
};

// A store URL: postgresql://… or postgres://…
bool is_postgres_url(const std::string& where);

// Each engine's opening: SQLite creates the file when `create` (else kNotFound); PostgreSQL connects `pool_size`
// connections lazily (the first at once, so a bad URL fails here).
std::unique_ptr<StoreEngine> open_sqlite(const std::string& file, bool create, bool read_only, int busy_timeout_ms);
std::unique_ptr<StoreEngine> open_postgres(const std::string& url, int pool_size);

}  // namespace palign::users::detail
