// The preference JSON Lines reader: the bench's format with every optional field, and each bad input a clear error.
#include "palign/scoring/preference_data.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::scoring;
using nlohmann::json;
using palign::test::error_code_of;
using palign::test::fresh_dir;
namespace fs = std::filesystem;

namespace {

void write_lines(const fs::path& path, const std::vector<json>& lines) {
  std::ofstream out(path);
  for (const auto& j : lines) out << j.dump() << "\n";
}

}  // namespace

TEST(PreferenceData, ReadsTheBenchFormatAndNamesBadLines) {
  const fs::path dir = fresh_dir("read");
  write_lines(dir / "ok.jsonl", {{{"prompt", "p"},
                                  {"chosen", "a"},
                                  {"rejected", "b"},
                                  {"user_id", "u1"},
                                  {"dimension", "length"},
                                  {"chosen_score", 1.5}},
                                 {{"prompt", "q"}, {"chosen", "c"}, {"rejected", "d"}, {"user_id", 7}}});
  const auto records = read_preference_jsonl(dir / "ok.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].user_id, "u1");
  EXPECT_EQ(records[0].dimension, "length");
  EXPECT_DOUBLE_EQ(*records[0].chosen_score, 1.5);
  EXPECT_FALSE(records[0].rejected_score.has_value());
  EXPECT_EQ(records[1].user_id, "7");
  write_lines(dir / "missing.jsonl", {{{"prompt", "p"}, {"chosen", "a"}}});
  EXPECT_EQ(error_code_of([&] { read_preference_jsonl(dir / "missing.jsonl"); }), ErrorCode::kInvalidArgument);
  std::ofstream(dir / "bad.jsonl") << "{\"prompt\": \n";
  EXPECT_EQ(error_code_of([&] { read_preference_jsonl(dir / "bad.jsonl"); }), ErrorCode::kInvalidArgument);
  std::ofstream(dir / "empty.jsonl") << "\n\n";
  EXPECT_EQ(error_code_of([&] { read_preference_jsonl(dir / "empty.jsonl"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { read_preference_jsonl(dir / "none.jsonl"); }), ErrorCode::kNotFound);
}
