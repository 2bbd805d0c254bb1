// `routenlp validate --data FILE [--config FILE]`: check a routing dataset (and optionally its
// portfolio config) and print per-tier accuracy / cost / coverage and per-split counts.
#include <cstdio>
#include <memory>
#include <optional>
#include <map>
#include <string>

#include "commands.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"

namespace routenlp::cli {

namespace {

struct ValidateArgs {
  std::string data;
  std::string config;
  bool skip_bad_lines = false;
  size_t max_query_bytes = 1 << 20;
};

int run_validate(const ValidateArgs& a) {
  std::optional<PortfolioConfig> cfg;
  if (!a.config.empty()) cfg = load_portfolio(a.config);
  ReadOptions opt;
  opt.portfolio = cfg ? &*cfg : nullptr;
  opt.skip_bad_lines = a.skip_bad_lines;
  opt.max_query_bytes = a.max_query_bytes;
  ReadReport rep;
  Dataset d = read_dataset(a.data, opt, &rep);
  for (const auto& m : rep.skip_messages) std::fprintf(stderr, "skipped: %s\n", m.c_str());

  std::printf("%s: %zu queries, %zu lines", a.data.c_str(), d.queries.size(), rep.lines);
  if (a.skip_bad_lines) std::printf(", %zu bad lines skipped", rep.skipped);
  std::printf("\n");
  if (cfg) std::printf("config %s: %zu tiers, reference tier %s\n", a.config.c_str(),
                       cfg->tiers.size(),
                       cfg->reference_tier_index() >= 0
                           ? cfg->tiers[static_cast<size_t>(cfg->reference_tier_index())].name.c_str()
                           : "-");

  size_t given = 0;
  std::map<std::string, size_t> splits;
  for (const auto& q : d.queries) {
    ++splits[split_name(q.split)];
    given += q.split_given;
  }
  std::printf("splits: train %zu, calib %zu, test %zu (%zu given in the file, %zu derived from "
              "the id)\n",
              splits["train"], splits["calib"], splits["test"], given, d.queries.size() - given);
  std::printf("tasks: %zu\n", d.task_names().size());

  auto tiers = summarize_tiers(d, cfg ? &*cfg : nullptr);
  std::printf("%-34s %7s %9s %9s %11s %12s %7s\n", "tier", "n", "coverage", "accuracy",
              "acceptable", "cost/call", "priced");
  for (const auto& t : tiers) {
    char acc[32] = "-", cost[32] = "-";
    if (cfg && t.outcomes)
      std::snprintf(acc, sizeof acc, "%.1f%%", 100.0 * static_cast<double>(t.acceptable) /
                                                   static_cast<double>(t.outcomes));
    if (t.priced) std::snprintf(cost, sizeof cost, "%.3e", t.mean_cost);
    std::printf("%-34s %7zu %8.1f%% %9.4f %11s %12s %7zu\n", t.tier.c_str(), t.outcomes,
                100.0 * t.coverage, t.mean_quality, acc, cost, t.priced);
  }
  if (cfg) {
    for (const auto& t : tiers)
      if (cfg->tier_index(t.tier) >= 0 && t.outcomes == 0)
        std::printf("note: tier %s of the config has no outcomes in the data\n", t.tier.c_str());
  }
  std::printf("OK\n");
  return 0;
}

}  // namespace

void register_validate(CLI::App& app, Action& action) {
  auto args = std::make_shared<ValidateArgs>();
  auto* cmd = app.add_subcommand("validate", "Check a routing dataset (and portfolio config); "
                                             "print per-tier accuracy, cost and coverage");
  cmd->add_option("--data", args->data, "routing dataset (.jsonl)")->required();
  cmd->add_option("--config", args->config, "portfolio config (.yaml): checks tier names, prices "
                                             "calls from tokens");
  cmd->add_flag("--skip-bad-lines", args->skip_bad_lines,
                "skip (and count) bad lines instead of failing");
  cmd->add_option("--max-query-bytes", args->max_query_bytes,
                  "longest accepted query text in bytes (0 = no limit)");
  cmd->callback([args, &action] { action = [args] { return run_validate(*args); }; });
}

}  // namespace routenlp::cli
