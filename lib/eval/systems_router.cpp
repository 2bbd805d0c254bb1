// Router-only systems over the router component (routenlp/router/router.hpp): task-prior,
// routellm (RouteLLM-style two-tier threshold on a matrix-factorisation router) and
// routenlp-router (the router chosen on held-out train rows among the task prior, TF-IDF LR,
// the neural DistilBERT router and their stack).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_map>

#include "eval/eval_internal.hpp"
#include "eval/router_cache.hpp"
#include "eval/two_tier.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/router/stacked.hpp"

namespace routenlp::detail {

RoutingLabels labels_for_rows(const SystemContext& ctx, const std::vector<size_t>& rows) {
  RoutingLabels out;
  for (const auto& t : ctx.config->tiers) out.tiers.push_back(t.name);
  const OutcomeTable& t = *ctx.table;
  for (size_t r : rows) {
    const Query& q = ctx.query(r);
    out.queries.push_back({q.query, q.task});
    std::vector<int8_t> acc(t.tiers);
    std::vector<double> qual(t.tiers);
    for (size_t k = 0; k < t.tiers; ++k) {
      acc[k] = t.ok(r, int(k)) ? 1 : 0;
      qual[k] = t.q(r, int(k));
    }
    out.acceptable.push_back(std::move(acc));
    out.quality.push_back(std::move(qual));
  }
  return out;
}

void ScoreCache::ensure(const SystemContext& ctx, const std::vector<size_t>& rows) {
  std::vector<size_t> todo;
  for (size_t r : rows)
    if (!scores.count(r)) todo.push_back(r);
  const size_t batch = 64;
  for (size_t i = 0; i < todo.size(); i += batch) {
    std::vector<RouteQuery> b;
    size_t end = std::min(todo.size(), i + batch);
    for (size_t j = i; j < end; ++j) b.push_back({ctx.query(todo[j]).query, ctx.query(todo[j]).task});
    auto t0 = std::chrono::steady_clock::now();
    auto s = model->score(b);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (s.size() != b.size()) throw Error(Status::internal, model->name() + ": wrong score count");
    for (size_t j = i; j < end; ++j) {
      scores[todo[j]] = std::move(s[j - i]);
      router_ms[todo[j]] = ms / double(b.size());
    }
  }
}

namespace {

// Per seed and train rows: the fit/selection split, the neural router and the choice.
struct RouterEntry {
  std::vector<size_t> fit, selection;
  std::shared_ptr<const RouterModel> neural;
  std::shared_ptr<const RouterChoice> choice;
};

std::mutex router_mu;  // held while training: never two trainings at once (global torch RNG)

RouterEntry& entry_locked(const SystemContext& ctx) {
  static std::unordered_map<std::string, RouterEntry> cache;
  uint64_t h = mix_seed(ctx.seed, uint64_t(reinterpret_cast<uintptr_t>(ctx.data)));
  for (size_t r : ctx.train) h = mix_seed(h, r);
  std::string key = std::to_string(h) + "|" + ctx.router_config;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() > 4) cache.clear();
  RouterEntry& e = cache[key];
  // A seeded 20% of train for selection; both parts keep ctx.train's order.
  std::vector<size_t> idx(ctx.train.size());
  std::iota(idx.begin(), idx.end(), size_t(0));
  std::mt19937_64 rng(mix_seed(ctx.seed, 0x5e1ec7));
  std::shuffle(idx.begin(), idx.end(), rng);
  size_t nsel = size_t(std::llround(0.2 * double(ctx.train.size())));
  if (ctx.train.size() >= 2) nsel = std::min(std::max<size_t>(nsel, 1), ctx.train.size() - 1);
  std::vector<char> in_sel(ctx.train.size(), 0);
  for (size_t i = 0; i < nsel; ++i) in_sel[idx[i]] = 1;
  for (size_t i = 0; i < ctx.train.size(); ++i)
    (in_sel[i] ? e.selection : e.fit).push_back(ctx.train[i]);
  return e;
}

std::shared_ptr<const RouterModel> neural_locked(const SystemContext& ctx, RouterEntry& e) {
  if (e.neural) return e.neural;
  RouterTrainConfig cfg;
  if (!ctx.router_config.empty()) cfg = RouterTrainConfig::load(ctx.router_config);
  cfg.seed = ctx.seed;
  SystemContext fit_ctx = ctx;
  fit_ctx.train = e.fit;
  Dataset part = partition_dataset(fit_ctx);
  e.neural = std::make_shared<NeuralRouter>(
      NeuralRouter::train(part, *ctx.config, cfg, ctx.progress));
  return e.neural;
}

}  // namespace

