// The strategy registry: every registered strategy against its naive twins (n outputs in one call vs one call per
// output with that output's seed; a batch of requests vs each request alone), the options' membership check, prompts
// from text, and the profile's weights.
// A strategy is tested by being registered: the twin test fails for a registered strategy without a setup here.
#include "palign/decoding/strategy.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "palign/base/error.h"
#include "palign/decoding/steering.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/corrector.h"
#include "palign/scoring/reward_model.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

// A corrector directory in dir: a LoRA adapter on model with random B matrices (so it changes the outputs) and the
// corrector manifest (objectives: whether it was trained to be told what to correct toward).
fs::path write_corrector(const runtime::Model& model, const fs::path& dir, bool objectives) {
  runtime::LoraConfig lc;
  lc.r = 4;
  lc.base_model = test::hf_model("llama").string();
  auto adapter = runtime::LoraAdapter::init(model.config(), lc, 5);
  at::manual_seed(5);
  for (int64_t l = 0; l < model.config().n_layer; ++l)
    for (auto kind : {runtime::LinearKind::kQ, runtime::LinearKind::kV}) {
      auto b = adapter.lora_b(l, kind);
      b.copy_(at::randn(b.sizes()) * 0.5);
    }
  const fs::path out = dir / (objectives ? "corrector_meta" : "corrector");
  adapter.save(out);
  std::ofstream(out / "palign_corrector.json")
      << nlohmann::json{{"format", "palign.corrector"}, {"version", 1}, {"objectives", objectives}}.dump();
  return out;
}

// A ric policy directory in dir: the corrector's random adapter with a ric manifest over labels a and b (training
// scores: a from −1 to 3, median 1; b from 0 to 0.4, median 0.2).
fs::path write_ric(const runtime::Model& model, const fs::path& dir) {
  const fs::path out = write_corrector(model, dir / "ric_base", false);
  std::ofstream(out / "palign_policy.json")
      << nlohmann::json{{"format", "palign.policy"},
                        {"version", 1},
                        {"method", "ric"},
                        {"ric",
                         {{"labels", {"a", "b"}}, {"p10", {-1.0, 0.0}}, {"p50", {1.0, 0.2}}, {"p90", {3.0, 0.4}}}}}
             .dump();
  return out;
}

// Each registered strategy's options on the llama fixture (files go to dir).
std::map<std::string, std::function<decoding::StrategyOptions(const fs::path& dir)>> setups(
    const runtime::Model& model) {
  using Options = decoding::StrategyOptions;
  const std::string llama = test::hf_model("llama").string(), rm = test::hf_model("llama_rm").string();
  return {
      {"sample", [](const fs::path&) { return Options{}; }},
      {"prompt",
       [](const fs::path&) {
         Options o;
         o.statement = "I like cats.";
         return o;
       }},
      {"best_of_n",
       [rm](const fs::path&) {
         Options o;
         o.best_of = 3;
         o.reward = rm;
         return o;
       }},
      {"cd_block",
       [rm](const fs::path&) {
         Options o;
         o.reward = rm;
         o.cd_k = 2;
         o.cd_block = 3;
         return o;
       }},
      {"fusion",
       [llama](const fs::path&) {
         Options o;
         o.models = llama + "," + llama;
         o.weights = "0.7,0.3";
         return o;
       }},
      {"proxy",
       [llama](const fs::path&) {
         Options o;
         o.expert = o.antiexpert = llama;
         o.alpha = 0.5;
         return o;
       }},
      {"steer",
       [&model](const fs::path& dir) {
         at::manual_seed(3);
         const int64_t d = model.config().hidden_size;
         scoring::save_steering_vectors(dir / "vectors.safetensors",
                                        {{.name = "humour", .layer = 0, .vector = at::randn({d})},
                                         {.name = "length", .layer = 1, .vector = at::randn({d})}});
         Options o;
         o.weights = "1,-0.5";
         o.vectors = (dir / "vectors.safetensors").string();
         return o;
       }},
      {"contrast",
       [](const fs::path&) {
         Options o;
         o.context = "I like cats. ";
         return o;
       }},
      {"args",
       [rm](const fs::path&) {
         Options o;
         o.reward_model = rm;
         o.args_k = 3;
         return o;
       }},
      {"cards",
       [rm](const fs::path&) {
         Options o;
         o.reward = rm;
         o.cards_k = 2;
         o.cards_segment = 2;
         o.cards_rounds = 2;
         o.cards_margin = 0.01;
         return o;
       }},
      {"correct",
       [&model](const fs::path& dir) {
         Options o;
         o.corrector = write_corrector(model, dir, true).string();
         o.correct_toward = "humour";
         return o;
       }},
      {"ric",
       [&model](const fs::path& dir) {
         Options o;
         o.ric = write_ric(model, dir).string();
         o.ric_targets = "a=2.5";
         return o;
       }},
      {"value",
       [rm](const fs::path&) {
         Options o;
         o.value = rm;  // any one-label classifier on the policy's vocabulary reads as a value model
         o.value_k = 3;
         o.value_beta = 2.0;
         return o;
       }},
  };
}

