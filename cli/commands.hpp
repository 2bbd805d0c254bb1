// Each subcommand of the `routenlp` CLI lives in its own cmd_<name>.cpp and registers itself
// here. A command's callback returns the process exit code: 0 ok, 1 runtime error, 2 usage.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace routenlp::cli {

// The action chosen by parsing; main() runs it after parsing succeeds.
using Action = std::function<int()>;

void register_doctor(CLI::App& app, Action& action);
void register_serve(CLI::App& app, Action& action);
void register_fit(CLI::App& app, Action& action);
void register_calibrate(CLI::App& app, Action& action);
void register_eval(CLI::App& app, Action& action);
void register_bench(CLI::App& app, Action& action);
void register_coopt(CLI::App& app, Action& action);
void register_train_tier(CLI::App& app, Action& action);
void register_train(CLI::App& app, Action& action);
void register_route(CLI::App& app, Action& action);
void register_import(CLI::App& app, Action& action);
void register_validate(CLI::App& app, Action& action);

}  // namespace routenlp::cli
