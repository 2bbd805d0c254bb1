// hydra: "HyDRA: Hybrid Dynamic Routing Architecture for Heterogeneous LLM Pools" (2026; seed
// abstract in shared/seeds). A multi-head encoder predicts a query's capability requirement in
// D dimensions; each model has a capability profile over the same dimensions; shortfall
// matching picks the cheapest model whose predicted shortfall sum_d max(0, need_d - cap_md)
// stays within a tolerance (else the model with the least shortfall).
// The shortfall here is the smooth one the profiles are fitted with, softplus(need_d - cap_md).
// Here the profiles are estimated on train rather than configured: needs and profiles are fitted
// jointly on the train rows' acceptability labels with P(acceptable | x, m) =
// sigmoid(a - w * shortfall_m(x)), shortfall_m(x) = sum_d softplus(need_d(x) - cap_md) (used for
// the matching too),
// need_d(x) = head d of a linear multi-head model on TF-IDF (+ task) features. The tolerance is
// the cheapest on calib reaching the quality target. Simplifications: docs/evaluation.md.
#include <Eigen/SparseCore>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>

#include "eval/eval_internal.hpp"
#include "router/text_features.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace {

double softplus(double z) { return z > 30 ? z : std::log1p(std::exp(z)); }
double sigm(double z) { return 1.0 / (1.0 + std::exp(-z)); }

struct Adam {
  std::vector<double> m, v;
  int t = 0;
  void init(size_t n) { m.assign(n, 0.0), v.assign(n, 0.0), t = 0; }
  // One step over parameters p with gradients g (same length).
  void step(std::vector<double>& p, const std::vector<double>& g, double lr) {
    ++t;
    const double b1 = 0.9, b2 = 0.999;
    double c1 = 1 - std::pow(b1, t), c2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8);
    }
  }
};

class HydraSystem : public System {
 public:
  std::string name() const override { return "hydra"; }

