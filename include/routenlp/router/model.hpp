// Router model interface: what a router reads and predicts (per tier, P(answer acceptable |
// query, task)), the labels it is trained on and its per-tier metrics. The neural (DistilBERT)
// router and every baseline implement RouterModel, so evaluators and cascades use them
// interchangeably. Details: docs/router.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/export.h"

namespace routenlp {

// What a router reads.
struct RouteQuery {
  std::string query;
  std::string task;
};

// What a router predicts for one query.
struct RouterScores {
  std::vector<double> p_acceptable;  // per tier (router's tier order), in [0,1]
  double difficulty = 0.0;           // in [0,1]; higher = more tiers expected to fail
  bool task_unseen = false;          // task absent from training: the shared "unknown" one used
};

// A policy's choice, with the scores behind it (interpretable decisions).
struct RoutingDecision {
  int tier = -1;           // index into the router's tiers()
  RouterScores scores;
  std::string policy;      // policy name
  std::string reason;      // one line: why this tier
};

// Anything that scores queries. score() is const and thread-safe for every implementation.
class RN_API RouterModel {
 public:
  virtual ~RouterModel();
  // One RouterScores per query, in order.
  virtual std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const = 0;
  virtual std::string name() const = 0;
  virtual std::vector<std::string> tiers() const = 0;
  RouterScores score_one(const RouteQuery& q) const;
};

// ---------------------------------------------------------------------------------------------
// Labels and metrics

// Per-query training/evaluation targets for a fixed tier list. acceptable[i][k]: 1, 0, or -1
// when query i has no outcome for tier k (masked everywhere).
struct RoutingLabels {
  std::vector<std::string> tiers;
  std::vector<RouteQuery> queries;
  std::vector<std::vector<int8_t>> acceptable;  // [n][tiers]
  std::vector<std::vector<double>> quality;     // [n][tiers]; NaN when missing
  size_t size() const { return queries.size(); }
};

// Labels of the queries in `split` (all queries when split is empty); tiers are the portfolio's,
// acceptable = portfolio.acceptable(task, quality).
RN_API RoutingLabels make_labels(const Dataset& data, const PortfolioConfig& portfolio,
                                 std::optional<Split> split);

struct TierMetrics {
  std::string tier;
  size_t n = 0;                // labelled queries
  double positive_rate = 0.0;  // share acceptable
  double auc = 0.5;            // ROC AUC (ties averaged); NaN when only one class is present
  double brier = 0.0;          // mean (p - y)^2
};

// ROC AUC by the rank-sum formula with averaged ranks for ties; NaN when a class is empty.
RN_API double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);
// Per-tier AUC and Brier of a router on labelled queries (tiers matched by name).
RN_API std::vector<TierMetrics> evaluate_router(const RouterModel& router,
                                                const RoutingLabels& labels,
                                                size_t batch_size = 64);

}  // namespace routenlp
