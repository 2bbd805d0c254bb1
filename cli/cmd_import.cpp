// `routenlp import <routellm|routerbench|llmrouter> --input DIR --out FILE`: convert a published
// routing benchmark into the routing dataset format (docs/dataset-format.md).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "progress_bar.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/data/importers.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp::cli {

namespace {

struct ImportArgs {
  std::string format;
  std::string input;
  std::string out;
  std::string subset;
  std::string config_out;
  bool drop_contaminated = false;
  bool no_responses = false;
  bool quiet = false;
};

int run_import(const ImportArgs& a) {
  ImportOptions opt;
  opt.drop_contaminated = a.drop_contaminated;
  opt.subset = a.subset;
  opt.include_responses = !a.no_responses;
  ProgressBar bar(!a.quiet && ::isatty(2) != 0);
  opt.progress = bar.callback();
  ImportSummary s;
  Dataset d = import_dataset(a.format, a.input, opt, &s);
  bar.finish();
  write_dataset(d, a.out);
  if (!a.config_out.empty()) {
    if (!s.portfolio) {
      std::fprintf(stderr, "routenlp: error: --config-out: the %s files carry no prices\n",
                   a.format.c_str());
      return 1;
    }
    save_portfolio(*s.portfolio, a.config_out);
  }
  if (a.quiet) return 0;
  std::printf("imported %s from %s -> %s\n", s.format.c_str(), a.input.c_str(), a.out.c_str());
  std::printf("rows:               %zu\n", s.rows);
  std::printf("files read:         %zu\n", s.files.size());
  std::printf("tasks:              %zu\n", s.tasks.size());
  std::printf("dropped (contam.):  %zu%s\n", s.dropped_contaminated,
              a.drop_contaminated ? "" : " (not requested)");
  std::printf("missing outcomes:   %zu (empty score cells)\n", s.missing_outcomes);
  // Summaries in the importer's tier order (cheapest first).
  auto unordered = summarize_tiers(d, s.portfolio ? &*s.portfolio : nullptr);
  std::vector<TierSummary> tiers;
  for (const auto& name : s.tiers)
    for (const auto& t : unordered)
      if (t.tier == name) tiers.push_back(t);
  for (const auto& t : unordered)
    if (std::find(s.tiers.begin(), s.tiers.end(), t.tier) == s.tiers.end()) tiers.push_back(t);
  std::printf("tiers:              %zu\n", tiers.size());
  std::printf("  %-34s %7s %9s %9s %12s\n", "tier", "n", "coverage", "accuracy", "cost/call");
  for (const auto& t : tiers) {
    char cost[32] = "-";
    if (t.priced) std::snprintf(cost, sizeof cost, "%.3e", t.mean_cost);
    std::printf("  %-34s %7zu %8.1f%% %9.4f %12s\n", t.tier.c_str(), t.outcomes,
                100.0 * t.coverage, t.mean_quality, cost);
  }
  for (const auto& n : s.notes) std::printf("note: %s\n", n.c_str());
  if (!a.config_out.empty()) std::printf("portfolio prices -> %s\n", a.config_out.c_str());
  return 0;
}

}  // namespace

void register_import(CLI::App& app, Action& action) {
  auto args = std::make_shared<ImportArgs>();
  auto* cmd = app.add_subcommand("import", "Convert RouteLLM / RouterBench / LLMRouter files into "
                                           "a routing dataset (JSONL)");
  cmd->add_option("format", args->format, "routellm, routerbench or llmrouter")
      ->required()
      ->check(CLI::IsMember({"routellm", "routerbench", "llmrouter"}));
  cmd->add_option("--input", args->input, "directory with the upstream files")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out, "output dataset (.jsonl), written atomically")->required();
  cmd->add_flag("--drop-contaminated", args->drop_contaminated,
                "RouteLLM: drop prompts listed in *_contaminated_prompts.jsonl");
  cmd->add_option("--subset", args->subset, "RouteLLM: mmlu or gsm8k (default both)")
      ->check(CLI::IsMember({"mmlu", "gsm8k"}));
  cmd->add_flag("--no-responses", args->no_responses, "leave out the tiers' response texts");
  cmd->add_option("--config-out", args->config_out,
                  "LLMRouter: also write a portfolio config with the upstream prices");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress bar or summary");
  cmd->callback([args, &action] { action = [args] { return run_import(*args); }; });
}

}  // namespace routenlp::cli
