// Router labels, metrics (AUC, Brier) and routing policies (threshold, cost knob, two-tier).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"

namespace routenlp {

RouterModel::~RouterModel() = default;
RoutingPolicy::~RoutingPolicy() = default;

RouterScores RouterModel::score_one(const RouteQuery& q) const {
  auto v = score({q});
  if (v.size() != 1) throw Error(Status::internal, name() + ": score() returned a wrong count");
  return std::move(v[0]);
}

RoutingLabels make_labels(const Dataset& data, const PortfolioConfig& portfolio,
                          std::optional<Split> split) {
  RoutingLabels out;
  for (const auto& t : portfolio.tiers) out.tiers.push_back(t.name);
  if (out.tiers.empty())
    throw Error(Status::invalid_argument, "make_labels: portfolio " + portfolio.source +
                                              " has no tiers");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& q : data.queries) {
    if (split && q.split != *split) continue;
    out.queries.push_back({q.query, q.task});
    std::vector<int8_t> acc(out.tiers.size(), -1);
    std::vector<double> qual(out.tiers.size(), nan);
    for (size_t k = 0; k < out.tiers.size(); ++k) {
      auto it = q.outcomes.find(out.tiers[k]);
      if (it == q.outcomes.end()) continue;
      qual[k] = it->second.quality;
      acc[k] = portfolio.acceptable(q.task, it->second.quality) ? 1 : 0;
    }
    out.acceptable.push_back(std::move(acc));
    out.quality.push_back(std::move(qual));
  }
  return out;
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  if (scores.size() != labels.size())
    throw Error(Status::invalid_argument, "roc_auc: scores and labels differ in length");
  const size_t n = scores.size();
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double pos = 0, neg = 0, rank_sum = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && scores[idx[j + 1]] == scores[idx[i]]) ++j;
    double avg_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t m = i; m <= j; ++m) {
      if (labels[idx[m]]) {
        pos += 1;
        rank_sum += avg_rank;
      } else {
        neg += 1;
      }
    }
    i = j + 1;
  }
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

std::vector<TierMetrics> evaluate_router(const RouterModel& router, const RoutingLabels& labels,
                                         size_t batch_size) {
  if (batch_size == 0) batch_size = 64;
  auto rtiers = router.tiers();
  std::vector<int> map(labels.tiers.size(), -1);
  for (size_t k = 0; k < labels.tiers.size(); ++k) {
    auto it = std::find(rtiers.begin(), rtiers.end(), labels.tiers[k]);
    if (it == rtiers.end())
      throw Error(Status::invalid_argument, "evaluate_router: router " + router.name() +
                                                " has no tier '" + labels.tiers[k] + "'");
    map[k] = static_cast<int>(it - rtiers.begin());
  }
  std::vector<std::vector<double>> s(labels.tiers.size());
  std::vector<std::vector<int>> y(labels.tiers.size());
  for (size_t start = 0; start < labels.size(); start += batch_size) {
    size_t end = std::min(labels.size(), start + batch_size);
    std::vector<RouteQuery> batch(labels.queries.begin() + static_cast<long>(start),
                                  labels.queries.begin() + static_cast<long>(end));
    auto sc = router.score(batch);
    for (size_t i = start; i < end; ++i) {
      for (size_t k = 0; k < labels.tiers.size(); ++k) {
        int8_t a = labels.acceptable[i][k];
        if (a < 0) continue;
        s[k].push_back(sc[i - start].p_acceptable[static_cast<size_t>(map[k])]);
        y[k].push_back(a);
      }
    }
  }
  std::vector<TierMetrics> out;
  for (size_t k = 0; k < labels.tiers.size(); ++k) {
    TierMetrics m;
    m.tier = labels.tiers[k];
    m.n = s[k].size();
    double pos = 0, brier = 0;
    for (size_t i = 0; i < m.n; ++i) {
      pos += y[k][i];
      double d = s[k][i] - y[k][i];
      brier += d * d;
    }
    m.positive_rate = m.n ? pos / static_cast<double>(m.n) : 0.0;
    m.brier = m.n ? brier / static_cast<double>(m.n) : 0.0;
    m.auc = roc_auc(s[k], y[k]);
    out.push_back(m);
  }
  return out;
}

