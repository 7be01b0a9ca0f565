// The fortunes corpus builder: cleaning rules by hand, deterministic splits, de-duplication, and the files it writes.
#include "palign/scoring/fortunes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "temp_dir.h"

using namespace palign;
using namespace palign::scoring;
namespace fs = std::filesystem;

namespace {

using palign::test::fresh_dir;

TEST(Fortunes, CleaningRemovesOverstrikesAndControlCharacters) {
  EXPECT_EQ(clean_fortune("_\bb_\bo_\bl_\bd text"), "bold text");
  EXPECT_EQ(clean_fortune("B\bBo\bol\bld\bd"), "Bold");
  EXPECT_EQ(clean_fortune("\n\nbell\x07 and \r\ncr  \n\n"), "bell and\ncr");
  EXPECT_EQ(clean_fortune("\ttabbed\n\t\t-- Author"), "\ttabbed\n\t\t-- Author");
  EXPECT_EQ(clean_fortune("caf\xc3\xa9 \xff"), "caf\xc3\xa9 \xef\xbf\xbd");
  EXPECT_EQ(clean_fortune("\xc3\xa9\b!"), "!") << "a backspace erases a whole UTF-8 character";
}

TEST(Fortunes, SplitIsDeterministicAndNearTheRequestedShares) {
  EXPECT_EQ(split_of("hello"), split_of("hello"));
  std::map<std::string, int> count;
  for (int i = 0; i < 20000; ++i) count[split_of("fortune number " + std::to_string(i))]++;
  std::printf("splits of 20000 synthetic texts: train %d valid %d test %d\n", count["train"], count["valid"],
              count["test"]);
  EXPECT_NEAR(count["test"] / 20000.0, 0.05, 0.01);
  EXPECT_NEAR(count["valid"] / 20000.0, 0.05, 0.01);
}

TEST(Fortunes, ReadsTopicFilesDeduplicatesAndWritesJsonl) {
  auto src = fresh_dir("src");
  std::ofstream(src / "love") << "Roses are red.\n%\nLove is _\bb_\bl_\bi_\bn_\bd.\n%\nRoses are red.\n%\n";
  std::ofstream(src / "love.dat") << "x";
  std::ofstream(src / "food") << "Eat your vegetables.\n%\nRoses are red.\n";
  std::ofstream(src / "food.dat") << "x";
  std::ofstream(src / "notes") << "no .dat index: not a fortune file\n";
  auto records = read_fortunes({.source_dir = src, .exclude = {}});
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].topic, "food");
  EXPECT_EQ(records[0].text, "Eat your vegetables.");
  EXPECT_EQ(records[1].text, "Roses are red.");
  EXPECT_EQ(records[1].topic, "food") << "the first occurrence in file-name order wins";
  EXPECT_EQ(records[2].text, "Love is blind.");
  auto out = fresh_dir("out");
  write_fortunes_corpus(out, records, {.source_dir = src});
  std::ifstream in(out / "fortunes.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["text"], records[n].text);
    EXPECT_EQ(j["split"], split_of(records[n].text));
    ++n;
  }
  EXPECT_EQ(n, 3);
  std::ifstream m(out / "manifest.json");
  auto manifest = nlohmann::json::parse(m);
  EXPECT_EQ(manifest["format"], "palign.fortunes");
  EXPECT_EQ(manifest["records"], 3);
  fs::remove_all(src);
  fs::remove_all(out);
}

TEST(Fortunes, MissingPackageIsAClearError) {
  try {
    read_fortunes({.source_dir = "/nonexistent/fortunes"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("apt-get install fortunes"), std::string::npos);
  }
}

TEST(Fortunes, TheInstalledPackageGivesThousandsOfRecordsInAboutThirtyTopics) {
  auto records = read_fortunes();
  std::set<std::string> topics;
  for (const auto& r : records) topics.insert(r.topic);
  std::printf("installed fortunes: %zu records in %zu topics\n", records.size(), topics.size());
  EXPECT_GT(records.size(), 10000u);
  EXPECT_GE(topics.size(), 25u);
  EXPECT_TRUE(topics.count("computers") && topics.count("love") && topics.count("food"));
  for (const auto& r : records) {
    ASSERT_EQ(r.text.find('\b'), std::string::npos);
    ASSERT_FALSE(r.text.empty());
  }
}

}  // namespace
