// palign bench: simulated users with hidden preferences, every method side by side (see bench/runner.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common.h"
#include "palign/base/error.h"
#include "palign/bench/method.h"
#include "palign/bench/report.h"
#include "palign/bench/runner.h"
#include "palign/scoring/feature_cache.h"

namespace palign::cli {

namespace {

void write_file(const std::filesystem::path& path, const std::string& text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[bench] cannot write ", path.string(),
               "; check the folder's permissions and free space");
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    PALIGN_CHECK(!name.empty(), ErrorCode::kInvalidArgument, "[bench] --methods has an empty name in '", text,
                 "'; give names separated by commas, e.g. --methods bt,retrieval");
    names.push_back(name);
  }
  return names;
}

}  // namespace

Command add_bench(CLI::App& root) {
  struct Flags {
    bool quick = false, full = false, list = false, no_progress = false;
    std::string methods, json, out = "palign-bench-out", model, fortunes = "/usr/share/games/fortunes";
    uint64_t seed = 0;
    std::vector<uint64_t> seeds;
    double beta = -1.0;
    std::string features = scoring::FeatureSpec::recommended().text();
    int64_t pairs_per_dimension = -1, train_prompts = -1;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = root.add_subcommand(
      "bench", "Compare personalization methods on simulated users with hidden preferences (Markdown on stdout)");
  auto* quick = app->add_flag("--quick", f->quick, "Small run, at most ~2 minutes on 2 cores (the default)");
  auto* full = app->add_flag("--full", f->full, "Large run, at most ~30 minutes on 2 cores");
  quick->excludes(full);
  app->add_option("--methods", f->methods,
                  "Comma-separated methods or groups (decoding: every decoding strategy); default: all; see --list");
  app->add_flag("--list", f->list, "List the methods and exit");
  app->add_option("--json", f->json, "Also write the results JSON to FILE");
  app->add_option("--out", f->out, "Folder for results.json, report.html and the dataset (data/)")
      ->capture_default_str();
  app->add_option("--model", f->model, "Policy model directory (default: the shipped model)");
  app->add_option("--fortunes", f->fortunes, "Folder of fortune files")->capture_default_str();
  auto* seed = app->add_option("--seed", f->seed, "Seed of everything (users, data, sampling)")->capture_default_str();
  app->add_option("--seeds", f->seeds,
                  "Several runs, one per seed (comma-separated), each in OUT/seed-S/, and the spread of their figures "
                  "across seeds (OUT/seeds.md)")
      ->delimiter(',')
      ->excludes(seed);
  app->add_option("--beta", f->beta,
                  "Label temperature: P(a > b) = sigmoid(beta * (R_u(a) - R_u(b))); higher is less noisy "
                  "(default: the mode's, 4)")
      ->check(CLI::Range(0.0, 1000.0));
  app->add_option("--features", f->features,
                  "What the learned methods' backbone features pool: layers=embed,mid,last (or indices);pool=mean,last"
                  "[;length]")
      ->capture_default_str();
  app->add_option("--pairs-per-dimension", f->pairs_per_dimension,
                  "Labelled pairs per grader dimension for the per-dimension heads (default: the mode's, 512 quick, "
                  "4096 full)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app->add_option("--train-prompts", f->train_prompts,
                  "Training prompts (their candidates give the users' training pairs and the per-dimension pairs; the "
                  "test prompts stay the mode's; default: the mode's)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f] {
            if (f->list) {
              for (const auto& m : bench::method_registry())
                std::printf("%-12s %s%s\n", m.name.c_str(), m.description.c_str(),
                            m.in_default ? "" : (" [not in default runs: --methods " + m.name + "]").c_str());
              return 0;
            }
            bench::BenchOptions o = f->full ? bench::BenchOptions::full() : bench::BenchOptions::quick();
            if (!f->methods.empty()) o.methods = split_names(f->methods);
            (void)bench::expand_method_names(o.methods);  // unknown names fail before any work
            o.model_dir = resolve_model_dir(f->model);
            o.fortunes_dir = f->fortunes;
            o.seed = f->seed;
            o.progress = !f->no_progress;
            if (f->beta >= 0.0) o.dataset.population.beta = f->beta;
            if (f->pairs_per_dimension >= 0) o.dataset.pairs_per_dimension = f->pairs_per_dimension;
            if (f->train_prompts >= 1) {
              o.n_prompts += f->train_prompts - o.dataset.n_train_prompts;
              o.dataset.n_train_prompts = f->train_prompts;
            }
            o.features = scoring::FeatureSpec::parse(f->features).text();
            const std::filesystem::path out = f->out;
            if (!f->seeds.empty()) {
              PALIGN_CHECK(f->json.empty(), ErrorCode::kInvalidArgument,
                           "[bench] with --seeds each run writes OUT/seed-S/results.json; drop --json");
              std::vector<bench::BenchResults> runs;
              for (uint64_t s : f->seeds) {
                o.seed = s;
                const std::filesystem::path dir = out / ("seed-" + std::to_string(s));
                o.data_out = dir / "data";
                runs.push_back(bench::run_bench(o));
                write_file(dir / "results.json",
                           bench::to_json(runs.back()).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
                write_file(dir / "report.html", bench::render_html(runs.back()));
                std::printf("seed %llu: %s\n", static_cast<unsigned long long>(s), (dir / "results.json").c_str());
              }
              const std::string spread = bench::render_seed_spread(runs);
              write_file(out / "seeds.md", spread);
              std::printf("\n%s\nspread: %s\n", spread.c_str(), (out / "seeds.md").c_str());
              return 0;
            }
            o.data_out = out / "data";
            const bench::BenchResults results = bench::run_bench(o);
            const std::string json_text =
                bench::to_json(results).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
            const std::string markdown = bench::render_markdown(results);
            write_file(out / "results.json", json_text);
            write_file(out / "report.html", bench::render_html(results));
            if (!f->json.empty()) write_file(f->json, json_text);
            std::fputs(markdown.c_str(), stdout);
            std::printf("\nresults: %s  report: %s  data: %s\n", (out / "results.json").c_str(),
                        (out / "report.html").c_str(), o.data_out.c_str());
            return 0;
          }};
}

}  // namespace palign::cli
