// Cascades: frugalgpt and automix (thresholds optimised for cost under the quality target, no
// guarantee) and the conformal routenlp-cascade / routenlp systems (routenlp/calibration/conformal.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>

#include "calibration/quality_planning.hpp"
#include "eval/answer_scorer.hpp"
#include "eval/eval_internal.hpp"
#include "eval/router_cache.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/tiers/tier.hpp"
#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A fixed-order cascade: call chain[0]; accept if score >= thr[0]; else chain[1]; ...; the last
// tier's answer is always returned.
struct ChainConfig {
  std::vector<int> chain;
  std::vector<double> thr;
  double cost = 0, quality = 0;  // ratios on the calibration rows
};

Decision run_chain(const ChainConfig& c, const std::vector<double>& s) {
  Decision d;
  for (size_t j = 0; j < c.chain.size(); ++j) {
    int k = c.chain[j];
    d.called.push_back(k);
    if (j + 1 == c.chain.size()) {
      d.answer = k;
      break;
    }
    double v = s[size_t(k)];
    if (!std::isnan(v) && v >= c.thr[j]) {
      d.answer = k;
      d.accepted_early = true;
      break;
    }
  }
  return d;
}

// Scored cascade with a chain/threshold search over calibration rows (FrugalGPT's optimiser,
// restricted to chains of at most 3 tiers in cost order and 21 quantile thresholds per tier).
class ScoredCascade : public System {
 public:
  void fit(const SystemContext& ctx) override {
    train_scorer(ctx);
    scores_.clear();
    const OutcomeTable& t = *ctx.table;
    const int K = int(t.tiers);
    ensure(ctx, ctx.calib);
    // Threshold candidates per tier: quantiles of the calib scores, plus "never accept".
    std::vector<std::vector<double>> cand(static_cast<size_t>(K));
    for (int k = 0; k < K; ++k) {
      std::vector<double> v;
      for (size_t r : ctx.calib) {
        double x = scores_.at(r)[size_t(k)];
        if (!std::isnan(x)) v.push_back(x);
      }
      std::sort(v.begin(), v.end());
      if (!v.empty())
        for (int i = 0; i <= 20; ++i) cand[size_t(k)].push_back(v[size_t(std::llround(i / 20.0 * double(v.size() - 1)))]);
      cand[size_t(k)].push_back(kInf);
      std::sort(cand[size_t(k)].begin(), cand[size_t(k)].end());
      cand[size_t(k)].erase(std::unique(cand[size_t(k)].begin(), cand[size_t(k)].end()), cand[size_t(k)].end());
    }
    const int ref = ctx.config->reference_tier_index();
    double ref_q = mean_quality(t, ctx.calib, ref), ref_c = total_cost(t, ctx.calib, ref);
    configs_.clear();
    std::vector<std::vector<int>> chains;
    for (int a = 0; a < K; ++a) {
      chains.push_back({a});
      for (int b = a + 1; b < K; ++b) {
        chains.push_back({a, b});
        for (int c = b + 1; c < K; ++c) chains.push_back({a, b, c});
      }
    }
    const size_t n = ctx.calib.size();
    std::vector<const std::vector<double>*> srow(n);
    for (size_t i = 0; i < n; ++i) srow[i] = &scores_.at(ctx.calib[i]);
    for (const auto& ch : chains) {
      std::vector<std::vector<double>> thr_sets;
      if (ch.size() == 1) thr_sets.push_back({});
      else if (ch.size() == 2)
        for (double x : cand[size_t(ch[0])]) thr_sets.push_back({x});
      else
        for (double x : cand[size_t(ch[0])])
          for (double y : cand[size_t(ch[1])]) thr_sets.push_back({x, y});
      for (auto& th : thr_sets) {
        ChainConfig c;
        c.chain = ch;
        c.thr = th;
        double q = 0, cost = 0;
        for (size_t i = 0; i < n; ++i) {
          size_t r = ctx.calib[i];
          const auto& s = *srow[i];
          for (size_t j = 0; j < ch.size(); ++j) {
            int k = ch[j];
            cost += t.c(r, k);
            if (j + 1 == ch.size() || (!std::isnan(s[size_t(k)]) && s[size_t(k)] >= th[j])) {
              q += t.q(r, k);
              break;
            }
          }
        }
        c.quality = ref_q > 0 ? q / double(n) / ref_q : 0;
        c.cost = ref_c > 0 ? cost / ref_c : 0;
        configs_.push_back(std::move(c));
      }
    }
    chosen_ = pick(ctx.quality_target);
    target_ = ctx.quality_target;
  }