// The setup of a strategy on model (from dir) with options and an optional profile.
decoding::StrategySetup setup_of(const runtime::Model& model, const fs::path& dir, const runtime::Tokenizer& tok,
                                 const decoding::StrategyOptions& options = {},
                                 const decoding::Personalization* profile = nullptr) {
  decoding::StrategySetup s;
  s.model = &model;
  s.model_dir = dir;
  s.tokenizer = &tok;
  s.options = options;
  s.profile = profile;
  return s;
}

// A request for "The cat" with n outputs.
decoding::StrategyRequest request_of(const runtime::Tokenizer& tok, int64_t n) {
  decoding::StrategyRequest r;
  r.prompt = decoding::encode_prompt(tok, "The cat");
  r.prompt_text = "The cat";
  r.n = n;
  return r;
}

decoding::Personalization profile_of(const std::map<std::string, double>& weights, const fs::path& history = {}) {
  decoding::Personalization p;
  p.user_id = "u1";
  p.weights = weights;
  p.history = history;
  return p;
}

}  // namespace

TEST(Strategy, EveryRegisteredStrategyEqualsItsOneByOneTwin) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  test::TempDir tmp("strategy_twin");
  const auto table = setups(*model);
  ASSERT_FALSE(decoding::strategies().empty());
  for (const auto& info : decoding::strategies()) {
    const auto it = table.find(info.name);
    ASSERT_NE(it, table.end()) << "strategy '" << info.name
                               << "' is registered but has no setup in strategy_test.cpp; add one";
    const decoding::StrategySetup setup = setup_of(*model, dir, tok, it->second(tmp.path()));
    const auto strategy = decoding::make_strategy(info.name, setup);
    decoding::StrategyRequest request = request_of(tok, 3);
    request.options.max_new_tokens = 5;
    request.options.sampling.temperature = 0.9f;
    request.options.sampling.seed = 11;
    const auto batch = strategy->generate(request);
    ASSERT_EQ(batch.size(), 3u) << info.name;
    size_t differing = 0;
    for (int64_t i = 0; i < 3; ++i) {
      decoding::StrategyRequest one = request;
      one.n = 1;
      one.options.sampling.seed = strategy->sample_seed(request.options.sampling.seed, i);
      const auto single = decoding::make_strategy(info.name, setup)->generate(one);
      ASSERT_EQ(single.size(), 1u) << info.name;
      EXPECT_FALSE(single[0].ids.empty()) << info.name;
      differing += single[0].ids != batch[static_cast<size_t>(i)].ids;
    }
    std::printf("%-10s 3 outputs in one call vs one call each: %zu of 3 differ\n", info.name, differing);
    EXPECT_EQ(differing, 0u) << info.name;

    // generate_batch: three requests (two prompts, seeds of their own) against each request alone.
    std::vector<decoding::StrategyRequest> requests(3, request);
    for (size_t i = 0; i < requests.size(); ++i) {
      requests[i].n = 1;
      requests[i].options.sampling.seed = 100 + 7 * i;
    }
    requests[1].prompt = decoding::encode_prompt(tok, "A small dog");
    requests[1].prompt_text = "A small dog";
    const auto batched = strategy->generate_batch(requests);
    ASSERT_EQ(batched.size(), requests.size()) << info.name;
    const int64_t batch_tokens = strategy->cost().tokens;
    size_t batch_differing = 0;
    int64_t tokens = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto alone = decoding::make_strategy(info.name, setup);
      batch_differing += alone->generate(requests[i])[0].ids != batched[i].ids;
      tokens += alone->cost().tokens;
    }
    std::printf("%-10s 3 requests in one batch vs each alone: %zu of 3 differ; tokens %lld vs %lld\n", info.name,
                batch_differing, static_cast<long long>(batch_tokens), static_cast<long long>(tokens));
    EXPECT_EQ(batch_differing, 0u) << info.name;
    EXPECT_EQ(batch_tokens, tokens) << info.name;
    EXPECT_GT(tokens, 0) << info.name;
    requests[0].n = 2;
    EXPECT_EQ(error_code_of([&] { strategy->generate_batch(requests); }), ErrorCode::kInvalidArgument) << info.name;
  }
}