  void fit(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    K_ = t.tiers;
    D_ = std::min<size_t>(4, std::max<size_t>(1, K_ - 1));
    // Cost order of the tiers: mean cost per call on train.
    std::vector<double> mc(K_, 0.0);
    for (size_t k = 0; k < K_; ++k) mc[k] = total_cost(t, ctx.train, int(k));
    order_.resize(K_);
    for (size_t k = 0; k < K_; ++k) order_[k] = int(k);
    std::stable_sort(order_.begin(), order_.end(), [&](int a, int b) { return mc[size_t(a)] < mc[size_t(b)]; });
    // Features.
    std::vector<std::string> texts;
    tasks_.clear();
    for (size_t r : ctx.train) {
      texts.push_back(ctx.query(r).query);
      tasks_.emplace(ctx.query(r).task, 0);
    }
    int ti = 0;
    for (auto& kv : tasks_) kv.second = ti++;
    tfidf_ = std::make_unique<TfidfVectorizer>(texts, detail::tfidf_config(TfidfOptions{}));
    SparseRows X = tfidf_->transform(texts);
    F_ = tfidf_->dim() + tasks_.size() + 1;  // text, task one-hot, bias
    std::vector<std::vector<std::pair<size_t, double>>> feats(ctx.train.size());
    for (size_t i = 0; i < ctx.train.size(); ++i) feats[i] = features(X, i, ctx.query(ctx.train[i]).task);
    // Parameters: heads U [D x F], profiles C [K x D], a, log w.
    std::mt19937_64 rng(mix_seed(ctx.seed, 0x4d7a));
    std::normal_distribution<double> nd(0.0, 0.1);
    U_.assign(D_ * F_, 0.0);
    for (auto& u : U_) u = nd(rng) * 0.1;
    C_.assign(K_ * D_, 0.0);
    for (size_t k = 0; k < K_; ++k) {
      double acc = 0;
      for (size_t r : ctx.train) acc += t.ok(r, int(k));
      acc = (acc + 1) / (double(ctx.train.size()) + 2);
      for (size_t d = 0; d < D_; ++d) C_[k * D_ + d] = std::log(acc / (1 - acc)) + nd(rng);
    }
    std::vector<double> aw{2.0, 0.0};  // a, log w
    Adam adam_u, adam_c, adam_aw;
    adam_u.init(U_.size());
    adam_c.init(C_.size());
    adam_aw.init(2);
    std::vector<double> gU(U_.size()), gC(C_.size()), gaw(2), need(D_), gneed(D_);
    const double n = double(std::max<size_t>(1, ctx.train.size()));
    const int epochs = 300;
    const double l2 = 1e-4;
    for (int e = 0; e < epochs; ++e) {
      std::fill(gU.begin(), gU.end(), 0.0);
      std::fill(gC.begin(), gC.end(), 0.0);
      std::fill(gaw.begin(), gaw.end(), 0.0);
      double w = std::exp(aw[1]);
      for (size_t i = 0; i < ctx.train.size(); ++i) {
        size_t r = ctx.train[i];
        for (size_t d = 0; d < D_; ++d) {
          double s = 0;
          for (const auto& [j, v] : feats[i]) s += U_[d * F_ + j] * v;
          need[d] = s;
        }
        std::fill(gneed.begin(), gneed.end(), 0.0);
        for (size_t k = 0; k < K_; ++k) {
          double sf = 0;
          for (size_t d = 0; d < D_; ++d) sf += softplus(need[d] - C_[k * D_ + d]);
          double p = sigm(aw[0] - w * sf);
          double g = (p - (t.ok(r, int(k)) ? 1.0 : 0.0)) / n;  // dL/dz
          gaw[0] += g;
          gaw[1] += g * (-w * sf);
          for (size_t d = 0; d < D_; ++d) {
            double sd = sigm(need[d] - C_[k * D_ + d]);
            gneed[d] += g * (-w) * sd;
            gC[k * D_ + d] += g * w * sd;
          }
        }
        for (size_t d = 0; d < D_; ++d)
          for (const auto& [j, v] : feats[i]) gU[d * F_ + j] += gneed[d] * v;
      }
      for (size_t j = 0; j < U_.size(); ++j) gU[j] += l2 * U_[j];
      double lr = 0.05 * (e < 250 ? 1.0 : 0.3);
      adam_u.step(U_, gU, lr);
      adam_c.step(C_, gC, lr);
      adam_aw.step(aw, gaw, lr);
    }
    a_ = aw[0];
    w_ = std::exp(aw[1]);
    // Tolerance grid: +inf (always the cheapest), quantiles of the calib shortfalls, -inf (the
    // least shortfall). Cheapest first.
    shortfall_.clear();
    ensure(ctx, ctx.calib);
    std::vector<double> all;
    for (size_t r : ctx.calib)
      for (double s : shortfall_.at(r)) all.push_back(s);
    std::sort(all.begin(), all.end());
    grid_ = {std::numeric_limits<double>::infinity()};
    for (int i = 20; i >= 0; --i)
      grid_.push_back(all.empty() ? 0.0 : all[size_t(std::llround(i / 20.0 * double(all.size() - 1)))]);
    grid_.push_back(-std::numeric_limits<double>::infinity());
    cost_.clear();
    qual_.clear();
    for (double g : grid_) {
      Metrics m = compute_metrics(t, *ctx.config, ctx.calib, run(ctx, ctx.calib, g));
      cost_.push_back(m.cost_ratio);
      qual_.push_back(m.quality_ratio);
    }
    chosen_ = pick_operating_point(cost_, qual_, ctx.quality_target);
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return run(ctx, rows, grid_.at(chosen_));
  }
  size_t sweep_size() const override { return grid_.size(); }
  std::string sweep_label(size_t p) const override { return "tolerance=" + std::to_string(grid_.at(p)); }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return run(ctx, rows, grid_.at(p));
  }
  std::string detail() const override {
    std::string s = std::to_string(D_) + " capability dimensions; profiles (cap per dimension, tier order):";
    char b[64];
    for (size_t k = 0; k < K_; ++k) {
      s += k ? "; " : " ";
      for (size_t d = 0; d < D_; ++d) {
        std::snprintf(b, sizeof b, "%s%.2f", d ? "/" : "", C_[k * D_ + d]);
        s += b;
      }
    }
    std::snprintf(b, sizeof b, "; shortfall tolerance %.3f", grid_.empty() ? 0.0 : grid_[chosen_]);
    s += b;
    std::snprintf(b, sizeof b, " (calib quality_ratio %.3f cost_ratio %.3f)", qual_[chosen_], cost_[chosen_]);
    return s + b;
  }

 private:
  std::vector<std::pair<size_t, double>> features(const SparseRows& X, size_t row,
                                                  const std::string& task) const {
    std::vector<std::pair<size_t, double>> f;
    for (SparseRows::InnerIterator it(X, Eigen::Index(row)); it; ++it) f.emplace_back(size_t(it.col()), it.value());
    auto t = tasks_.find(task);
    if (t != tasks_.end()) f.emplace_back(tfidf_->dim() + size_t(t->second), 1.0);
    f.emplace_back(F_ - 1, 1.0);
    return f;
  }
  void ensure(const SystemContext& ctx, const std::vector<size_t>& rows) {
    std::vector<size_t> todo;
    for (size_t r : rows)
      if (!shortfall_.count(r)) todo.push_back(r);
    if (todo.empty()) return;
    std::vector<std::string> texts;
    for (size_t r : todo) texts.push_back(ctx.query(r).query);
    SparseRows X = tfidf_->transform(texts);
    for (size_t i = 0; i < todo.size(); ++i) {
      auto f = features(X, i, ctx.query(todo[i]).task);
      std::vector<double> s(K_, 0.0);
      for (size_t d = 0; d < D_; ++d) {
        double need = 0;
        for (const auto& [j, v] : f) need += U_[d * F_ + j] * v;
        // The smooth shortfall the profiles were fitted with (softplus of need - cap): a hard
        // max(0, .) is 0 for most queries once the needs sit below every profile.
        for (size_t k = 0; k < K_; ++k) s[k] += softplus(need - C_[k * D_ + d]);
      }
      shortfall_[todo[i]] = std::move(s);
    }
  }
  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows, double tol) {
    ensure(ctx, rows);
    std::vector<Decision> out;
    out.reserve(rows.size());
    for (size_t r : rows) {
      const auto& s = shortfall_.at(r);
      int pick = -1, least = order_[0];
      for (int k : order_) {
        if (pick < 0 && s[size_t(k)] <= tol) pick = k;
        if (s[size_t(k)] < s[size_t(least)] - 1e-12) least = k;
      }
      out.push_back(single_call(pick >= 0 ? pick : least));
    }
    return out;
  }

  size_t K_ = 0, D_ = 1, F_ = 0;
  std::vector<int> order_;
  std::map<std::string, int> tasks_;
  std::unique_ptr<TfidfVectorizer> tfidf_;
  std::vector<double> U_, C_;
  double a_ = 0, w_ = 1;
  std::unordered_map<size_t, std::vector<double>> shortfall_;
  std::vector<double> grid_, cost_, qual_;
  size_t chosen_ = 0;
};

}  // namespace

std::unique_ptr<System> make_hydra_system(const PortfolioConfig&) {
  return std::make_unique<HydraSystem>();
}

}  // namespace routenlp::detail
