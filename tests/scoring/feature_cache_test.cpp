// The feature cache: batched features equal the one-by-one naive twin, a cache reopened from disk serves identical
// features without touching the backbone, a different model never sees another's features, and damaged shards and
// bad settings give clear errors.
#include "palign/scoring/feature_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"
#include "temp_dir.h"

using namespace palign;
using namespace palign::runtime;
using namespace palign::scoring;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

const fs::path kModels = fs::path(PALIGN_TEST_DATA_DIR) / "hf" / "models";

std::vector<TextPair> some_texts() {
  return {{"The meaning of life is", " to eat well."},
          {"The meaning of life is", " a question nobody has answered, and perhaps nobody will."},
          {"Computers are", ""},
          {"Computers are", " fast"},
          {"", " only a response"},
          {"A much longer prompt that goes on for a while, with commas, and words,", " then stops."}};
}

using palign::test::fresh_dir;

TEST(FeatureCache, BatchedEqualsOneByOne) {
  const auto model = Model::load(kModels / "llama");
  const auto tok = Tokenizer::from_dir(kModels / "llama");
  FeatureCache cache(*model, tok, {}, /*batch=*/4);
  const auto texts = some_texts();
  const at::Tensor batched = cache.features(texts);
  const at::Tensor naive = FeatureCache::compute_one_by_one(*model, tok, texts);
  ASSERT_EQ(batched.sizes(), naive.sizes());
  EXPECT_EQ(batched.size(1), 2 * model->config().hidden_size);
  const double diff = (batched - naive).abs().max().item<double>();
  std::printf("batched vs one-by-one features: max |diff| = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_EQ(cache.stats().computed, static_cast<int64_t>(texts.size()));
  // Asking again computes nothing; duplicates in one call are computed once.
  auto twice = texts;
  twice.insert(twice.end(), texts.begin(), texts.end());
  const at::Tensor again = cache.features(twice);
  EXPECT_EQ(cache.stats().computed, static_cast<int64_t>(texts.size()));
  EXPECT_EQ(cache.stats().hits, static_cast<int64_t>(twice.size()));
  EXPECT_TRUE(at::equal(again.slice(0, 0, static_cast<int64_t>(texts.size())), batched));
  // The mean part of an empty response is its prompt's last token, as is the last-token part.
  const int64_t d = model->config().hidden_size;
  EXPECT_TRUE(at::equal(batched[2].slice(0, 0, d), batched[2].slice(0, d, 2 * d)));
}

TEST(FeatureCache, ReopenedFromDiskComputesNothing) {
  const auto model = Model::load(kModels / "llama");
  const auto tok = Tokenizer::from_dir(kModels / "llama");
  const fs::path dir = fresh_dir("reopen");
  const auto texts = some_texts();
  at::Tensor first;
  {
    FeatureCache cache(*model, tok, dir, /*batch=*/4);
    first = cache.features(texts);
    EXPECT_EQ(cache.stats().computed, 6);
  }
  FeatureCache reopened(*model, tok, dir, /*batch=*/4);
  EXPECT_EQ(reopened.stats().loaded, 6);
  const at::Tensor second = reopened.features(texts);
  EXPECT_EQ(reopened.stats().computed, 0);
  EXPECT_TRUE(at::equal(first, second));
  // A different model keeps its own folder and sees none of these features.
  const auto other = Model::load(kModels / "qwen2");
  const auto other_tok = Tokenizer::from_dir(kModels / "qwen2");
  FeatureCache theirs(*other, other_tok, dir);
  EXPECT_NE(theirs.fingerprint(), reopened.fingerprint());
  EXPECT_EQ(theirs.stats().loaded, 0);
  EXPECT_EQ(model_fingerprint(*model), reopened.fingerprint());  // stable across loads
  fs::remove_all(dir);
}

TEST(FeatureCache, DamagedShardsAndBadSettingsAreClearErrors) {
  const auto model = Model::load(kModels / "llama");
  const auto tok = Tokenizer::from_dir(kModels / "llama");
  const fs::path dir = fresh_dir("damaged");
  const std::string fp = model_fingerprint(*model);
  fs::create_directories(dir / fp);
  std::ofstream(dir / fp / "shard-00000000.safetensors") << "not a safetensors file";
  EXPECT_EQ(error_code_of([&] { FeatureCache c(*model, tok, dir); }), ErrorCode::kInvalidArgument);
  fs::remove_all(dir);
  EXPECT_EQ(error_code_of([&] { FeatureCache c(*model, tok, {}, /*batch=*/0); }), ErrorCode::kInvalidArgument);
}

}  // namespace