TEST(Strategy, RegistryNamesAreUniqueAndUnknownNamesListTheKnown) {
  std::map<std::string, int> seen;
  for (const auto& info : decoding::strategies()) EXPECT_EQ(++seen[info.name], 1) << info.name;
  EXPECT_EQ(&decoding::find_strategy("fusion"), &decoding::strategies()[4]);
  EXPECT_EQ(error_code_of([] { decoding::find_strategy("beam"); }), ErrorCode::kInvalidArgument);
}

TEST(Strategy, OptionsOfAnotherStrategyAndBadOptionsAreRefused) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  decoding::StrategySetup setup = setup_of(*model, dir, tok);
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("sample", setup, {"models"}); }), ErrorCode::kInvalidArgument);
  EXPECT_NO_THROW(decoding::make_strategy("sample", setup, {"user"}));  // --user belongs to sample too
  const decoding::Personalization profile = profile_of({{"humour", 1.0}});
  setup.profile = &profile;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("sample", setup); }), ErrorCode::kInvalidArgument);
  setup.profile = nullptr;
  for (const char* name :
       {"best_of_n", "cd_block", "fusion", "proxy", "steer", "args", "cards", "value", "correct", "ric"})
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy(name, setup); }), ErrorCode::kInvalidArgument) << name;
  {  // cards' own knobs, each refused with its flag's name
    decoding::StrategySetup cards = setup;
    cards.options.reward = test::hf_model("llama_rm").string();
    for (auto [flag, set] : std::vector<std::pair<const char*, std::function<void(decoding::StrategyOptions&)>>>{
             {"--cards-k", [](auto& o) { o.cards_k = 0; }},
             {"--cards-rounds", [](auto& o) { o.cards_rounds = 0; }},
             {"--cards-segment", [](auto& o) { o.cards_segment = -1; }},
             {"--cards-entropy", [](auto& o) { o.cards_entropy = -0.5; }},
             {"--cards-margin", [](auto& o) { o.cards_margin = NAN; }}}) {
      decoding::StrategySetup bad = cards;
      set(bad.options);
      try {
        decoding::make_strategy("cards", bad);
        ADD_FAILURE() << flag << " was not refused";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy("best_of_n", cards, {"cards-k"}); }),
              ErrorCode::kInvalidArgument);
  }
  // prompt and contrast can serve requests that bring their users' profiles: without one, the request is refused.
  for (const char* name : {"prompt", "contrast"})
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy(name, setup)->generate(request_of(tok, 1)); }),
              ErrorCode::kInvalidArgument)
        << name;
  setup.options.models = dir.string();
  setup.options.weights = "1,2";
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup); }), ErrorCode::kInvalidArgument);
  for (const char* json_text : {R"({"alpha": 1e999})", R"({"lambda": -1e999})"})  // JSON's only way to infinity
    EXPECT_EQ(error_code_of([&] { decoding::StrategyOptions::from_json(json_text); }), ErrorCode::kInvalidArgument)
        << json_text;
  EXPECT_NO_THROW(decoding::StrategyOptions::from_json(R"({"alpha": -2.5, "lambda": 0})"));
  for (auto scale : {&decoding::StrategyOptions::alpha, &decoding::StrategyOptions::lambda,
                     &decoding::StrategyOptions::args_w}) {  // --alpha inf, --lambda nan, --args-w nan
    decoding::StrategySetup bad = setup;
    const auto refused = [&](const char* name) {
      try {
        decoding::make_strategy(name, bad);
      } catch (const Error& e) {
        return std::string(e.what()).find("must be a finite number") != std::string::npos;
      }
      return false;
    };
    bad.options.*scale = std::numeric_limits<double>::quiet_NaN();
    for (const char* name : {"proxy", "contrast", "steer", "args"}) EXPECT_TRUE(refused(name)) << name;
    bad.options.*scale = std::numeric_limits<double>::infinity();
    EXPECT_TRUE(refused("fusion"));
  }
  for (const char* bad : {"nan", "inf", "-inf", "1e999"}) {  // non-finite weights decode garbage: refused
    setup.options.weights = bad;
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup); }), ErrorCode::kInvalidArgument) << bad;
  }
  setup.options.weights = "1";
  setup.adapter = dir;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup); }), ErrorCode::kInvalidArgument);
  setup.adapter.clear();
  setup.options.weights = "humour=1";  // a name that is not one of the models: the error lists the valid ones
  try {
    decoding::make_strategy("fusion", setup);
    ADD_FAILURE() << "no error for a weight of an unknown name";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(they are: llama)"), std::string::npos) << e.what();
  }
  // One name for a reward directory: args takes --reward as best_of_n and cd_block do.
  decoding::StrategySetup args = setup_of(*model, dir, tok);
  args.options.reward = test::hf_model("llama_rm").string();
  EXPECT_NO_THROW(decoding::make_strategy("args", args, {"reward"}));
}

