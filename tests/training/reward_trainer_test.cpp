// Reward models from preference files: the JSON Lines reader, bt / multi heads written as Hugging Face
// sequence-classification directories that the runtime scores exactly as the head on cached features does, the
// personalized directories reloading to identical scores, the fixture reward models scoring as transformers does,
// and every bad input a clear error.
#include "palign/training/reward_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/reward_model.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using nlohmann::json;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

const fs::path kModels = fs::path(PALIGN_TEST_DATA_DIR) / "hf" / "models";

using palign::test::fresh_dir;

void write_lines(const fs::path& path, const std::vector<json>& lines) {
  std::ofstream out(path);
  for (const auto& j : lines) out << j.dump() << "\n";
}

// Two kinds of users: "long" users prefer the longer response, "short" users the shorter; two dimensions label by
// length and by the presence of "!" respectively.
std::vector<json> planted_pairs(int n_users, int pairs_per_user, uint64_t seed) {
  const char* words[] = {" cat", " dog", " sun", " rain", " code", " bread", " love", " vote"};
  Rng rng(seed);
  auto response = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += words[rng.uniform_int(8)];
    if (rng.bernoulli(0.5)) s += "!";
    return s;
  };
  std::vector<json> out;
  for (int u = 0; u < n_users; ++u)
    for (int i = 0; i < pairs_per_user; ++i) {
      const std::string prompt = std::string("Tell me") + words[rng.uniform_int(8)];
      std::string a = response(1 + static_cast<int>(rng.uniform_int(3))),
                  b = response(4 + static_cast<int>(rng.uniform_int(4)));
      const bool likes_long = u % 2 == 0;
      if (!likes_long) std::swap(a, b);
      out.push_back({{"prompt", prompt},
                     {"chosen", b},
                     {"rejected", a},
                     {"user_id", "u" + std::to_string(u)},
                     {"dimension", i % 2 ? "length" : "exclaim"}});
    }
  return out;
}

RewardTrainOptions options(const std::string& method, const fs::path& data, const fs::path& out) {
  RewardTrainOptions o;
  o.method = method;
  o.data = data;
  o.backbone = kModels / "llama";
  o.out = out;
  o.progress = false;
  return o;
}

// bt and multi directories load through the runtime's sequence-classification path and score what the head on the
// cached last-token features scores.
TEST(RewardTrainer, ClassifierDirectoriesScoreThroughTheRuntime) {
  const fs::path dir = fresh_dir("classifier");
  write_lines(dir / "pairs.jsonl", planted_pairs(4, 40, 1));
  const auto bt = train_reward(options("bt", dir / "pairs.jsonl", dir / "bt"));
  const auto multi = train_reward(options("multi", dir / "pairs.jsonl", dir / "multi"));
  std::printf("bt: train %.3f valid %.3f; multi: train %.3f valid %.3f (mean over %zu heads)\n", bt.train_accuracy,
              bt.valid_accuracy, multi.train_accuracy, multi.valid_accuracy, multi.dimensions.size());
  EXPECT_EQ(multi.dimensions, (std::vector<std::string>{"exclaim", "length"}));
  const auto model = runtime::Model::load(dir / "multi");
  EXPECT_EQ(model->config().head, runtime::HeadKind::kSequenceClassification);
  EXPECT_EQ(model->config().architecture, "LlamaForSequenceClassification");
  EXPECT_EQ(model->config().id2label, multi.dimensions);
  const auto backbone = runtime::Model::load(kModels / "llama");
  const auto tok = runtime::Tokenizer::from_dir(kModels / "llama");
  scoring::FeatureCache cache(*backbone, tok);
  const std::vector<scoring::TextPair> texts = {{"Tell me", " cat dog!"}, {"Tell me sun", " rain rain rain code"}};
  const at::Tensor last = cache.features(texts).slice(1, backbone->config().hidden_size);
  double max_diff = 0;
  for (const char* name : {"bt", "multi"}) {
    const auto reward = scoring::RewardModel::load(dir / name);
    const at::Tensor w = runtime::SafetensorsFile::open(dir / name / "model.safetensors").get_f32("score.weight");
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto s = reward->score(texts[i].prompt, texts[i].response);
      const at::Tensor expected = at::mv(w, last[static_cast<int64_t>(i)]);
      ASSERT_EQ(static_cast<int64_t>(s.size()), expected.numel());
      for (size_t k = 0; k < s.size(); ++k)
        max_diff = std::max(max_diff, std::abs(s[k] - expected[static_cast<int64_t>(k)].item<double>()));
    }
  }
  std::printf("runtime classification path vs head on cached features: max |diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
  // The planted length preference is learnable per dimension.
  EXPECT_GT(multi.train_accuracy, 0.7);
}

