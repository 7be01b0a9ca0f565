// The feature cache's speed-up over recomputing backbone features (goal ≥ 20×), on the shipped default model:
// features of N (prompt, response) texts recomputed in batches (what a reward head's every epoch would cost without
// the cache) against the same features served from memory and from a cache folder reopened from disk. First checks
// that all three give identical features.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "palign/scoring/feature_cache.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/runtime/tokenizer.h"

using namespace palign::runtime;
using namespace palign::scoring;
using palign::bench_util::best_seconds;
using palign::bench_util::Clock;
using palign::bench_util::seconds_since;
namespace fs = std::filesystem;

namespace {

std::vector<TextPair> make_texts(int64_t n) {
  const char* openings[] = {"A computer", "Love is", "The politician said", "Dinner tonight", "In science,"};
  const char* words[] = {"always", "never", "quietly", "the",  "cat",   "program", "heart",  "vote", "soup", "atom",
                         "and",    "but",   "so",      "very", "small", "large",   "bright", "dark", "!",    "?"};
  std::vector<TextPair> texts;
  for (int64_t i = 0; i < n; ++i) {
    std::string response;
    for (int64_t w = 0; w < 12 + i % 20; ++w) response += std::string(" ") + words[(i * 7 + w * 13) % 20];
    texts.push_back({std::string(openings[i % 5]) + " #" + std::to_string(i), response});
  }
  return texts;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path model_dir = argc > 1 ? fs::path(argv[1]) : fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
  std::printf("palign feature cache bench: libtorch %s, %d torch threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              blas_description().c_str());
  const auto model = Model::load(model_dir);
  const auto tok = Tokenizer::from_dir(model_dir);
  const auto texts = make_texts(512);
  const fs::path dir = fs::temp_directory_path() / "palign_feature_cache_bench";
  fs::remove_all(dir);

  // Check first: recomputed, memory-cached and disk-cached features agree exactly.
  FeatureCache memory(*model, tok);
  const at::Tensor reference = memory.features(texts);
  {
    FeatureCache writer(*model, tok, dir);
    (void)writer.features(texts);
  }
  FeatureCache reopened(*model, tok, dir);
  const bool same = at::equal(reference, reopened.features(texts)) && reopened.stats().computed == 0;
  std::printf("check: memory and disk caches serve identical features without recomputing: %s\n", same ? "yes" : "NO");
  if (!same) return 1;

  const double recompute = best_seconds(3, [&] {
    FeatureCache fresh(*model, tok);
    (void)fresh.features(texts);
  });
  const double from_memory = best_seconds(5, [&] { (void)memory.features(texts); });
  const double from_disk = best_seconds(3, [&] {
    FeatureCache again(*model, tok, dir);
    (void)again.features(texts);
  });
  const double n = static_cast<double>(texts.size());
  std::printf("| path | texts/s | speed-up over recompute |\n|---|---|---|\n");
  std::printf("| recompute (batches of 32) | %.0f | 1.0x |\n", n / recompute);
  std::printf("| cached, in memory | %.0f | %.0fx |\n", n / from_memory, recompute / from_memory);
  std::printf("| cached, reopened from disk | %.0f | %.0fx |\n", n / from_disk, recompute / from_disk);
  std::printf("goal: cache >= 20x faster than recomputing: %s\n", recompute / from_disk >= 20.0 ? "met" : "NOT met");
  fs::remove_all(dir);
  return 0;
}
