// hybrid-llm: Ding et al., "Hybrid LLM: Cost-Efficient and Quality-Aware Query Routing"
// (ICLR 2024). A router predicts P(q_small(x) >= q_large(x) - t), trained with BCE on labels
// relaxed by t; t* maximises the pairwise label difference (1/N^2) sum |y_i - y_j| = 2 p (1 - p)
// on train (the paper's r_trans). Queries go to the large model when the router's probability
// is low; the threshold is calibrated on calib for the quality target (lib/eval/two_tier.hpp).
// Simplifications (docs/evaluation.md): TF-IDF logistic regression instead of DeBERTa; one
// recorded answer per tier, so no r_prob soft labels over samples.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>

#include "eval/router_cache.hpp"
#include "eval/seed_systems.hpp"
#include "eval/two_tier.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"

namespace routenlp::detail {

// The relaxation t* of Hybrid LLM's r_trans: the t among the candidate gaps (0 and every
// observed q_large - q_small > 0) maximising p(t) (1 - p(t)), p(t) = share of y_i(t) = 1 with
// y_i(t) = [q_small_i >= q_large_i - t]; ties: the smaller t. Exposed for the unit test.
double hybrid_llm_relaxation(const std::vector<double>& q_small, const std::vector<double>& q_large) {
  if (q_small.size() != q_large.size() || q_small.empty())
    throw Error(Status::invalid_argument, "hybrid-llm: need one small and one large quality per row");
  std::set<double> cand{0.0};
  for (size_t i = 0; i < q_small.size(); ++i)
    if (q_large[i] - q_small[i] > 0) cand.insert(q_large[i] - q_small[i]);
  double best_t = 0, best = -1;
  const double n = double(q_small.size());
  for (double t : cand) {
    double pos = 0;
    for (size_t i = 0; i < q_small.size(); ++i) pos += q_small[i] >= q_large[i] - t - 1e-12;
    double p = pos / n, v = p * (1 - p);
    if (v > best + 1e-15) {
      best = v;
      best_t = t;
    }
  }
  return best_t;
}

namespace {

class HybridLlmSystem : public TwoTierScoreSystem {
 public:
  std::string name() const override { return "hybrid-llm"; }

 protected:
  void fit_scorer(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    std::vector<double> qs, ql;
    for (size_t r : ctx.train) {
      qs.push_back(t.q(r, weak_));
      ql.push_back(t.q(r, strong_));
    }
    t_ = hybrid_llm_relaxation(qs, ql);
    RoutingLabels lab;
    lab.tiers = {"small-within-t"};
    size_t pos = 0;
    for (size_t i = 0; i < ctx.train.size(); ++i) {
      const Query& q = ctx.query(ctx.train[i]);
      lab.queries.push_back({q.query, q.task});
      bool y = qs[i] >= ql[i] - t_ - 1e-12;
      pos += y;
      lab.acceptable.push_back({int8_t(y ? 1 : 0)});
      lab.quality.push_back({y ? 1.0 : 0.0});
    }
    pos_rate_ = ctx.train.empty() ? 0 : double(pos) / double(ctx.train.size());
    model_ = make_tfidf_logreg_router(lab);
  }
  std::vector<double> strong_scores(const SystemContext& ctx,
                                    const std::vector<size_t>& rows) override {
    ScoreCache cache;
    cache.model = model_.get();
    cache.ensure(ctx, rows);
    std::vector<double> s;
    s.reserve(rows.size());
    for (size_t r : rows) s.push_back(1.0 - cache.scores.at(r).p_acceptable.at(0));
    return s;
  }
  std::string scorer_detail() const override {
    char b[200];
    std::snprintf(b, sizeof b,
                  "router P(q_small >= q_large - t) by TF-IDF logistic regression (+ task), "
                  "t* = %.3f (r_trans: max 2p(1-p) on train; label share p = %.3f)",
                  t_, pos_rate_);
    return b;
  }

 private:
  std::unique_ptr<RouterModel> model_;
  double t_ = 0, pos_rate_ = 0;
};

}  // namespace

std::unique_ptr<System> make_hybrid_llm_system(const PortfolioConfig&) {
  return std::make_unique<HybridLlmSystem>();
}

}  // namespace routenlp::detail
