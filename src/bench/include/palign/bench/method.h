// A personalization method as the bench sees it: fit on the seen users' labelled pairs (and the per-dimension pairs),
// predict which of two responses a user prefers, and generate a response for a user. Methods see only texts, user
// ids and labels; the hidden graders, weights and utilities reach a method only when it is an oracle, through
// MethodContext::truth. Each method is one file in src/bench/methods/ plus one line in the registry (registry.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <vector>

namespace at {
class Tensor;
}

namespace palign::runtime {
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::scoring {
class FeatureCache;
struct FeatureSpec;
}  // namespace palign::scoring

namespace palign::bench {

struct PairText {
  std::string prompt, chosen, rejected;
};

// What a method may know about one user: the id and the pairs the user has labelled at the current budget (for a
// seen user the same pairs fit saw; an unseen user brings them only here).
struct UserData {
  std::string id;
  bool seen = true;
  std::vector<PairText> pairs;
};

struct FitData {
  int64_t budget = 0;
  std::vector<UserData> users;                         // the seen users, each with their first `budget` pairs
  std::vector<std::string> dimensions;                 // named preference dimensions
  std::vector<std::vector<PairText>> dimension_pairs;  // [dimension] pairs labelled by that dimension alone
};

// A generated response and what it cost. tokens: tokens sampled for it (all N candidates for best-of-N);
// forward_passes: model calls (a batched call counts once); seconds: time spent outside Method::generate that is
// attributed to it (a pooled sample drawn in a batch of N carries the batch's time divided by N). The runner adds the
// time spent inside Method::generate.
struct Response {
  std::string text;
  int64_t tokens = 0;
  int64_t forward_passes = 0;
  double seconds = 0.0;
};

// The hidden ground truth, for oracle methods only. population_utility uses the population's mean weights: what the
// average user wants, the best a one-size-fits-all model could learn.
struct HiddenTruth {
  std::function<double(const std::string& user_id, const std::string& prompt, const std::string& response)> utility;
  std::function<double(const std::string& prompt, const std::string& response)> population_utility;
  // The graders' z-scores of a response (one per FitData::dimensions): what every user's utility is a weighted sum of.
  std::function<std::vector<double>(const std::string& prompt, const std::string& response)> z;
  double beta = 1.0;
};

struct GenerationSettings {
  int64_t max_new_tokens = 40;
  float temperature = 1.0f;
  float top_p = 0.95f;
};

// The engine shared by all methods of a run: the policy model and tokenizer, pooled backbone features with a cache,
// and the pool of unpersonalized samples of each generation prompt (N per prompt, drawn once and shared, so that
// sampling, best-of-N and the oracle rerank the same candidates).
class MethodContext {
 public:
  // feature_cache_dir: where backbone features persist between runs (empty: memory only). features: what they pool
  // (a scoring::FeatureSpec's text; empty: FeatureSpec::recommended()).
  MethodContext(const runtime::Model& model, const runtime::Tokenizer& tokenizer, GenerationSettings settings,
                uint64_t seed, const std::string& feature_cache_dir = "", const std::string& features = "");
  ~MethodContext();

  const runtime::Model& model() const { return model_; }
  const runtime::Tokenizer& tokenizer() const { return tokenizer_; }
  const GenerationSettings& settings() const { return settings_; }
  uint64_t seed() const { return seed_; }

  // The backbone's features of a response to a prompt, as feature_spec() pools them (scoring/feature_cache.h), or
  // as another spec's text pools them (e.g. FeatureSpec::classifier(), what a sequence-classification head reads).
  // Computed in batches and cached by (prompt, response) in a scoring::FeatureCache per spec.
  const std::vector<float>& features(const std::string& prompt, const std::string& response,
                                     const std::string& spec = "");
  void precompute_features(const std::vector<std::pair<std::string, std::string>>& texts, const std::string& spec = "");
  int64_t feature_dim(const std::string& spec = "");
  const scoring::FeatureSpec& feature_spec() const;

  // The unpersonalized samples of a generation prompt. Throws kNotFound for a prompt the runner did not pool.
  const std::vector<Response>& pool(const std::string& prompt) const;
  void set_pool(const std::string& prompt, std::vector<Response> samples);

  // One sampled continuation of the given token ids (e.g. a prompt with retrieved context before it); seconds = 0,
  // as its time is spent inside the calling Method::generate.
  Response sample(const std::vector<int64_t>& prompt_ids, uint64_t seed) const;
  // One sampled continuation of each prompt, all in one batch (runtime::generate_each; row i seeded seed + i), with
  // an optional per-row residual hook (GenerateOptions::row_residual_hook, e.g. each user's steering vector). Each
  // response is charged the batch's forward passes.
  using RowResidualHook = std::function<void(int64_t layer, at::Tensor& residual, const std::vector<int64_t>& rows)>;
  std::vector<Response> sample_each(const std::vector<std::vector<int64_t>>& prompts, uint64_t seed,
                                    const RowResidualHook& row_residual_hook = {}) const;

