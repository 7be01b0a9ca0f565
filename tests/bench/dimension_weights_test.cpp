// The bench's user model (multi_linear's per-dimension weights, which every decoding method personalizes with)
// against its naive twin: each user's weights with their uncertainty equal users::fit_dimension_weights refitted from
// scratch on the same score differences under the population prior.
#include "palign/users/dimension_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "methods.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"

using namespace palign;
using namespace palign::bench;

namespace {

// Pairs on two dimensions: jokes over reports (humour), a word over many (length).
std::vector<PairText> humour_pairs() {
  std::vector<PairText> out;
  for (const char* topic : {"cats", "dogs", "work", "rain", "tea", "trains", "music", "books"})
    out.push_back({std::string("Tell me about ") + topic, " ha ha, a silly joke about " + std::string(topic) + "!",
                   " a formal report on " + std::string(topic) + "."});
  return out;
}
std::vector<PairText> length_pairs() {
  std::vector<PairText> out;
  for (const char* topic : {"cats", "dogs", "work", "rain", "tea", "trains", "music", "books"})
    out.push_back({std::string("Tell me about ") + topic, " yes.",
                   " there is a great deal to say about " + std::string(topic) + ", and I will say all of it."});
  return out;
}

}  // namespace

TEST(BenchDimensionWeights, EachUsersWeightsEqualARefitUnderThePopulationPrior) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const auto tok = runtime::Tokenizer::from_dir(test::hf_model("llama"));
  MethodContext ctx(*model, tok, {}, /*seed=*/0);
  FitData data;
  data.budget = 4;
  data.dimensions = {"humour", "length"};
  data.dimension_pairs = {humour_pairs(), length_pairs()};
  const auto h = humour_pairs(), l = length_pairs();
  // u0 likes jokes, u1 likes short answers, u2 the opposite of both.
  data.users.push_back({"u0", true, {h[0], h[1], h[2], l[3]}});
  data.users.push_back({"u1", true, {l[0], l[1], l[2], h[3]}});
  data.users.push_back({"u2",
                        true,
                        {{h[4].prompt, h[4].rejected, h[4].chosen},
                         {l[5].prompt, l[5].rejected, l[5].chosen},
                         {h[6].prompt, h[6].rejected, h[6].chosen},
                         {l[7].prompt, l[7].rejected, l[7].chosen}}});
  const auto user_model = make_dimension_weights();
  const UserData nobody{"new", false, {}};
  // Before a fit: the names, no weights.
  EXPECT_TRUE(user_model->weights(nobody, ctx).mean.empty());
  user_model->fit(data, ctx);

  const users::DimensionWeights population = user_model->weights(nobody, ctx);
  ASSERT_EQ(population.names, data.dimensions);
  ASSERT_EQ(population.mean.size(), 2u);
  EXPECT_EQ(population.covariance, (std::vector<double>{1.0, 0.0, 0.0, 1.0})) << "the prior: I / prior_weight";
  std::vector<UserData> who = data.users;
  who.push_back({"u3", false, {h[5], h[6]}});  // an unseen user with pairs of their own
  double worst_mean = 0, worst_cov = 0;
  for (const auto& user : who) {
    const auto w = user_model->weights(user, ctx);
    const auto d = user_model->differences(user, ctx);
    ASSERT_EQ(d.size(), user.pairs.size()) << user.id;
    const auto refit = users::fit_dimension_weights(data.dimensions, d, population.mean, 1.0);
    for (size_t k = 0; k < 2; ++k) worst_mean = std::max(worst_mean, std::abs(w.mean[k] - refit.mean[k]));
    for (size_t k = 0; k < 4; ++k) worst_cov = std::max(worst_cov, std::abs(w.covariance[k] - refit.covariance[k]));
    for (size_t k = 0; k < 2; ++k) EXPECT_LT(w.sd()[k], 1.0) << user.id << ": pairs narrow the prior";
  }
  std::printf("weights vs a refit from scratch: max |mean diff| %.3g, max |covariance diff| %.3g\n", worst_mean,
              worst_cov);
  EXPECT_LT(worst_mean, 1e-4);  // the reward keeps its states in float32
  EXPECT_LT(worst_cov, 1e-4);
  // The users differ where their pairs do.
  const auto u0 = user_model->weights(data.users[0], ctx).mean, u2 = user_model->weights(data.users[2], ctx).mean;
  EXPECT_GT(u0[0], u2[0]);
}