  size_t pick(double target) const {
    std::vector<double> c, q;
    for (const auto& x : configs_) {
      c.push_back(x.cost);
      q.push_back(x.quality);
    }
    return pick_operating_point(c, q, target);
  }

  void ensure(const SystemContext& ctx, const std::vector<size_t>& rows) {
    for (size_t r : rows) {
      if (scores_.count(r)) continue;
      std::vector<double> s(ctx.table->tiers);
      for (size_t k = 0; k < s.size(); ++k) s[k] = score(ctx, r, int(k));
      scores_[r] = std::move(s);
    }
  }

  std::vector<Decision> apply(const SystemContext& ctx, const std::vector<size_t>& rows,
                              const ChainConfig& c) {
    ensure(ctx, rows);
    std::vector<Decision> out;
    for (size_t r : rows) out.push_back(run_chain(c, scores_.at(r)));
    return out;
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return apply(ctx, rows, configs_.at(chosen_));
  }
  size_t sweep_size() const override { return 21; }
  std::string sweep_label(size_t p) const override {
    return target_sweep_label(p);
  }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    return apply(ctx, rows, configs_.at(pick(target_sweep_value(p))));
  }
  std::string chain_detail(const SystemContext* = nullptr) const {
    if (configs_.empty()) return "";
    const auto& c = configs_[chosen_];
    std::string s = "chain";
    for (size_t j = 0; j < c.chain.size(); ++j) {
      s += (j ? " -> " : " ") + std::to_string(c.chain[j]);
      if (j < c.thr.size()) s += " (accept if score >= " + std::to_string(c.thr[j]) + ")";
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, "; calib quality_ratio %.3f cost_ratio %.3f for target %.3f",
                  c.quality, c.cost, target_);
    return s + buf;
  }

 protected:
  virtual void train_scorer(const SystemContext& ctx) = 0;
  virtual double score(const SystemContext& ctx, size_t row, int tier) const = 0;

 private:
  std::vector<ChainConfig> configs_;
  size_t chosen_ = 0;
  double target_ = 0;
  std::unordered_map<size_t, std::vector<double>> scores_;
};

class FrugalGptSystem : public ScoredCascade {
 public:
  std::string name() const override { return "frugalgpt"; }
  std::string detail() const override {
    return std::string("answer scorer: hashed-feature logistic regression on query") +
           (scorer_.uses_responses() ? " + response" : " (no responses recorded)") +
           " + tier + task; " + chain_detail();
  }

 protected:
  void train_scorer(const SystemContext& ctx) override { scorer_.fit(ctx, ctx.train, ctx.seed); }
  double score(const SystemContext& ctx, size_t row, int tier) const override {
    return scorer_.score(ctx, row, tier);
  }

 private:
  AnswerScorer scorer_;
};

class AutoMixSystem : public ScoredCascade {
 public:
  std::string name() const override { return "automix-conf"; }
  std::string support(const SystemContext& ctx) const override {
    const OutcomeTable& t = *ctx.table;
    for (size_t i = 0; i < t.confidence.size(); ++i)
      if (!std::isnan(t.confidence[i])) return {};
    return "unsupported: dataset has no confidence (automix-conf cascades on the tier's own "
           "recorded confidence; record outcome `confidence`, or use automix, which learns a "
           "verifier proxy)";
  }
  std::string detail() const override {
    return "score: the tier's recorded confidence (missing = never accepted early); " +
           chain_detail();
  }

