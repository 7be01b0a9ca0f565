// API keys: SHA-256 (OpenSSL's EVP) of each key, compared in constant time.
#include "palign/server/auth.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "palign/base/error.h"

namespace palign::server {

namespace {

std::string hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) out += kDigits[bytes[i] >> 4], out += kDigits[bytes[i] & 15];
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string hash_key(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  PALIGN_CHECK(EVP_Digest(key.data(), key.size(), digest, &n, EVP_sha256(), nullptr) == 1, ErrorCode::kInternal,
               "[server.auth] SHA-256 failed");
  return "sha256:" + hex(digest, n);
}

std::string check_tenant(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 64) return "a tenant name has 1 to 64 characters";
  for (char c : tenant)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return "a tenant name has only letters, digits, '_', '.' and '-'";
  return "";
}

KeyRing KeyRing::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[server.auth] no API key file ", file.string(),
               "; add a key with `palign key --api-keys ", file.string(), " --tenant NAME`");
  KeyRing ring;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string s; words >> s;) w.push_back(s);
    if (w.empty()) continue;
    const auto bad = [&](const std::string& why) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[server.auth] ", file.string(), ":", line_no, ": ", why,
                   "; each line is `TENANT sha256:HEX [admin]` (palign key writes them)");
    };
    if (w.size() < 2 || w.size() > 3) bad("expected 2 or 3 words");
    if (const auto err = check_tenant(w[0]); !err.empty()) bad(err);
    if (w[1].size() != 71 || w[1].rfind("sha256:", 0) != 0 ||
        w[1].find_first_not_of("0123456789abcdef", 7) != std::string::npos)
      bad("the second word must be sha256: and 64 lowercase hex digits");
    if (w.size() == 3 && w[2] != "admin") bad("the third word, when present, must be admin");
    for (const auto& k : ring.keys_)
      if (k.hash == w[1]) bad("this key's hash is already listed");
    ring.keys_.push_back({w[0], w[1], w.size() == 3});
  }
  return ring;
}

const ApiKey* KeyRing::find(std::string_view key) const {
  const std::string h = hash_key(key);
  const ApiKey* found = nullptr;
  for (const auto& k : keys_)
    if (equal_constant_time(k.hash, h)) found = &k;
  return found;
}

std::string new_api_key() {
  unsigned char bytes[24];
  PALIGN_CHECK(RAND_bytes(bytes, sizeof bytes) == 1, ErrorCode::kInternal, "[server.auth] no random bytes");
  return "pa-" + hex(bytes, sizeof bytes);
}

std::string add_api_key(const std::filesystem::path& file, const std::string& tenant, bool admin) {
  const std::string err = check_tenant(tenant);
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[server.auth] ", err, ", got \"", tenant, "\"");
  if (std::filesystem::exists(file)) (void)KeyRing::load(file);  // a malformed file is not appended to
  const std::string key = new_api_key();
  const std::string line = tenant + " " + hash_key(key) + (admin ? " admin" : "") + "\n";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  PALIGN_CHECK(fd >= 0, ErrorCode::kIo, "[server.auth] cannot write ", file.string());
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  PALIGN_CHECK(ok, ErrorCode::kIo, "[server.auth] cannot write ", file.string());
  return key;
}

void remove_api_key(const std::filesystem::path& file, const std::string& hash) {
  std::ifstream in(file);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[server.auth] no API key file ", file.string());
  std::string kept, line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream words(line.substr(0, line.find('#')));
    std::string tenant, h;
    if (words >> tenant >> h && h == hash) {
      found = true;
      continue;
    }
    kept += line + "\n";
  }
  PALIGN_CHECK(found, ErrorCode::kNotFound, "[server.auth] no key with hash ", hash, " in ", file.string());
  const std::filesystem::path tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  PALIGN_CHECK(fd >= 0, ErrorCode::kIo, "[server.auth] cannot write ", tmp.string());
  const bool ok = ::write(fd, kept.data(), kept.size()) == static_cast<ssize_t>(kept.size()) && ::fsync(fd) == 0;
  ::close(fd);
  PALIGN_CHECK(ok && ::rename(tmp.c_str(), file.c_str()) == 0, ErrorCode::kIo, "[server.auth] cannot write ",
               file.string());
}

}  // namespace palign::server
