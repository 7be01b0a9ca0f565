// Building the fortunes corpus (see fortunes.h).
#include "palign/scoring/fortunes.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "palign/base/error.h"
#include "palign/base/hash.h"

namespace palign::scoring {

namespace fs = std::filesystem;

namespace {
// Replaces invalid UTF-8 sequences with U+FFFD; keeps valid ones.
std::string valid_utf8(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string rstrip(const std::string& s) {
  const size_t end = s.find_last_not_of(" \t\r");
  return end == std::string::npos ? std::string() : s.substr(0, end + 1);
}
}  // namespace

std::string clean_fortune(std::string_view raw) {
  // Overstrike: a backspace erases the character before it (the next one is printed on top).
  std::string s;
  for (char ch : raw) {
    if (ch == '\b') {
      if (!s.empty()) {
        // Erase one whole UTF-8 character.
        while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
        if (!s.empty()) s.pop_back();
      }
      continue;
    }
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && ch != '\n' && ch != '\t') || c == 0x7F) continue;
    s.push_back(ch);
  }
  s = valid_utf8(s);
  std::stringstream in(s);
  std::string line, out;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(rstrip(line));
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  for (size_t i = first; i < lines.size(); ++i) out += (i > first ? "\n" : "") + lines[i];
  return out;
}

std::string split_of(std::string_view text, const FortunesOptions& options) {
  const uint64_t h = fnv1a64(text);
  const int bucket = static_cast<int>(h % 100);
  if (bucket < options.test_percent) return "test";
  if (bucket < options.test_percent + options.valid_percent) return "valid";
  return "train";
}

std::vector<FortuneRecord> read_fortunes(const FortunesOptions& options) {
  PALIGN_CHECK(fs::is_directory(options.source_dir), ErrorCode::kNotFound, "[scoring.fortunes] ",
               options.source_dir.string(),
               " does not exist; install Debian's fortunes package (apt-get install fortunes)");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(options.source_dir)) {
    const fs::path& p = entry.path();
    if (!entry.is_regular_file() || p.has_extension()) continue;
    if (!fs::exists(p.string() + ".dat")) continue;
    const std::string topic = p.filename().string();
    if (std::find(options.exclude.begin(), options.exclude.end(), topic) != options.exclude.end()) continue;
    files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  PALIGN_CHECK(!files.empty(), ErrorCode::kNotFound, "[scoring.fortunes] no fortune files in ",
               options.source_dir.string(), "; install Debian's fortunes package (apt-get install fortunes)");
  std::vector<FortuneRecord> out;
  std::set<std::string> seen;
  for (const auto& p : files) {
    std::ifstream in(p, std::ios::binary);
    PALIGN_CHECK(in.good(), ErrorCode::kIo, "[scoring.fortunes] cannot read ", p.string());
    std::string line, current;
    auto flush = [&] {
      std::string text = clean_fortune(current);
      current.clear();
      if (text.empty() || !seen.insert(text).second) return;
      out.push_back({text, p.filename().string(), split_of(text, options)});
    };
    while (std::getline(in, line)) {
      if (line == "%" || line == "%\r") {
        flush();
      } else {
        current += line + "\n";
      }
    }
    flush();
  }
  return out;
}

void write_fortunes_corpus(const fs::path& dir, const std::vector<FortuneRecord>& records,
                           const FortunesOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(dir), ErrorCode::kIo, "[scoring.fortunes] cannot create ", dir.string(), ": ",
               ec.message());
  const fs::path corpus = dir / "fortunes.jsonl";
  {
    std::ofstream out(corpus, std::ios::trunc);
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[scoring.fortunes] cannot write ", corpus.string());
    for (const auto& r : records)
      out << nlohmann::json{{"text", r.text}, {"topic", r.topic}, {"split", r.split}}.dump() << "\n";
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[scoring.fortunes] writing ", corpus.string(), " failed");
  }
  std::map<std::string, int64_t> per_split;
  std::map<std::string, std::map<std::string, int64_t>> per_topic;
  int64_t chars = 0;
  for (const auto& r : records) {
    per_split[r.split]++;
    per_topic[r.topic][r.split]++;
    chars += static_cast<int64_t>(r.text.size());
  }
  nlohmann::json manifest{{"format", "palign.fortunes"},
                          {"version", 1},
                          {"source", options.source_dir.string()},
                          {"excluded_topics", options.exclude},
                          {"split_rule", "fnv1a64(text) % 100: < test% -> test, < test%+valid% -> valid, else train"},
                          {"valid_percent", options.valid_percent},
                          {"test_percent", options.test_percent},
                          {"records", records.size()},
                          {"bytes", chars},
                          {"splits", per_split},
                          {"topics", per_topic},
                          {"file", "fortunes.jsonl"}};
  std::ofstream out(dir / "manifest.json", std::ios::trunc);
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[scoring.fortunes] cannot write ", (dir / "manifest.json").string());
  out << manifest.dump(2) << "\n";
}

}  // namespace palign::scoring