std::vector<double> relative_tier_costs(const Dataset& data, const PortfolioConfig& portfolio) {
  const size_t K = portfolio.tiers.size();
  std::vector<double> sum(K, 0.0), cnt(K, 0.0);
  for (const auto& q : data.queries) {
    for (size_t k = 0; k < K; ++k) {
      auto it = q.outcomes.find(portfolio.tiers[k].name);
      if (it == q.outcomes.end()) continue;
      bool has = false;
      double c = outcome_cost(portfolio, static_cast<int>(k), it->second, &has);
      if (!has) continue;
      sum[k] += c;
      cnt[k] += 1;
    }
  }
  std::vector<double> mean(K, -1.0);
  double maxm = 0;
  for (size_t k = 0; k < K; ++k)
    if (cnt[k] > 0) {
      mean[k] = sum[k] / cnt[k];
      maxm = std::max(maxm, mean[k]);
    }
  double max_price = 0;
  for (const auto& t : portfolio.tiers)
    max_price = std::max(max_price, t.price_per_1m_input + t.price_per_1m_output);
  std::vector<double> out(K, 1.0);
  for (size_t k = 0; k < K; ++k) {
    if (mean[k] >= 0 && maxm > 0) {
      out[k] = mean[k] / maxm;
    } else if (max_price > 0) {
      const auto& t = portfolio.tiers[k];
      out[k] = (t.price_per_1m_input + t.price_per_1m_output) / max_price;
    }
  }
  return out;
}

namespace {

void check_scores(const RouterScores& s, const char* who) {
  if (s.p_acceptable.empty())
    throw Error(Status::invalid_argument, std::string(who) + ": scores have no tiers");
  for (double p : s.p_acceptable)
    if (!std::isfinite(p))
      throw Error(Status::invalid_argument, std::string(who) + ": non-finite score");
}

}  // namespace

ThresholdPolicy::ThresholdPolicy(double default_target, std::map<std::string, double> per_task)
    : default_target_(default_target), per_task_(std::move(per_task)) {
  auto bad = [](double t) { return !(t >= 0.0 && t <= 1.0); };
  if (bad(default_target_))
    throw Error(Status::invalid_argument, "ThresholdPolicy: default target must be in [0,1]");
  for (const auto& [task, t] : per_task_)
    if (bad(t))
      throw Error(Status::invalid_argument,
                  "ThresholdPolicy: target of task '" + task + "' must be in [0,1]");
}

ThresholdPolicy ThresholdPolicy::from_portfolio(const PortfolioConfig& portfolio) {
  std::map<std::string, double> per;
  for (const auto& [task, pol] : portfolio.tasks) {
    (void)pol;
    if (task != "default") per[task] = 1.0 - portfolio.alpha_for(task);
  }
  return ThresholdPolicy(1.0 - portfolio.alpha_for("default"), std::move(per));
}

double ThresholdPolicy::target(const std::string& task) const {
  auto it = per_task_.find(task);
  if (it != per_task_.end()) return it->second;
  // Domain fallback: "legal/clause" -> "legal".
  auto slash = task.find('/');
  if (slash != std::string::npos) {
    it = per_task_.find(task.substr(0, slash));
    if (it != per_task_.end()) return it->second;
  }
  return default_target_;
}

RoutingDecision ThresholdPolicy::decide(const RouterScores& scores,
                                        const std::string& task) const {
  check_scores(scores, "ThresholdPolicy");
  RoutingDecision d;
  d.scores = scores;
  d.policy = name();
  const double t = target(task);
  const auto& p = scores.p_acceptable;
  for (size_t k = 0; k < p.size(); ++k) {
    if (p[k] >= t) {
      d.tier = static_cast<int>(k);
      d.reason = fmt::format("tier {} is the cheapest with p={:.3f} >= target {:.3f}", k, p[k], t);
      return d;
    }
  }
  size_t best = 0;
  for (size_t k = 1; k < p.size(); ++k)
    if (p[k] >= p[best]) best = k;
  d.tier = static_cast<int>(best);
  d.reason = fmt::format("no tier reaches target {:.3f}; tier {} has the highest p={:.3f}", t,
                         best, p[best]);
  return d;
}

CostKnobPolicy::CostKnobPolicy(double lambda, std::vector<double> tier_costs)
    : lambda_(lambda), costs_(std::move(tier_costs)) {
  if (!std::isfinite(lambda_) || lambda_ < 0)
    throw Error(Status::invalid_argument, "CostKnobPolicy: lambda must be finite and >= 0");
  if (costs_.empty()) throw Error(Status::invalid_argument, "CostKnobPolicy: no tier costs");
  for (double c : costs_)
    if (!std::isfinite(c) || c < 0)
      throw Error(Status::invalid_argument, "CostKnobPolicy: tier costs must be finite, >= 0");
}

RoutingDecision CostKnobPolicy::decide(const RouterScores& scores, const std::string&) const {
  check_scores(scores, "CostKnobPolicy");
  const auto& p = scores.p_acceptable;
  if (p.size() != costs_.size())
    throw Error(Status::invalid_argument,
                fmt::format("CostKnobPolicy: {} scores for {} tier costs", p.size(), costs_.size()));
  size_t best = 0;
  double best_u = p[0] - lambda_ * costs_[0];
  for (size_t k = 1; k < p.size(); ++k) {
    double u = p[k] - lambda_ * costs_[k];
    if (u > best_u || (u == best_u && costs_[k] < costs_[best])) {
      best = k;
      best_u = u;
    }
  }
  RoutingDecision d;
  d.scores = scores;
  d.policy = name();
  d.tier = static_cast<int>(best);
  d.reason = fmt::format("tier {} maximises p - {:g}*cost: {:.3f} - {:g}*{:.4f} = {:.4f}", best,
                         lambda_, p[best], lambda_, costs_[best], best_u);
  return d;
}

