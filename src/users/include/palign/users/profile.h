// A user profile (decoding strategies read its fields as decoding::Personalization), and its directory format
// (`--user-profile DIR`). The users module is where the online learner (weights with their uncertainty, updated one
// feedback event at a time) and the durable profile store will grow; this file is the profile's current on-disk form.
// DIR/profile.json = {"format": "palign.user_profile", "version": N, "user_id": "...",
//                     "weights": {"dimension": w, ...}, "statement": "...", "reward": "DIR", "history": "FILE"}
// weights: over named preference dimensions (fusion experts, steering vectors, multi-objective reward labels, matched
// by name); statement: free-text preferences (prompt, contrast); reward: a `palign train reward` directory that knows
// the user (best_of_n, cd_block); history: the user's labelled pairs as JSON Lines (retrieval of liked responses; a
// personalized reward's evidence for a user it has not seen). Paths are relative to DIR unless absolute. Every field
// but "format" and "version" is optional. Saving writes version + 1 of what was loaded (a new version per change).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace palign::users {

struct UserProfile {
  int64_t version = 0;
  std::string user_id;
  std::map<std::string, double> weights;
  std::string statement;
  std::filesystem::path reward;   // absolute after load; empty: none
  std::filesystem::path history;  // absolute after load; empty: none

  // Throws kNotFound (no DIR/profile.json), kInvalidArgument (not a profile, a field of the wrong type, a weight that
  // is not a finite number), naming the file and the field.
  static UserProfile load(const std::filesystem::path& dir);
  // Writes DIR/profile.json atomically with version = this->version + 1 (and updates this->version). Paths inside
  // DIR are stored relative to it. Throws kIo when DIR cannot be written.
  void save(const std::filesystem::path& dir);
};

}  // namespace palign::users
