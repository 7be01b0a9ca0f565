// The durable profile store (DESIGN.md "Storage"): SQLite in WAL mode, one file, no server (`--store palign.db`), or
// PostgreSQL, which several replicas share (`--store postgresql://…`; store_postgres.cpp says how they stay in step).
//
// Tables: meta (format, schema version), users (id, prior, scorer fingerprint, creation time), events (append-only:
// id, user, time, type, the event's JSON, its idempotency key) and versions (each user's derived state after each
// stored batch: mean and covariance as exact doubles, the statement, the last event). A batch of events and the
// version it leads to are one transaction, committed with synchronous=FULL before append() returns: what palign
// acknowledges is on disk. Writers take the write lock first (BEGIN IMMEDIATE) and wait for each other (busy timeout),
// so two processes appending at once serialise: neither loses nor duplicates an event, and an event whose idempotency
// key the user already has is answered with its stored id instead of being stored again.
//
// The schema carries a version (meta.schema); a store of an older version is migrated forward on open (each step
// one transaction), one of a newer version is refused with a message saying to upgrade palign.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "palign/users/feedback.h"

namespace palign::users {

inline constexpr int kStoreSchema = 2;

struct StoreOptions {
  bool create = true;      // create the file when it does not exist (else kNotFound)
  bool read_only = false;  // open for reading only (no migration; writes throw kIo)
  int busy_timeout_ms = 30000;
  int pool_size = 8;  // PostgreSQL: connections kept open for the process's threads
};

struct VersionInfo {
  int64_t version = 0;
  int64_t last_event = 0;
  int64_t time_ms = 0;
  int64_t events = 0;
};

class ProfileStore {
 public:
  // Opens (or creates) the store at `file`, an SQLite file or a postgresql:// URL (its database is given the schema
  // when it holds no table). Throws kNotFound (no such file and create = false), kIo (the path cannot be written or
  // read: a read-only or missing directory; a database that cannot be reached), kInvalidArgument (a file or
  // database that is not a palign store), kUnsupported (a store written by a newer palign; PostgreSQL in a palign
  // built without libpqxx). A store is safe to share between threads.
  static std::unique_ptr<ProfileStore> open(const std::filesystem::path& file, const StoreOptions& options = {});
  ~ProfileStore();
  ProfileStore(const ProfileStore&) = delete;
  ProfileStore& operator=(const ProfileStore&) = delete;

  const std::filesystem::path& path() const;
  // Reaches the store with one trivial query (a load balancer's health check). Throws kIo when it cannot.
  void ping() const;
  int schema() const;

  // A new user at version 0 (the prior alone); a statement becomes the user's first event (version 1). Throws
  // kConflict when the user exists, kInvalidArgument for an empty id or a bad prior.
  UserState create_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer,
                        const std::string& statement = "");
  // Creates the user at the prior unless they exist; true when this call created them. Safe against another thread or
  // replica creating the same user at once (where create_user would throw kConflict).
  bool ensure_user(const std::string& user, const DimensionWeights& prior, const std::string& scorer);
  bool has_user(const std::string& user) const;
  std::vector<std::string> users() const;

  // The user's latest state. Throws kNotFound for an unknown user, naming `palign user create`.
  UserState profile(const std::string& user) const;
  std::vector<VersionInfo> versions(const std::string& user) const;
  // Every stored event of the user, in id order.
  std::vector<FeedbackEvent> events(const std::string& user) const;

  // Appends events (checked first: one bad event stores none of them) and the version they lead to, in one durable
  // transaction; returns the new state. The events' ids and times are set. An event whose key the user already has
  // is not stored again (its stored id is returned in `ids`). Throws kNotFound (unknown user), kInvalidArgument (a
  // bad event), kIo (the store cannot be written).
  struct Appended {
    UserState state;
    std::vector<int64_t> ids;
    int64_t stored = 0;  // events newly stored (the rest were duplicates by key)
  };
  Appended append(const std::string& user, std::vector<FeedbackEvent> events);

  // The state replayed from the prior and every stored event (what the incremental versions must equal).
  UserState rebuild(const std::string& user) const;
  // rebuild(), stored as a new version (a repair after a damaged version; the events are never changed).
  UserState store_rebuilt(const std::string& user);

  // Deletes the user with every event and version. Throws kNotFound for an unknown user.
  void delete_user(const std::string& user);

  // {"format": "palign.user", "version": 1, "user_id", "scorer", "prior": {"names", "mean",
  //  "covariance"}, "events": [...]}: everything needed to rebuild the user elsewhere.
  nlohmann::json export_user(const std::string& user) const;
  // Creates the user from an export and replays its events (ids are renumbered; undo targets follow). Throws
  // kConflict when the user exists (unless replace), kInvalidArgument for a malformed export.
  UserState import_user(const nlohmann::json& exported, bool replace = false);

 private:
  struct Impl;
  explicit ProfileStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace palign::users