// The fixture reward models score token ids exactly as transformers does.
TEST(RewardTrainer, FixtureRewardModelsScoreAsTransformers) {
  for (const char* name : {"llama_rm", "llama_rm_multi"}) {
    const auto reward = scoring::RewardModel::load(kModels / name);
    const json ref = test::read_json(kModels / name / "reference.json");
    double max_diff = 0;
    for (const auto& c : ref.at("cases")) {
      const auto s = reward->score_ids(c.at("input_ids").get<std::vector<int64_t>>());
      const auto expected = c.at("scores").get<std::vector<double>>();
      ASSERT_EQ(s.size(), expected.size());
      for (size_t k = 0; k < s.size(); ++k) max_diff = std::max(max_diff, std::abs(s[k] - expected[k]));
    }
    std::printf("%s: max |score - transformers| = %.3g\n", name, max_diff);
    EXPECT_LT(max_diff, 1e-4) << name;
  }
}

// Personalized directories: the two planted user kinds are told apart, a reload scores identically, unknown users
// and changed backbones are clear errors.
TEST(RewardTrainer, PersonalizedDirectoriesReloadAndKnowTheirUsers) {
  const fs::path dir = fresh_dir("personal");
  write_lines(dir / "pairs.jsonl", planted_pairs(6, 48, 2));
  for (const char* method : {"prm", "pal", "vpl"}) {
    auto o = options(method, dir / "pairs.jsonl", dir / method);
    o.features = scoring::FeatureSpec{};  // [mean ⊕ last] of the final states: 288 pairs fit its 2·D features
    // PAL with as many prototypes as planted kinds; with 4 it stalls in a mixed optimum here (train 0.59).
    if (std::string(method) == "pal") o.fit.n_prototypes = 2;
    const auto r = train_reward(o);
    std::printf("%s: %ld users, train %.3f valid %.3f, %.0f pairs/s\n", method, static_cast<long>(r.n_users),
                r.train_accuracy, r.valid_accuracy, r.pairs_per_second);
    EXPECT_EQ(r.n_users, 6);
    const auto a = scoring::RewardModel::load(dir / method);
    EXPECT_TRUE(a->personalized());
    EXPECT_EQ(test::read_json(dir / method / "palign_reward.json").at("features"), o.features.text());
    // The written directory is the trained model: reloaded, it orders the file's pairs as the head in memory did.
    // The report's accuracies (computed in memory) cover the training pairs and the held-out ones (whole prompts),
    // so the reloaded accuracy over all n pairs must be their weighted mean (ties count one half, as in the report; one
    // pair of slack for a margin that rounds across zero). Not for vpl: its report encodes each user from the
    // training pairs alone, while the kept user latents encode all of them.
    if (std::string(method) != "vpl") {
      const auto file_pairs = scoring::read_preference_jsonl(dir / "pairs.jsonl");
      EXPECT_EQ(r.n_skipped, 0);
      const double n = static_cast<double>(file_pairs.size());
      const auto n_valid = static_cast<double>(r.n_valid);
      EXPECT_GE(n_valid, std::floor(n * o.fit.valid_share));  // whole prompts, at least the share
      const double in_memory = (r.train_accuracy * (n - n_valid) + r.valid_accuracy * n_valid) / n;
      double reloaded = 0;
      for (const auto& p : file_pairs) {
        const double margin =
            a->score(p.prompt, p.chosen, p.user_id)[0] - a->score(p.prompt, p.rejected, p.user_id)[0];
        reloaded += margin > 0 ? 1.0 : margin == 0 ? 0.5 : 0.0;
      }
      reloaded /= n;
      std::printf("  accuracy over the file: in memory %.4f, reloaded directory %.4f (diff %.3g)\n", in_memory,
                  reloaded, std::abs(reloaded - in_memory));
      EXPECT_LE(std::abs(reloaded - in_memory), 1.5 / n);
    }
    // Held-out pairs of the same users (fresh draws): each user's own reward orders them.
    double agree = 0;
    const auto test_pairs = planted_pairs(6, 16, 99);
    for (const auto& p : test_pairs) {
      const std::string user = p["user_id"], prompt = p["prompt"];
      agree += a->score(prompt, p["chosen"], user)[0] > a->score(prompt, p["rejected"], user)[0];
    }
    agree /= static_cast<double>(test_pairs.size());
    std::printf("  held-out agreement with the planted users: %.3f\n", agree);
    EXPECT_GT(agree, 0.65) << method;
    const std::string longer = " cat dog sun rain code bread";
    EXPECT_EQ(error_code_of([&] { a->score("Tell me", longer, "stranger"); }), ErrorCode::kNotFound);
    EXPECT_EQ(error_code_of([&] { a->score_ids({1, 2}); }), ErrorCode::kUnsupported);
  }
  // A directory written before feature specs existed ("features": "mean_last") reads the same features.
  {
    const auto before = scoring::RewardModel::load(dir / "prm")->score("Tell me", " cat dog!", "u0")[0];
    json m = test::read_json(dir / "prm" / "palign_reward.json");
    m["features"] = "mean_last";
    std::ofstream(dir / "prm" / "palign_reward.json") << m.dump();
    EXPECT_EQ(scoring::RewardModel::load(dir / "prm")->score("Tell me", " cat dog!", "u0")[0], before);
  }
  // The recommended spec (several layers, log length) is written to the manifest and read back when scoring: the
  // reloaded directory orders the file's pairs as the report says.
  {
    auto o = options("prm", dir / "pairs.jsonl", dir / "prm_layers");
    o.features = scoring::FeatureSpec::recommended();
    const auto r = train_reward(o);
    EXPECT_EQ(test::read_json(dir / "prm_layers" / "palign_reward.json").at("features"),
              scoring::FeatureSpec::recommended().text());
    const auto a = scoring::RewardModel::load(dir / "prm_layers");
    double right = 0;
    const auto file_pairs = scoring::read_preference_jsonl(dir / "pairs.jsonl");
    for (const auto& p : file_pairs)
      right += a->score(p.prompt, p.chosen, p.user_id)[0] > a->score(p.prompt, p.rejected, p.user_id)[0];
    const double n = static_cast<double>(file_pairs.size()), n_valid = static_cast<double>(r.n_valid);
    const double in_memory = (r.train_accuracy * (n - n_valid) + r.valid_accuracy * n_valid) / n;
    std::printf("prm on %s: in memory %.4f, reloaded %.4f\n", o.features.text().c_str(), in_memory, right / n);
    EXPECT_LE(std::abs(right / n - in_memory), 1.5 / n);
  }
  // A new user's pairs move the generic reward toward that user.
  const auto pal = scoring::RewardModel::load(dir / "pal");
  auto pairs = scoring::read_preference_jsonl(dir / "pairs.jsonl");
  std::vector<scoring::PreferenceRecord> short_pairs;
  for (const auto& p : pairs)
    if (p.user_id == "u1" && short_pairs.size() < 16) short_pairs.push_back(p);
  const double adapted = pal->score("Tell me", " cat dog sun rain code bread", "", short_pairs)[0] -
                         pal->score("Tell me", " cat", "", short_pairs)[0];
  std::printf("pal: new short-liking user from 16 pairs, margin long-minus-short %.3f\n", adapted);
  EXPECT_LT(adapted, 0.0);
  // A manifest that names another backbone's fingerprint is refused.
  json m = test::read_json(dir / "pal" / "palign_reward.json");
  m["backbone_fingerprint"] = "0000000000000000";
  std::ofstream(dir / "pal" / "palign_reward.json") << m.dump();
  EXPECT_EQ(error_code_of([&] { scoring::RewardModel::load(dir / "pal"); }), ErrorCode::kInvalidArgument);
}

