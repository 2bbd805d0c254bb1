// Router-only systems over the router component (routenlp/router.hpp): task-prior,
// routellm (RouteLLM-style two-tier threshold on a matrix-factorisation router) and
// routenlp-router (the neural DistilBERT router).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "eval/eval_internal.hpp"
#include "eval/router_cache.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router.hpp"

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

std::shared_ptr<const RouterModel> neural_router_for(const SystemContext& ctx) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const RouterModel>> cache;
  uint64_t h = mix_seed(ctx.seed, uint64_t(reinterpret_cast<uintptr_t>(ctx.data)));
  for (size_t r : ctx.train) h = mix_seed(h, r);
  std::string key = std::to_string(h) + "|" + ctx.router_config;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  RouterTrainConfig cfg;
  if (!ctx.router_config.empty()) cfg = RouterTrainConfig::load(ctx.router_config);
  cfg.seed = ctx.seed;
  Dataset part = partition_dataset(ctx);
  auto router = std::make_shared<NeuralRouter>(
      NeuralRouter::train(part, *ctx.config, cfg, ctx.progress));
  if (cache.size() > 4) cache.clear();
  cache[key] = router;
  return router;
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

// Router + "cheapest tier with p >= tau (else the most likely)". tau: picked on the calib split
// as the cheapest reaching the quality target, or 1 - alpha in guarantee mode.
class RouterSystem : public System {
 public:
  enum Kind { task_prior, neural };
  RouterSystem(std::string name, Kind kind) : name_(std::move(name)), kind_(kind) {}
  std::string name() const override { return name_; }

  void fit(const SystemContext& ctx) override {
    if (kind_ == task_prior) {
      model_ = std::shared_ptr<const RouterModel>(make_task_prior_router(labels_for_rows(ctx, ctx.train)));
    } else {
      model_ = neural_router_for(ctx);
    }
    cache_ = ScoreCache{};
    cache_.model = model_.get();
    bool guarantee = kind_ == neural && !ctx.config->quality_target;
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
      out.push_back(single_call(d.tier, kind_ == neural ? cache_.router_ms.at(r) : 0.0));
    }
    return out;
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return run(ctx, rows, *policy_);
  }
  size_t sweep_size() const override { return tau_grid().size(); }
  std::string sweep_label(size_t p) const override { return "tau=" + std::to_string(tau_grid()[p]); }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return run(ctx, rows, ThresholdPolicy(tau_grid()[p]));
  }
  std::string detail() const override {
    return (model_ ? model_->name() : std::string("?")) + " router; " + how_ +
           (kind_ == neural ? "; router_ms = batched scoring time per query (batch 64)" : "");
  }

 private:
  std::string name_;
  Kind kind_;
  std::shared_ptr<const RouterModel> model_;
  ScoreCache cache_;
  std::unique_ptr<RoutingPolicy> policy_;
  double tau_ = 0;
  std::string how_;
};

// RouteLLM: matrix-factorisation router, two tiers (cheapest vs reference), threshold =
// quantile(1 - strong_pct) of the calib strong-call scores; strong_pct chosen on calib as the
// least share reaching the quality target.
class RouteLlmSystem : public System {
 public:
  std::string name() const override { return "routellm"; }
  void fit(const SystemContext& ctx) override {
    weak_ = 0;
    strong_ = ctx.config->reference_tier_index();
    MfOptions mo;
    mo.seed = ctx.seed;
    model_ = std::shared_ptr<const RouterModel>(make_mf_router(labels_for_rows(ctx, ctx.train), mo));
    cache_ = ScoreCache{};
    cache_.model = model_.get();
    cache_.ensure(ctx, ctx.calib);
    calib_scores_.clear();
    for (size_t r : ctx.calib)
      calib_scores_.push_back(TwoTierPolicy::strong_score(cache_.scores.at(r), weak_));
    std::vector<double> cost, qual, pcts;
    for (int i = 0; i <= 100; ++i) {
      double pct = i / 100.0;
      auto d = run(ctx, ctx.calib, pct);
      Metrics m = compute_metrics(*ctx.table, *ctx.config, ctx.calib, d);
      pcts.push_back(pct);
      cost.push_back(m.cost_ratio);
      qual.push_back(m.quality_ratio);
    }
    pct_ = pcts[pick_operating_point(cost, qual, ctx.quality_target)];
  }
  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows, double pct) {
    double thr = calibrate_strong_threshold(calib_scores_, pct, ThresholdRule::quantile);
    TwoTierPolicy pol(weak_, strong_, thr, ThresholdRule::quantile);
    cache_.ensure(ctx, rows);
    std::vector<Decision> out;
    for (size_t r : rows) {
      int tier = pct <= 0 ? weak_ : pct >= 1 ? strong_ : pol.decide(cache_.scores.at(r), "").tier;
      out.push_back(single_call(tier));
    }
    return out;
  }
  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return run(ctx, rows, pct_);
  }
  size_t sweep_size() const override { return 21; }
  std::string sweep_label(size_t p) const override {
    return "strong_pct=" + std::to_string(double(p) / 20.0).substr(0, 4);
  }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return run(ctx, rows, double(p) / 20.0);
  }
  std::string detail() const override {
    return (model_ ? model_->name() : std::string("mf")) + " router, tiers " +
           std::to_string(weak_) + " (weak) vs " + std::to_string(strong_) +
           " (strong); calibrated strong-call share " + std::to_string(pct_);
  }

 private:
  int weak_ = 0, strong_ = 1;
  double pct_ = 0.5;
  std::shared_ptr<const RouterModel> model_;
  ScoreCache cache_;
  std::vector<double> calib_scores_;
};

}  // namespace

std::unique_ptr<System> make_task_prior_system(const PortfolioConfig&) {
  return std::make_unique<RouterSystem>("task-prior", RouterSystem::task_prior);
}
std::unique_ptr<System> make_routenlp_router_system(const PortfolioConfig&) {
  return std::make_unique<RouterSystem>("routenlp-router", RouterSystem::neural);
}
std::unique_ptr<System> make_routellm_system(const PortfolioConfig&) {
  return std::make_unique<RouteLlmSystem>();
}

}  // namespace routenlp::detail
