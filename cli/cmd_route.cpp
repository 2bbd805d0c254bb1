// `routenlp route --pipeline DIR --task T "query..."`: where a saved pipeline sends one query
// (start tier, first tier called, router scores, threshold column); or, with --model DIR, a bare
// router checkpoint under a named policy.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/neural.hpp"

namespace routenlp::cli {

namespace {

struct RouteArgs {
  std::string model, pipeline, task, query, config, policy = "threshold";
  double target = -1.0;
  double lambda = 0.1;
  double threshold = 0.5;
  bool json = false;
};

// Runs the router on the query. Whatever it throws (NaN scores rejected by the policy, a torch
// error) is a failure of the model, not of the command line: Status::model, exit code 1 (a
// usage error, Status::invalid_argument, would exit 2).
template <class F>
auto scoring(const RouteArgs& a, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    throw Error(Status::model, "route: the router failed on this query (" +
                                   (a.pipeline.empty() ? a.model : a.pipeline) + "): " + e.what());
  }
}

int run_pipeline_route(const RouteArgs& a) {
  Pipeline p = Pipeline::load(a.pipeline);
  const auto tiers = p.tier_names();
  PipelineRoute r = scoring(a, [&] { return p.route({a.query, a.task}); });
  auto name = [&](int k) { return k >= 0 && size_t(k) < tiers.size() ? tiers[size_t(k)] : std::string("-"); };
  if (a.json) {
    nlohmann::json j;
    j["tier"] = r.first_tier;
    j["tier_name"] = name(r.first_tier);
    j["start_tier"] = r.start_tier;
    j["column"] = r.column;
    j["alpha"] = std::isnan(r.alpha) ? nlohmann::json() : nlohmann::json(r.alpha);
    j["reason"] = r.reason;
    j["task"] = a.task;
    j["task_unseen"] = r.scores.task_unseen;
    j["scores"] = nlohmann::json::array();
    for (size_t k = 0; k < r.scores.p_acceptable.size(); ++k)
      j["scores"].push_back({{"tier", k}, {"tier_name", tiers[k]}, {"p_acceptable", r.scores.p_acceptable[k]}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("first tier: %s (index %d)\n", name(r.first_tier).c_str(), r.first_tier);
  std::printf("start tier: %s\n", name(r.start_tier).c_str());
  std::printf("reason:     %s\n", r.reason.c_str());
  std::printf("task:       %s%s (thresholds of '%s')\n", a.task.c_str(),
              r.scores.task_unseen ? ", unseen in training" : "", r.column.c_str());
  if (!r.scores.p_acceptable.empty()) {
    std::printf("  %-34s %s\n", "tier", "P(acceptable)");
    for (size_t k = 0; k < tiers.size(); ++k)
      std::printf("%s %-34s %.4f\n", static_cast<int>(k) == r.first_tier ? ">" : " ", tiers[k].c_str(),
                  r.scores.p_acceptable[k]);
  }
  return 0;
}

int run_route(const RouteArgs& a) {
  if (!a.pipeline.empty()) return run_pipeline_route(a);
  if (a.model.empty()) throw Error(Status::invalid_argument, "route: give --pipeline DIR or --model DIR");
  NeuralRouter router = NeuralRouter::load(a.model);
  auto tiers = router.tiers();
  std::unique_ptr<RoutingPolicy> policy;
  std::unique_ptr<PortfolioConfig> pf;
  if (!a.config.empty()) {
    pf = std::make_unique<PortfolioConfig>(load_portfolio(a.config));
    std::vector<std::string> names;
    for (const auto& t : pf->tiers) names.push_back(t.name);
    if (names != tiers)
      throw Error(Status::invalid_argument,
                  a.config + ": its tiers differ from the router's (" + a.model + "/router.json)");
  }
  if (a.policy == "threshold") {
    if (a.target >= 0)
      policy = std::make_unique<ThresholdPolicy>(a.target);
    else if (pf)
      policy = std::make_unique<ThresholdPolicy>(ThresholdPolicy::from_portfolio(*pf));
    else
      policy = std::make_unique<ThresholdPolicy>(0.8);
  } else if (a.policy == "cost") {
    if (!pf) throw Error(Status::invalid_argument, "--policy cost needs --config (tier prices)");
    policy = std::make_unique<CostKnobPolicy>(a.lambda, relative_tier_costs(Dataset{}, *pf));
  } else {
    policy = std::make_unique<TwoTierPolicy>(0, static_cast<int>(tiers.size()) - 1, a.threshold,
                                             ThresholdRule::conformal);
  }
  auto d = scoring(a, [&] { return route_batch(router, *policy, {{a.query, a.task}}).at(0); });
  if (a.json) {
    nlohmann::json j;
    j["tier"] = d.tier;
    j["tier_name"] = tiers.at(static_cast<size_t>(d.tier));
    j["policy"] = d.policy;
    j["reason"] = d.reason;
    j["task"] = a.task;
    j["task_unseen"] = d.scores.task_unseen;
    j["difficulty"] = d.scores.difficulty;
    j["scores"] = nlohmann::json::array();  // tier order, cheapest first
    for (size_t k = 0; k < tiers.size(); ++k)
      j["scores"].push_back({{"tier", k}, {"tier_name", tiers[k]}, {"p_acceptable", d.scores.p_acceptable[k]}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("tier:       %s (index %d)\n", tiers.at(static_cast<size_t>(d.tier)).c_str(), d.tier);
  std::printf("policy:     %s\n", d.policy.c_str());
  std::printf("reason:     %s\n", d.reason.c_str());
  std::printf("task:       %s%s\n", a.task.c_str(),
              d.scores.task_unseen ? " (unseen in training: shared unknown-task embedding)" : "");
  std::printf("difficulty: %.3f\n", d.scores.difficulty);
  std::printf("  %-34s %s\n", "tier", "P(acceptable)");
  for (size_t k = 0; k < tiers.size(); ++k)
    std::printf("%s %-34s %.4f\n", static_cast<int>(k) == d.tier ? ">" : " ", tiers[k].c_str(),
                d.scores.p_acceptable[k]);
  return 0;
}

}  // namespace

void register_route(CLI::App& app, Action& action) {
  auto args = std::make_shared<RouteArgs>();
  auto* cmd = app.add_subcommand("route", "Route one query with a saved pipeline (or a router checkpoint)");
  auto* pipe = cmd->add_option("--pipeline", args->pipeline, "pipeline artifact directory (routenlp fit --out)");
  cmd->add_option("--model", args->model, "router checkpoint directory (routenlp train --out)")
      ->excludes(pipe);
  cmd->add_option("--task", args->task, "task label of the query")->required();
  cmd->add_option("query", args->query, "query text")->required();
  cmd->add_option("--config", args->config,
                  "portfolio config (YAML): task targets 1 - alpha, tier prices for --policy cost");
  cmd->add_option("--policy", args->policy,
                  "threshold (cheapest tier with p >= target), cost (max p - lambda*cost), "
                  "two-tier (weak=first, strong=last tier)")
      ->check(CLI::IsMember({"threshold", "cost", "two-tier"}));
  cmd->add_option("--target", args->target, "threshold policy: target p for every task");
  cmd->add_option("--lambda", args->lambda, "cost policy: lambda (costs relative to the priciest)");
  cmd->add_option("--threshold", args->threshold,
                  "two-tier policy: strong iff 1 - p[first tier] > threshold");
  cmd->add_flag("--json", args->json, "print the decision as JSON");
  cmd->callback([&action, args] { action = [args] { return run_route(*args); }; });
}

}  // namespace routenlp::cli
