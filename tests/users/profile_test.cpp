// User profile directories: versions, relative paths, weights by name, and every bad file a clear error.
#include "palign/users/profile.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "palign/base/error.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::users;
using palign::test::error_code_of;
using palign::test::fresh_dir;
namespace fs = std::filesystem;

namespace {

TEST(Profile, RoundTripsWithNewVersionsAndRelativePaths) {
  const fs::path dir = fresh_dir("profile");
  std::ofstream(dir / "pairs.jsonl") << "{}\n";
  UserProfile p;
  p.user_id = "alice";
  p.weights = {{"humour", 0.8}, {"length", -0.25}};
  p.statement = "Short and funny.";
  p.history = dir / "pairs.jsonl";
  p.reward = "/elsewhere/reward";
  p.save(dir);
  EXPECT_EQ(p.version, 1);
  const auto j = test::read_json(dir / "profile.json");
  EXPECT_EQ(j["history"], "pairs.jsonl");  // inside the directory: relative
  EXPECT_EQ(j["reward"], "/elsewhere/reward");
  auto back = UserProfile::load(dir);
  EXPECT_EQ(back.version, 1);
  EXPECT_EQ(back.user_id, "alice");
  EXPECT_EQ(back.weights, p.weights);
  EXPECT_EQ(back.statement, p.statement);
  EXPECT_EQ(back.history, dir / "pairs.jsonl");
  EXPECT_EQ(back.reward, fs::path("/elsewhere/reward"));
  back.weights["humour"] = 1.0;
  back.save(dir);
  EXPECT_EQ(UserProfile::load(dir).version, 2);
  fs::remove_all(dir);
}

TEST(Profile, BadFilesFail) {
  const fs::path dir = fresh_dir("bad_profile");
  EXPECT_EQ(error_code_of([&] { UserProfile::load(dir); }), ErrorCode::kNotFound);
  for (const char* text : {"not json", R"({"version": 1})", R"({"format": "palign.user_profile"})",
                           R"({"format": "palign.user_profile", "version": 1, "weights": [1, 2]})",
                           R"({"format": "palign.user_profile", "version": 1, "weights": {"a": "x"}})",
                           R"({"format": "palign.user_profile", "version": 1, "statement": 3})"}) {
    std::ofstream(dir / "profile.json") << text;
    EXPECT_EQ(error_code_of([&] { UserProfile::load(dir); }), ErrorCode::kInvalidArgument) << text;
  }
  fs::remove_all(dir);
}

// A "format" of another type, found by fuzzing: json's own type_error escaped UserProfile::load.
TEST(Profile, AMistypedFormatIsAClearError) {
  const fs::path dir = fresh_dir("mistyped_profile");
  for (const char* text : {R"({"format": 1, "version": 1})", R"({"format": null})", R"({"format": {}})"}) {
    std::ofstream(dir / "profile.json") << text;
    EXPECT_EQ(palign::test::error_message_of([&] { UserProfile::load(dir); }),
              "[users.profile] " + (dir / "profile.json").string() +
                  " is not a user profile (\"format\" must be \"palign.user_profile\")")
        << text;
  }
  fs::remove_all(dir);
}

}  // namespace
