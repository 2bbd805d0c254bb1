// Router scores cached per table row, and the routers shared by the routenlp systems.
// Internal header.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/eval/eval.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/stacked.hpp"

namespace routenlp::detail {

struct ScoreCache {
  const RouterModel* model = nullptr;
  std::unordered_map<size_t, RouterScores> scores;  // row -> scores
  std::unordered_map<size_t, double> router_ms;     // row -> batched scoring time per query
  void ensure(const SystemContext& ctx, const std::vector<size_t>& rows);
};

// Routing labels of table rows (all tiers present).
RoutingLabels labels_for_rows(const SystemContext& ctx, const std::vector<size_t>& rows);

// Every router below is cached per seed and train rows, so the routenlp systems of one
// evaluation share one neural training run. ctx.train is split, by a seed derived from ctx.seed,
// into selection rows V (20%) and fit rows (the other 80%).

// The neural router trained on the fit rows (80% of ctx.train; never on V).
std::shared_ptr<const RouterModel> neural_router_for(const SystemContext& ctx);

// How routenlp's router was chosen: the candidates fitted on the fit rows (task prior, TF-IDF
// logistic regression, the neural router when libtorch is built, and their stack) and their mean
// per-tier AUC on V (the stack's out of fold); select_router()'s rule picks the one deployed.
struct RouterChoice {
  std::vector<std::string> names;      // short names: task-prior, tfidf-logreg, neural, stacked
  std::vector<double> selection_auc;   // mean per-tier AUC on V, per candidate
  std::vector<double> selection_se;    // bootstrap SE of (best V AUC - this one's)
  std::string rule;                    // how the choice was made, in words
  std::string stack_variant;           // which stack configuration competed (empty: no stack)
  // Per candidate, the router as deployed: the task prior and TF-IDF LR refitted on all of
  // ctx.train, the neural router as trained on the fit rows, the stack over those with the
  // weights fitted on V (on the fit-row bases' predictions).
  std::vector<std::shared_ptr<const RouterModel>> deployed;
  size_t chosen = 0;                   // index into names
  size_t selection_rows = 0, fit_rows = 0;
  std::string neural_absent;           // why there is no neural candidate (empty when there is)
  std::shared_ptr<const RouterModel> model() const { return deployed.at(chosen); }
};
std::shared_ptr<const RouterChoice> router_choice_for(const SystemContext& ctx);
// router_choice_for(ctx)->model(): the router the routenlp systems deploy.
std::shared_ptr<const RouterModel> routenlp_router_for(const SystemContext& ctx);

// Mean per-tier AUC of a router on table rows (NaN when no tier has both classes).
double rows_mean_auc(const SystemContext& ctx, const RouterModel& model,
                     const std::vector<size_t>& rows);

}  // namespace routenlp::detail
