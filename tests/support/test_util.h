// Shared helpers for runtime tests: fixture paths, JSON loading, tolerance table (STYLE.md R8).
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "palign/base/error.h"

namespace palign::test {

inline std::filesystem::path data_dir() { return PALIGN_TEST_DATA_DIR; }
inline std::filesystem::path hf_model(const std::string& name) { return data_dir() / "hf" / "models" / name; }
inline std::filesystem::path hf_tokenizer(const std::string& name) {
  return data_dir() / "hf" / "tokenizers" / name;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// Tolerances (max-abs) by what is compared. The fixture contract fixes logits at 1e-4.
constexpr double kLogitsTol = 1e-4;
constexpr double kF32Tol = 1e-5;  // naive twin vs fast path, float32

inline std::vector<int64_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

// Runs f and returns the ErrorCode of the palign::Error it throws (printing the message); fails the test when it
// throws none.
template <typename F>
ErrorCode error_code_of(F&& f) {
  try {
    f();
  } catch (const palign::Error& e) {
    std::printf("  expected error: %s\n", e.what());
    return e.code();
  }
  ADD_FAILURE() << "no palign::Error thrown";
  return ErrorCode::kSentinel;
}

// Runs f and returns the message of the palign::Error it throws; fails the test when it throws none.
template <typename F>
std::string error_message_of(F&& f) {
  try {
    f();
  } catch (const palign::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no palign::Error thrown";
  return "";
}

}  // namespace palign::test