TEST(Strategy, PromptsFromTextChatAndNothing) {
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  const auto ids = tok.encode("The cat", /*add_special=*/true);
  EXPECT_EQ(decoding::encode_prompt(tok, "The cat"), std::vector<int64_t>(ids.begin(), ids.end()));
  EXPECT_FALSE(decoding::encode_prompt(tok, std::nullopt).empty());
  EXPECT_EQ(error_code_of([&] { decoding::encode_prompt(tok, ""); }), ErrorCode::kInvalidArgument);
  const auto continuation = runtime::ChatTemplate::parse(runtime::kContinuationChatTemplate, "<s>", "</s>");
  EXPECT_EQ(error_code_of([&] { decoding::encode_prompt(tok, std::nullopt, &continuation); }),
            ErrorCode::kInvalidArgument);
}

// --chat renders the tokenizer's chat template (here Llama-3's, with the BOS text it prints) and encodes the result
// without adding special tokens again; a conversation the template rejects is the template's kInvalidArgument.
TEST(Strategy, ChatPromptsGoThroughTheChatTemplate) {
  const test::TempDir dir("chat_prompt");
  fs::copy_file(test::hf_model("llama") / "tokenizer.json", dir / "tokenizer.json");
  const std::string llama3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
      "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
      "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
      "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  dir.write("tokenizer_config.json",
            nlohmann::json{{"bos_token", "<|begin_of_text|>"}, {"chat_template", llama3}}.dump());
  const auto tok = runtime::Tokenizer::from_dir(dir.path());
  const auto tmpl = runtime::ChatTemplate::from_model_dir(dir.path());
  const auto ids = tok.encode(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
      "<|end_header_id|>\n\nThe cat<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
      /*add_special=*/false);
  EXPECT_EQ(decoding::encode_prompt(tok, " The cat ", &tmpl, "Be brief."),
            std::vector<int64_t>(ids.begin(), ids.end()));

  dir.write("tokenizer_config.json",
            nlohmann::json{{"chat_template",
                            "{% if messages[0].role == 'system' %}{{ raise_exception('System role not "
                            "supported') }}{% endif %}{{ messages[0].content }}"}}
                .dump());
  const auto strict = runtime::ChatTemplate::from_model_dir(dir.path());
  EXPECT_EQ(error_code_of([&] { decoding::encode_prompt(tok, "The cat", &strict, "Be brief."); }),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(decoding::encode_prompt(tok, "The cat", &strict).empty());
}

TEST(Strategy, ProfileWeightsByName) {
  const decoding::Personalization p = profile_of({{"humour", 1.0}, {"length", -0.25}});
  EXPECT_EQ(p.weights_for({"length", "humour"}), (std::vector<double>{-0.25, 1.0}));
  EXPECT_EQ(p.weights_for({"length", "topic"}, /*missing_zero=*/true), (std::vector<double>{-0.25, 0.0}));
  EXPECT_EQ(error_code_of([&] { p.weights_for({"length", "topic"}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { p.weights_for({"topic"}, true); }), ErrorCode::kInvalidArgument);
}

// best_of_n over a multi-objective reward ranks by the profile's weighted sum of its labels, not by its first label:
// on a seed where the first label and the weighted one pick different samples, the strategy returns the weighted pick.
TEST(Strategy, BestOfNRanksAMultiLabelRewardByTheProfilesWeights) {
  const fs::path dir = test::hf_model("llama"), rm = test::hf_model("llama_rm_multi");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  const auto reward = scoring::RewardModel::load(rm);
  ASSERT_GT(reward->labels().size(), 1u);
  const decoding::Personalization profile = profile_of({{reward->labels()[1], 1.0}});
  decoding::StrategyOptions options;
  options.best_of = 4;
  options.reward = rm.string();
  const decoding::StrategySetup setup = setup_of(*model, dir, tok, options, &profile);
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.max_new_tokens = 6;
  request.options.sampling.temperature = 1.0f;
  const std::string prompt_text =
      tok.decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
  bool found = false;
  for (uint64_t seed = 0; seed < 40 && !found; ++seed) {
    request.options.sampling.seed = seed;
    const auto samples = runtime::generate(*model, &tok, request.prompt, request.options, 4);
    size_t by_first = 0, by_weights = 0;
    std::vector<std::vector<double>> scores;
    for (const auto& r : samples)
      scores.push_back(reward->score(prompt_text, tok.decode(std::vector<int32_t>(r.ids.begin(), r.ids.end()), true)));
    for (size_t i = 1; i < scores.size(); ++i) {
      if (scores[i][0] > scores[by_first][0]) by_first = i;
      if (scores[i][1] > scores[by_weights][1]) by_weights = i;
    }
    if (samples[by_first].ids == samples[by_weights].ids) continue;
    found = true;
    const auto strategy = decoding::make_strategy("best_of_n", setup);
    const auto out = strategy->generate(request);
    std::printf("seed %llu: the first label picks sample %zu, the profile's weights sample %zu\n",
                static_cast<unsigned long long>(seed), by_first, by_weights);
    EXPECT_EQ(out[0].ids, samples[by_weights].ids);
    ASSERT_EQ(strategy->output_rewards().size(), 1u);  // what --json reports: the weighted score it chose by
    EXPECT_NEAR(strategy->output_rewards()[0], scores[by_weights][1], 1e-6);
  }
  EXPECT_TRUE(found) << "no seed where the labels disagree; widen the search";
  decoding::StrategySetup without = setup;
  without.profile = nullptr;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("best_of_n", without); }), ErrorCode::kInvalidArgument);
}

