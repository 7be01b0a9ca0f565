// The feature cache: batched features equal the one-by-one naive twin, a cache reopened from disk serves identical
// features without touching the backbone, a different model never sees another's features, and damaged shards and
// bad settings give clear errors.
#include "palign/scoring/feature_cache.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "temp_dir.h"
#include "test_util.h"

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

// A spec's text round-trips; bad specs are clear errors; dim counts layers × pools × D (+ 1 for the length).
TEST(FeatureSpec, ParsesAndRejects) {
  const FeatureSpec spec = FeatureSpec::parse("layers=embed,mid,last;pool=mean,last;length");
  EXPECT_EQ(FeatureSpec::recommended(), FeatureSpec::parse("layers=embed;pool=mean;length"));
  EXPECT_EQ(FeatureSpec::parse(spec.text()), spec);
  EXPECT_EQ(FeatureSpec{}.text(), "layers=last;pool=mean,last");
  EXPECT_EQ(spec.dim(16), 3 * 2 * 16 + 1);
  EXPECT_EQ(FeatureSpec::classifier().dim(16), 16);
  EXPECT_EQ(spec.resolve(6), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(FeatureSpec::parse("layers=2,last;pool=last").resolve(4), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(spec.offset("mid", /*last_token=*/true, 16), 3 * 16);
  EXPECT_EQ(FeatureSpec{}.offset("last", /*last_token=*/true, 16), 16);
  for (const char* bad : {"", "layers=last", "pool=mean", "layers=top;pool=mean", "layers=last;pool=max",
                          "layers=last;pool=mean;extra", "layers=;pool=mean"}) {
    const std::string message = palign::test::error_message_of([&] { FeatureSpec::parse(bad); });
    std::printf("  '%s': %s\n", bad, message.c_str());
    EXPECT_NE(message.find("layers=embed,mid,last;pool=mean,last;length"), std::string::npos) << bad;
  }
  EXPECT_EQ(error_code_of([&] { (void)FeatureSpec::parse("layers=9;pool=mean").resolve(6); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { (void)FeatureSpec{}.offset("embed", true, 16); }), ErrorCode::kInvalidArgument);
}

// Several layers: batched equals one by one; the embedding part is the mean of the embedding table's rows of the
// response's tokens (hand-computed); the final part equals the default spec's; the length is log(1 + tokens); the
// disk cache keeps each spec apart.
TEST(FeatureCache, LayerSpecsMatchTheirDefinitions) {
  const auto model = Model::load(kModels / "llama");
  const auto tok = Tokenizer::from_dir(kModels / "llama");
  const FeatureSpec spec = FeatureSpec::parse("layers=embed,mid,last;pool=mean,last;length");
  FeatureCache cache(*model, tok, {}, /*batch=*/4, spec);
  const auto texts = some_texts();
  const at::Tensor batched = cache.features(texts);
  const int64_t d = model->config().hidden_size;
  ASSERT_EQ(batched.size(1), spec.dim(d));
  const at::Tensor naive = FeatureCache::compute_one_by_one(*model, tok, texts, spec);
  const double diff = (batched - naive).abs().max().item<double>();
  std::printf("layers spec, batched vs one-by-one: max |diff| = %.3g\n", diff);
  EXPECT_LT(diff, 1e-5);
  const at::Tensor plain = FeatureCache(*model, tok).features(texts);
  const int64_t last = spec.offset("last", /*last_token=*/false, d);
  const double final_diff = (batched.slice(1, last, last + 2 * d) - plain).abs().max().item<double>();
  EXPECT_LT(final_diff, 1e-5);
  const at::Tensor embed =
      SafetensorsFile::open(kModels / "llama" / "model.safetensors").get_f32("model.embed_tokens.weight");
  double embed_diff = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto all = tok.encode(texts[i].prompt + texts[i].response, true);
    const auto n_prompt = static_cast<int64_t>(tok.encode(texts[i].prompt, true).size());
    const auto n = static_cast<int64_t>(all.size());
    const int64_t first = std::min(n_prompt, n - 1);
    at::Tensor mean = at::zeros({d});
    for (int64_t t = first; t < n; ++t) mean += embed[all[static_cast<size_t>(t)]];
    mean /= static_cast<double>(n - first);
    embed_diff =
        std::max(embed_diff, (batched[static_cast<int64_t>(i)].slice(0, 0, d) - mean).abs().max().item<double>());
    EXPECT_NEAR(batched[static_cast<int64_t>(i)][spec.dim(d) - 1].item<double>(),
                std::log1p(static_cast<double>(std::max<int64_t>(n - n_prompt, 0))), 1e-6);
  }
  std::printf(
      "embedding part vs hand-computed mean of embedding rows: max |diff| = %.3g; final part vs default "
      "spec: %.3g\n",
      embed_diff, final_diff);
  EXPECT_LT(embed_diff, 1e-5);
  const fs::path dir = fresh_dir("specs");
  {
    FeatureCache a(*model, tok, dir, 4, spec);
    (void)a.features(texts);
  }
  FeatureCache other(*model, tok, dir);  // the default spec: a folder of its own
  EXPECT_EQ(other.stats().loaded, 0);
  FeatureCache again(*model, tok, dir, 4, spec);
  EXPECT_EQ(again.stats().loaded, static_cast<int64_t>(texts.size()));
  EXPECT_EQ(error_code_of([&] { FeatureCache c(*model, tok, {}, 4, FeatureSpec::parse("layers=99;pool=mean")); }),
            ErrorCode::kInvalidArgument);
  fs::remove_all(dir);
}

}  // namespace
