// The strategy path for callers that hold their inputs in memory and serve many users with one strategy (the bench,
// the server): in-memory models, adapters, vectors and rewards against the same inputs from files, per-request
// profiles against the same profile given at setup, and the strategies whose user is fixed at setup refusing them.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/decoding/strategies.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"
#include "palign/scoring/steering_vectors.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  fs::path dir = test::hf_model("llama");
  std::unique_ptr<runtime::Model> model = runtime::Model::load(dir);
  runtime::Tokenizer tok = runtime::Tokenizer::from_dir(dir);

  decoding::StrategySetup setup(const decoding::StrategyOptions& options = {},
                                const decoding::Personalization* profile = nullptr) const {
    decoding::StrategySetup s;
    s.model = model.get();
    s.model_dir = dir;
    s.tokenizer = &tok;
    s.options = options;
    s.profile = profile;
    return s;
  }

  decoding::StrategyRequest request(const std::string& prompt = "The cat", uint64_t seed = 5) const {
    decoding::StrategyRequest r;
    r.prompt = decoding::encode_prompt(tok, prompt);
    r.options.max_new_tokens = 6;
    r.options.sampling.temperature = 0.9f;
    r.options.sampling.seed = seed;
    return r;
  }
};

// A LoRA adapter on model whose B matrices are random (so it changes the outputs).
runtime::LoraAdapter random_adapter(const runtime::Model& model, const std::string& base, uint64_t seed) {
  runtime::LoraConfig lc;
  lc.r = 4;
  lc.base_model = base;
  auto adapter = runtime::LoraAdapter::init(model.config(), lc, seed);
  at::manual_seed(seed);
  for (int64_t l = 0; l < model.config().n_layer; ++l)
    for (auto kind : {runtime::LinearKind::kQ, runtime::LinearKind::kV}) {
      auto b = adapter.lora_b(l, kind);
      b.copy_(at::randn(b.sizes()) * 0.5);
    }
  return adapter;
}

std::vector<scoring::SteeringVector> random_vectors(const runtime::Model& model) {
  at::manual_seed(3);
  const int64_t d = model.config().hidden_size;
  return {{.name = "humour", .layer = 0, .vector = at::randn({d})},
          {.name = "length", .layer = 1, .vector = at::randn({d})}};
}

}  // namespace

