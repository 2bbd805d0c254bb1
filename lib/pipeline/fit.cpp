// fit_pipeline: the evaluation harness's own fitting procedure for routenlp /
// routenlp-cascade at seed 0 (lib/eval), exported as a Pipeline; calibrate_pipeline: thresholds
// (or RouteLLM's strong-share rule) for a given router.
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "data/hash.hpp"
#include "eval/eval_internal.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"

namespace routenlp {

namespace {

// FNV-1a 64 over the fitting rows: id, task, split and every outcome's quality and cost.
std::string rows_hash(const Dataset& data, const std::vector<size_t>& idx) {
  uint64_t h = detail::kFnvOffset;
  char buf[80];  // three %.17g doubles (<= 24 characters each) and two slashes
  for (size_t i : idx) {
    const Query& q = data.queries[i];
    h = detail::fnv1a64(q.id + '\x1f' + q.task + '\x1f' + split_name(q.split) + '\x1e', h);
    for (const auto& kv : q.outcomes) {
      std::snprintf(buf, sizeof buf, "%.17g/%.17g/%.17g", kv.second.quality,
                    kv.second.cost ? *kv.second.cost : -1.0,
                    kv.second.confidence ? *kv.second.confidence : -1.0);
      h = detail::fnv1a64(kv.first + '=' + buf + '\x1e', h);
    }
  }
  return detail::hex64(h);
}

}  // namespace

Pipeline fit_pipeline(const Dataset& data, const PortfolioConfig& portfolio,
                      const PipelineFitOptions& options, PipelineFitReport* report) {
  if (options.system != "routenlp" && options.system != "routenlp-cascade")
    throw Error(Status::invalid_argument, "fit: system '" + options.system +
                                              "' cannot be fitted as a pipeline (routenlp, routenlp-cascade)");
  const auto t0 = std::chrono::steady_clock::now();
  PortfolioConfig config = portfolio;
  if (options.quality_target) {
    if (!(*options.quality_target > 0 && *options.quality_target <= 1.5))
      throw Error(Status::invalid_argument, "fit: quality target must be in (0, 1.5]");
    config.quality_target = *options.quality_target;
  }
  OutcomeTable table = build_outcome_table(data, config);
  SystemContext ctx;
  ctx.data = &data;
  ctx.config = &config;
  ctx.table = &table;
  ctx.seed = options.seed;
  ctx.quality_target = detail::effective_quality_target(config, options.quality_target);
  ctx.router_config = options.router_config;
  ctx.progress = options.progress;
  std::vector<size_t> used;
  for (size_t r = 0; r < table.rows(); ++r) {
    const Query& q = ctx.query(r);
    if (q.split == Split::train) ctx.train.push_back(r);
    else if (q.split == Split::calib) ctx.calib.push_back(r);
    else continue;
    used.push_back(table.query[r]);
  }
  if (ctx.train.empty() || ctx.calib.empty())
    throw Error(Status::invalid_argument, data.source + ": fit needs train and calib rows (got " +
                                              std::to_string(ctx.train.size()) + " train, " +
                                              std::to_string(ctx.calib.size()) + " calib)");
  auto system = make_system(options.system, config);
  const std::string why = system->support(ctx);
  if (!why.empty()) throw Error(Status::not_supported, "fit: " + options.system + ": " + why);
  system->fit(ctx);
  PipelineParts parts = detail::fitted_pipeline_parts(*system, ctx);
  parts.portfolio = config;  // with the quality-target override, so eval judges the same target
  parts.training_data_hash = rows_hash(data, used);
  Pipeline p(std::move(parts));
  if (report) {
    report->train_rows = ctx.train.size();
    report->calib_rows = ctx.calib.size();
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report->detail = p.manifest().description;
  }
  return p;
}

Pipeline calibrate_pipeline(const Dataset& data, const PortfolioConfig& portfolio,
                            std::shared_ptr<const RouterModel> router,
                            std::optional<double> strong_share) {
  std::vector<std::string> names;
  for (const auto& t : portfolio.tiers) names.push_back(t.name);
  if (router && router->tiers() != names)
    throw Error(Status::invalid_argument, "calibrate: the router's tiers differ from the portfolio's");
  std::vector<size_t> calib;
  for (size_t i = 0; i < data.queries.size(); ++i)
    if (data.queries[i].split == Split::calib) calib.push_back(i);
  if (calib.empty()) throw Error(Status::invalid_argument, data.source + ": no calib rows to calibrate on");
  PipelineParts parts;
  parts.portfolio = portfolio;
  parts.router = router;
  parts.system = "calibrate";
  parts.training_data_hash = rows_hash(data, calib);
  if (strong_share) {
    // RouteLLM's rule between the cheapest tier and the reference tier.
    const double share = *strong_share;
    if (!(share > 0 && share < 1)) throw Error(Status::invalid_argument, "calibrate: strong share must be in (0, 1)");
    if (!router) throw Error(Status::invalid_argument, "calibrate: the strong-share rule needs a router");
    std::vector<RouteQuery> qs;
    for (size_t i : calib) qs.push_back({data.queries[i].query, data.queries[i].task});
    std::vector<double> s;
    for (const auto& sc : router->score(qs)) s.push_back(1.0 - sc.p_acceptable[0]);
    StrongShareRule rule;
    rule.weak = 0;
    rule.strong = portfolio.reference_tier_index();
    rule.strong_share = share;
    rule.threshold = calibrate_strong_threshold(s, share, ThresholdRule::quantile);
    parts.strong_share = rule;
    char buf[160];
    std::snprintf(buf, sizeof buf, "RouteLLM strong-share rule: %.3f of %zu calib queries to '%s' (threshold %.6g on 1 - p['%s'])",
                  share, calib.size(), names[size_t(rule.strong)].c_str(), rule.threshold, names[0].c_str());
    parts.description = buf;
    return Pipeline(std::move(parts));
  }
  AcceptabilityFn fn;
  std::vector<std::vector<double>> p_by_row;
  if (router) {
    // Score the calib rows once; the calibration reads p by (query, tier).
    std::vector<RouteQuery> qs;
    for (size_t i : calib) qs.push_back({data.queries[i].query, data.queries[i].task});
    auto scores = router->score(qs);
    auto by_id = std::make_shared<std::unordered_map<std::string, std::vector<double>>>();
    for (size_t j = 0; j < calib.size(); ++j) (*by_id)[data.queries[calib[j]].id] = scores[j].p_acceptable;
    fn = [by_id](const Query& q, int tier) {
      auto it = by_id->find(q.id);
      return it == by_id->end() ? std::nan("") : it->second[size_t(tier)];
    };
  }
  CalibrationData cd = calibration_data_from_dataset(data, portfolio, Split::calib, fn);
  const CalibrationOptions opt =
      detail::portfolio_calibration_options(portfolio, portfolio.quality_target.has_value());
  auto cal = std::make_shared<ConformalCalibrator>(opt);
  cal->calibrate(cd);
  parts.calibration = cal;
  parts.description = std::string(portfolio.quality_target ? "quality-target" : "guarantee") +
                      " calibration on " + std::to_string(calib.size()) + " calib rows (u = 1 - " +
                      (router ? "confidence, else router p)" : "recorded confidence)");
  return Pipeline(std::move(parts));
}

}  // namespace routenlp
