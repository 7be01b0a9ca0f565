// `retrieval`: LaMP-style retrieval of the user's own history (Salemi et al. 2024). Generation: the user's liked
// (chosen) responses most similar to the prompt, as whole documents, go into the context before the prompt, as many
// as fit (at most kMaxDocs), and the policy samples a continuation. Prediction: nearest-neighbour similarity, a
// response's mean cosine to the user's liked responses minus its mean cosine to the rejected ones.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "methods.h"
#include "palign/bench/rng.h"
#include "palign/bench/users.h"
#include "palign/decoding/prompting.h"
#include "palign/runtime/config.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::bench {

namespace {

constexpr size_t kMaxDocs = 3;
constexpr double kSharpness = 5.0;  // P = σ(kSharpness · (s(a) − s(b)))

class RetrievalMethod final : public Method {
 public:
  bool predicts() const override { return true; }
  bool generates() const override { return true; }

  // Centres the features on the mean of every text the fit sees, so that cosines measure what varies.
  void fit(const FitData& data, MethodContext& ctx) override {
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& user : data.users)
      for (const auto& p : user.pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
    for (const auto& pairs : data.dimension_pairs)
      for (const auto& p : pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
    centre_.assign(static_cast<size_t>(ctx.feature_dim()), 0.0);
    if (texts.empty()) return;
    ctx.precompute_features(texts);
    for (const auto& [prompt, response] : texts) {
      const auto& f = ctx.features(prompt, response);
      for (size_t j = 0; j < centre_.size(); ++j) centre_[j] += f[j] / static_cast<double>(texts.size());
    }
  }

  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    if (user.pairs.empty()) return 0.5;
    auto affinity = [&](const std::string& response) {
      const auto& f = ctx.features(prompt, response);
      double s = 0.0;
      for (const auto& p : user.pairs)
        s += cosine(f, ctx.features(p.prompt, p.chosen)) - cosine(f, ctx.features(p.prompt, p.rejected));
      return s / static_cast<double>(user.pairs.size());
    };
    return sigmoid(kSharpness * (affinity(a) - affinity(b)));
  }

  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    return generate_batch({user}, prompt, ctx)[0];
  }

  // Every user's context in one batch (runtime::generate_each).
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    std::vector<std::vector<int64_t>> contexts;
    for (const auto& user : users) contexts.push_back(context(user, prompt, ctx));
    return ctx.sample_each(contexts, derive_seed(ctx.seed(), "retrieval." + prompt));
  }

 private:
  std::vector<int64_t> context(const UserData& user, const std::string& prompt, MethodContext& ctx) {
    const runtime::Tokenizer& tok = ctx.tokenizer();
    const auto prompt_ids32 = tok.encode(prompt, /*add_special=*/true);
    // Rank the liked documents by similarity to the prompt.
    const auto& query = ctx.features(prompt, "");
    std::vector<std::pair<double, std::string>> docs;
    for (const auto& p : user.pairs) {
      const std::string doc = p.prompt + p.chosen;
      if (std::none_of(docs.begin(), docs.end(), [&](const auto& d) { return d.second == doc; }))
        docs.emplace_back(-cosine(query, ctx.features(p.prompt, p.chosen)), doc);
    }
    std::stable_sort(docs.begin(), docs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<std::string> ranked;
    for (const auto& d : docs) ranked.push_back(d.second);
    const int64_t room = ctx.model().config().max_position - ctx.settings().max_new_tokens;
    return decoding::personalized_prompt(tok, "", ranked, {prompt_ids32.begin(), prompt_ids32.end()}, room, kMaxDocs);
  }

  double cosine(const std::vector<float>& x, const std::vector<float>& y) const {
    double xy = 0.0, xx = 0.0, yy = 0.0;
    for (size_t j = 0; j < x.size(); ++j) {
      const double c = centre_.empty() ? 0.0 : centre_[j];
      const double a = x[j] - c, b = y[j] - c;
      xy += a * b, xx += a * a, yy += b * b;
    }
    return xx > 0.0 && yy > 0.0 ? xy / std::sqrt(xx * yy) : 0.0;
  }

  std::vector<double> centre_;
};

}  // namespace

std::unique_ptr<Method> make_retrieval_method() { return std::make_unique<RetrievalMethod>(); }

}  // namespace palign::bench
