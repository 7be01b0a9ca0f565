// The corrector (Aligner / MetaAligner): its records by hand, and a planted rewrite — every pair's rejected answer
// " dull" corrected to " ha ha funny" — that the trained adapter learns: the training loss falls from the base
// model's and, given a new question with the rejected answer, greedy decoding writes the planted correction.
#include "palign/scoring/corrector.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/training/corrector_trainer.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

scoring::PreferenceRecord record(const std::string& prompt, const std::string& chosen, const std::string& rejected,
                                 const std::string& dimension = "") {
  scoring::PreferenceRecord r;
  r.prompt = prompt;
  r.chosen = chosen;
  r.rejected = rejected;
  r.dimension = dimension;
  return r;
}

}  // namespace

TEST(Corrector, PromptsAndRecordsByHand) {
  EXPECT_EQ(scoring::corrector_prompt("Tell me", " dull"), "Question: Tell me\nAnswer: dull\nA better answer:");
  EXPECT_EQ(scoring::corrector_prompt("Q", " a", {"humour", "topic.food", "reading_ease"}),
            "Question: Q\nAnswer: a\nA better answer (more humour, about food, reading ease):");
  EXPECT_EQ(scoring::describe_objective("topic.computers"), "about computers");
  const auto plain = corrector_records({record("Tell me", " funny", " dull", "humour")}, false);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0].prompt, "Question: Tell me\nAnswer: dull\nA better answer:");
  EXPECT_EQ(plain[0].chosen, " funny");
  const auto meta = corrector_records({record("Tell me", " funny", " dull", "humour")}, true);
  EXPECT_EQ(meta[0].prompt, "Question: Tell me\nAnswer: dull\nA better answer (more humour):");
  EXPECT_EQ(error_code_of([] { corrector_records({record("a", "b", "c")}, true); }), ErrorCode::kInvalidArgument);
}

TEST(Corrector, LearnsAPlantedRewrite) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  std::vector<scoring::PreferenceRecord> records;
  for (const char* p : {"Tell me", "Say something", "A story", "Why so", "Go on", "What now", "Once", "Hello there"})
    records.push_back(record(p, " ha ha funny", " dull", "humour"));
  // The base model's mean token NLL of the correction: where the loss starts.
  std::vector<scoring::ResponseSequence> seqs;
  for (const auto& r : corrector_records(records, true))
    seqs.push_back(scoring::tokenize_response(tok, r.prompt, r.chosen, 1024));
  const at::Tensor base_lp = scoring::response_log_probs(*model, seqs, nullptr, {}, {});
  double base_nll = 0;
  for (size_t i = 0; i < seqs.size(); ++i)
    base_nll -= base_lp[static_cast<int64_t>(i)].item<double>() /
                static_cast<double>(seqs[i].ids.size() - static_cast<size_t>(seqs[i].response_start));
  base_nll /= static_cast<double>(seqs.size());

  const test::TempDir out("corrector_planted");
  PolicyTrainOptions o;
  o.fit.lr = 5e-3;
  o.fit.epochs = 80;
  o.fit.batch = 4;
  o.fit.valid_share = 0;
  o.fit.progress = false;
  const auto report = train_corrector(records, dir, out.path(), o, /*objectives=*/true);
  std::printf("corrector on a planted rewrite: mean token NLL %.3f (base model) -> %.3f after %lld steps\n", base_nll,
              report.fit.train_loss, static_cast<long long>(report.fit.steps));
  EXPECT_LT(report.fit.train_loss, 0.2 * base_nll);
  const auto manifest = read_json_file(out.path() / kCorrectorManifest, "test");
  EXPECT_EQ(manifest.at("objectives"), true);
  EXPECT_EQ(manifest.at("dimensions"), nlohmann::json::array({"humour"}));

  // A question it never saw, with the rejected answer: greedy decoding with the adapter writes the correction.
  const auto adapter = runtime::LoraAdapter::load(out.path(), model->config());
  const auto prompt_ids = tok.encode(scoring::corrector_prompt("Tell a joke", " dull", {"humour"}), true);
  runtime::GenerateOptions g;
  g.max_new_tokens = 12;
  g.sampling.greedy = true;
  g.linear_hook = &adapter;
  const auto got = runtime::generate(*model, &tok, std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), g)[0];
  std::printf("corrected ' dull' on a new question to '%s'\n", got.text.c_str());
  EXPECT_EQ(got.text.rfind(" ha ha funny", 0), 0u) << got.text;
}
