// The palign command: parses flags and calls the modules. The one place where errors become exit statuses.
#include <c10/util/Exception.h>

#include <cstdio>
#include <vector>

#include "common.h"
#include "palign/base/error.h"
#include "palign/runtime/platform.h"

int main(int argc, char** argv) {
  using namespace palign;
  CLI::App app{"palign: personalized preference alignment for language models"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  app.set_version_flag("--version", std::string("palign ") + PALIGN_VERSION);
  std::vector<cli::Command> commands = {cli::add_generate(app), cli::add_tokenize(app), cli::add_detokenize(app),
                                        cli::add_forward(app),  cli::add_info(app),     cli::add_data(app),
                                        cli::add_bench(app),    cli::add_score(app),    cli::add_profile(app),
                                        cli::add_template(app), cli::add_user(app),     cli::add_chat(app),
                                        cli::add_serve(app),    cli::add_key(app)};
  CLI::App* train = app.add_subcommand("train", "Train tokenizers, language models, reward models, adapters");
  train->require_subcommand(1);
  commands.push_back(cli::add_train_tokenizer(*train));
  commands.push_back(cli::add_train_lm(*train));
  commands.push_back(cli::add_train_reward(*train));
  commands.push_back(cli::add_train_steer(*train));
  commands.push_back(cli::add_train_policy(*train));
  commands.push_back(cli::add_train_value(*train));
  commands.push_back(cli::add_train_corrector(*train));
  CLI::App* eval = app.add_subcommand("eval", "Evaluate models");
  eval->require_subcommand(1);
  commands.push_back(cli::add_eval_perplexity(*eval));
  commands.push_back(cli::add_eval_reward(*eval));
  cli::check_number_flags(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other bad-input error, with the usage exit status.
    std::fprintf(stderr, "palign: error: %s; see palign --help\n", e.what());
    return exit_code(ErrorCode::kInvalidArgument);
  }
  try {
    runtime::warn_if_reference_blas();
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "palign: error: %s\n", e.what());
    return exit_code(e.code());
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "palign: internal error (please report): %s\n", e.what_without_backtrace());
    return exit_code(ErrorCode::kInternal);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "palign: internal error (please report): %s\n", e.what());
    return exit_code(ErrorCode::kInternal);
  }
}
