// RouteLLM's two-tier protocol for score-based routers (lib/eval/two_tier.hpp).
#include "eval/two_tier.hpp"

#include <cstdio>

#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"

namespace routenlp::detail {

void TwoTierScoreSystem::fit(const SystemContext& ctx) {
  weak_ = 0;
  strong_ = ctx.config->reference_tier_index();
  if (strong_ == weak_)
    throw Error(Status::invalid_argument,
                name() + ": the reference tier is the cheapest tier; nothing to route between");
  score_.clear();
  fit_scorer(ctx);
  std::vector<double> s = strong_scores(ctx, ctx.calib);
  calib_scores_ = s;
  for (size_t i = 0; i < ctx.calib.size(); ++i) score_[ctx.calib[i]] = s[i];
  std::vector<double> cost, qual, pcts;
  for (int i = 0; i <= 100; ++i) {
    double pct = i / 100.0;
    Metrics m = compute_metrics(*ctx.table, *ctx.config, ctx.calib, run(ctx, ctx.calib, pct));
    pcts.push_back(pct);
    cost.push_back(m.cost_ratio);
    qual.push_back(m.quality_ratio);
  }
  pct_ = pcts[pick_operating_point(cost, qual, ctx.quality_target)];
}

std::vector<Decision> TwoTierScoreSystem::run(const SystemContext& ctx,
                                              const std::vector<size_t>& rows, double pct) {
  std::vector<size_t> todo;
  for (size_t r : rows)
    if (!score_.count(r)) todo.push_back(r);
  if (!todo.empty()) {
    std::vector<double> s = strong_scores(ctx, todo);
    if (s.size() != todo.size()) throw Error(Status::internal, name() + ": wrong score count");
    for (size_t i = 0; i < todo.size(); ++i) score_[todo[i]] = s[i];
  }
  double thr = calibrate_strong_threshold(calib_scores_, pct, ThresholdRule::quantile);
  TwoTierPolicy pol(weak_, strong_, thr, ThresholdRule::quantile);
  std::vector<Decision> out;
  out.reserve(rows.size());
  for (size_t r : rows) {
    int tier = pct <= 0 ? weak_ : pct >= 1 ? strong_ : pol.goes_strong(score_.at(r)) ? strong_ : weak_;
    out.push_back(single_call(tier));
  }
  return out;
}

std::vector<Decision> TwoTierScoreSystem::decide(const SystemContext& ctx,
                                                 const std::vector<size_t>& rows) {
  return run(ctx, rows, pct_);
}

std::string TwoTierScoreSystem::sweep_label(size_t p) const {
  return "strong_pct=" + std::to_string(double(p) / 20.0).substr(0, 4);
}

std::vector<Decision> TwoTierScoreSystem::decide_at(const SystemContext& ctx,
                                                    const std::vector<size_t>& rows, size_t p) {
  return run(ctx, rows, double(p) / 20.0);
}

std::string TwoTierScoreSystem::detail() const {
  char b[160];
  std::snprintf(b, sizeof b,
                "; tiers %d (weak) vs %d (strong); strong share calibrated on calib: %.2f "
                "(threshold = quantile(1 - share) of the calib scores)",
                weak_, strong_, pct_);
  return scorer_detail() + b;
}

}  // namespace routenlp::detail
