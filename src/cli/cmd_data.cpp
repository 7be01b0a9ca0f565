// palign data fortunes: builds the fortunes corpus (JSON Lines + manifest).
#include <cstdio>
#include <map>

#include "common.h"
#include "palign/scoring/fortunes.h"

namespace palign::cli {

Command add_data(CLI::App& root) {
  struct Flags {
    std::string out, source = "/usr/share/games/fortunes";
    std::vector<std::string> exclude = {"ascii-art"};
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* data = root.add_subcommand("data", "Build datasets");
  data->require_subcommand(1);
  CLI::App* app = data->add_subcommand("fortunes", "Build the fortunes corpus: DIR/fortunes.jsonl + DIR/manifest.json");
  app->add_option("--out", flags->out, "Output folder")->required();
  app->add_option("--source", flags->source, "Folder of fortune files")->capture_default_str();
  app->add_option("--exclude", flags->exclude, "Topics to leave out")->capture_default_str();
  return {app, [flags] {
            scoring::FortunesOptions opts{.source_dir = flags->source, .exclude = flags->exclude};
            auto records = scoring::read_fortunes(opts);
            scoring::write_fortunes_corpus(flags->out, records, opts);
            std::map<std::string, int> splits;
            for (const auto& r : records) splits[r.split]++;
            std::printf("wrote %zu fortunes (train %d, valid %d, test %d) to %s/fortunes.jsonl\n", records.size(),
                        splits["train"], splits["valid"], splits["test"], flags->out.c_str());
            return 0;
          }};
}

}  // namespace palign::cli
