// Chat template rendering against the forward pass it feeds: for every fixture template (tests/data/chat_templates),
// renders every conversation of the fixture and checks each rendering byte for byte against jinja2's before timing;
// then, per template, the best time to render its conversations once (µs per conversation), next to the default
// model's prefill of the same prompts (encoded by its tokenizer; µs per conversation) in the same run, and the ratio.
// Parsing is timed apart: a server parses a model's template once.
// Usage: template_bench [MODEL_DIR]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/runtime/tokenizer.h"

using namespace palign;
using namespace palign::runtime;
using bench_util::best_seconds;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

const fs::path kFixtures = fs::path(PALIGN_SOURCE_DIR) / "tests" / "data" / "chat_templates";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Case {
  std::string messages, context, expected;
  bool add_generation_prompt = true;
};

}  // namespace

int main(int argc, char** argv) {
  const fs::path model_dir = argc > 1 ? fs::path(argv[1]) : fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
  std::printf("palign template bench: libtorch %s, %d torch threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              blas_description().c_str());
  const Json doc = Json::parse(read_file(kFixtures / "chat_templates.json"));
  std::tm tm{};
  std::sscanf(doc["strftime_now"].get<std::string>().c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
              &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const ChatTemplateOptions options{.fixed_time = std::chrono::system_clock::from_time_t(timegm(&tm))};

  std::map<std::string, std::string> sources;
  std::map<std::string, std::pair<std::string, std::string>> tokens;
  for (const auto& [name, t] : doc["templates"].items()) {
    sources[name] = read_file(kFixtures / t["file"].get<std::string>());
    const auto token = [&](const char* key) { return t[key].is_null() ? std::string() : t[key].get<std::string>(); };
    tokens[name] = {token("bos_token"), token("eos_token")};
  }
  std::map<std::string, std::vector<Case>> cases;
  for (const auto& c : doc["cases"]) {
    const Json& conversation = doc["conversations"][c["conversation"].get<std::string>()];
    cases[c["template"].get<std::string>()].push_back(
        {conversation["messages"].dump(), conversation.contains("context") ? conversation["context"].dump() : "",
         c["expected"].get<std::string>(), c["add_generation_prompt"].get<bool>()});
  }

  // Check first: every rendering is jinja2's.
  std::map<std::string, ChatTemplate> templates;
  int64_t checked = 0, wrong = 0;
  for (const auto& [name, source] : sources) {
    templates.emplace(name, ChatTemplate::parse(source, tokens[name].first, tokens[name].second, options));
    for (const Case& c : cases[name]) {
      wrong += templates.at(name).apply_json(c.messages, c.add_generation_prompt, c.context) != c.expected;
      ++checked;
    }
  }
  std::printf("check: %lld of %lld renderings identical to jinja2's\n", static_cast<long long>(checked - wrong),
              static_cast<long long>(checked));
  if (wrong != 0 || checked == 0) return 1;

  const auto model = Model::load(model_dir);
  const auto tok = Tokenizer::from_dir(model_dir);
  c10::InferenceMode guard;
  std::printf(
      "\nPer conversation, best of 20 rounds (prefill: %s, one prompt at a time, truncated to its %lld-token "
      "context)\n\n",
      model_dir.filename().string().c_str(), static_cast<long long>(model->config().max_position));
  std::printf(
      "| template | conversations | parse us | render us | prefill us | render / prefill "
      "|\n|---|---|---|---|---|---|\n");
  double total_render = 0, total_prefill = 0;
  int64_t total_n = 0;
  for (const auto& [name, source] : sources) {
    const auto& cs = cases[name];
    if (cs.empty()) continue;
    const ChatTemplate& tmpl = templates.at(name);
    const double parse =
        best_seconds(20, [&] { (void)ChatTemplate::parse(source, tokens[name].first, tokens[name].second, options); });
    size_t sink = 0;
    const double render = best_seconds(20, [&] {
      for (const Case& c : cs) sink += tmpl.apply_json(c.messages, c.add_generation_prompt, c.context).size();
    });
    std::vector<at::Tensor> prompts;
    for (const Case& c : cs) {
      auto ids = tok.encode(c.expected, /*add_special=*/false);
      if (std::ssize(ids) > model->config().max_position) ids.resize(model->config().max_position);
      if (ids.empty()) ids.push_back(0);
      prompts.push_back(at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0));
    }
    const double prefill = best_seconds(3, [&] {
      for (const auto& p : prompts) sink += model->forward_full(p).numel();
    });
    const auto n = static_cast<double>(cs.size());
    std::printf("| %s | %zu | %.0f | %.1f | %.0f | %.4f |\n", name.c_str(), cs.size(), 1e6 * parse, 1e6 * render / n,
                1e6 * prefill / n, render / prefill);
    total_render += render, total_prefill += prefill, total_n += std::ssize(cs);
    if (sink == 1) std::printf(" ");
  }
  std::printf("\nall %lld conversations: render %.1f us, prefill %.0f us per conversation; render / prefill %.4f\n",
              static_cast<long long>(total_n), 1e6 * total_render / total_n, 1e6 * total_prefill / total_n,
              total_render / total_prefill);
  return 0;
}