  // An object the methods of a run share under key (e.g. a user model several methods personalize with), made by
  // make on first use. Asking for a key with another type T than it was made with is a bug (kInternal).
  template <typename T>
  std::shared_ptr<T> shared(const std::string& key, const std::function<std::shared_ptr<T>()>& make) {
    return std::static_pointer_cast<T>(shared_erased(key, typeid(T), [&] { return std::shared_ptr<void>(make()); }));
  }
  // The keys whose objects shared() has made so far, in the order made (each at most once).
  const std::vector<std::string>& shared_made() const { return shared_made_; }

  // Interactive elicitation: the training prompts with their candidate responses, and a simulated user who answers
  // "which of these two do you prefer?" about them. The answer is drawn like a training label, P(a) = σ(β(R_u(a) −
  // R_u(b))), from a stream seeded by the run's seed, the user and the method's key for the question (the same key
  // gets the same answer). Any method may ask (it is what a live user does); only training prompts may be asked
  // about (kInvalidArgument otherwise, and kInternal before the runner set it up).
  struct ElicitationPrompt {
    std::string prompt;
    std::vector<std::string> candidates;
  };
  using AskFn = std::function<bool(const std::string& user_id, const std::string& prompt, const std::string& a,
                                   const std::string& b, const std::string& key)>;
  const std::vector<ElicitationPrompt>& elicitation_prompts() const { return elicitation_prompts_; }
  // True when the user prefers a to b.
  bool ask(const std::string& user_id, const std::string& prompt, const std::string& a, const std::string& b,
           const std::string& key) const;
  void set_elicitation(std::vector<ElicitationPrompt> prompts, AskFn ask) {
    elicitation_prompts_ = std::move(prompts);
    ask_ = std::move(ask);
  }

  // Null unless the method being run is an oracle.
  const HiddenTruth* truth() const { return truth_; }
  void set_truth(const HiddenTruth* truth) { truth_ = truth; }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer& tokenizer_;
  GenerationSettings settings_;
  uint64_t seed_;
  std::unique_ptr<scoring::FeatureCache> features_;
  std::map<std::string, std::unique_ptr<scoring::FeatureCache>> other_features_;  // by spec text
  scoring::FeatureCache& cache(const std::string& spec);
  std::unordered_map<std::string, std::vector<Response>> pools_;
  const HiddenTruth* truth_ = nullptr;
  std::vector<ElicitationPrompt> elicitation_prompts_;
  AskFn ask_;
  struct SharedEntry {
    std::shared_ptr<void> object;
    std::type_index type;
  };
  std::shared_ptr<void> shared_erased(const std::string& key, std::type_index type,
                                      const std::function<std::shared_ptr<void>()>& make);
  std::unordered_map<std::string, SharedEntry> shared_;
  std::vector<std::string> shared_made_;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual bool predicts() const = 0;
  virtual bool generates() const = 0;
  // Called once per budget before predictions at that budget; replaces what an earlier fit learned.
  virtual void fit(const FitData& data, MethodContext& ctx) {
    (void)data;
    (void)ctx;
  }
  // P(a ≻ b) for the user. Only called when predicts().
  virtual double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                         MethodContext& ctx) = 0;
  // A response to prompt for the user. Only called when generates().
  virtual Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) = 0;
  // Responses to prompt for several users: the runner asks for every user of a prompt at once. The default calls
  // generate for each; a strategy that serves many users in one batched pass overrides it.
  virtual std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                               MethodContext& ctx);
  // A method with one learned head per named dimension (multi_linear) scores a response on each, in
  // FitData::dimensions' order, for the bench's per-dimension diagnostics; the others return nothing.
  virtual std::vector<double> dimension_scores(const std::string& prompt, const std::string& response,
                                               MethodContext& ctx) {
    (void)prompt, (void)response, (void)ctx;
    return {};
  }
};

struct MethodInfo {
  std::string name;
  std::string description;
  bool oracle = false;
  std::function<std::unique_ptr<Method>()> make;
  bool in_default = true;  // false: too slow for the default runs; only with --methods NAME
  std::string group;       // e.g. "decoding": --methods decoding runs every method of the group
  // A second base to pair this generator with, besides the run's (e.g. args_greedy with greedy, decoding at the same
  // temperature); when it runs too, GenerationRow::vs_own_base is filled.
  std::string own_base;
  // The runner also measures its best-of-N utility at every budget (the candidate it predicts the user prefers to the
  // pool's first sample): the learning curve of generation, besides accuracy's.
  bool curve = false;
};

// Every method, in report order.
const std::vector<MethodInfo>& method_registry();
// The registry entry of name. Throws kInvalidArgument naming the known methods.
const MethodInfo& find_method(const std::string& name);
// names with each group name (MethodInfo::group) replaced by its methods in registry order. Throws kInvalidArgument
// for a name that is neither a method nor a group.
std::vector<std::string> expand_method_names(const std::vector<std::string>& names);

}  // namespace palign::bench