// value over a value model with several labels (one per reward label, as `palign train value` writes over a multi
// reward) decodes by the profile's weighted sum of them: token for token make_args over the weighted head, and the
// output's reward is that head's score of the whole text.
TEST(Strategy, ValueFoldsAMultiLabelValueModelByTheProfilesWeights) {
  const fs::path dir = test::hf_model("llama"), vm = test::hf_model("llama_rm_multi");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  const auto multi = runtime::Model::load(vm);
  const decoding::Personalization profile = profile_of({{"helpful", 0.5}, {"formal", -2.0}});
  decoding::StrategyOptions options;
  options.value = vm.string();
  options.value_k = 4;
  options.value_beta = 3.0;
  const auto strategy = decoding::make_strategy("value", setup_of(*model, dir, tok, options, &profile));
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.max_new_tokens = 8;
  request.options.sampling.greedy = true;
  const auto out = strategy->generate(request);
  const auto folded = runtime::weighted_classifier(*multi, {0.5, 0.0, -2.0, 0.0});
  auto scorer = decoding::make_args(*model, *folded, 4, 3.0, request.prompt);
  const auto twin = decoding::decode(*scorer, request.prompt, request.options, model->config().max_position);
  EXPECT_EQ(out[0].ids, twin.ids);
  std::vector<int64_t> ids = request.prompt;
  ids.insert(ids.end(), twin.ids.begin(), twin.ids.end());
  const double expected = folded->score(ids)[0].item<double>();
  ASSERT_EQ(strategy->output_rewards().size(), 1u);
  std::printf(
      "value over 4 labels folded by the profile: %zu tokens as make_args over the folded head: %s; reward "
      "%.6f vs %.6f\n",
      twin.ids.size(), out[0].ids == twin.ids ? "yes" : "no", strategy->output_rewards()[0], expected);
  EXPECT_NEAR(strategy->output_rewards()[0], expected, 1e-6);
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("value", setup_of(*model, dir, tok, options)); }),
            ErrorCode::kInvalidArgument);  // several labels and no profile
  options.value_k = 0;
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("value", setup_of(*model, dir, tok, options, &profile)); }),
            ErrorCode::kInvalidArgument);
  options.value_k = 3;
  options.value = (dir / "no_such_value").string();
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("value", setup_of(*model, dir, tok, options, &profile)); }),
            ErrorCode::kNotFound);
}

