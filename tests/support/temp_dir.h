// Scratch directories for tests: unique per process (the pid is in the name), so test processes that CTest runs in
// parallel never share one. No torch here: the CLI test uses it too.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace palign::test {

// An empty directory TMP/palign_test_<name>_<pid>, made anew (what a previous run left there is removed). The caller
// removes it, or leaves it for inspection when a test fails.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("palign_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// fresh_dir(name), removed again when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& name) : path_(fresh_dir(name)) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& child) const { return path_ / child; }
  // Writes text to path()/file and returns that path.
  std::filesystem::path write(const std::string& file, const std::string& text) const {
    std::ofstream(path_ / file, std::ios::binary) << text;
    return path_ / file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace palign::test
