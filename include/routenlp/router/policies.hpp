// Routing policies: turn a router's scores and the tiers' costs into a tier choice.
#pragma once

#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/export.h"
#include "routenlp/router/model.hpp"

namespace routenlp {

// Routing policies over scores + tier costs. decide() is const and thread-safe.

class RN_API RoutingPolicy {
 public:
  virtual ~RoutingPolicy();
  virtual RoutingDecision decide(const RouterScores& scores, const std::string& task) const = 0;
  virtual std::string name() const = 0;
};

// Mean cost per call of each portfolio tier over the dataset (outcome_cost), divided by the
// largest mean, so the most expensive tier costs 1. Tiers without any outcome get their
// token price ratio when the portfolio has one, else 1.
RN_API std::vector<double> relative_tier_costs(const Dataset& data,
                                               const PortfolioConfig& portfolio);

// (a) The cheapest tier (tiers are ordered cheapest first) whose p_acceptable >= the task's
// target; when none reaches it, the tier with the highest p (ties: the pricier).
class RN_API ThresholdPolicy : public RoutingPolicy {
 public:
  // target per task, default for the rest.
  explicit ThresholdPolicy(double default_target, std::map<std::string, double> per_task = {});
  // Targets 1 - alpha_for(task) of the portfolio, for the portfolio's tasks and "default".
  static ThresholdPolicy from_portfolio(const PortfolioConfig& portfolio);
  double target(const std::string& task) const;
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override { return "threshold"; }

 private:
  double default_target_;
  std::map<std::string, double> per_task_;
};

// (b) Cost-quality knob: argmax_k p_k - lambda * cost_k (ties: the cheaper tier). lambda = 0
// picks the most likely acceptable tier; large lambda the cheapest.
class RN_API CostKnobPolicy : public RoutingPolicy {
 public:
  CostKnobPolicy(double lambda, std::vector<double> tier_costs);
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override { return "cost-knob"; }

 private:
  double lambda_;
  std::vector<double> costs_;
};

// (c) RouteLLM-compatible two-tier routing. The strong-call score of a query is
// 1 - p_acceptable[weak] (how likely the weak tier fails); the query goes to `strong` when the
// score passes the threshold, else to `weak`.
enum class ThresholdRule {
  quantile,   // RouteLLM: t = quantile(1 - strong_pct) (linear interpolation); strong iff s >= t
  conformal,  // t = ceil((n+1)(1-strong_pct))-th smallest score; strong iff s > t
};

// Threshold for a target strong-call share over calibration scores. quantile: share ~ p;
// conformal: p - 1/(n+1) <= P(strong) <= p for an exchangeable new query.
RN_API double calibrate_strong_threshold(std::vector<double> scores, double strong_pct,
                                         ThresholdRule rule);

class RN_API TwoTierPolicy : public RoutingPolicy {
 public:
  TwoTierPolicy(int weak, int strong, double threshold, ThresholdRule rule);
  // Calibrates the threshold on the strong-call scores of `calibration` queries.
  static TwoTierPolicy calibrate(const RouterModel& router,
                                 const std::vector<RouteQuery>& calibration, int weak,
                                 int strong, double strong_pct, ThresholdRule rule);
  static double strong_score(const RouterScores& scores, int weak);
  bool goes_strong(double strong_score) const;
  double threshold() const { return threshold_; }
  RoutingDecision decide(const RouterScores& scores, const std::string& task) const override;
  std::string name() const override;

 private:
  int weak_, strong_;
  double threshold_;
  ThresholdRule rule_;
};

// Scores a batch with `router` and applies `policy` to each query.
RN_API std::vector<RoutingDecision> route_batch(const RouterModel& router,
                                                const RoutingPolicy& policy,
                                                const std::vector<RouteQuery>& batch);

}  // namespace routenlp
