// Stacked router (per-tier ridge logistic regression on the base routers' logits) and the choice
// among candidate routers by their mean AUC on held-out rows.
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "router/baseline_models.hpp"
#include "routenlp/error.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/stacked.hpp"

namespace routenlp {
namespace {

constexpr double kClip = 1e-4;

double clipped_logit(double p) {
  if (!(p == p)) p = 0.5;  // NaN: no information
  p = std::min(std::max(p, kClip), 1.0 - kClip);
  return std::log(p / (1.0 - p));
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

double softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

void check_bases(const std::vector<std::shared_ptr<const RouterModel>>& bases, const char* who) {
  if (bases.empty()) throw Error(Status::invalid_argument, std::string(who) + ": no base routers");
  for (const auto& b : bases)
    if (!b) throw Error(Status::invalid_argument, std::string(who) + ": a base router is null");
  auto tiers = bases.front()->tiers();
  if (tiers.empty()) throw Error(Status::invalid_argument, std::string(who) + ": no tiers");
  for (size_t j = 1; j < bases.size(); ++j)
    if (bases[j]->tiers() != tiers) {
      std::string a, b;
      for (const auto& t : tiers) a += (a.empty() ? "" : ",") + t;
      for (const auto& t : bases[j]->tiers()) b += (b.empty() ? "" : ",") + t;
      throw Error(Status::invalid_argument,
                  fmt::format("{}: base routers must share the tier list: {} has [{}], {} has [{}]",
                              who, bases.front()->name(), a, bases[j]->name(), b));
    }
}

class StackedRouter final : public RouterModel {
 public:
  StackedRouter(std::vector<std::shared_ptr<const RouterModel>> bases, StackWeights w)
      : bases_(std::move(bases)), w_(std::move(w)) {
    check_bases(bases_, "stacked router");
    tiers_ = bases_.front()->tiers();
    if (w_.size() != tiers_.size())
      throw Error(Status::invalid_argument,
                  fmt::format("stacked router: {} weight rows for {} tiers", w_.size(), tiers_.size()));
    for (const auto& row : w_) {
      if (row.size() != bases_.size() + 1)
        throw Error(Status::invalid_argument,
                    fmt::format("stacked router: a weight row needs 1 + {} entries, has {}",
                                bases_.size(), row.size()));
      for (double v : row)
        if (!std::isfinite(v)) throw Error(Status::invalid_argument, "stacked router: non-finite weight");
    }
    name_ = "stacked(";
    for (size_t j = 0; j < bases_.size(); ++j) name_ += (j ? "+" : "") + bases_[j]->name();
    name_ += ")";
  }

  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override {
    const size_t K = tiers_.size();
    std::vector<RouterScores> out(batch.size());
    for (auto& s : out) {
      s.p_acceptable.assign(K, 0.0);
      for (size_t k = 0; k < K; ++k) s.p_acceptable[k] = w_[k][0];  // logits for now
    }
    for (size_t j = 0; j < bases_.size(); ++j) {
      auto b = bases_[j]->score(batch);
      if (b.size() != batch.size())
        throw Error(Status::internal, bases_[j]->name() + ": wrong score count");
      for (size_t i = 0; i < batch.size(); ++i) {
        if (b[i].p_acceptable.size() != K)
          throw Error(Status::internal, bases_[j]->name() + ": wrong number of tier scores");
        for (size_t k = 0; k < K; ++k)
          out[i].p_acceptable[k] += w_[k][j + 1] * clipped_logit(b[i].p_acceptable[k]);
        out[i].task_unseen = out[i].task_unseen || b[i].task_unseen;
      }
    }
    for (auto& s : out) {
      double m = 0;
      for (double& p : s.p_acceptable) {
        p = sigmoid(p);
        m += p;
      }
      s.difficulty = 1.0 - m / static_cast<double>(K);  // expected share of failing tiers
    }
    return out;
  }
  std::string name() const override { return name_; }
  std::vector<std::string> tiers() const override { return tiers_; }
  const std::vector<std::shared_ptr<const RouterModel>>& bases() const { return bases_; }
  const StackWeights& weights() const { return w_; }

 private:
  std::vector<std::shared_ptr<const RouterModel>> bases_;
  StackWeights w_;
  std::vector<std::string> tiers_;
  std::string name_;
};

// Bases' logits of the held-out rows: z[j][i][k]. Checks shapes.
using Logits = std::vector<std::vector<std::vector<double>>>;
Logits logits_of(const std::vector<std::vector<RouterScores>>& base_scores,
                 const RoutingLabels& labels) {
  const size_t K = labels.tiers.size();
  if (base_scores.empty()) throw Error(Status::invalid_argument, "stack: no base scores");
  if (K == 0) throw Error(Status::invalid_argument, "stack: labels have no tiers");
  if (labels.acceptable.size() != labels.size())
    throw Error(Status::invalid_argument, "stack: labels and queries differ in length");
  Logits z(base_scores.size());
  for (size_t j = 0; j < base_scores.size(); ++j) {
    if (base_scores[j].size() != labels.size())
      throw Error(Status::invalid_argument,
                  fmt::format("stack: base {} has {} scores for {} rows", j, base_scores[j].size(),
                              labels.size()));
    z[j].resize(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) {
      const auto& p = base_scores[j][i].p_acceptable;
      if (p.size() != K || labels.acceptable[i].size() != K)
        throw Error(Status::invalid_argument, "stack: scores or labels of the wrong width");
      z[j][i].resize(K);
      for (size_t k = 0; k < K; ++k) z[j][i][k] = clipped_logit(p[k]);
    }
  }
  return z;
}

// Penalised logistic regression by damped Newton steps: minimises
//   mean_i logloss(x_i . th, y_i) + 1/2 sum_d ridge_d (th_d - center_d)^2
// from th (the starting point, updated in place).
void newton_logreg(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& ridge,
                   const Eigen::VectorXd& center, int iterations, Eigen::VectorXd& th) {
  const double n = static_cast<double>(x.rows());
  auto objective = [&](const Eigen::VectorXd& t) {
    Eigen::VectorXd s = x * t;
    double f = 0;
    for (Eigen::Index i = 0; i < s.size(); ++i) f += softplus(s[i]) - y[i] * s[i];
    Eigen::VectorXd d = t - center;
    return f / n + 0.5 * d.cwiseProduct(ridge).dot(d);
  };
  double f = objective(th);
  for (int it = 0; it < iterations; ++it) {
    Eigen::VectorXd s = x * th;
    Eigen::VectorXd p(s.size()), w(s.size());
    for (Eigen::Index i = 0; i < s.size(); ++i) {
      p[i] = sigmoid(s[i]);
      w[i] = p[i] * (1.0 - p[i]);
    }
    Eigen::VectorXd g = x.transpose() * (p - y) / n + ridge.cwiseProduct(th - center);
    if (g.lpNorm<Eigen::Infinity>() < 1e-10) break;
    Eigen::MatrixXd h = x.transpose() * w.asDiagonal() * x / n;
    h.diagonal() += ridge;
    Eigen::VectorXd step = h.ldlt().solve(g);
    double t = 1.0, f_new = f;
    Eigen::VectorXd cand = th;
    for (int half = 0; half < 40; ++half, t *= 0.5) {  // backtracking (Armijo)
      cand = th - t * step;
      f_new = objective(cand);
      if (f_new <= f - 1e-4 * t * g.dot(step)) break;
    }
    if (!(f_new < f)) break;
    bool done = f - f_new < 1e-14;
    th = cand;
    f = f_new;
    if (done) break;
  }
}

// Rows of `rows` labelled for tier k, and how many of them are positive.
std::vector<size_t> labelled(const RoutingLabels& labels, size_t k, const std::vector<size_t>& rows,
                             double& pos) {
  std::vector<size_t> use;
  pos = 0;
  for (size_t i : rows)
    if (labels.acceptable[i][k] >= 0) {
      use.push_back(i);
      pos += labels.acceptable[i][k] > 0 ? 1 : 0;
    }
  return use;
}

bool fittable(double pos, size_t n, const StackOptions& opt) {
  return pos >= static_cast<double>(opt.min_class) &&
         static_cast<double>(n) - pos >= static_cast<double>(opt.min_class);
}

StackWeights fit_rows(const Logits& z, const RoutingLabels& labels, const std::vector<size_t>& rows,
                      const StackOptions& opt) {
  const size_t J = z.size(), K = labels.tiers.size();
  // A tier without both classes: the anchor base, else the plain mean of the logits.
  std::vector<double> plain(J + 1, 1.0 / static_cast<double>(J));
  if (opt.anchor >= 0 && size_t(opt.anchor) < J) {
    std::fill(plain.begin(), plain.end(), 0.0);
    plain[size_t(opt.anchor) + 1] = 1.0;
  }
  plain[0] = 0.0;
  std::vector<std::vector<size_t>> use(K);
  std::vector<double> pos(K, 0.0);
  std::vector<char> ok(K, 0);
  size_t pooled_rows = 0;
  for (size_t k = 0; k < K; ++k) {
    use[k] = labelled(labels, k, rows, pos[k]);
    ok[k] = fittable(pos[k], use[k].size(), opt) ? 1 : 0;
    if (ok[k]) pooled_rows += use[k].size();
  }
  StackWeights out(K, plain);
  if (pooled_rows == 0) return out;
  // Shared weights: one logistic regression over every (row, tier) pair, a bias per tier.
  const auto jd = static_cast<Eigen::Index>(J), kd = static_cast<Eigen::Index>(K);
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(pooled_rows), kd + jd);
  Eigen::VectorXd y(x.rows());
  Eigen::VectorXd th = Eigen::VectorXd::Zero(kd + jd);
  Eigen::Index r = 0;
  for (size_t k = 0; k < K; ++k) {
    if (!ok[k]) continue;
    th[static_cast<Eigen::Index>(k)] = clipped_logit(pos[k] / static_cast<double>(use[k].size()));
    for (size_t i : use[k]) {
      x(r, static_cast<Eigen::Index>(k)) = 1.0;
      for (size_t j = 0; j < J; ++j) x(r, kd + static_cast<Eigen::Index>(j)) = z[j][i][k];
      y[r++] = labels.acceptable[i][k] > 0 ? 1.0 : 0.0;
    }
  }
  // The ridge pulls the weights toward the anchor: 1 for the anchor base, 0 for the others.
  Eigen::VectorXd anchor = Eigen::VectorXd::Zero(jd);
  if (opt.anchor >= 0 && size_t(opt.anchor) < J) anchor[opt.anchor] = 1.0;
  Eigen::VectorXd ridge = Eigen::VectorXd::Constant(kd + jd, opt.l2), center(kd + jd);
  ridge.head(kd).setConstant(1e-8);  // keeps the Hessian invertible; biases are not shrunk
  center.head(kd).setZero();
  center.tail(jd) = anchor;
  th.tail(jd) = anchor;
  newton_logreg(x, y, ridge, center, opt.max_iterations, th);
  Eigen::VectorXd shared = th.tail(jd);
  for (size_t k = 0; k < K; ++k) {
    if (!ok[k]) continue;
    Eigen::VectorXd tk(jd + 1);
    tk[0] = th[static_cast<Eigen::Index>(k)];
    tk.tail(jd) = shared;
    if (std::isfinite(opt.pool)) {
      // Per tier: l2/2 |w - anchor|^2 + pool/2 |w - shared|^2 = (l2 + pool)/2 |w - c|^2 +
      // const, with c = (l2 anchor + pool shared) / (l2 + pool).
      const auto n = static_cast<Eigen::Index>(use[k].size());
      Eigen::MatrixXd xk(n, jd + 1);
      Eigen::VectorXd yk(n);
      for (Eigen::Index a = 0; a < n; ++a) {
        size_t i = use[k][static_cast<size_t>(a)];
        xk(a, 0) = 1.0;
        for (size_t j = 0; j < J; ++j) xk(a, static_cast<Eigen::Index>(j + 1)) = z[j][i][k];
        yk[a] = labels.acceptable[i][k] > 0 ? 1.0 : 0.0;
      }
      const double lam = opt.l2 + opt.pool;
      Eigen::VectorXd rk = Eigen::VectorXd::Constant(jd + 1, lam), ck(jd + 1);
      rk[0] = 1e-8;
      ck[0] = 0.0;
      ck.tail(jd) = lam > 0 ? Eigen::VectorXd((opt.l2 * anchor + opt.pool * shared) / lam) : anchor;
      newton_logreg(xk, yk, rk, ck, opt.max_iterations, tk);
    }
    bool finite = true;
    for (Eigen::Index d = 0; d <= jd; ++d) finite = finite && std::isfinite(tk[d]);
    if (!finite) continue;
    for (size_t d = 0; d <= J; ++d) out[k][d] = tk[static_cast<Eigen::Index>(d)];
  }
  return out;
}

// Mean over tiers of the AUC of p[i][k] on the labelled rows among `rows` (repeats allowed;
// tiers without both classes skipped).
double mean_auc_of(const std::vector<std::vector<double>>& p, const RoutingLabels& labels,
                   const std::vector<size_t>& rows) {
  std::vector<TierMetrics> m;
  std::vector<double> s;
  std::vector<int> y;
  for (size_t k = 0; k < labels.tiers.size(); ++k) {
    s.clear();
    y.clear();
    for (size_t i : rows)
      if (labels.acceptable[i][k] >= 0) {
        s.push_back(p[i][k]);
        y.push_back(labels.acceptable[i][k] > 0 ? 1 : 0);
      }
    TierMetrics t;
    t.auc = roc_auc(s, y);
    m.push_back(t);
  }
  return mean_tier_auc(m);
}

std::vector<std::vector<RouterScores>> score_all(
    const std::vector<std::shared_ptr<const RouterModel>>& routers, const RoutingLabels& labels) {
  std::vector<std::vector<RouterScores>> out(routers.size());
  const size_t batch = 64;
  for (size_t j = 0; j < routers.size(); ++j) {
    for (size_t start = 0; start < labels.size(); start += batch) {
      size_t end = std::min(labels.size(), start + batch);
      std::vector<RouteQuery> b(labels.queries.begin() + static_cast<long>(start),
                                labels.queries.begin() + static_cast<long>(end));
      auto s = routers[j]->score(b);
      if (s.size() != b.size()) throw Error(Status::internal, routers[j]->name() + ": wrong score count");
      for (auto& x : s) out[j].push_back(std::move(x));
    }
  }
  return out;
}

void check_label_tiers(const std::vector<std::shared_ptr<const RouterModel>>& routers,
                       const RoutingLabels& labels, const char* who) {
  if (routers.front()->tiers() != labels.tiers)
    throw Error(Status::invalid_argument,
                std::string(who) + ": the held-out labels' tiers differ from the routers'");
}

}  // namespace

bool detail::stacked_parts(const RouterModel& router,
                          std::vector<std::shared_ptr<const RouterModel>>& bases,
                          StackWeights& weights) {
  const auto* s = dynamic_cast<const StackedRouter*>(&router);
  if (!s) return false;
  bases = s->bases();
  weights = s->weights();
  return true;
}

std::unique_ptr<RouterModel> make_stacked_router(std::vector<std::shared_ptr<const RouterModel>> bases,
                                                 StackWeights weights) {
  return std::make_unique<StackedRouter>(std::move(bases), std::move(weights));
}

StackWeights fit_stack_weights(const std::vector<std::vector<RouterScores>>& base_scores,
                               const RoutingLabels& heldout, const StackOptions& options) {
  if (!(options.l2 >= 0) || !(options.pool >= 0) || options.max_iterations < 1)
    throw Error(Status::invalid_argument,
                "stack: l2 >= 0, pool >= 0 and max_iterations >= 1 required");
  Logits z = logits_of(base_scores, heldout);
  std::vector<size_t> rows(heldout.size());
  std::iota(rows.begin(), rows.end(), 0);
  return fit_rows(z, heldout, rows, options);
}

std::unique_ptr<RouterModel> fit_stacked_router(std::vector<std::shared_ptr<const RouterModel>> bases,
                                                const RoutingLabels& heldout,
                                                const StackOptions& options) {
  check_bases(bases, "stacked router");
  check_label_tiers(bases, heldout, "stacked router");
  StackWeights w = fit_stack_weights(score_all(bases, heldout), heldout, options);
  return make_stacked_router(std::move(bases), std::move(w));
}

double mean_tier_auc(const std::vector<TierMetrics>& metrics) {
  double s = 0;
  size_t n = 0;
  for (const auto& m : metrics)
    if (std::isfinite(m.auc)) {
      s += m.auc;
      ++n;
    }
  return n ? s / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

RouterSelection select_router(const std::vector<std::shared_ptr<const RouterModel>>& candidates,
                              const RoutingLabels& heldout, const SelectOptions& options) {
  check_bases(candidates, "select_router");
  check_label_tiers(candidates, heldout, "select_router");
  if (heldout.size() == 0) throw Error(Status::invalid_argument, "select_router: no held-out rows");
  const size_t C = candidates.size(), K = heldout.tiers.size(), n = heldout.size();
  RouterSelection sel;
  sel.candidates = C;
  auto scores = score_all(candidates, heldout);
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  std::vector<std::vector<std::vector<double>>> preds(C, std::vector<std::vector<double>>(n));
  for (size_t c = 0; c < C; ++c) {
    for (size_t i = 0; i < n; ++i) preds[c][i] = scores[c][i].p_acceptable;
    sel.names.push_back(candidates[c]->name());
  }
  // Folds of the held-out rows. Every entry's held-out AUC is the mean over folds of its AUC on
  // the fold's rows: the stack's predictions of a fold come from weights fitted on the other
  // folds, and pooling them across folds would rank rows by their fold's intercept (a fold rich
  // in positives gets a lower one), which biases a pooled AUC toward 0.5 and below.
  const size_t folds = std::max<size_t>(1, std::min<size_t>(size_t(std::max(options.folds, 1)), n));
  std::vector<std::vector<size_t>> fold_rows(folds);
  {
    std::vector<size_t> order = all;
    std::mt19937_64 rng(options.seed ^ 0x57ac4ed5e1ec7ULL);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t r = 0; r < n; ++r) fold_rows[r % folds].push_back(order[r]);
    for (auto& f : fold_rows) std::sort(f.begin(), f.end());
  }
  // Mean over folds (those with a defined AUC) of the mean per-tier AUC; `rows` per fold.
  auto fold_auc_of = [&](const std::vector<std::vector<double>>& p,
                         const std::vector<std::vector<size_t>>& rows) {
    double sum = 0;
    size_t used = 0;
    for (const auto& r : rows) {
      double a = mean_auc_of(p, heldout, r);
      if (std::isfinite(a)) {
        sum += a;
        ++used;
      }
    }
    return used ? sum / double(used) : std::numeric_limits<double>::quiet_NaN();
  };
  if (options.with_stack && C >= 2 && folds >= 2) {
    if (options.stacks.empty())
      throw Error(Status::invalid_argument, "select_router: no stack configuration");
    Logits z = logits_of(scores, heldout);
    // Each configuration's out-of-fold predictions; the best by held-out AUC is the stack
    // candidate (ties: the earlier configuration).
    std::vector<std::vector<double>> best_oof;
    double best_auc = -1;
    for (size_t cfg = 0; cfg < options.stacks.size(); ++cfg) {
      std::vector<std::vector<double>> oof(n, std::vector<double>(K, 0.5));
      for (size_t f = 0; f < folds; ++f) {
        std::vector<size_t> fit;
        for (size_t g = 0; g < folds; ++g)
          if (g != f) fit.insert(fit.end(), fold_rows[g].begin(), fold_rows[g].end());
        StackWeights w = fit_rows(z, heldout, fit, options.stacks[cfg]);
        for (size_t i : fold_rows[f])
          for (size_t k = 0; k < K; ++k) {
            double s = w[k][0];
            for (size_t j = 0; j < C; ++j) s += w[k][j + 1] * z[j][i][k];
            oof[i][k] = sigmoid(s);
          }
      }
      double a = fold_auc_of(oof, fold_rows);
      sel.stack_config_auc.push_back(a);
      if (cfg == 0 || (std::isfinite(a) && a > best_auc)) {
        best_auc = std::isfinite(a) ? a : -1;
        best_oof = std::move(oof);
        sel.stack_config = cfg;
      }
    }
    sel.stack_weights = fit_rows(z, heldout, all, options.stacks[sel.stack_config]);
    auto stack = make_stacked_router(candidates, sel.stack_weights);
    sel.names.push_back(stack->name());
    sel.model = std::move(stack);
    preds.push_back(std::move(best_oof));
  }
  const size_t M = preds.size();
  auto fold_auc = [&](size_t c, const std::vector<std::vector<size_t>>& rows) {
    return fold_auc_of(preds[c], rows);
  };
  for (size_t c = 0; c < M; ++c) sel.heldout_auc.push_back(fold_auc(c, fold_rows));
  // Highest held-out AUC; NaN never wins; ties keep the earlier entry (the stack comes last).
  size_t best = 0;
  for (size_t c = 1; c < M; ++c)
    if (sel.heldout_auc[c] > sel.heldout_auc[best] ||
        (std::isnan(sel.heldout_auc[best]) && !std::isnan(sel.heldout_auc[c])))
      best = c;
  if (options.prefer_stack && M > C && sel.heldout_auc[C] == sel.heldout_auc[best]) best = C;
  // Standard error of each entry's AUC deficit against the best, by a paired bootstrap of the
  // held-out rows (resampled within each fold).
  sel.heldout_auc_se.assign(M, 0.0);
  if (options.bootstrap > 1 && std::isfinite(sel.heldout_auc[best])) {
    std::mt19937_64 rng(options.seed ^ 0xb0075749ULL);
    std::vector<double> sum(M, 0.0), sum2(M, 0.0);
    std::vector<std::vector<size_t>> rows = fold_rows;
    int used = 0;
    for (int b = 0; b < options.bootstrap; ++b) {
      for (size_t f = 0; f < folds; ++f) {
        std::uniform_int_distribution<size_t> pick(0, fold_rows[f].size() - 1);
        for (auto& r : rows[f]) r = fold_rows[f][pick(rng)];
      }
      double top = fold_auc(best, rows);
      if (!std::isfinite(top)) continue;
      ++used;
      for (size_t c = 0; c < M; ++c) {
        double d = c == best ? 0.0 : top - fold_auc(c, rows);
        if (!std::isfinite(d)) d = 0.0;
        sum[c] += d;
        sum2[c] += d * d;
      }
    }
    if (used > 1)
      for (size_t c = 0; c < M; ++c) {
        double m = sum[c] / used;
        sel.heldout_auc_se[c] = std::sqrt(std::max(0.0, (sum2[c] - used * m * m) / (used - 1)));
      }
  }
  // The first entry in order of preference within se_rule standard errors of the best: the
  // stack first when preferred, then the candidates in their order.
  std::vector<size_t> pref;
  if (M > C && options.prefer_stack) pref.push_back(C);
  for (size_t c = 0; c < C; ++c) pref.push_back(c);
  if (M > C && !options.prefer_stack) pref.push_back(C);
  size_t chosen = best;
  for (size_t c : pref) {
    if (c == best) break;
    if (std::isfinite(sel.heldout_auc[c]) &&
        sel.heldout_auc[c] >= sel.heldout_auc[best] - options.se_rule * sel.heldout_auc_se[c]) {
      chosen = c;
      break;
    }
  }
  sel.best = best;
  sel.chosen = chosen;
  if (chosen < C) sel.model = candidates[chosen];
  return sel;
}

}  // namespace routenlp