 protected:
  void train_scorer(const SystemContext&) override {}
  double score(const SystemContext& ctx, size_t row, int tier) const override {
    return ctx.table->conf(row, tier);
  }
};

// ---- conformal cascade (routenlp-cascade) and router + conformal cascade (routenlp) ----

// Which rows calibrate and whether the router's skip rule is searched.
struct CalibrationPlan {
  bool router_skip = false;   // router p goes into the calibration data (skip search / tau)
  bool with_train = false;    // train rows calibrate too (u does not depend on a model fitted
                              // on them: recorded confidences only)
};

class ConformalSystem : public System {
 public:
  explicit ConformalSystem(bool with_router) : with_router_(with_router) {}
  std::string name() const override { return with_router_ ? "routenlp" : "routenlp-cascade"; }

  void fit(const SystemContext& ctx) override {
    const OutcomeTable& t = *ctx.table;
    const size_t K = t.tiers;
    router_.reset();
    cache_ = ScoreCache{};
    confidence_only_ = true;  // every non-final tier records a confidence on every row
    for (size_t i = 0; i < t.rows() * K && confidence_only_; ++i)
      if (std::isnan(t.confidence[i]) && size_t(i % K) + 1 < K) confidence_only_ = false;
    // A tier that records no confidence on any row is judged on the router's p before the call.
    before_call_.assign(K, 1);
    any_confidence_ = false;
    for (size_t i = 0; i < t.rows() * K; ++i)
      if (!std::isnan(t.confidence[i])) {
        before_call_[i % K] = 0;
        any_confidence_ = true;
      }
    need_router_ = with_router_ || !confidence_only_;
    if (need_router_) {
      router_ = routenlp_router_for(ctx);
      cache_.model = router_.get();
    }
    qt_mode_ = ctx.config->quality_target.has_value();
    skip_tau_ = 0.0;
    fit_acceptance(ctx);
    // The plain cascade: recorded confidences need no model, so train rows calibrate too;
    // otherwise u is the router's p, which is in-sample on train: calib rows only.
    CalibrationPlan plain;
    plain.with_train = confidence_only_;
    if (!with_router_) {
      use(ctx, plain);
    } else if (qt_mode_) {
      // Router + cascade: the calibrator searches the router's skip level with the plan (calib
      // rows, where the router's p is out of sample). The plain cascade stays a candidate, so
      // routenlp is never the worse of the two: the lower cross-fitted cost ratio among the
      // certified choices wins (both certificates hold at the target).
      CalibrationPlan routed;
      routed.router_skip = true;
      use(ctx, routed);
      const double routed_cost = cv_cost_;
      const bool routed_ok = certified_;
      use(ctx, plain);
      if (!(certified_ && (!routed_ok || cv_cost_ < routed_cost - 1e-12))) use(ctx, routed);
    } else {
      // Guarantee mode: choose the skip level on 30% of calib and calibrate the cascade on the
      // other 70%, so the LTT certificate uses data the choice never saw.
      std::mt19937_64 rng(mix_seed(ctx.seed, 0xca11b));
      std::vector<size_t> sh = ctx.calib;
      std::shuffle(sh.begin(), sh.end(), rng);
      const size_t na = sh.size() * 3 / 10;
      std::vector<size_t> a(sh.begin(), sh.begin() + long(na)), b(sh.begin() + long(na), sh.end());
      CalibrationPlan routed;
      routed.router_skip = true;
      double best_cost = kInf, best_tau = 0.0;
      for (double tau : {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}) {
        skip_tau_ = tau;
        calibrate(ctx, a, routed);
        Metrics m = compute_metrics(t, *ctx.config, a, run(ctx, a));
        if (m.cost_ratio < best_cost - 1e-12) {
          best_cost = m.cost_ratio;
          best_tau = tau;
        }
      }
      skip_tau_ = best_tau;
      plan_ = routed;
      calib_rows_ = b;
      calibrate(ctx, b, routed);
    }
    base_table_ = table_;
    base_calibrator_ = calibrator_;
    base_summary_ = summary_;
  }