std::shared_ptr<const RouterModel> neural_router_for(const SystemContext& ctx) {
  std::lock_guard<std::mutex> lock(router_mu);
  return neural_locked(ctx, entry_locked(ctx));
}

std::shared_ptr<const RouterChoice> router_choice_for(const SystemContext& ctx) {
  std::lock_guard<std::mutex> lock(router_mu);
  RouterEntry& e = entry_locked(ctx);
  if (e.choice) return e.choice;
  auto choice = std::make_shared<RouterChoice>();
  choice->fit_rows = e.fit.size();
  choice->selection_rows = e.selection.size();
  RoutingLabels fit = labels_for_rows(ctx, e.fit);
  std::vector<std::shared_ptr<const RouterModel>> cands{
      std::shared_ptr<const RouterModel>(make_task_prior_router(fit)),
      std::shared_ptr<const RouterModel>(make_tfidf_logreg_router(fit))};
  choice->names = {"task-prior", "tfidf-logreg"};
  try {
    cands.push_back(neural_locked(ctx, e));
    choice->names.push_back("neural");
  } catch (const Error& err) {
    if (err.code() != Status::not_supported) throw;
    choice->neural_absent = err.what();  // built without libtorch: select among the others
  }
  // Two stack configurations, the better by V's out-of-fold AUC competes: plain, and with the
  // weights pulled toward the task prior alone (weight 1, others 0), so that on V's few hundred
  // rows the text routers must earn their weight (measured: docs/router.md).
  SelectOptions so;
  so.seed = ctx.seed;
  StackOptions anchored;
  anchored.anchor = 0;
  anchored.l2 = 0.03;
  so.stacks = {StackOptions{}, anchored};
  RouterSelection sel;
  if (e.selection.empty()) {  // a one-row train split: nothing to select on, take the prior
    sel.heldout_auc.assign(cands.size(), NAN);
    sel.heldout_auc_se.assign(cands.size(), 0.0);
  } else {
    sel = select_router(cands, labels_for_rows(ctx, e.selection), so);
  }
  choice->selection_auc = sel.heldout_auc;
  choice->selection_se = sel.heldout_auc_se;
  char rule[200];
  std::snprintf(rule, sizeof rule,
                "the stack unless the best candidate beats it on V by more than %.0f bootstrap SE,"
                " then the first candidate within %.0f SE of the best",
                so.se_rule, so.se_rule);
  choice->rule = rule;
  if (sel.heldout_auc.size() > cands.size()) {
    choice->names.push_back("stacked");
    choice->stack_variant = sel.stack_config == 1 ? "anchored on task-prior" : "plain";
  }
  choice->chosen = sel.chosen;
  // Deployment: the cheap routers refitted on all of train. The stack's weights were fitted on
  // their fit-row versions' predictions, an approximation; measured, it beats keeping the
  // fit-row bases (docs/router.md). The neural router is not trained twice.
  RoutingLabels all = labels_for_rows(ctx, ctx.train);
  std::vector<std::shared_ptr<const RouterModel>> dep{
      std::shared_ptr<const RouterModel>(make_task_prior_router(all)),
      std::shared_ptr<const RouterModel>(make_tfidf_logreg_router(all))};
  if (cands.size() > 2) dep.push_back(cands[2]);
  choice->deployed = dep;
  if (!sel.stack_weights.empty())
    choice->deployed.push_back(
        std::shared_ptr<const RouterModel>(make_stacked_router(dep, sel.stack_weights)));
  e.choice = choice;
  return choice;
}

std::shared_ptr<const RouterModel> routenlp_router_for(const SystemContext& ctx) {
  return router_choice_for(ctx)->model();
}

double rows_mean_auc(const SystemContext& ctx, const RouterModel& model,
                     const std::vector<size_t>& rows) {
  return mean_tier_auc(evaluate_router(model, labels_for_rows(ctx, rows)));
}