// Each in-memory input decodes exactly as the same input read from its file or directory.
TEST(StrategyInputs, InMemoryInputsEqualTheirFiles) {
  Fixture f;
  test::TempDir tmp("strategy_inputs");
  const fs::path rm = test::hf_model("llama_rm");

  // steer: vectors in memory vs the file they were saved to.
  const auto vectors = random_vectors(*f.model);
  scoring::save_steering_vectors(tmp.path() / "v.safetensors", vectors);
  decoding::StrategyOptions steer;
  steer.weights = "1,-0.5";
  decoding::StrategySetup from_memory = f.setup(steer);
  from_memory.inputs.vectors = &vectors;
  steer.vectors = (tmp.path() / "v.safetensors").string();
  EXPECT_EQ(decoding::make_strategy("steer", from_memory)->generate(f.request())[0].ids,
            decoding::make_strategy("steer", f.setup(steer))->generate(f.request())[0].ids);

  // args: the reward classifier in memory vs its directory.
  const auto classifier = runtime::Model::load(rm);
  decoding::StrategyOptions args;
  args.args_k = 3;
  decoding::StrategySetup args_memory = f.setup(args);
  args_memory.inputs.reward_classifier = classifier.get();
  args.reward = rm.string();
  const auto args_file = decoding::make_strategy("args", f.setup(args));
  const auto args_mem = decoding::make_strategy("args", args_memory);
  EXPECT_EQ(args_mem->generate(f.request())[0].ids, args_file->generate(f.request())[0].ids);
  EXPECT_EQ(args_mem->output_rewards(), args_file->output_rewards());

  // best_of_n and cd_block: a reward function vs the reward directory it scores with.
  const auto reward = scoring::RewardModel::load(rm);
  int64_t calls = 0;
  for (const char* name : {"best_of_n", "cd_block", "cards"}) {
    decoding::StrategyOptions o;
    o.best_of = 3;
    o.cards_k = 2;
    o.cards_segment = 3;
    o.cd_k = 2;
    o.cd_block = 3;
    decoding::StrategySetup memory = f.setup(o);
    memory.inputs.reward = [&](const std::string& prompt, const std::vector<std::string>& responses) {
      ++calls;
      std::vector<double> out;
      for (const auto& r : responses) out.push_back(reward->score(prompt, r)[0]);
      return out;
    };
    o.reward = rm.string();
    const auto by_file = decoding::make_strategy(name, f.setup(o));
    const auto by_function = decoding::make_strategy(name, memory);
    EXPECT_EQ(by_function->generate(f.request())[0].ids, by_file->generate(f.request())[0].ids) << name;
    EXPECT_EQ(by_function->output_rewards(), by_file->output_rewards()) << name;
    EXPECT_EQ(by_function->cost().tokens, by_file->cost().tokens) << name;
  }
  EXPECT_GT(calls, 0);

  // proxy: models in memory by name vs their directories (the expert an adapter merged into the policy).
  const auto adapter = random_adapter(*f.model, f.dir.string(), 7);
  adapter.save(tmp.path() / "expert");
  const auto expert = runtime::merge_lora(*f.model, adapter);
  decoding::StrategyOptions proxy;
  proxy.alpha = 0.5;
  proxy.expert = "expert";
  proxy.antiexpert = "base";
  decoding::StrategySetup proxy_memory = f.setup(proxy);
  proxy_memory.inputs.models = {{"expert", expert.get()}, {"base", f.model.get()}};
  proxy.expert = (tmp.path() / "expert").string();
  proxy.antiexpert = f.dir.string();
  EXPECT_EQ(decoding::make_strategy("proxy", proxy_memory)->generate(f.request())[0].ids,
            decoding::make_strategy("proxy", f.setup(proxy))->generate(f.request())[0].ids);
  // An adapter in memory named as proxy's expert is merged into the policy: the same as the merged model.
  proxy_memory.inputs.models.erase("expert");
  proxy_memory.inputs.adapters = {{"expert", &adapter}};
  EXPECT_EQ(decoding::make_strategy("proxy", proxy_memory)->generate(f.request())[0].ids,
            decoding::make_strategy("proxy", f.setup(proxy))->generate(f.request())[0].ids);

  // fusion: the policy and an adapter in memory run as rows of one batched pass (LoRA applied per row), the
  // directories as the policy and the merged model; the arithmetic differs, the greedy tokens agree.
  decoding::StrategyOptions fusion;
  fusion.models = "base,expert";
  fusion.weights = "0.4,0.6";
  decoding::StrategySetup rows = f.setup(fusion);
  rows.inputs.adapters = {{"base", nullptr}, {"expert", &adapter}};
  fusion.models = f.dir.string() + "," + (tmp.path() / "expert").string();
  auto greedy = f.request();
  greedy.options.sampling.greedy = true;
  const auto fused_rows = decoding::make_strategy("fusion", rows);
  const auto by_rows = fused_rows->generate(greedy)[0].ids;
  const auto by_dirs = decoding::make_strategy("fusion", f.setup(fusion))->generate(greedy)[0].ids;
  std::printf("fusion greedy tokens, adapter rows vs merged directories: %s\n",
              by_rows == by_dirs ? "equal" : "differ");
  EXPECT_EQ(by_rows, by_dirs);
  EXPECT_EQ(fused_rows->cost().passes, static_cast<int64_t>(by_rows.size())) << "one batched pass per token";

  // The same experts and weights for one request (a serving batch's fusion row), by names in memory.
  const auto plan =
      decoding::request_fusion_experts(rows.inputs.adapters, "expert,base", "base=0.4,expert=0.6", nullptr);
  EXPECT_EQ(plan.names, (std::vector<std::string>{"expert", "base"}));
  EXPECT_EQ(plan.experts, (std::vector<const runtime::LoraAdapter*>{&adapter, nullptr}));
  EXPECT_EQ(plan.weights, (std::vector<double>{0.6, 0.4}));
  const decoding::Personalization weighs = [] {
    decoding::Personalization p;
    p.user_id = "u";
    p.weights = {{"expert", 2.0}, {"base", -1.0}};
    return p;
  }();
  EXPECT_EQ(decoding::request_fusion_experts(rows.inputs.adapters, "base,expert", "", &weighs).weights,
            (std::vector<double>{-1.0, 2.0}));
  for (const auto& [models, weights] : std::vector<std::pair<std::string, std::string>>{
           {"", "1"}, {"gone", "1"}, {"base,expert", "1"}, {"base,expert", "1,nan"}, {"base,expert", ""}})
    EXPECT_EQ(error_code_of([&] { decoding::request_fusion_experts(rows.inputs.adapters, models, weights, nullptr); }),
              ErrorCode::kInvalidArgument)
        << models << " / " << weights;

  // A name given in memory as null is refused as a model.
  decoding::StrategySetup null_model = f.setup(proxy);
  null_model.options.expert = "gone";
  null_model.inputs.models = {{"gone", nullptr}};
  EXPECT_EQ(error_code_of([&] { decoding::make_strategy("proxy", null_model); }), ErrorCode::kInvalidArgument);
}