  // The fitted system as a pipeline: what `routenlp fit` saves and `routenlp eval` runs.
  PipelineParts parts(const SystemContext& ctx) const {
    PipelineParts p;
    p.portfolio = *ctx.config;
    p.router = need_router_ ? router_ : nullptr;
    p.calibration = calibrator_;
    p.acceptance = acceptance_;
    p.system = name();
    p.description = detail();
    return p;
  }

  // Sweep: alpha (guarantee mode) or the quality target (quality-target mode), recalibrated on
  // the same calibration rows; ordered from cheapest to most expensive.
  double sweep_value(size_t p) const {
    static const double alphas[] = {0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02, 0.01};
    return qt_mode_ ? 0.80 + 0.02 * double(p) : alphas[p];
  }
  size_t sweep_size() const override { return qt_mode_ ? 11 : 8; }
  std::string sweep_label(size_t p) const override {
    return (qt_mode_ ? "quality_target=" : "alpha=") + std::to_string(sweep_value(p)).substr(0, 4);
  }
  std::vector<Decision> decide_at(const SystemContext& ctx, const std::vector<size_t>& rows,
                                  size_t p) override {
    override_ = sweep_value(p);
    calibrate(ctx, calib_rows_, plan_);
    auto d = run(ctx, rows);
    override_.reset();
    table_ = base_table_;
    calibrator_ = base_calibrator_;
    summary_ = base_summary_;
    return d;
  }

  double u(const SystemContext& ctx, size_t row, int k) const {
    double c = ctx.table->conf(row, k);
    if (!std::isnan(c)) return 1.0 - c;
    if (!router_) return std::numeric_limits<double>::quiet_NaN();
    return 1.0 - cache_.scores.at(row).p_acceptable[size_t(k)];
  }

  static std::string response_of(const SystemContext& ctx, size_t row, const std::string& tier) {
    const auto& outs = ctx.query(row).outcomes;
    auto it = outs.find(tier);
    return it != outs.end() && it->second.response ? *it->second.response : std::string();
  }

