// No non-oracle method can reach the hidden truth: every registered method that is not an oracle is fitted, asked to
// predict and to generate once with the truth withheld and once with a tripwire truth in the context (which counts
// every read); it must never read it, and must say exactly the same both times. The oracles, given the same
// tripwire, read it — so the tripwire itself is shown to work.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "palign/bench/method.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"

using namespace palign;
using namespace palign::bench;

namespace {

const std::vector<std::string> kPrompts = {"Tell me about cats", "Tell me about rain", "Tell me about trains"};
const std::vector<std::string> kResponses = {" ha ha, a joke!", " a long and formal report on it.", " yes.",
                                             " I love it so much."};

FitData fit_data() {
  FitData data;
  data.budget = 4;
  data.dimensions = {"humour", "length"};
  data.dimension_pairs = {{{kPrompts[0], kResponses[0], kResponses[1]}, {kPrompts[1], kResponses[0], kResponses[2]}},
                          {{kPrompts[0], kResponses[2], kResponses[1]}, {kPrompts[1], kResponses[2], kResponses[3]}}};
  data.users.push_back(
      {"u0", true, {{kPrompts[0], kResponses[0], kResponses[1]}, {kPrompts[1], kResponses[3], kResponses[2]}}});
  data.users.push_back(
      {"u1", true, {{kPrompts[0], kResponses[1], kResponses[0]}, {kPrompts[1], kResponses[2], kResponses[3]}}});
  return data;
}

// What a method says: its predictions and its responses, in order.
struct Said {
  std::vector<double> predictions;
  std::vector<std::string> responses;
};

Said run(const MethodInfo& info, const runtime::Model& model, const runtime::Tokenizer& tok, const HiddenTruth* truth) {
  GenerationSettings settings;
  settings.max_new_tokens = 4;
  MethodContext ctx(model, tok, settings, /*seed=*/3);
  std::vector<Response> pool;
  for (const auto& r : kResponses) pool.push_back({r, 4, 4, 0.0});
  ctx.set_pool(kPrompts[2], pool);
  ctx.set_truth(truth);
  // The simulated user answers questions about the training prompts (active elicitation) without the truth: the
  // answers are labels, as the training pairs are, and here a fixed rule gives them.
  ctx.set_elicitation({{kPrompts[0], kResponses}, {kPrompts[1], kResponses}},
                      [](const std::string&, const std::string&, const std::string& a, const std::string& b,
                         const std::string&) { return a.size() < b.size(); });
  const FitData data = fit_data();
  auto method = info.make();
  method->fit(data, ctx);
  Said said;
  const UserData unseen{"u9", false, {data.users[0].pairs[0]}};
  if (method->predicts())
    for (const auto& user : {data.users[0], data.users[1], unseen})
      said.predictions.push_back(method->predict(user, kPrompts[2], kResponses[0], kResponses[1], ctx));
  if (method->generates())
    for (const auto& r : method->generate_batch({data.users[0], unseen}, kPrompts[2], ctx))
      said.responses.push_back(r.text);
  return said;
}

}  // namespace

TEST(Truth, NoNonOracleMethodReadsTheHiddenTruth) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  int64_t reads = 0;
  HiddenTruth tripwire;
  tripwire.utility = [&](const std::string&, const std::string&, const std::string& r) {
    ++reads;
    return static_cast<double>(r.size());
  };
  tripwire.population_utility = [&](const std::string&, const std::string& r) {
    ++reads;
    return static_cast<double>(r.size());
  };
  tripwire.z = [&](const std::string&, const std::string& r) {
    ++reads;
    return std::vector<double>{static_cast<double>(r.size()), 1.0};
  };
  tripwire.beta = 4.0;
  int checked = 0, oracles = 0;
  for (const auto& info : method_registry()) {
    reads = 0;
    const Said with = run(info, *model, tok, &tripwire);
    const int64_t read = reads;
    if (info.oracle) {
      std::printf("%-16s (oracle) read the truth %lld times\n", info.name.c_str(), static_cast<long long>(read));
      EXPECT_GT(read, 0) << info.name << " is an oracle but never read the truth: the tripwire is not wired";
      ++oracles;
      continue;
    }
    const Said without = run(info, *model, tok, nullptr);
    std::printf("%-16s read the truth %lld times; %zu predictions, %zu responses\n", info.name.c_str(),
                static_cast<long long>(read), with.predictions.size(), with.responses.size());
    EXPECT_EQ(read, 0) << info.name << " read the hidden truth";
    EXPECT_EQ(with.predictions, without.predictions) << info.name;
    EXPECT_EQ(with.responses, without.responses) << info.name;
    EXPECT_FALSE(with.predictions.empty() && with.responses.empty()) << info.name;
    ++checked;
  }
  EXPECT_EQ(checked + oracles, static_cast<int>(method_registry().size()));  // every method, opt-in ones too
  EXPECT_GE(oracles, 3);
}