// correct against its naive twin: the plain sampler's draft, then the corrector's answer to scoring::corrector_prompt
// of the question and that draft, decoded by a separate model with the corrector merged into its weights. A corrector
// trained with objectives is told the profile's two strongest positive dimensions, strongest first.
TEST(Strategy, CorrectRewritesTheDraftWithTheCorrector) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  const test::TempDir tmp("strategy_correct");
  const fs::path corrector = write_corrector(*model, tmp.path(), true);
  const auto merged = runtime::merge_lora(*model, runtime::LoraAdapter::load(corrector, model->config()));
  const decoding::Personalization profile = profile_of({{"length", 0.4}, {"humour", 0.9}, {"topic.food", -2.0}});
  decoding::StrategyOptions options;
  options.corrector = corrector.string();
  const auto strategy = decoding::make_strategy("correct", setup_of(*model, dir, tok, options, &profile));
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.max_new_tokens = 6;
  request.options.sampling.greedy = true;
  const auto out = strategy->generate(request);
  const auto draft = runtime::generate(*model, &tok, request.prompt, request.options)[0];
  const std::string text = scoring::corrector_prompt("The cat", draft.text, {"humour", "length"});
  EXPECT_NE(text.find("(more humour, length)"), std::string::npos);
  const auto twin = runtime::generate(*merged, &tok, decoding::encode_prompt(tok, text), request.options)[0];
  std::printf("correct: draft '%s' corrected to '%s' (twin '%s')\n", draft.text.c_str(), out[0].text.c_str(),
              twin.text.c_str());
  EXPECT_EQ(out[0].ids, twin.ids);
  EXPECT_NE(out[0].ids, draft.ids);
  ASSERT_EQ(strategy->notes().size(), 1u);
  EXPECT_EQ(strategy->notes()[0], "corrected toward humour, length");
  EXPECT_EQ(strategy->cost().tokens, static_cast<int64_t>(draft.ids.size() + out[0].ids.size()));

  // Bad inputs: no corrector, a directory without the manifest, objectives named to a corrector trained without.
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("correct", setup_of(*model, dir, tok)); }),
            ErrorCode::kInvalidArgument);
  options.corrector = dir.string();
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("correct", setup_of(*model, dir, tok, options)); }),
            ErrorCode::kNotFound);
  options.corrector = write_corrector(*model, tmp.path(), false).string();
  options.correct_toward = "humour";
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("correct", setup_of(*model, dir, tok, options)); }),
            ErrorCode::kInvalidArgument);
}

// ric asks its policy for scores: the profile's weights mapped onto the training scores (each label toward its own
// 90th / 10th percentile, or along the weights' unit direction), --ric-targets as given; the output is the adapter's
// decoding of scoring::reward_prompt, against a model with the adapter merged in.
TEST(Strategy, RicAsksForTheUsersScores) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  const test::TempDir tmp("strategy_ric");
  const fs::path ric = write_ric(*model, tmp.path());
  const auto merged = runtime::merge_lora(*model, runtime::LoraAdapter::load(ric, model->config()));
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.max_new_tokens = 5;
  request.options.sampling.greedy = true;
  const auto asked = [&](const decoding::StrategyOptions& o, const decoding::Personalization* profile) {
    const auto strategy = decoding::make_strategy("ric", setup_of(*model, dir, tok, o, profile));
    const auto out = strategy->generate(request);
    return std::make_pair(strategy->notes().at(0), out[0].ids);
  };
  decoding::StrategyOptions o;
  o.ric = ric.string();
  // w = (3, −4), unit (0.6, −0.8): a = 1 + 0.6 · (3 − 1) = 2.2; b = 0.2 − 0.8 · (0.2 − 0) = 0.04 → "0.0".
  const decoding::Personalization profile = profile_of({{"a", 3.0}, {"b", -4.0}});
  const auto [note, ids] = asked(o, &profile);
  EXPECT_EQ(note, "asked for <a 2.2> <b 0.0> ");
  const auto twin =
      runtime::generate(*merged, &tok, decoding::encode_prompt(tok, "<a 2.2> <b 0.0> The cat"), request.options)[0];
  EXPECT_EQ(ids, twin.ids);
  // direction: one scale, the largest half-spread (2): a = 1 + 2 · 0.6 = 2.2, b = 0.2 − 2 · 0.8 = −1.4.
  o.ric_mode = "direction";
  EXPECT_EQ(asked(o, &profile).first, "asked for <a 2.2> <b -1.4> ");
  o.ric_mode = "scores";
  EXPECT_EQ(asked(o, nullptr).first, "asked for <a 1.0> <b 0.2> ");  // no user: the medians
  o.ric_targets = "b=0.31";
  EXPECT_EQ(asked(o, &profile).first, "asked for <a 1.0> <b 0.3> ");  // given targets win; the rest ask medians
  std::printf("ric: the profile's scores, the direction, the medians and given targets as computed by hand\n");
  for (const char* bad : {"c=1", "a", "a=x", "a=inf"}) {
    o.ric_targets = bad;
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy("ric", setup_of(*model, dir, tok, o)); }),
              ErrorCode::kInvalidArgument)
        << bad;
  }
  o.ric_targets.clear();
  o.ric_mode = "sideways";
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("ric", setup_of(*model, dir, tok, o)); }),
            ErrorCode::kInvalidArgument);
  o.ric_mode = "scores";
  o.ric = write_corrector(*model, tmp.path(), false).string();  // an adapter without a ric manifest
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("ric", setup_of(*model, dir, tok, o)); }),
            ErrorCode::kNotFound);
}

