// Preference data: JSON Lines in TRL's conventions, {"prompt", "chosen", "rejected"} plus "user_id" and optional
// "dimension", "chosen_score", "rejected_score" (what `palign bench` writes, and what every trainer and reward
// reads). A non-string user_id is kept as its JSON text.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace palign::scoring {

struct PreferenceRecord {
  std::string prompt, chosen, rejected;
  std::string user_id;    // "" when absent
  std::string dimension;  // "" when absent
  std::optional<double> chosen_score, rejected_score;
};

// Reads a preference JSON Lines file (blank lines are skipped). Throws kNotFound for a missing file,
// kInvalidArgument naming the line for invalid JSON or a missing / non-string "prompt", "chosen" or "rejected", and
// for a file without records.
std::vector<PreferenceRecord> read_preference_jsonl(const std::filesystem::path& path);

}  // namespace palign::scoring
