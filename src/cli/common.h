// Shared plumbing of the palign subcommands: flag value parsing, model directory resolution, JSON output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace palign::cli {

// A subcommand: its CLI11 app and the action to run when it was chosen (returns the exit status).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// The model directory to use: --model when given, else the shipped default model. Throws kNotFound with what to do.
std::filesystem::path resolve_model_dir(const std::string& flag_value);

// A flag's number check: finite and above lo (strictly when !inclusive). CLI11's Range lets NaN through.
CLI::Validator finite_above(double lo, bool inclusive);

// Adds to every flag of app and its subcommands, by CLI11's type name: FLOAT values must be finite (nan, inf are
// refused), INT and UINT values must fit (out-of-range text is refused instead of saturating, a negative UINT instead
// of wrapping). Call once after every command is added.
void check_number_flags(CLI::App& app);

// Writes one JSON line to stdout (invalid UTF-8 is replaced, never thrown on).
void print_json_line(const std::string& json_text);

Command add_generate(CLI::App& root);
Command add_tokenize(CLI::App& root);
Command add_detokenize(CLI::App& root);
Command add_template(CLI::App& root);
Command add_forward(CLI::App& root);
Command add_info(CLI::App& root);
Command add_data(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_score(CLI::App& root);
Command add_profile(CLI::App& root);
Command add_user(CLI::App& root);
Command add_chat(CLI::App& root);
Command add_serve(CLI::App& root);
Command add_key(CLI::App& root);
// Under `palign train`:
Command add_train_tokenizer(CLI::App& train);
Command add_train_lm(CLI::App& train);
Command add_train_reward(CLI::App& train);
Command add_train_steer(CLI::App& train);
Command add_train_policy(CLI::App& train);
Command add_train_value(CLI::App& train);
Command add_train_corrector(CLI::App& train);
// Under `palign eval`:
Command add_eval_perplexity(CLI::App& eval);
Command add_eval_reward(CLI::App& eval);

}  // namespace palign::cli