// Nothing is dropped without a word: liked responses that do not fit the context and history pairs of other users
// are named in the strategy's notes.
TEST(Strategy, PromptNotesWhatItLeftOut) {
  const fs::path dir = test::data_dir() / ".." / ".." / "models" / "default";  // a 128-token context
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  test::TempDir tmp("strategy_notes");
  {
    std::ofstream out(tmp.path() / "history.jsonl");
    for (int i = 0; i < 4; ++i)
      out << nlohmann::json{{"prompt", "The cat"},
                            {"chosen", " sat on the warm mat all afternoon and purred " + std::to_string(i)},
                            {"rejected", " ran."},
                            {"user_id", i < 3 ? "u1" : "u2"}}
                 .dump()
          << "\n";
  }
  const decoding::Personalization profile = profile_of({}, tmp.path() / "history.jsonl");
  decoding::StrategyOptions options;
  options.retrieve = 3;
  const auto strategy = decoding::make_strategy("prompt", setup_of(*model, dir, tok, options, &profile));
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.sampling.greedy = true;
  request.options.max_new_tokens = model->config().max_position - 30;  // room for about one liked response
  strategy->generate(request);
  std::string all;
  for (const auto& n : strategy->notes()) all += n + "\n";
  std::printf("%s", all.c_str());
  EXPECT_NE(all.find("belong to users other than 'u1'"), std::string::npos);
  EXPECT_NE(all.find("fit in the context"), std::string::npos);
  request.options.max_new_tokens = 4;  // everything fits: only the other user's pairs are noted
  strategy->generate(request);
  ASSERT_EQ(strategy->notes().size(), 1u);
}

// A strategy's model inputs take what palign trains: a LoRA adapter directory decodes as the model it merges into
// (fusion's --models, args/contrast's --adapter give the tokens of the merged model), and directories that are neither
// a model nor an adapter are refused with what to pass instead.
TEST(Strategy, AdapterDirectoriesAreModelInputs) {
  const fs::path dir = test::hf_model("llama");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  test::TempDir tmp("strategy_adapters");
  runtime::LoraConfig lc;
  lc.r = 4;
  lc.base_model = dir.string();
  auto adapter = runtime::LoraAdapter::init(model->config(), lc, 7);
  at::manual_seed(11);
  for (int64_t l = 0; l < model->config().n_layer; ++l)
    for (auto kind : {runtime::LinearKind::kQ, runtime::LinearKind::kV}) {
      auto b = adapter.lora_b(l, kind);
      b.copy_(at::randn(b.sizes()) * 0.5);
    }
  adapter.save(tmp.path() / "adapter");
  const auto merged = runtime::merge_lora(*model, adapter);
  decoding::StrategyRequest request = request_of(tok, 1);
  request.options.sampling.greedy = true;
  request.options.max_new_tokens = 6;
  const auto base_ids = runtime::generate(*model, &tok, request.prompt, request.options, 1)[0].ids;
  const auto merged_ids = runtime::generate(*merged, &tok, request.prompt, request.options, 1)[0].ids;
  EXPECT_NE(base_ids, merged_ids) << "the adapter should change the greedy tokens";

  decoding::StrategyOptions options;
  options.models = (tmp.path() / "adapter").string();
  options.weights = "1";
  EXPECT_EQ(decoding::make_strategy("fusion", setup_of(*model, dir, tok, options))->generate(request)[0].ids,
            merged_ids);

  // --adapter with args and contrast decodes as the merged policy does.
  const auto twins = setups(*model);
  for (const char* name : {"args", "contrast", "proxy"}) {
    decoding::StrategySetup with = setup_of(*model, dir, tok, twins.at(name)(tmp.path()));
    with.adapter = tmp.path() / "adapter";
    decoding::StrategySetup on_merged = setup_of(*merged, dir, tok, twins.at(name)(tmp.path()));
    EXPECT_EQ(decoding::make_strategy(name, with)->generate(request)[0].ids,
              decoding::make_strategy(name, on_merged)->generate(request)[0].ids)
        << name;
  }

  // fusion with --adapter says to pass it among --models.
  decoding::StrategySetup fusion = setup_of(*model, dir, tok, options);
  fusion.adapter = tmp.path() / "adapter";
  try {
    decoding::make_strategy("fusion", fusion);
    ADD_FAILURE() << "fusion took --adapter";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--models"), std::string::npos) << e.what();
  }
  // A reward directory of one adapter per dimension names them; an empty directory is neither kind.
  fs::create_directories(tmp.path() / "arm");
  std::ofstream(tmp.path() / "arm" / scoring::kRewardManifest)
      << nlohmann::json{{"method", "arm"}, {"dimensions", {"humour", "length"}}}.dump();
  options.models = (tmp.path() / "arm").string();
  try {
    decoding::make_strategy("fusion", setup_of(*model, dir, tok, options));
    ADD_FAILURE() << "fusion took a directory of adapters";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("(humour, length)"), std::string::npos) << e.what();
  }
  fs::create_directories(tmp.path() / "empty");
  options.models = (tmp.path() / "empty").string();
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("fusion", setup_of(*model, dir, tok, options)); }),
            ErrorCode::kNotFound);
}

