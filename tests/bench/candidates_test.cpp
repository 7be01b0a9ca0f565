// Bench prompts and candidates: openings of held-out fortunes, seeded and reproducible; candidates sampled from the
// shipped default model, N per prompt, reproducible from the seed.
#include "palign/bench/candidates.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <set>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

using namespace palign;
using namespace palign::bench;
namespace fs = std::filesystem;

namespace {

fs::path default_model_dir() { return fs::path(PALIGN_TEST_DATA_DIR) / ".." / ".." / "models" / "default"; }

TEST(Candidates, PromptsAreOpeningsOfHeldOutFortunesAndReproducible) {
  auto records = scoring::read_fortunes();
  auto a = fortune_prompts(records, {.n_prompts = 20, .opening_words = 4, .seed = 3});
  auto b = fortune_prompts(records, {.n_prompts = 20, .opening_words = 4, .seed = 3});
  auto c = fortune_prompts(records, {.n_prompts = 20, .opening_words = 4, .seed = 4});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 20u);
  for (const auto& p : a) {
    bool found = false;
    for (const auto& r : records)
      if (r.split == "test" && r.text.find(p.substr(0, p.find(' '))) != std::string::npos) found = true;
    EXPECT_TRUE(found) << p;
    EXPECT_EQ(std::count(p.begin(), p.end(), ' '), 3) << p;
  }
  std::printf("prompts: '%s', '%s', '%s'\n", a[0].c_str(), a[1].c_str(), a[2].c_str());
  EXPECT_THROW(fortune_prompts(records, {.n_prompts = 100000}), Error);
  EXPECT_THROW(fortune_prompts(records, {.n_prompts = 0}), Error);
}

TEST(Candidates, SampledFromTheDefaultModelReproducibly) {
  auto model = runtime::Model::load(default_model_dir());
  auto tok = runtime::Tokenizer::from_dir(default_model_dir());
  const std::vector<std::string> prompts = {"A fool and his", "Computers are"};
  CandidateOptions o{.per_prompt = 4, .max_new_tokens = 24, .seed = 9};
  auto a = generate_candidates(*model, tok, prompts, o);
  auto b = generate_candidates(*model, tok, prompts, o);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(a[0].size(), 4u);
  EXPECT_EQ(a, b);
  std::set<std::string> distinct(a[0].begin(), a[0].end());
  EXPECT_GE(distinct.size(), 2u) << "samples of one prompt should differ";
  for (const auto& s : a[0]) std::printf("'%s' -> '%s'\n", prompts[0].c_str(), s.c_str());
  o.seed = 10;
  EXPECT_NE(generate_candidates(*model, tok, prompts, o), a);
  o.per_prompt = 0;
  EXPECT_THROW(generate_candidates(*model, tok, prompts, o), Error);
}

}  // namespace
