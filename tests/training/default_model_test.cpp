// The shipped default model (models/default): it loads through the runtime, its tokenizer round-trips fortunes, it
// predicts held-out fortunes far better than a unigram model of the same tokenizer, and generation from it works.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>

#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/fortunes.h"

using namespace palign;
using namespace palign::runtime;
namespace fs = std::filesystem;

namespace {

fs::path default_model_dir() { return fs::path(PALIGN_TEST_DATA_DIR) / ".." / ".." / "models" / "default"; }

TEST(DefaultModel, BeatsAUnigramModelOnHeldOutFortunes) {
  auto model = Model::load(default_model_dir());
  auto tok = Tokenizer::from_dir(default_model_dir());
  ASSERT_TRUE(tok.eos_id().has_value());
  const int64_t eos = *tok.eos_id();
  auto records = scoring::read_fortunes();
  // Unigram model of the training split (add-one smoothed) with the same tokenizer.
  std::vector<double> counts(tok.vocab_size(), 1.0);
  double total = tok.vocab_size();
  for (const auto& r : records) {
    if (r.split != "train") continue;
    for (int32_t id : tok.encode(r.text)) counts[id] += 1, total += 1;
    counts[eos] += 1, total += 1;
  }
  double nll_model = 0, nll_unigram = 0;
  int64_t n_tokens = 0, n_records = 0;
  c10::InferenceMode guard;
  for (const auto& r : records) {
    if (r.split != "test" || n_records >= 100) continue;
    std::vector<int32_t> enc = tok.encode(r.text, /*add_special=*/true);
    std::vector<int64_t> ids(enc.begin(), enc.end());
    ids.push_back(eos);
    if (static_cast<int64_t>(ids.size()) > model->config().max_position) continue;
    ASSERT_EQ(tok.decode(std::vector<int32_t>(enc.begin() + 1, enc.end())), r.text);
    at::Tensor x = at::tensor(std::vector<int64_t>(ids.begin(), ids.end() - 1), at::kLong);
    at::Tensor y = at::tensor(std::vector<int64_t>(ids.begin() + 1, ids.end()), at::kLong);
    nll_model += at::cross_entropy_loss(model->forward_full(x), y, {}, at::Reduction::Sum).item<double>();
    for (size_t t = 1; t < ids.size(); ++t) nll_unigram -= std::log(counts[ids[t]] / total);
    n_tokens += y.numel();
    ++n_records;
  }
  const double ppl_model = std::exp(nll_model / n_tokens), ppl_unigram = std::exp(nll_unigram / n_tokens);
  std::printf("default model on %ld held-out fortunes (%ld tokens): perplexity %.2f vs unigram %.2f\n",
              static_cast<long>(n_records), static_cast<long>(n_tokens), ppl_model, ppl_unigram);
  EXPECT_GT(n_records, 50);
  EXPECT_LT(ppl_model, 0.25 * ppl_unigram);
}

TEST(DefaultModel, GeneratesAFreshFortuneFromTheBeginningOfText) {
  auto model = Model::load(default_model_dir());
  auto tok = Tokenizer::from_dir(default_model_dir());
  std::vector<int32_t> start = tok.encode("", /*add_special=*/true);
  ASSERT_EQ(start.size(), 1u);
  GenerateOptions opts{.max_new_tokens = 40, .sampling = {.temperature = 0.8f, .top_p = 0.95f, .seed = 1}};
  opts.stop_ids = default_stop_ids(default_model_dir(), *model, &tok);
  auto out = generate(*model, &tok, std::vector<int64_t>(start.begin(), start.end()), opts, 3);
  for (const auto& r : out) {
    std::printf("sample: %s\n", r.text.c_str());
    EXPECT_FALSE(r.ids.empty());
  }
}

}  // namespace