// One strategy serving several users: each request's profile decodes as a strategy made for that user alone, in one
// batch; strategies whose user is fixed at setup refuse a request's profile.
TEST(StrategyInputs, RequestProfilesEqualTheSetupsProfile) {
  Fixture f;
  test::TempDir tmp("strategy_request_profiles");
  const auto vectors = random_vectors(*f.model);
  const auto adapter = random_adapter(*f.model, f.dir.string(), 9);
  scoring::PreferenceRecord liked;
  liked.prompt = "The cat";
  liked.chosen = " sat on the mat and purred";
  liked.rejected = " ran";
  liked.user_id = "u1";
  {
    std::ofstream out(tmp.path() / "history.jsonl");
    out << nlohmann::json{{"prompt", liked.prompt},
                          {"chosen", liked.chosen},
                          {"rejected", liked.rejected},
                          {"user_id", "u1"}}
               .dump()
        << "\n";
  }
  decoding::Personalization u1, u2;
  u1.user_id = "u1";
  u1.weights = {{"humour", 1.0}, {"length", -0.5}, {"base", 1.0}, {"expert", 0.8}};
  u1.statement = "I like cats.";
  u1.pairs = {liked};
  u2.user_id = "u2";
  u2.weights = {{"humour", -2.0}, {"length", 1.0}, {"base", 1.0}, {"expert", -0.8}};
  u2.statement = "Short answers, please.";
  // The setup's profile of u1 reads the same pairs from a file.
  decoding::Personalization u1_file = u1;
  u1_file.pairs.clear();
  u1_file.history = tmp.path() / "history.jsonl";

  for (const char* name : {"prompt", "steer", "fusion", "contrast"}) {
    decoding::StrategyOptions o;
    if (std::string(name) == "fusion") o.models = "base,expert";
    decoding::StrategySetup shared = f.setup(o);
    shared.inputs.vectors = &vectors;
    shared.inputs.adapters = {{"base", nullptr}, {"expert", &adapter}};
    const auto strategy = decoding::make_strategy(name, shared);
    std::vector<decoding::StrategyRequest> requests = {f.request("The cat", 1), f.request("The cat", 2),
                                                       f.request("A dog", 3)};
    requests[0].profile = &u1;
    requests[1].profile = &u2;
    requests[2].profile = &u1;
    const auto batched = strategy->generate_batch(requests);
    ASSERT_EQ(batched.size(), 3u) << name;
    size_t differing = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      decoding::StrategySetup alone = shared;
      alone.profile = requests[i].profile == &u1 ? &u1_file : &u2;
      decoding::StrategyRequest plain = requests[i];
      plain.profile = nullptr;
      differing += decoding::make_strategy(name, alone)->generate(plain)[0].ids != batched[i].ids;
    }
    std::printf("%-8s requests of two users in one batch vs a strategy per user: %zu of 3 differ\n", name, differing);
    EXPECT_EQ(differing, 0u) << name;
  }
  // A request profile that says nothing the strategy reads decodes the plain prompt (contrast), or the prompt
  // without a statement (prompt).
  decoding::Personalization silent;
  silent.user_id = "u3";
  decoding::StrategyRequest plain = f.request();
  const auto sampled = decoding::make_strategy("sample", f.setup())->generate(plain)[0].ids;
  decoding::StrategyRequest with_silent = plain;
  with_silent.profile = &silent;
  EXPECT_EQ(decoding::make_strategy("contrast", f.setup())->generate(with_silent)[0].ids, sampled);
  EXPECT_EQ(decoding::make_strategy("prompt", f.setup())->generate(with_silent)[0].ids, sampled);
  // Without a profile anywhere, the strategies that read one say what to give.
  for (const char* name : {"prompt", "contrast"})
    EXPECT_EQ(error_code_of([&] { decoding::make_strategy(name, f.setup())->generate(plain); }),
              ErrorCode::kInvalidArgument)
        << name;

  // The strategies whose user is fixed when they are made refuse a request's profile.
  const fs::path rm = test::hf_model("llama_rm");
  const std::map<std::string, std::function<void(decoding::StrategyOptions&)>> fixed = {
      {"sample", [](auto&) {}},
      {"best_of_n", [&](auto& o) { o.reward = rm.string(); }},
      {"cd_block", [&](auto& o) { o.reward = rm.string(); }},
      {"cards", [&](auto& o) { o.reward = rm.string(); }},
      {"args", [&](auto& o) { o.reward = rm.string(); }},
      {"proxy", [&](auto& o) { o.expert = o.antiexpert = f.dir.string(); }},
  };
  for (const auto& [name, fill] : fixed) {
    decoding::StrategyOptions o;
    fill(o);
    const auto strategy = decoding::make_strategy(name, f.setup(o));
    try {
      strategy->generate(with_silent);
      ADD_FAILURE() << name << " took a request's profile";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << name;
      EXPECT_NE(std::string(e.what()).find("per user"), std::string::npos) << e.what();
    }
  }
}

// A preference statement too long for the context is left out with a note, as retrieved examples are.
TEST(StrategyInputs, PromptLeavesOutAStatementThatDoesNotFit) {
  Fixture f;
  f.dir = test::data_dir() / ".." / ".." / "models" / "default";  // a 128-token context
  f.model = runtime::Model::load(f.dir);
  f.tok = runtime::Tokenizer::from_dir(f.dir);
  decoding::StrategyOptions o;
  o.statement = "I like cats.";
  for (int i = 0; i < 6; ++i) o.statement += o.statement;  // 64 sentences
  const auto strategy = decoding::make_strategy("prompt", f.setup(o));
  decoding::StrategyRequest request = f.request();
  request.options.max_new_tokens = f.model->config().max_position - 20;
  const auto out = strategy->generate(request);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_FALSE(strategy->notes().empty());
  std::printf("note: %s\n", strategy->notes()[0].c_str());
  EXPECT_NE(strategy->notes()[0].find("statement"), std::string::npos);
  EXPECT_EQ(strategy->built_prompt_tokens(), static_cast<int64_t>(request.prompt.size()));
}