TEST(RewardTrainer, LinearWeighsTheObjectivesPerUser) {
  const fs::path dir = fresh_dir("linear");
  write_lines(dir / "pairs.jsonl", planted_pairs(4, 48, 3));
  train_reward(options("multi", dir / "pairs.jsonl", dir / "multi"));
  auto o = options("linear", dir / "pairs.jsonl", dir / "linear");
  o.objectives = dir / "multi";
  const auto r = train_reward(o);
  std::printf("linear over %zu objectives: train %.3f valid %.3f\n", r.dimensions.size(), r.train_accuracy,
              r.valid_accuracy);
  const auto reward = scoring::RewardModel::load(dir / "linear");
  const double u0 =
      reward->score("Tell me", " cat dog sun rain code bread", "u0")[0] - reward->score("Tell me", " cat", "u0")[0];
  const double u1 =
      reward->score("Tell me", " cat dog sun rain code bread", "u1")[0] - reward->score("Tell me", " cat", "u1")[0];
  EXPECT_GT(u0, u1);
  // The user's weights over the objectives' labels (what args decodes with) give the same score differences as the
  // linear reward, computed from the objectives' classifier scores.
  const auto weights = reward->label_weights("u0", {});
  ASSERT_TRUE(weights.has_value());
  const auto multi = scoring::RewardModel::load(weights->classifier);
  ASSERT_EQ(weights->weights.size(), multi->labels().size());
  const auto a = multi->score("Tell me", " cat dog sun rain code bread"), b = multi->score("Tell me", " cat");
  double by_labels = 0;
  for (size_t k = 0; k < a.size(); ++k) by_labels += weights->weights[k] * (a[k] - b[k]);
  std::printf("u0's difference: linear %.6f, weighted labels %.6f (|diff| %.2e)\n", u0, by_labels,
              std::abs(u0 - by_labels));
  EXPECT_NEAR(by_labels, u0, 1e-3 * std::max(1.0, std::abs(u0)));
  EXPECT_FALSE(scoring::RewardModel::load(dir / "multi")->label_weights("u0", {}).has_value());
  // Objectives trained on another backbone are refused.
  auto other = options("multi", dir / "pairs.jsonl", dir / "multi_qwen");
  other.backbone = kModels / "qwen2";
  train_reward(other);
  o.objectives = dir / "multi_qwen";
  o.out = dir / "linear2";
  EXPECT_EQ(error_code_of([&] { train_reward(o); }), ErrorCode::kInvalidArgument);
}