namespace {

const std::vector<double>& tau_grid() {
  static const std::vector<double> g = [] {
    std::vector<double> v;
    for (int i = 0; i <= 40; ++i) v.push_back(i / 40.0);
    return v;
  }();
  return g;
}

// Four digits: the candidates' AUCs often differ in the third.
std::string auc4(double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

// Per-seed values by name (first-seen order), reported as seed means.
struct SeedValues {
  std::vector<std::pair<std::string, std::vector<double>>> v;
  void add(const std::string& name, double x) {
    for (auto& [n, xs] : v)
      if (n == name) {
        xs.push_back(x);
        return;
      }
    v.push_back({name, {x}});
  }
  std::string str() const {
    std::string out;
    for (const auto& [n, xs] : v) {
      double m = 0;
      size_t k = 0;
      for (double x : xs)
        if (std::isfinite(x)) {
          m += x;
          ++k;
        }
      out += (out.empty() ? "" : ", ") + n + " " + auc4(k ? m / double(k) : NAN);
    }
    return out;
  }
};

// Router + "cheapest tier with p >= tau (else the most likely)". tau: picked on the calib split
// as the cheapest reaching the quality target, or 1 - alpha in guarantee mode.
class RouterSystem : public System {
 public:
  enum Kind { task_prior, routenlp };
  RouterSystem(std::string name, Kind kind) : name_(std::move(name)), kind_(kind) {}
  std::string name() const override { return name_; }

  void fit(const SystemContext& ctx) override {
    if (kind_ == task_prior) {
      model_ = std::shared_ptr<const RouterModel>(make_task_prior_router(labels_for_rows(ctx, ctx.train)));
      choice_.reset();
    } else {
      choice_ = router_choice_for(ctx);
      model_ = choice_->model();
      ++seeds_;
      chosen_count_[choice_->names[choice_->chosen]] += 1;
      if (!choice_->stack_variant.empty()) variant_count_[choice_->stack_variant] += 1;
      for (size_t c = 0; c < choice_->names.size(); ++c)
        selection_auc_.add(choice_->names[c], choice_->selection_auc[c]);
    }
    test_pending_ = true;
    cache_ = ScoreCache{};
    cache_.model = model_.get();
    bool guarantee = kind_ == routenlp && !ctx.config->quality_target;
    if (guarantee) {
      policy_ = std::make_unique<ThresholdPolicy>(ThresholdPolicy::from_portfolio(*ctx.config));
      how_ = "threshold policy at 1 - alpha per task (guarantee mode; no quality target set)";
      return;
    }
    // Quality-target mode: tau from the calib split.
    const auto& grid = tau_grid();
    std::vector<double> cost(grid.size()), qual(grid.size());
    for (size_t i = 0; i < grid.size(); ++i) {
      ThresholdPolicy p(grid[i]);
      auto d = run(ctx, ctx.calib, p);
      Metrics m = compute_metrics(*ctx.table, *ctx.config, ctx.calib, d);
      cost[i] = m.cost_ratio;
      qual[i] = m.quality_ratio;
    }
    size_t best = pick_operating_point(cost, qual, ctx.quality_target);
    tau_ = grid[best];
    policy_ = std::make_unique<ThresholdPolicy>(tau_);
    how_ = "threshold policy, tau=" + std::to_string(tau_) +
           " (cheapest on calib reaching quality ratio " + std::to_string(ctx.quality_target) + ")";
  }

  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows,
                            const RoutingPolicy& policy) {
    cache_.ensure(ctx, rows);
    std::vector<Decision> out;
    out.reserve(rows.size());
    for (size_t r : rows) {
      RoutingDecision d = policy.decide(cache_.scores.at(r), ctx.query(r).task);
      out.push_back(single_call(d.tier, kind_ == routenlp ? cache_.router_ms.at(r) : 0.0));
    }
    return out;
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    if (test_pending_) record_test_auc(ctx, rows);
    return run(ctx, rows, *policy_);
  }
  size_t sweep_size() const override { return tau_grid().size(); }
  std::string sweep_label(size_t p) const override { return "tau=" + std::to_string(tau_grid()[p]); }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return run(ctx, rows, ThresholdPolicy(tau_grid()[p]));
  }
  std::string detail() const override {
    std::string model = model_ ? model_->name() : std::string("?");
    if (kind_ == task_prior)
      return model + " router; " + how_ + "; test mean per-tier AUC (reporting only): " +
             test_auc_.str();
    auto counts = [&](const std::map<std::string, int>& m) {
      std::string out;
      for (const auto& [n, k] : m)
        out += (out.empty() ? "" : ", ") + n + " " + std::to_string(k) + "/" + std::to_string(seeds_);
      return out;
    };
    std::string chosen = counts(chosen_count_);
    std::string d = "selected " + model + " by mean per-tier AUC on V, a seeded 20% of train (" +
                    std::to_string(choice_ ? choice_->selection_rows : 0) +
                    " rows; candidates fitted on the other " +
                    std::to_string(choice_ ? choice_->fit_rows : 0) + "); chosen per seed: " +
                    chosen + " (rule: " + (choice_ ? choice_->rule : std::string("?")) +
                    "); stack variant per seed (the better of plain and anchored on task-prior"
                    " by V AUC): " + counts(variant_count_) +
                    "; V mean AUC (stacked: 5-fold CV on V): " + selection_auc_.str() +
                    "; test mean AUC (reporting only, never used to choose): " + test_auc_.str() +
                    "; deployed: task-prior and tfidf-logreg refitted on all of train";
    if (choice_ && !choice_->neural_absent.empty())
      d += ", stack weights fitted on V; no neural candidate (" + choice_->neural_absent + ")";
    else
      d += ", neural as trained on the other 80%, stack weights fitted on V";
    return d + "; " + how_ + "; router_ms = batched scoring time per query (batch 64)";
  }

