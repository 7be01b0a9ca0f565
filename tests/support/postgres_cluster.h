// A throwaway PostgreSQL cluster for tests: initdb and pg_ctl in a temporary directory, listening on a Unix socket in
// that directory only (no TCP port, so parallel test processes never collide), trust authentication, stopped and
// removed at exit. Run as root (as CI runs), the server runs as the `postgres` system user, since PostgreSQL refuses
// root. Where the server binaries are absent, available() is false and why() says so; with CI=true that is a failure
// rather than a skip, since scripts/setup installs them.
#pragma once

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace palign::test {

class PostgresCluster {
 public:
  // The process's cluster, started on first use.
  static PostgresCluster& shared() {
    static PostgresCluster cluster;
    return cluster;
  }

  bool available() const { return started_; }
  const std::string& why() const { return why_; }
  // True when a missing cluster must fail the test (CI), not skip it.
  static bool required() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
  }

  // A new empty database; its URL.
  std::string create_database(const std::string& name) {
    const std::string db = name + "_" + std::to_string(++databases_);
    run(bin_ + "/createdb -h " + dir_ + " -p 5432 -U postgres " + db);
    return url(db);
  }
  std::string url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + dir_ + "&port=5432&user=postgres";
  }
  // Runs SQL on a database through psql (as an administrator would); its output, rows unaligned.
  std::string psql(const std::string& db, const std::string& sql) {
    const std::string file = dir_ + "/query.sql";
    std::ofstream(file) << sql;
    ::chmod(file.c_str(), 0644);
    return run(bin_ + "/psql -X -q -t -A -v ON_ERROR_STOP=1 -h " + dir_ + " -p 5432 -U postgres -d " + db + " -f " +
               file);
  }
  // pg_ctl stop -m fast|immediate, and start again.
  void restart(const std::string& mode = "fast") {
    run(bin_ + "/pg_ctl -D " + dir_ + "/data -m " + mode + " -w stop", true);
    start();
  }
  const std::string& dir() const { return dir_; }

  ~PostgresCluster() {
    if (started_) run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop", true);
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

 private:
  PostgresCluster() {
    bin_ = find_bin();
    if (bin_.empty()) {
      why_ = "the PostgreSQL server binaries (initdb, pg_ctl) are absent; install postgresql (scripts/setup)";
      return;
    }
    const bool root = ::geteuid() == 0;
    const passwd* pg = root ? ::getpwnam("postgres") : nullptr;
    if (root && !pg) {
      why_ = "running as root and there is no `postgres` user to run the server as; install postgresql";
      return;
    }
    if (root) as_ = "runuser -u postgres -- ";
    dir_ = (std::filesystem::temp_directory_path() / ("palign_pg_" + std::to_string(::getpid()))).string();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    std::filesystem::create_directories(dir_);
    if (root && ::chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) {
      why_ = "cannot hand " + dir_ + " to the postgres user";
      return;
    }
    ::chmod(dir_.c_str(), 0755);
    if (!run_ok(bin_ + "/initdb -D " + dir_ + "/data -U postgres --auth=trust --no-sync -E UTF8 >" + dir_ +
                "/initdb.log 2>&1")) {
      why_ = "initdb failed: " + read(dir_ + "/initdb.log");
      return;
    }
    start();
    started_ = true;
  }

  void start() {
    if (!run_ok(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
                "/server.log -w -t 60 -o \"-c listen_addresses='' -k " + dir_ +
                " -p 5432 -c max_connections=200 -c fsync=off\" start >/dev/null 2>&1"))
      why_ = "pg_ctl start failed: " + read(dir_ + "/server.log");
  }

  static std::string find_bin() {
    if (const char* env = std::getenv("PALIGN_PG_BIN")) return env;
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec))
      if (std::filesystem::exists(entry.path() / "bin" / "initdb") &&
          std::filesystem::exists(entry.path() / "bin" / "pg_ctl"))
        found.push_back((entry.path() / "bin").string());
    std::sort(found.begin(), found.end());
    return found.empty() ? "" : found.back();
  }

  static std::string read(const std::string& file) {
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  bool run_ok(const std::string& command) const { return std::system((as_ + command).c_str()) == 0; }

  // Runs a command as the server's user; its output. Throws (failing the test) unless `may_fail`.
  std::string run(const std::string& command, bool may_fail = false) const {
    const std::string out = dir_ + "/run.out";
    const bool ok = run_ok(command + " >" + out + " 2>&1");
    const std::string text = read(out);
    if (!ok && !may_fail) throw std::runtime_error("`" + command + "` failed: " + text);
    return text;
  }

  std::string bin_, dir_, as_, why_;
  bool started_ = false;
  int databases_ = 0;
};

}  // namespace palign::test
