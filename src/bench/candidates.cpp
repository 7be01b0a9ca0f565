// Bench prompts and candidate responses (see candidates.h).
#include "palign/bench/candidates.h"

#include <algorithm>
#include <sstream>

#include "palign/base/error.h"
#include "palign/bench/rng.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::bench {

std::vector<std::string> fortune_prompts(const std::vector<scoring::FortuneRecord>& records, const PromptOptions& o) {
  PALIGN_CHECK(o.n_prompts >= 1 && o.opening_words >= 1, ErrorCode::kInvalidArgument,
               "[bench.fortune_prompts] n_prompts and opening_words must be >= 1");
  std::vector<std::string> openings;
  for (const auto& r : records) {
    if (r.split != o.split) continue;
    std::istringstream words(r.text);
    std::vector<std::string> ws;
    for (std::string w; words >> w;) ws.push_back(w);
    if (static_cast<int64_t>(ws.size()) < o.opening_words + 2) continue;
    std::string opening;
    for (int64_t i = 0; i < o.opening_words; ++i) opening += (i ? " " : "") + ws[i];
    openings.push_back(opening);
  }
  PALIGN_CHECK(static_cast<int64_t>(openings.size()) >= o.n_prompts, ErrorCode::kInvalidArgument,
               "[bench.fortune_prompts] the ", o.split, " split has ", openings.size(),
               " usable fortunes, fewer than the ", o.n_prompts, " prompts asked for");
  Rng rng(o.seed);
  for (size_t i = openings.size(); i > 1; --i) std::swap(openings[i - 1], openings[rng.uniform_int(i)]);
  openings.resize(o.n_prompts);
  return openings;
}

std::vector<std::vector<std::string>> generate_candidates(const runtime::Model& model,
                                                          const runtime::Tokenizer& tokenizer,
                                                          const std::vector<std::string>& prompts,
                                                          const CandidateOptions& o) {
  PALIGN_CHECK(o.per_prompt >= 1 && o.max_new_tokens >= 1, ErrorCode::kInvalidArgument,
               "[bench.generate_candidates] per_prompt and max_new_tokens must be >= 1");
  runtime::GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling = {.temperature = o.temperature, .top_p = o.top_p};
  if (tokenizer.eos_id()) g.stop_ids = {*tokenizer.eos_id()};
  std::vector<std::vector<std::string>> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> ids = tokenizer.encode(prompts[i], /*add_special=*/true);
    g.sampling.seed = o.seed + 1000 * i;
    auto results = runtime::generate(model, &tokenizer, std::vector<int64_t>(ids.begin(), ids.end()), g, o.per_prompt);
    std::vector<std::string> texts;
    for (auto& r : results) texts.push_back(std::move(r.text));
    out.push_back(std::move(texts));
  }
  return out;
}

}  // namespace palign::bench