 private:
  // The evaluator's first decide() after fit() is on the test rows: their AUCs are recorded
  // for the report (fit() itself calls run(), not decide()).
  void record_test_auc(const SystemContext& ctx, const std::vector<size_t>& rows) {
    test_pending_ = false;
    if (kind_ == task_prior) {
      test_auc_.add("task-prior", rows_mean_auc(ctx, *model_, rows));
      return;
    }
    std::vector<double> aucs;
    for (const auto& m : choice_->deployed) aucs.push_back(rows_mean_auc(ctx, *m, rows));
    test_auc_.add("chosen", aucs[choice_->chosen]);
    for (size_t c = 0; c < aucs.size(); ++c) test_auc_.add(choice_->names[c], aucs[c]);
  }

  std::string name_;
  Kind kind_;
  std::shared_ptr<const RouterModel> model_;
  std::shared_ptr<const RouterChoice> choice_;
  ScoreCache cache_;
  std::unique_ptr<RoutingPolicy> policy_;
  double tau_ = 0;
  std::string how_;
  bool test_pending_ = false;
  int seeds_ = 0;
  std::map<std::string, int> chosen_count_, variant_count_;
  SeedValues selection_auc_, test_auc_;
};

// RouteLLM: matrix-factorisation router in RouteLLM's two-tier protocol (two_tier.hpp:
// cheapest vs reference, threshold = quantile(1 - strong share) of the calib scores, the share
// the least reaching the quality target on calib).
class RouteLlmSystem : public TwoTierScoreSystem {
 public:
  std::string name() const override { return "routellm"; }
  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    if (test_pending_) {  // the first decide() after fit(): the test rows (reporting only)
      test_pending_ = false;
      test_auc_.add(model_->name(), rows_mean_auc(ctx, *model_, rows));
    }
    return TwoTierScoreSystem::decide(ctx, rows);
  }

 protected:
  void fit_scorer(const SystemContext& ctx) override {
    MfOptions mo;
    mo.seed = ctx.seed;
    model_ = std::shared_ptr<const RouterModel>(make_mf_router(labels_for_rows(ctx, ctx.train), mo));
    cache_ = ScoreCache{};
    cache_.model = model_.get();
    test_pending_ = true;
  }
  std::vector<double> strong_scores(const SystemContext& ctx,
                                    const std::vector<size_t>& rows) override {
    cache_.ensure(ctx, rows);
    std::vector<double> s;
    s.reserve(rows.size());
    for (size_t r : rows) s.push_back(TwoTierPolicy::strong_score(cache_.scores.at(r), weak_));
    return s;
  }
  std::string scorer_detail() const override {
    return (model_ ? model_->name() : std::string("mf")) +
           " router, strong-call score 1 - p(weak acceptable); test mean per-tier AUC (reporting "
           "only): " + test_auc_.str();
  }

 private:
  std::shared_ptr<const RouterModel> model_;
  ScoreCache cache_;
  bool test_pending_ = false;
  SeedValues test_auc_;
};

}  // namespace

std::unique_ptr<System> make_task_prior_system(const PortfolioConfig&) {
  return std::make_unique<RouterSystem>("task-prior", RouterSystem::task_prior);
}
std::unique_ptr<System> make_routenlp_router_system(const PortfolioConfig&) {
  return std::make_unique<RouterSystem>("routenlp-router", RouterSystem::routenlp);
}
std::unique_ptr<System> make_routellm_system(const PortfolioConfig&) {
  return std::make_unique<RouteLlmSystem>();
}

}  // namespace routenlp::detail
