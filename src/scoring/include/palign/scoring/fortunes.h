// The fortune-cookie corpus from Debian's `fortunes` package: one record per %-separated fortune with its topic
// (the file name), cleaned, de-duplicated and split deterministically into train / valid / test by a hash of the
// text. The default model trains on it and the bench's topic graders learn from its labels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace palign::scoring {

struct FortuneRecord {
  std::string text;
  std::string topic;
  std::string split;  // "train", "valid" or "test"
};

struct FortunesOptions {
  std::filesystem::path source_dir = "/usr/share/games/fortunes";
  // ascii-art holds pictures, not prose: left out by default.
  std::vector<std::string> exclude = {"ascii-art"};
  int valid_percent = 5;
  int test_percent = 5;
  // Append new fields here.
};

// Removes backspace overstrikes ("_\bX", "X\bX" -> "X"), control characters other than newline and tab, and
// trailing whitespace on every line and at the ends. Invalid UTF-8 bytes are replaced with U+FFFD.
std::string clean_fortune(std::string_view raw);

// The deterministic split of a (cleaned) text: FNV-1a 64 of its bytes, mod 100.
std::string split_of(std::string_view text, const FortunesOptions& options = {});

// Reads every topic file (those with a strfile .dat index beside them), cleaned and de-duplicated (the first
// occurrence in file-name order wins). Throws palign::Error(kNotFound) with the install command when the package is
// missing.
std::vector<FortuneRecord> read_fortunes(const FortunesOptions& options = {});

// Writes DIR/fortunes.jsonl ({"text", "topic", "split"} per line) and DIR/manifest.json (format, version, source,
// counts per split and topic). Throws kIo when DIR cannot be written.
void write_fortunes_corpus(const std::filesystem::path& dir, const std::vector<FortuneRecord>& records,
                           const FortunesOptions& options = {});

}  // namespace palign::scoring
