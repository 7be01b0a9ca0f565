// Runs the behaviour table tests/data/cli/cases.json against the palign binary: exit statuses, output, and one-line
// errors for every bad-input path.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct CmdResult {
  int exit = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

CmdResult run_shell(const std::string& cmd, const fs::path& tmp) {
  const std::string full = "cd " + tmp.string() + " && (" + cmd + ") >" + (tmp / ".stdout").string() + " 2>" +
                           (tmp / ".stderr").string() + " </dev/null";
  const int status = std::system(("bash -c '" + [&] {
                                    std::string c = full;
                                    replace_all(c, "'", "'\\''");
                                    return c;
                                  }() + "'").c_str());
  CmdResult r;
  r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(tmp / ".stdout");
  r.err = slurp(tmp / ".stderr");
  return r;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

std::string expand(std::string s, const fs::path& tmp) {
  replace_all(s, "{palign}", PALIGN_BIN);
  replace_all(s, "{data}", PALIGN_TEST_DATA_DIR);
  replace_all(s, "{tmp}", tmp.string());
  return s;
}

// Shared fixtures: cases with the same "setup" (e.g. training steering vectors that five cases use) run it once per
// process, in a directory of its own; each case then starts from a copy of what it made. Removed at exit.
class SetupCache : public ::testing::Environment {
 public:
  // Fills tmp with what setup makes; false when the setup fails.
  static bool prepare(const std::string& setup, const fs::path& tmp) {
    auto it = made_.find(setup);
    if (it == made_.end()) {
      const fs::path dir = root() / std::to_string(made_.size());
      fs::create_directories(dir);
      if (run_shell(expand(setup, dir), dir).exit != 0) return false;
      fs::remove(dir / ".stdout");
      fs::remove(dir / ".stderr");
      it = made_.emplace(setup, dir).first;
    }
    fs::copy(it->second, tmp, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    return true;
  }
  void TearDown() override { fs::remove_all(root()); }

 private:
  static fs::path root() { return fs::temp_directory_path() / ("palign_cli_setup_" + std::to_string(::getpid())); }
  static inline std::map<std::string, fs::path> made_;
};
const auto* const kSetupCache = ::testing::AddGlobalTestEnvironment(new SetupCache);

class CliCase : public ::testing::TestWithParam<json> {};

TEST_P(CliCase, Behaves) {
  const json& c = GetParam();
  const fs::path tmp = fs::temp_directory_path() / ("palign_cli_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  if (c.contains("setup")) ASSERT_TRUE(SetupCache::prepare(c["setup"], tmp)) << "setup failed: " << c["setup"];
  const CmdResult r = run_shell(expand(c["cmd"], tmp), tmp);
  const std::string where = c["name"].get<std::string>() + "\nstdout: " + r.out + "\nstderr: " + r.err;
  EXPECT_LT(r.exit, 128) << "crashed (signal) " << where;
  if (c.contains("exit")) EXPECT_EQ(r.exit, c["exit"].get<int>()) << where;
  if (c.value("exit_nonzero", false)) EXPECT_NE(r.exit, 0) << where;
  for (const auto& s : c.value("stdout_contains", json::array()))
    EXPECT_NE(r.out.find(s.get<std::string>()), std::string::npos) << "stdout lacks " << s << "\n" << where;
  for (const auto& s : c.value("stderr_contains", json::array()))
    EXPECT_NE(r.err.find(s.get<std::string>()), std::string::npos) << "stderr lacks " << s << "\n" << where;
  for (const auto& s : c.value("stderr_not_contains", json::array()))
    EXPECT_EQ(r.err.find(s.get<std::string>()), std::string::npos) << "stderr has " << s << "\n" << where;
  if (c.contains("stdout_lines")) EXPECT_EQ(count_lines(r.out), c["stdout_lines"].get<int>()) << where;
  if (c.contains("last_line_json")) {
    std::string last = r.out;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    last = last.substr(last.find_last_of('\n') == std::string::npos ? 0 : last.find_last_of('\n') + 1);
    const json got = json::parse(last);
    for (auto it = c["last_line_json"].begin(); it != c["last_line_json"].end(); ++it)
      EXPECT_EQ(got[it.key()], it.value()) << it.key() << "\n" << where;
  }
  if (c.contains("exit") && c["exit"].get<int>() != 0 && !c.value("exit_nonzero", false))
    EXPECT_EQ(count_lines(r.err), 1) << "errors are one line\n" << where;
  fs::remove_all(tmp);
}

std::vector<json> load_cases() {
  std::ifstream in(fs::path(PALIGN_TEST_DATA_DIR) / "cli" / "cases.json");
  return json::parse(in)["cases"].get<std::vector<json>>();
}

std::string case_name(const ::testing::TestParamInfo<json>& info) {
  std::string n = info.param["name"].get<std::string>();
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Table, CliCase, ::testing::ValuesIn(load_cases()), case_name);

}  // namespace