// bt --lora: the adapter trains with the head, is merged into the written classification directory, and that
// directory scores what the base model with the saved adapter attached and the head compute.
TEST(RewardTrainer, BtWithLoraMergesTheAdapterIntoTheClassifier) {
  const fs::path dir = fresh_dir("bt_lora");
  auto pairs = planted_pairs(4, 40, 4);
  for (auto& p : pairs)  // one kind of user: everyone prefers the longer response
    if (p["chosen"].get<std::string>().size() < p["rejected"].get<std::string>().size())
      std::swap(p["chosen"], p["rejected"]);
  write_lines(dir / "pairs.jsonl", pairs);
  auto o = options("bt", dir / "pairs.jsonl", dir / "bt_lora");
  o.bt_lora = true;
  o.arm.lr = 1e-3;
  o.arm.epochs = 4;
  const auto r = train_reward(o);
  const json m = test::read_json(dir / "bt_lora" / "palign_reward.json");
  std::printf("bt --lora: valid %.3f (frozen head %.3f), %ld steps\n", r.valid_accuracy,
              m.at("lora").at("frozen_valid_accuracy").get<double>(), m.at("lora").at("steps").get<long>());
  EXPECT_GE(r.valid_accuracy, m.at("lora").at("frozen_valid_accuracy").get<double>());
  EXPECT_GT(m.at("lora").at("steps").get<int64_t>(), 0);
  // Naive twin: the base model with the saved adapter attached, the head applied to the last hidden state.
  const auto base = runtime::Model::load(kModels / "llama");
  const auto tok = runtime::Tokenizer::from_dir(kModels / "llama");
  const auto adapter = runtime::LoraAdapter::load(dir / "bt_lora" / "adapter", base->config());
  const at::Tensor head = runtime::SafetensorsFile::open(dir / "bt_lora" / "model.safetensors").get_f32("score.weight");
  const auto reward = scoring::RewardModel::load(dir / "bt_lora");
  double max_diff = 0;
  for (const auto& [prompt, response] :
       std::vector<std::pair<std::string, std::string>>{{"Tell me", " cat dog sun"}, {"Tell me rain", " code!"}}) {
    const auto ids32 = tok.encode(prompt + response, /*add_special=*/true);
    const at::Tensor ids = at::tensor(std::vector<int64_t>(ids32.begin(), ids32.end()), at::kLong).view({1, -1});
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kNone;
    fo.return_hidden = true;
    fo.linear_hook = &adapter;
    const at::Tensor hidden =
        base->forward_uncached({.ids = ids, .n_tokens = {ids.size(1)}, .seq = {}}, fo).hidden[0][ids.size(1) - 1];
    const double expected = at::dot(head[0], hidden).item<double>();
    max_diff = std::max(max_diff, std::abs(reward->score(prompt, response)[0] - expected));
  }
  std::printf("merged classifier vs base + adapter + head: max |diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
}

TEST(RewardTrainer, BadDataAndSettingsAreClearErrors) {
  const fs::path dir = fresh_dir("bad");
  write_lines(dir / "same.jsonl", {{{"prompt", "p"}, {"chosen", "x"}, {"rejected", "x"}, {"user_id", "u"}}});
  EXPECT_EQ(error_code_of([&] { train_reward(options("bt", dir / "same.jsonl", dir / "o1")); }),
            ErrorCode::kInvalidArgument);
  write_lines(dir / "anon.jsonl", {{{"prompt", "p"}, {"chosen", "x"}, {"rejected", "y"}}});
  EXPECT_EQ(error_code_of([&] { train_reward(options("prm", dir / "anon.jsonl", dir / "o2")); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { train_reward(options("multi", dir / "anon.jsonl", dir / "o3")); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { train_reward(options("linear", dir / "anon.jsonl", dir / "o4")); }),
            ErrorCode::kInvalidArgument);  // no --objectives
  EXPECT_EQ(error_code_of([&] { train_reward(options("nonesuch", dir / "anon.jsonl", dir / "o5")); }),
            ErrorCode::kInvalidArgument);
  auto gpt2 = options("bt", dir / "anon.jsonl", dir / "o6");
  gpt2.backbone = kModels / "gpt2";
  EXPECT_EQ(error_code_of([&] { train_reward(gpt2); }), ErrorCode::kUnsupported);
  // A causal LM is not a reward model; a missing directory is not found.
  EXPECT_EQ(error_code_of([&] { scoring::RewardModel::load(kModels / "llama"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { scoring::RewardModel::load(dir / "none"); }), ErrorCode::kNotFound);
  // A failed fit leaves neither OUT (a config without weights) nor its staging folder behind.
  for (const char* out : {"o1", "o2", "o3", "o4", "o6"}) {
    EXPECT_FALSE(fs::exists(dir / out)) << out;
    EXPECT_FALSE(fs::exists(dir / (std::string(out) + ".tmp"))) << out;
  }
  // An --out that cannot be created is an I/O error (the CLI's exit 5), not libtorch's or the filesystem's.
  EXPECT_EQ(error_code_of([&] { train_reward(options("bt", dir / "anon.jsonl", "/proc/palign_no/r")); }),
            ErrorCode::kIo);
  // A manifest of the wrong JSON type is the directory's fault: a clear error, not a JSON library exception.
  fs::create_directories(dir / "bad_manifest");
  for (const char* text : {"[1, 2]", "\"bt\"", R"({"format": 5})", R"({"format": "palign.reward", "version": "1"})"}) {
    std::ofstream(dir / "bad_manifest" / scoring::kRewardManifest) << text;
    std::string msg;
    try {
      scoring::RewardModel::load(dir / "bad_manifest");
    } catch (const Error& e) {
      msg = e.what();
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << msg;
    }
    EXPECT_NE(msg.find(scoring::kRewardManifest), std::string::npos) << text << ": " << msg;
  }
}

// A reward directory is written whole: a rerun into an existing OUT replaces the files it writes and keeps others.
TEST(RewardTrainer, OutIsWrittenWholeThroughAStagingFolder) {
  const fs::path dir = fresh_dir("staged");
  write_lines(dir / "pairs.jsonl", planted_pairs(2, 6, 5));
  fs::create_directories(dir / "bt");
  std::ofstream(dir / "bt" / "notes.txt") << "mine";
  std::ofstream(dir / "bt" / "model.safetensors") << "stale";
  train_reward(options("bt", dir / "pairs.jsonl", dir / "bt"));
  EXPECT_FALSE(fs::exists(dir / "bt.tmp"));
  EXPECT_TRUE(fs::exists(dir / "bt" / "notes.txt"));
  EXPECT_EQ(scoring::RewardModel::load(dir / "bt")->method(), "bt");
}

}  // namespace