  // The learned acceptance score (routenlp/calibration/acceptance.hpp), fitted on train when tiers record
  // confidences. Train rows that also calibrate are scored by models fitted without their fold.
  void fit_acceptance(const SystemContext& ctx) {
    acceptance_.reset();
    fold_models_.clear();
    train_fold_.clear();
    const OutcomeTable& t = *ctx.table;
    if (!any_confidence_ || ctx.train.size() < 100) return;
    auto data_of = [&](const std::vector<size_t>& rows) {
      AcceptanceData a;
      for (const auto& tier : ctx.config->tiers) a.tiers.push_back(tier.name);
      for (size_t r : rows) {
        a.tasks.push_back(ctx.query(r).task);
        std::vector<double> c(t.tiers);
        std::vector<std::string> ans(t.tiers);
        std::vector<uint8_t> ok(t.tiers);
        for (size_t k = 0; k < t.tiers; ++k) {
          c[k] = t.conf(r, int(k));
          ans[k] = response_of(ctx, r, a.tiers[k]);
          ok[k] = t.ok(r, int(k));
        }
        a.confidence.push_back(std::move(c));
        a.answers.push_back(std::move(ans));
        a.acceptable.push_back(std::move(ok));
      }
      return a;
    };
    AcceptanceOptions ao;
    ao.seed = mix_seed(ctx.seed, 0xacce);
    auto full = std::make_shared<AcceptanceModel>(AcceptanceModel::fit(data_of(ctx.train), ao));
    bool any_used = false;
    for (size_t k = 0; k < t.tiers; ++k) any_used = any_used || full->used(int(k));
    acceptance_detail_.clear();
    for (const auto& rep : full->report())
      if (!std::isnan(rep.auc_model)) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s%d: AUC %.3f -> %.3f%s", acceptance_detail_.empty() ? "" : ", ",
                      rep.tier, rep.auc_confidence, rep.auc_model, rep.used ? "" : " (kept confidence)");
        acceptance_detail_ += buf;
      }
    if (!any_used) return;
    acceptance_ = full;
    // Out-of-fold models for the train rows (every tier scored, so the scale is the model's).
    const size_t F = 5;
    ao.min_auc_gain = -1.0;
    for (size_t f = 0; f < F; ++f) {
      std::vector<size_t> rows;
      for (size_t i = 0; i < ctx.train.size(); ++i)
        if (i % F != f) rows.push_back(ctx.train[i]);
      fold_models_.push_back(std::make_shared<AcceptanceModel>(AcceptanceModel::fit(data_of(rows), ao)));
    }
    for (size_t i = 0; i < ctx.train.size(); ++i) train_fold_[ctx.train[i]] = i % F;
  }

  // u of row r at tier k when the cascade started at tier s (earlier answers: s..k-1).
  double u_at(const SystemContext& ctx, size_t r, size_t s, size_t k) const {
    const double base = u(ctx, r, int(k));
    const double c = ctx.table->conf(r, int(k));
    if (!acceptance_ || !acceptance_->used(int(k)) || std::isnan(c)) return base;
    auto it = train_fold_.find(r);
    const AcceptanceModel& m = it == train_fold_.end() ? *acceptance_ : *fold_models_[it->second];
    std::vector<EarlierAnswer> earlier;
    for (size_t j = s; j < k; ++j) {
      if (std::isnan(u(ctx, r, int(j)))) continue;
      earlier.push_back({int(j), response_of(ctx, r, ctx.config->tiers[j].name), ctx.table->conf(r, int(j))});
    }
    return 1.0 - m.p_acceptable(int(k), ctx.query(r).task, c, std::numeric_limits<double>::quiet_NaN(),
                                response_of(ctx, r, ctx.config->tiers[k].name), earlier);
  }

  // Calibrates with a plan and keeps it as the system's choice.
  void use(const SystemContext& ctx, const CalibrationPlan& plan) {
    plan_ = plan;
    calib_rows_ = ctx.calib;
    if (plan.with_train) calib_rows_.insert(calib_rows_.begin(), ctx.train.begin(), ctx.train.end());
    calibrate(ctx, calib_rows_, plan);
  }

  void calibrate(const SystemContext& ctx, const std::vector<size_t>& rows,
                 const CalibrationPlan& plan) {
    const bool routed = plan.router_skip && need_router_;
    if (need_router_) cache_.ensure(ctx, rows);
    const OutcomeTable& t = *ctx.table;
    CalibrationData cd;
    for (const auto& tier : ctx.config->tiers) cd.tiers.push_back(tier.name);
    cd.u_before_call = before_call_;
    for (size_t r : rows) {
      cd.tasks.push_back(ctx.query(r).task);
      std::vector<double> uu(t.tiers), qq(t.tiers), cc(t.tiers);
      std::vector<uint8_t> bb(t.tiers);
      for (size_t k = 0; k < t.tiers; ++k) {
        uu[k] = u(ctx, r, int(k));
        if (k + 1 == t.tiers && std::isnan(uu[k])) uu[k] = 0.0;
        bb[k] = t.ok(r, int(k)) ? 0 : 1;
        qq[k] = t.q(r, int(k));
        cc[k] = t.c(r, int(k));
      }
      cd.u.push_back(std::move(uu));
      cd.bad.push_back(std::move(bb));
      cd.quality.push_back(std::move(qq));
      cd.cost.push_back(std::move(cc));
      if (routed) cd.router_p.push_back(cache_.scores.at(r).p_acceptable);
    }
    if (acceptance_) {
      cd.u_from_start.assign(t.tiers, {});
      for (size_t s = 0; s < t.tiers; ++s)
        for (size_t r : rows) {
          std::vector<double> uu(t.tiers);
          for (size_t k = 0; k < t.tiers; ++k) uu[k] = k < s ? std::numeric_limits<double>::quiet_NaN() : u_at(ctx, r, s, k);
          if (std::isnan(uu.back())) uu.back() = 0.0;
          cd.u_from_start[s].push_back(std::move(uu));
        }
      // Guarantee mode calibrates one u per row: the one of the row's own start tier.
      for (size_t i = 0; i < rows.size(); ++i) {
        size_t s = 0;
        if (routed && !qt_mode_ && skip_tau_ > 0)
          s = size_t(router_start_tier(cache_.scores.at(rows[i]).p_acceptable, skip_tau_));
        cd.u[i] = cd.u_from_start[s][i];
      }
    }
    CalibrationOptions opt = portfolio_calibration_options(*ctx.config, qt_mode_, override_);
    opt.seed = mix_seed(ctx.seed, 0xc0f);
    opt.skip_tau = routed && !qt_mode_ ? skip_tau_ : 0.0;
    auto cal = std::make_shared<ConformalCalibrator>(opt);
    const CalibrationResult& res = cal->calibrate(cd);
    table_ = res.table;
    calibrator_ = cal;
    char buf[256];
    if (qt_mode_) {
      certified_ = !res.selections.empty();
      cv_cost_ = 0;
      double n = 0;
      for (const auto& sel : res.selections) {
        certified_ = certified_ && sel.certified;
        cv_cost_ += sel.cv_cost_ratio * double(sel.n);
        n += double(sel.n);
      }
      cv_cost_ = n > 0 ? cv_cost_ / n : kInf;
      const QualitySelection* g = res.selections.empty() ? nullptr : &res.selections.front();
      std::snprintf(buf, sizeof buf,
                    "quality-target mode (target %.3f, %s allocation, %zu calibration rows%s); "
                    "cross-fitted quality ratio %.3f (lower bound %.3f) at cost ratio %.3f",
                    opt.quality_target, allocation_name(opt.allocation), rows.size(),
                    plan.with_train ? " = train + calib" : "", g ? g->cv_quality_ratio : 0.0,
                    g ? g->ratio_lower_bound : 0.0, g ? g->cv_cost_ratio : 0.0);
      summary_ = buf;
      if (routed) {
        std::string taus;
        for (const auto& pl : res.plans)
          if (pl.skip_tau > 0) taus += (taus.empty() ? "" : ", ") + pl.task;
        summary_ += "; router skip level searched per task (" +
                    (taus.empty() ? std::string("no task skips") : "skipping: " + taus) + ")";
      }
    } else {
      size_t cert = 0, cells = 0;
      for (const auto& c : res.cells)
        if (c.status != CellStatus::final_tier) {
          ++cells;
          if (c.status == CellStatus::certified || c.status == CellStatus::pooled) ++cert;
        }
      std::snprintf(buf, sizeof buf,
                    "guarantee mode (alpha %.3f, LTT); %zu/%zu non-final cells certified or "
                    "pooled",
                    opt.alpha, cert, cells);
      summary_ = buf;
      if (routed) summary_ += "; router skips tiers with p < " + std::to_string(skip_tau_);
    }
  }

  // Replays the rows through the cascade engine (routenlp/cascade/cascade.hpp) with ReplayTiers that
  // serve the recorded outcomes; router p goes in the request. The engine applies the start
  // tier, the router's skip rule and the not-called rules itself.
  std::vector<Decision> run(const SystemContext& ctx, const std::vector<size_t>& rows) {
    if (need_router_) cache_.ensure(ctx, rows);
    const OutcomeTable& t = *ctx.table;
    const int K = int(t.tiers);
    if (replay_tiers_.empty() || replay_for_ != ctx.table ||
        replay_with_text_ != (acceptance_ != nullptr)) {
      auto slim = std::make_shared<Dataset>();
      slim->source = ctx.data->source;
      for (size_t r = 0; r < t.rows(); ++r) {
        const Query& src = ctx.query(r);
        Query q;
        q.id = src.id;
        q.task = src.task;
        q.split = src.split;
        q.split_given = true;
        for (const auto& kv : src.outcomes) {
          Outcome o = kv.second;
          if (!acceptance_) o.response.reset();  // the acceptance score compares answers
          o.extra_json.clear();
          q.outcomes.emplace(kv.first, std::move(o));
        }
        slim->queries.push_back(std::move(q));
      }
      replay_tiers_.clear();
      for (const auto& tier : ctx.config->tiers)
        replay_tiers_.push_back(std::make_shared<ReplayTier>(slim, *ctx.config, tier.name));
      replay_for_ = ctx.table;
      replay_with_text_ = acceptance_ != nullptr;
    }
    // The very object `routenlp fit` saves: its requests and its engine.
    const Pipeline pipeline(parts(ctx));
    CascadeOptions eo;
    eo.threads = 1;
    eo.audit_rate = 0.0;
    auto engine = pipeline.make_engine(replay_tiers_, eo);
    std::vector<Decision> out;
    out.reserve(rows.size());
    for (size_t r : rows) {
      const Query& q = ctx.query(r);
      CascadeRequest req = pipeline.request(RouteQuery{q.query, q.task}, q.id,
                                            need_router_ ? cache_.scores.at(r) : RouterScores{});
      Decision d = decision_of_replay(engine->run(req), K);
      if (need_router_) d.router_ms = cache_.router_ms.at(r);
      out.push_back(std::move(d));
    }
    return out;
  }

  std::vector<Decision> decide(const SystemContext& ctx, const std::vector<size_t>& rows) override {
    return run(ctx, rows);
  }
  std::string detail() const override {
    std::string s = summary_ + "; tiers whose answer could not be accepted are not called";
    if (acceptance_) s += "; u = 1 - learned P(acceptable) (confidence, earlier answers' agreement, task)";
    else if (any_confidence_) s += "; u = 1 - recorded confidence";
    if (!confidence_only_) s += any_confidence_ ? ", else 1 - router p (decided before the call)"
                                         : "; u = 1 - router p (decided before the call)";
    if (!acceptance_detail_.empty()) s += "; acceptance score per tier: " + acceptance_detail_;
    if (with_router_ && plan_.router_skip) s += " (router p drives the skip rule)";
    if (with_router_ && !plan_.router_skip) s += " (the plain cascade won: no router skip)";
    return s;
  }

 private:
  bool with_router_;
  bool need_router_ = false, qt_mode_ = false, confidence_only_ = true;
  bool certified_ = false;
  double cv_cost_ = 0.0;
  double skip_tau_ = 0;
  CalibrationPlan plan_;
  std::shared_ptr<const RouterModel> router_;
  ScoreCache cache_;
  std::shared_ptr<const ThresholdTable> table_, base_table_;
  std::shared_ptr<const ConformalCalibrator> calibrator_, base_calibrator_;
  std::string summary_, base_summary_;
  std::vector<size_t> calib_rows_;
  std::optional<double> override_;
  std::vector<std::shared_ptr<ModelTier>> replay_tiers_;
  const OutcomeTable* replay_for_ = nullptr;
  bool replay_with_text_ = false;
  std::vector<uint8_t> before_call_;  // per tier: no recorded confidence anywhere (from fit)
  bool any_confidence_ = false;
  std::shared_ptr<const AcceptanceModel> acceptance_;
  std::vector<std::shared_ptr<const AcceptanceModel>> fold_models_;
  std::unordered_map<size_t, size_t> train_fold_;
  std::string acceptance_detail_;
};

}  // namespace

PipelineParts fitted_pipeline_parts(const System& system, const SystemContext& ctx) {
  const auto* c = dynamic_cast<const ConformalSystem*>(&system);
  if (c == nullptr)
    throw Error(Status::invalid_argument, "system '" + system.name() + "' cannot be saved as a pipeline");
  return c->parts(ctx);
}

std::unique_ptr<System> make_frugalgpt_system(const PortfolioConfig&) {
  return std::make_unique<FrugalGptSystem>();
}
std::unique_ptr<System> make_automix_conf_system(const PortfolioConfig&) {
  return std::make_unique<AutoMixSystem>();
}
std::unique_ptr<System> make_routenlp_cascade_system(const PortfolioConfig&) {
  return std::make_unique<ConformalSystem>(false);
}
std::unique_ptr<System> make_routenlp_full_system(const PortfolioConfig&) {
  return std::make_unique<ConformalSystem>(true);
}

}  // namespace routenlp::detail
