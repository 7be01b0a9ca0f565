// API keys (`palign serve --api-keys FILE`). The file holds one key per line as `TENANT sha256:HEX [admin]` ('#'
// starts a comment): the SHA-256 of the key, never the key itself, so a leaked file grants nothing. Each key belongs
// to a tenant; a tenant's user ids live in their own namespace (store id "TENANT/USER"), so one tenant can neither
// read, write, give feedback for nor delete another's users. An admin key may name any user by its store id
// ("TENANT/USER") and manage keys (POST, GET and DELETE /v1/admin/keys). `palign key --api-keys FILE --tenant T
// [--admin]` adds a key and prints it once.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace palign::server {

struct ApiKey {
  std::string tenant;
  std::string hash;  // "sha256:<64 hex>"
  bool admin = false;
};

// "sha256:<hex>" of the key's bytes.
std::string hash_key(std::string_view key);

// A tenant name: 1-64 characters of [A-Za-z0-9_.-]. Returns an error message, empty when valid.
std::string check_tenant(std::string_view tenant);

class KeyRing {
 public:
  KeyRing() = default;
  // Reads a key file. Throws kNotFound (no file), kInvalidArgument naming the line (not `TENANT sha256:HEX [admin]`,
  // a bad tenant, a hash repeated).
  static KeyRing load(const std::filesystem::path& file);
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // The entry of a presented key (compared by hash, in constant time per entry), or null.
  const ApiKey* find(std::string_view key) const;
  const std::vector<ApiKey>& keys() const { return keys_; }

 private:
  std::vector<ApiKey> keys_;
};

// A new random key ("pa-" and 48 hex digits from the system's random source).
std::string new_api_key();
// Appends a new key of the tenant to the file (created when missing, mode 0600) and returns the key. Throws
// kInvalidArgument for a bad tenant, kIo when the file cannot be written.
std::string add_api_key(const std::filesystem::path& file, const std::string& tenant, bool admin);
// Removes the key of this hash ("sha256:HEX") from the file (rewritten atomically: a temporary file renamed over it).
// Throws kNotFound when no line has that hash, kIo when the file cannot be written.
void remove_api_key(const std::filesystem::path& file, const std::string& hash);

}  // namespace palign::server