double calibrate_strong_threshold(std::vector<double> scores, double strong_pct,
                                  ThresholdRule rule) {
  if (scores.empty())
    throw Error(Status::invalid_argument, "calibrate_strong_threshold: no calibration scores");
  if (!(strong_pct >= 0.0 && strong_pct <= 1.0))
    throw Error(Status::invalid_argument, "calibrate_strong_threshold: strong_pct not in [0,1]");
  for (double s : scores)
    if (!std::isfinite(s))
      throw Error(Status::invalid_argument, "calibrate_strong_threshold: non-finite score");
  std::sort(scores.begin(), scores.end());
  const size_t n = scores.size();
  if (rule == ThresholdRule::quantile) {
    // numpy.quantile(scores, 1 - strong_pct), default linear interpolation.
    double pos = (1.0 - strong_pct) * static_cast<double>(n - 1);
    auto lo = static_cast<size_t>(std::floor(pos));
    size_t hi = std::min(n - 1, lo + 1);
    double frac = pos - static_cast<double>(lo);
    return scores[lo] + frac * (scores[hi] - scores[lo]);
  }
  // Conformal: the ceil((n+1)(1-p))-th smallest; beyond n -> +inf (never strong).
  double r = std::ceil(static_cast<double>(n + 1) * (1.0 - strong_pct) - 1e-9);
  if (r < 1) return -std::numeric_limits<double>::infinity();
  if (r > static_cast<double>(n)) return std::numeric_limits<double>::infinity();
  return scores[static_cast<size_t>(r) - 1];
}

TwoTierPolicy::TwoTierPolicy(int weak, int strong, double threshold, ThresholdRule rule)
    : weak_(weak), strong_(strong), threshold_(threshold), rule_(rule) {
  if (weak < 0 || strong < 0 || weak == strong)
    throw Error(Status::invalid_argument, "TwoTierPolicy: weak and strong must be two tiers");
  if (std::isnan(threshold))
    throw Error(Status::invalid_argument, "TwoTierPolicy: threshold is NaN");
}

TwoTierPolicy TwoTierPolicy::calibrate(const RouterModel& router,
                                       const std::vector<RouteQuery>& calibration, int weak,
                                       int strong, double strong_pct, ThresholdRule rule) {
  auto sc = router.score(calibration);
  std::vector<double> s;
  s.reserve(sc.size());
  for (const auto& x : sc) s.push_back(strong_score(x, weak));
  return TwoTierPolicy(weak, strong, calibrate_strong_threshold(std::move(s), strong_pct, rule),
                       rule);
}

double TwoTierPolicy::strong_score(const RouterScores& scores, int weak) {
  if (weak < 0 || static_cast<size_t>(weak) >= scores.p_acceptable.size())
    throw Error(Status::invalid_argument, "TwoTierPolicy: weak tier index out of range");
  return 1.0 - scores.p_acceptable[static_cast<size_t>(weak)];
}

bool TwoTierPolicy::goes_strong(double s) const {
  return rule_ == ThresholdRule::quantile ? s >= threshold_ : s > threshold_;
}

std::string TwoTierPolicy::name() const {
  return rule_ == ThresholdRule::quantile ? "two-tier-quantile" : "two-tier-conformal";
}

RoutingDecision TwoTierPolicy::decide(const RouterScores& scores, const std::string&) const {
  check_scores(scores, "TwoTierPolicy");
  if (static_cast<size_t>(std::max(weak_, strong_)) >= scores.p_acceptable.size())
    throw Error(Status::invalid_argument, "TwoTierPolicy: tier index out of range of the scores");
  double s = strong_score(scores, weak_);
  bool strong = goes_strong(s);
  RoutingDecision d;
  d.scores = scores;
  d.policy = name();
  d.tier = strong ? strong_ : weak_;
  d.reason = fmt::format("strong score 1-p[{}]={:.3f} {} threshold {:.4f}: {} tier", weak_, s,
                         strong ? (rule_ == ThresholdRule::quantile ? ">=" : ">")
                                : (rule_ == ThresholdRule::quantile ? "<" : "<="),
                         threshold_, strong ? "strong" : "weak");
  return d;
}

std::vector<RoutingDecision> route_batch(const RouterModel& router, const RoutingPolicy& policy,
                                         const std::vector<RouteQuery>& batch) {
  auto sc = router.score(batch);
  std::vector<RoutingDecision> out;
  out.reserve(sc.size());
  for (size_t i = 0; i < sc.size(); ++i) out.push_back(policy.decide(sc[i], batch[i].task));
  return out;
}

}  // namespace routenlp