// Options from JSON (what the server sends) equal the same options set field by field; bad JSON names the problem.
TEST(Strategy, OptionsFromJson) {
  std::vector<std::string> given;
  const auto o = decoding::StrategyOptions::from_json(
      R"({"models": "a,b", "weights": "0.5,0.5", "best_of": 8, "cd-k": 2, "args_w": 1.5, "alpha": 2})", &given);
  decoding::StrategyOptions expected;
  expected.models = "a,b";
  expected.weights = "0.5,0.5";
  expected.best_of = 8;
  expected.cd_k = 2;
  expected.args_w = 1.5;
  expected.alpha = 2;
  // Every field compared by visiting both.
  std::vector<std::string> got_values, expected_values;
  auto collect = [](std::vector<std::string>& out) {
    return [&out](const char* name, const auto& value, const char*, const char*) {
      std::ostringstream s;
      s << name << "=" << value;
      out.push_back(s.str());
    };
  };
  decoding::StrategyOptions got = o;
  got.visit_fields(collect(got_values));
  expected.visit_fields(collect(expected_values));
  EXPECT_EQ(got_values, expected_values);
  EXPECT_EQ(given, (std::vector<std::string>{"alpha", "args-w", "best-of", "cd-k", "models", "weights"}));
  for (const char* bad : {"{", "[1, 2]", R"({"best_of": "8"})", R"({"best_of": 2.5})", R"({"alpha": "x"})",
                          R"({"models": 3})", R"({"beam_width": 4})"})
    EXPECT_EQ(error_code_of([&] { decoding::StrategyOptions::from_json(bad); }), ErrorCode::kInvalidArgument) << bad;
}

// The reward a reranking strategy reports for each output is the reward of that output's whole text; strategies
// without a reward report none.
TEST(Strategy, RerankersReportTheRewardOfEachOutput) {
  const fs::path dir = test::hf_model("llama"), rm = test::hf_model("llama_rm");
  const auto model = runtime::Model::load(dir);
  const auto tok = runtime::Tokenizer::from_dir(dir);
  const auto reward = scoring::RewardModel::load(rm);
  decoding::StrategyRequest request = request_of(tok, 2);
  request.options.max_new_tokens = 7;
  request.options.sampling.temperature = 1.0f;
  const std::string prompt_text =
      tok.decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
  double worst = 0;
  for (const char* name : {"best_of_n", "cd_block", "cards"}) {
    decoding::StrategyOptions o;
    o.reward = rm.string();
    o.cards_segment = 3;
    o.best_of = 3;
    o.cd_k = 2;
    o.cd_block = 3;
    const auto strategy = decoding::make_strategy(name, setup_of(*model, dir, tok, o));
    const auto out = strategy->generate(request);
    ASSERT_EQ(strategy->output_rewards().size(), out.size()) << name;
    for (size_t i = 0; i < out.size(); ++i) {
      const double expected =
          reward->score(prompt_text, tok.decode(std::vector<int32_t>(out[i].ids.begin(), out[i].ids.end()), true))[0];
      worst = std::max(worst, std::abs(strategy->output_rewards()[i] - expected));
      EXPECT_NEAR(strategy->output_rewards()[i], expected, 1e-6) << name << " output " << i;
    }
  }
  // args: r of the prompt and the whole output, through the reward directory's own scoring of token ids.
  decoding::StrategyOptions a;
  a.reward = rm.string();
  a.args_k = 3;
  const auto args = decoding::make_strategy("args", setup_of(*model, dir, tok, a));
  const auto out = args->generate(request);
  ASSERT_EQ(args->output_rewards().size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<int64_t> ids = request.prompt;
    ids.insert(ids.end(), out[i].ids.begin(), out[i].ids.end());
    const double expected = reward->score_ids(ids)[0];
    worst = std::max(worst, std::abs(args->output_rewards()[i] - expected));
    EXPECT_NEAR(args->output_rewards()[i], expected, 1e-5) << "args output " << i;
  }
  std::printf("reported vs recomputed output rewards: max |diff| %.3g\n", worst);
  const auto plain = decoding::make_strategy("sample", setup_of(*model, dir, tok));
  plain->generate(request);
  EXPECT_TRUE(plain->output_rewards().empty());
}
