// Stacked router and selection among routers on held-out rows (no libtorch needed).
// Details: docs/router.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"
#include "routenlp/router/model.hpp"

namespace routenlp {

// Weights of a stack, per tier: {bias, weight of base 0, weight of base 1, ...}.
using StackWeights = std::vector<std::vector<double>>;

// Per tier k: p_k = sigmoid(w[k][0] + sum_j w[k][1 + j] * logit(p_jk)), p_jk = base j's p for
// tier k clipped to [1e-4, 1 - 1e-4]. The bases must list the same tiers in the same order;
// Error(invalid_argument) otherwise, or when a base is null or the weights are not one row of
// 1 + bases.size() per tier. name(): "stacked(<base>+<base>+...)". score() is thread-safe when
// the bases' are.
RN_API std::unique_ptr<RouterModel> make_stacked_router(
    std::vector<std::shared_ptr<const RouterModel>> bases, StackWeights weights);

struct StackOptions {
  double l2 = 1e-2;         // ridge penalty on the base weights (not the bias), per mean log loss
  // The ridge pulls base `anchor`'s weight toward 1 and the others' toward 0 (-1: all toward 0),
  // so that with little held-out evidence the stack stays close to that base.
  int anchor = -1;
  // Each tier's weights are shrunk toward weights shared by every tier (fitted on all tiers'
  // rows together, a bias per tier) with penalty pool/2 |w_k - w_shared|^2 per mean log loss:
  // 0 = independent tiers, infinity = the shared weights for every tier (only biases differ).
  double pool = 1.0;
  int max_iterations = 50;  // Newton steps per fit
  // A tier with fewer held-out positives or negatives than this cannot be fitted: it gets the
  // anchor base (bias 0, weight 1), else the plain mean of the base logits (weights 1/bases).
  size_t min_class = 3;
};

// Ridge logistic regression, per tier, of the held-out labels on the bases' logits.
// base_scores[j][i] are base j's scores of heldout.queries[i] (tiers in heldout.tiers order);
// rows without an outcome for a tier are skipped for that tier.
RN_API StackWeights fit_stack_weights(const std::vector<std::vector<RouterScores>>& base_scores,
                                      const RoutingLabels& heldout,
                                      const StackOptions& options = {});
// Scores `heldout` with every base (fitted without those rows) and returns the fitted stack.
RN_API std::unique_ptr<RouterModel> fit_stacked_router(
    std::vector<std::shared_ptr<const RouterModel>> bases, const RoutingLabels& heldout,
    const StackOptions& options = {});

// Mean of the per-tier AUCs that are defined (NaN when none is).
RN_API double mean_tier_auc(const std::vector<TierMetrics>& metrics);

struct SelectOptions {
  // Stack configurations tried (e.g. with and without an anchor); the one with the highest
  // held-out (out-of-fold) AUC is the stack candidate (ties: the earlier).
  std::vector<StackOptions> stacks{StackOptions{}};
  bool with_stack = true;  // also consider the stack of all candidates (needs >= 2 of them)
  int folds = 5;           // K-fold cross-validation on the held-out rows for the stack's AUC
  // Choose the first entry, in order of preference, whose held-out AUC is within se_rule
  // standard errors of the best one's (the SE of their difference, by a paired bootstrap of the
  // held-out rows); se_rule 0 = the best. Order: the stack first when prefer_stack (it can
  // mimic every candidate, so a small held-out lead of one candidate is mostly noise), then the
  // candidates in the given order, then the stack when not preferred.
  double se_rule = 1.0;
  bool prefer_stack = true;
  int bootstrap = 200;     // bootstrap resamples for the standard errors
  uint64_t seed = 0;       // fold assignment and bootstrap
};

struct RouterSelection {
  std::vector<std::string> names;   // the candidates' names, then the stack's when considered
  std::vector<double> heldout_auc;  // mean per-tier AUC on the held-out rows (stack: out of fold)
  size_t candidates = 0;            // how many candidates were given
  std::vector<double> heldout_auc_se;  // bootstrap SE of (best AUC - this one's); 0 for the best
  size_t best = 0;                  // index of the highest held-out AUC
  size_t chosen = 0;                // index into names; == candidates when the stack won
  size_t stack_config = 0;          // index into SelectOptions::stacks of the stack candidate
  std::vector<double> stack_config_auc;  // held-out AUC of each stack configuration
  StackWeights stack_weights;       // refitted on all held-out rows (empty without a stack)
  std::shared_ptr<const RouterModel> model;  // the chosen router
  bool stacked() const { return chosen == candidates; }
};

// Chooses among routers fitted without the `heldout` rows by their held-out mean per-tier AUC
// (see SelectOptions for the rule); the stack of all of them competes with its K-fold
// cross-validated AUC (weights fitted on the other folds) and, when considered, is refitted on
// every held-out row. Candidates share the tier list.
RN_API RouterSelection select_router(
    const std::vector<std::shared_ptr<const RouterModel>>& candidates,
    const RoutingLabels& heldout, const SelectOptions& options = {});

}  // namespace routenlp
