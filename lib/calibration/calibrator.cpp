// The calibrator: calibration rows from a dataset, sequential per-(tier, column) calibration
// with hierarchical fallback (task -> domain -> all), quality-target mode (planning in
// quality_planning.cpp), provenance and delta(alpha) curves. Formulas: docs/conformal.md.
#include "routenlp/calibration/calibrator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <string_view>

#include "calibration/cell_fits.hpp"
#include "calibration/quality_planning.hpp"
#include "common/hash.hpp"
#include "common/utc_time.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/error.hpp"
#include "routenlp/version.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

using namespace detail;

const char* cell_status_name(CellStatus s) noexcept {
  switch (s) {
    case CellStatus::certified: return "certified";
    case CellStatus::pooled: return "pooled";
    case CellStatus::escalate_all: return "escalate_all";
    case CellStatus::too_small: return "too_small";
    case CellStatus::final_tier: return "final_tier";
    case CellStatus::uncertified: return "uncertified";
  }
  return "?";
}

// ---- data -------------------------------------------------------------------------------------

void CalibrationData::validate() const {
  const size_t K = tiers.size();
  if (K == 0) throw Error(Status::invalid_argument, "calibration data: no tiers");
  auto rows_ok = [&](const auto& m, const char* name, bool required) {
    if (m.empty() && !required) return;
    if (m.size() != tasks.size())
      throw Error(Status::invalid_argument, std::string("calibration data: ") + name + " has " +
                                                std::to_string(m.size()) + " rows, tasks has " +
                                                std::to_string(tasks.size()));
    for (size_t r = 0; r < m.size(); ++r)
      if (m[r].size() != K)
        throw Error(Status::invalid_argument, std::string("calibration data: ") + name + "[" +
                                                  std::to_string(r) + "] has " +
                                                  std::to_string(m[r].size()) +
                                                  " tiers, expected " + std::to_string(K));
  };
  rows_ok(u, "u", true);
  rows_ok(bad, "bad", true);
  rows_ok(quality, "quality", false);
  rows_ok(cost, "cost", false);
  for (size_t r = 0; r < u.size(); ++r)
    for (size_t k = 0; k < K; ++k)
      if (std::isinf(u[r][k]))
        throw Error(Status::invalid_argument, "calibration data: u[" + std::to_string(r) +
                                                  "][" + std::to_string(k) + "] is infinite");
  rows_ok(router_p, "router_p", false);
  if (!u_from_start.empty()) {
    if (u_from_start.size() != K)
      throw Error(Status::invalid_argument, "calibration data: u_from_start has " +
                                                std::to_string(u_from_start.size()) +
                                                " start tiers, expected " + std::to_string(K));
    for (const auto& m : u_from_start) rows_ok(m, "u_from_start[]", true);
  }
  if (!u_before_call.empty() && u_before_call.size() != K)
    throw Error(Status::invalid_argument, "calibration data: u_before_call has " +
                                              std::to_string(u_before_call.size()) +
                                              " tiers, expected " + std::to_string(K));
  if (unlabeled_u.size() != unlabeled_tasks.size())
    throw Error(Status::invalid_argument,
                "calibration data: unlabeled_u and unlabeled_tasks differ in length");
  for (size_t r = 0; r < unlabeled_u.size(); ++r)
    if (unlabeled_u[r].size() != K)
      throw Error(Status::invalid_argument,
                  "calibration data: unlabeled_u[" + std::to_string(r) + "] has wrong width");
}

CalibrationData calibration_data_from_dataset(const Dataset& data,
                                              const PortfolioConfig& portfolio,
                                              std::optional<Split> split,
                                              const AcceptabilityFn& router_p) {
  CalibrationData d;
  for (const auto& t : portfolio.tiers) d.tiers.push_back(t.name);
  if (d.tiers.empty()) throw Error(Status::invalid_argument, "portfolio has no tiers");
  const size_t K = d.tiers.size();
  std::vector<uint8_t> has_confidence(K, 0);
  for (const auto& q : data.queries) {
    if (split && q.split != *split) continue;
    d.tasks.push_back(q.task);
    std::vector<double> u(K, kNaN), qual(K, kNaN), cost(K, kNaN), p(K, kNaN);
    std::vector<uint8_t> bad(K, 1);
    for (size_t k = 0; k < K; ++k) {
      auto it = q.outcomes.find(d.tiers[k]);
      if (it == q.outcomes.end()) continue;
      const Outcome& o = it->second;
      if (router_p) p[k] = router_p(q, static_cast<int>(k));
      if (o.confidence) {
        u[k] = 1.0 - *o.confidence;
        has_confidence[k] = 1;
      } else if (!std::isnan(p[k])) {
        u[k] = 1.0 - p[k];
      }
      qual[k] = o.quality;
      bad[k] = portfolio.acceptable(q.task, o.quality) ? 0 : 1;
      cost[k] = outcome_cost(portfolio, static_cast<int>(k), o);
    }
    d.u.push_back(std::move(u));
    d.bad.push_back(std::move(bad));
    d.quality.push_back(std::move(qual));
    d.cost.push_back(std::move(cost));
    if (router_p) d.router_p.push_back(std::move(p));
  }
  // A tier that never reports a confidence is judged on the router's p alone, before the call.
  if (router_p)
    for (size_t k = 0; k < K; ++k) d.u_before_call.push_back(has_confidence[k] ? 0 : 1);
  return d;
}

// ---- calibrator -------------------------------------------------------------------------------

namespace {

struct ColumnSet {
  std::vector<std::string> names;  // tasks, domains "d/*", "*"
  std::vector<std::string> tasks;  // sorted unique tasks
  std::vector<std::string> domains;
};

ColumnSet make_columns(const std::vector<std::string>& row_tasks) {
  ColumnSet cs;
  std::set<std::string> t(row_tasks.begin(), row_tasks.end()), d;
  for (const auto& x : t) {
    auto dom = task_domain(x);
    if (!dom.empty()) d.insert(dom);
  }
  cs.tasks.assign(t.begin(), t.end());
  cs.domains.assign(d.begin(), d.end());
  for (const auto& x : cs.tasks) cs.names.push_back(x);
  for (const auto& x : cs.domains)
    if (!t.count(x + "/*")) cs.names.push_back(x + "/*");
  if (!t.count("*")) cs.names.push_back("*");
  return cs;
}

using detail::row_in_column;

struct Engine {
  const CalibrationData& d;
  const CalibrationOptions& o;
  size_t K;
  double eps_k;

  Sorted sorted(const std::vector<size_t>& rows, size_t k) const {
    std::vector<double> u;
    std::vector<uint8_t> b;
    u.reserve(rows.size());
    b.reserve(rows.size());
    for (size_t r : rows) {
      u.push_back(d.u[r][k]);
      b.push_back(d.bad[r][k]);
    }
    return sort_rows(u, b);
  }

  CellFit fit_sorted(const Sorted& s, double alpha, const std::vector<double>& grid) const {
    switch (o.method) {
      case CalibrationMethod::crc: return crc_sorted(s, alpha);
      case CalibrationMethod::split_conformal: return split_conformal_sorted(s, alpha);
      case CalibrationMethod::pvalue_bad: return pvalue_bad_sorted(s, alpha);
      case CalibrationMethod::ltt: break;
    }
    LttOptions lo;
    lo.alpha = alpha;
    lo.epsilon = eps_k;
    lo.grid_step = o.grid_step;
    lo.min_expected_accepted = o.min_expected_accepted;
    return ltt_sorted(s, lo, grid);
  }

  CellFit fit(const std::vector<size_t>& rows, size_t k, double alpha,
              const std::vector<double>& grid) const {
    return fit_sorted(sorted(rows, k), alpha, grid);
  }

  // delta(alpha) on these rows for each alpha in (0,1) (<= 0: -inf; >= 1: +inf); sorts once.
  std::vector<double> curve(const std::vector<size_t>& rows, size_t k,
                            const std::vector<double>& alphas,
                            const std::vector<double>& grid) const {
    std::vector<double> out;
    out.reserve(alphas.size());
    const Sorted s = sorted(rows, k);
    std::vector<LttPoint> pts;
    if (o.method == CalibrationMethod::ltt) {
      LttOptions lo;
      lo.grid_step = o.grid_step;
      lo.min_expected_accepted = o.min_expected_accepted;
      pts = ltt_points(s, lo, grid);
    }
    // BinomCDF(K; A, alpha) falls as alpha grows: once every point passes, every point passes
    // at each larger alpha too (most of a curve's grid), so those skip the walk.
    bool all_pass = false;
    double prev = -kInf;
    for (double a : alphas) {
      if (!(a > 0 && a < 1)) {
        out.push_back(a <= 0 ? -kInf : kInf);
      } else if (rows.empty()) {
        out.push_back(-kInf);
      } else if (o.method == CalibrationMethod::ltt) {
        if (!(all_pass && a >= prev)) {
          CellFit f = ltt_walk(s, pts, a, eps_k);  // = fit_sorted(s, a, grid)
          all_pass = f.certified && f.delta == pts.back().g;
          out.push_back(f.delta);
        } else {
          out.push_back(pts.back().g);
        }
        prev = a;
      } else {
        out.push_back(fit_sorted(s, a, grid).delta);
      }
    }
    return out;
  }

  CellFit single(const std::vector<size_t>& rows, size_t k, double delta, double alpha) const {
    std::vector<double> u;
    std::vector<uint8_t> b;
    for (size_t r : rows) {
      u.push_back(d.u[r][k]);
      b.push_back(d.bad[r][k]);
    }
    return ltt_single_test(u, b, delta, alpha, eps_k);
  }
};

CellReport report_from(const CellFit& f, size_t k, const std::string& col, double alpha) {
  CellReport c;
  c.tier = static_cast<int>(k);
  c.task = col;
  c.source = col;
  c.n = f.n;
  c.n_bad = f.n_bad;
  c.accepted = f.accepted;
  c.accepted_bad = f.accepted_bad;
  c.delta = f.delta;
  c.p_value = f.p_value;
  c.alpha = alpha;
  c.status = f.certified ? CellStatus::certified : CellStatus::escalate_all;
  return c;
}

}  // namespace

ConformalCalibrator::ConformalCalibrator(CalibrationOptions options)
    : options_(std::move(options)) {
  check_alpha(options_.alpha, "CalibrationOptions.alpha");
  for (double a : options_.extra_alphas) check_alpha(a, "CalibrationOptions.extra_alphas");
  if (!(options_.epsilon > 0 && options_.epsilon < 1))
    throw Error(Status::invalid_argument, "CalibrationOptions.epsilon must be in (0,1)");
  if (!(options_.quality_target > 0 && options_.quality_target <= 1.5))
    throw Error(Status::invalid_argument, "CalibrationOptions.quality_target must be in (0,1.5]");
  if (!(options_.qt_epsilon > 0 && options_.qt_epsilon < 1))
    throw Error(Status::invalid_argument, "CalibrationOptions.qt_epsilon must be in (0,1)");
  if (!(options_.skip_tau >= 0 && options_.skip_tau < 1))
    throw Error(Status::invalid_argument, "CalibrationOptions.skip_tau must be in [0,1)");
  for (const auto& kv : options_.task_quality_targets)
    if (!(kv.second > 0 && kv.second <= 1.5))
      throw Error(Status::invalid_argument, "CalibrationOptions.task_quality_targets['" +
                                                kv.first + "'] must be in (0,1.5]");
  if (options_.qt_levels < 1)
    throw Error(Status::invalid_argument, "CalibrationOptions.qt_levels must be >= 1");
  if (options_.curve_max_alpha != 0) {
    if (!(options_.curve_step > 0 && options_.curve_max_alpha >= options_.curve_step &&
          options_.curve_max_alpha < 1 &&
          options_.curve_max_alpha / options_.curve_step <= ThresholdCurve::kMaxPoints))
      throw Error(Status::invalid_argument,
                  "CalibrationOptions.curve_step/curve_max_alpha: need 0 < curve_step <= "
                  "curve_max_alpha < 1 and at most 100000 grid points (or curve_max_alpha = 0: "
                  "no curves)");
  }
}

const CalibrationResult& ConformalCalibrator::result() const {
  if (!calibrated()) throw Error(Status::invalid_argument, "calibrator: not calibrated yet");
  return result_;
}

std::shared_ptr<const ThresholdTable> ConformalCalibrator::thresholds() const {
  return result().table;
}

double ConformalCalibrator::threshold(size_t tier, const std::string& task, double alpha) const {
  return result().table->lookup(tier, task, alpha);
}

const CellReport* ConformalCalibrator::cell(size_t tier, const std::string& column) const {
  for (const auto& c : result().cells)
    if (c.tier == static_cast<int>(tier) && c.task == column) return &c;
  return nullptr;
}

const CalibrationResult& ConformalCalibrator::calibrate(const CalibrationData& data) {
  data.validate();
  if (data.rows() == 0) throw Error(Status::invalid_argument, "calibration data has no rows");
  auto dptr = std::make_shared<CalibrationData>(data);
  const CalibrationOptions& o = options_;
  // Guarantee mode with a router skip level: tiers below a row's router start are not called,
  // so they are left out of that row's calibration (NaN u), as the engine will skip them.
  if (o.goal == CalibrationGoal::guarantee && o.skip_tau > 0 && !dptr->router_p.empty())
    for (size_t r = 0; r < dptr->rows(); ++r) {
      int s = detail::router_start_tier(dptr->router_p[r], o.skip_tau);
      for (int k = 0; k < s; ++k) dptr->u[r][static_cast<size_t>(k)] = kNaN;
    }
  const CalibrationData& d = *dptr;
  const size_t K = d.tiers.size();
  ColumnSet cs = make_columns(d.tasks);
  std::vector<double> alphas = o.extra_alphas;
  alphas.push_back(o.alpha);
  std::sort(alphas.begin(), alphas.end());
  alphas.erase(std::unique(alphas.begin(), alphas.end(),
                           [](double a, double b) { return std::fabs(a - b) < 1e-12; }),
               alphas.end());
  size_t base = 0;
  for (size_t a = 0; a < alphas.size(); ++a)
    if (std::fabs(alphas[a] - o.alpha) < 1e-12) base = a;

  auto table = std::make_shared<ThresholdTable>();
  table->reset_shape(d.tiers, cs.names, alphas, base);
  for (size_t k = 0; k < K && k < d.u_before_call.size(); ++k)
    table->u_before_call[k] = d.u_before_call[k];
  if (o.goal == CalibrationGoal::guarantee && !d.router_p.empty())
    table->skip_tau.assign(cs.names.size(), o.skip_tau);
  // Mean cost per tier over rows that have one.
  for (size_t k = 0; k < K && !d.cost.empty(); ++k) {
    double s = 0;
    size_t n = 0;
    for (size_t r = 0; r < d.rows(); ++r)
      if (!std::isnan(d.cost[r][k])) {
        s += d.cost[r][k];
        ++n;
      }
    if (n) table->expected_cost[k] = s / static_cast<double>(n);
  }

  CalibrationResult res;
  Engine eng{d, o, K, K > 1 ? o.epsilon / static_cast<double>(K - 1) : o.epsilon};
  const size_t min_rows = min_rows_to_certify(o.alpha, eng.eps_k);
  std::vector<std::vector<size_t>> base_reach(K);
  std::vector<size_t> all_rows(d.rows());
  std::iota(all_rows.begin(), all_rows.end(), 0);

  if (o.goal == CalibrationGoal::quality_target) {
    detail::QualityPlanning qp = detail::plan_quality_target(d, o, cs.names);
    // A plan mixed with its cheaper neighbour gets a hidden column for the neighbour.
    std::vector<std::string> names = cs.names;
    for (size_t c = 0; c < cs.names.size(); ++c)
      if (qp.plans[c].mix_share > 0) names.push_back(cs.names[c] + "\x1fmix");
    if (names.size() != cs.names.size()) {
      auto ec = table->expected_cost;
      auto ubc = table->u_before_call;
      table->reset_shape(d.tiers, names, alphas, base);
      table->expected_cost = ec;
      table->u_before_call = ubc;
    }
    for (size_t c = 0, extra = cs.names.size(); c < cs.names.size(); ++c) {
      const QualityPlan& p = qp.plans[c];
      if (!(p.mix_share > 0)) continue;
      for (size_t a = 0; a < alphas.size(); ++a)
        for (size_t k = 0; k < K; ++k) table->at(a, k, extra) = p.mix_delta[k];
      table->start_tier[extra] = p.mix_start_tier;
      table->skip_tau[extra] = p.mix_skip_tau;
      table->mix_column[c] = static_cast<int>(extra);
      table->mix_share[c] = p.mix_share;
      ++extra;
    }
    for (size_t c = 0; c < cs.names.size(); ++c) {
      QualityPlan& p = qp.plans[c];
      for (size_t a = 0; a < alphas.size(); ++a)
        for (size_t k = 0; k < K; ++k) table->at(a, k, c) = p.delta[k];
      table->start_tier[c] = p.start_tier;
      table->skip_tau[c] = p.skip_tau;
      size_t n = 0;
      for (size_t r = 0; r < d.rows(); ++r) n += row_in_column(d.tasks[r], cs.names[c]);
      for (size_t k = 0; k < K; ++k) {
        CellReport cr;
        cr.tier = static_cast<int>(k);
        cr.task = cs.names[c];
        cr.source = p.source;
        cr.n = n;
        cr.delta = p.delta[k];
        cr.alpha = o.alpha;
        cr.status = k + 1 == K ? CellStatus::final_tier
                               : (p.certified ? CellStatus::certified : CellStatus::uncertified);
        res.cells.push_back(cr);
      }
      res.plans.push_back(std::move(p));
    }
    res.selections = std::move(qp.selections);
    base_reach.assign(K, all_rows);
  } else {
    const std::vector<double> curve_alphas =
        o.curve_max_alpha > 0 ? ThresholdCurve::grid(o.curve_step, o.curve_max_alpha)
                              : std::vector<double>{};
    for (size_t a = 0; a < alphas.size(); ++a) {
      const double alpha = alphas[a];
      std::vector<size_t> reach = all_rows;
      std::vector<size_t> ureach(d.unlabeled_u.size());
      std::iota(ureach.begin(), ureach.end(), 0);
      for (size_t k = 0; k < K; ++k) {
        std::vector<size_t> rows_k;
        for (size_t r : reach)
          if (!std::isnan(d.u[r][k]) || k + 1 == K) rows_k.push_back(r);
        if (a == base) base_reach[k] = rows_k;
        if (k + 1 == K) {
          if (a == base)
            for (size_t c = 0; c < cs.names.size(); ++c) {
              CellReport cr;
              cr.tier = static_cast<int>(k);
              cr.task = cr.source = cs.names[c];
              for (size_t r : rows_k)
                if (row_in_column(d.tasks[r], cs.names[c])) {
                  cr.n++;
                  cr.n_bad += d.bad[r][k];
                }
              cr.accepted = cr.n;
              cr.accepted_bad = cr.n_bad;
              cr.delta = kInf;
              cr.alpha = alpha;
              cr.status = CellStatus::final_tier;
              res.cells.push_back(cr);
            }
          break;
        }
        // Rows and grid sample of each column.
        std::map<std::string, std::vector<size_t>> col_rows;
        std::map<std::string, std::vector<double>> col_grid;
        for (const auto& c : cs.names) {
          auto& v = col_rows[c];
          for (size_t r : rows_k)
            if (row_in_column(d.tasks[r], c)) v.push_back(r);
          std::vector<double> g;
          for (size_t r : ureach)
            if (!std::isnan(d.unlabeled_u[r][k]) && row_in_column(d.unlabeled_tasks[r], c))
              g.push_back(d.unlabeled_u[r][k]);
          if (g.size() >= 200) col_grid[c] = std::move(g);
        }
        std::map<std::string, CellFit> fits;
        for (const auto& c : cs.names)
          fits[c] = eng.fit(col_rows[c], k, alpha, col_grid[c]);
        auto pool_chain = [&](const std::string& col) {
          std::vector<std::string> chain;
          if (col == "*") return chain;
          if (col.size() < 2 || col.compare(col.size() - 2, 2, "/*") != 0) {
            auto dom = task_domain(col);
            if (!dom.empty()) chain.push_back(dom + "/*");
          }
          chain.push_back("*");
          return chain;
        };
        std::vector<double> col_delta(cs.names.size(), -kInf);
        std::vector<std::string> col_source(cs.names.size());
        for (size_t c = 0; c < cs.names.size(); ++c) {
          const std::string& col = cs.names[c];
          const auto& rows = col_rows[col];
          const CellFit& own = fits[col];
          CellReport cr = report_from(own, k, col, alpha);
          bool resolved = own.certified && (o.method == CalibrationMethod::ltt ||
                                            rows.size() >= o.cell_floor);
          if (!resolved && rows.size() < o.cell_floor) {
            for (const auto& pool : pool_chain(col)) {
              const CellFit& pf = fits[pool];
              if (!pf.certified || col_rows[pool].size() <= rows.size()) continue;
              cr.source = pool;
              cr.delta = pf.delta;
              if (o.method == CalibrationMethod::ltt && !rows.empty()) {
                CellFit st = eng.single(rows, k, pf.delta, alpha);
                cr.p_value = st.p_value;
                cr.accepted = st.accepted;
                cr.accepted_bad = st.accepted_bad;
                cr.status = st.certified ? CellStatus::certified : CellStatus::pooled;
              } else {
                auto cnt = rows.empty() ? std::pair<size_t, size_t>{0, 0} : [&] {
                  std::vector<double> u;
                  std::vector<uint8_t> b;
                  for (size_t r : rows) {
                    u.push_back(d.u[r][k]);
                    b.push_back(d.bad[r][k]);
                  }
                  return counts_at(sort_rows(u, b), pf.delta);
                }();
                cr.accepted = cnt.first;
                cr.accepted_bad = cnt.second;
                cr.status = CellStatus::pooled;
              }
              resolved = true;
              break;
            }
            if (!resolved && own.certified) resolved = true;  // small but self-certified
          }
          if (!resolved) {
            cr.delta = -kInf;
            cr.accepted = cr.accepted_bad = 0;
            cr.status = rows.size() < std::max(min_rows, o.method == CalibrationMethod::ltt
                                                             ? size_t{0}
                                                             : o.cell_floor)
                            ? CellStatus::too_small
                            : CellStatus::escalate_all;
          }
          col_delta[c] = cr.delta;
          col_source[c] = cr.source;
          table->at(a, k, c) = cr.delta;
          if (a == base) res.cells.push_back(cr);
        }
        // Curves at the base alpha's reach sets, from the rows and grid sample the cell's delta
        // came from: the curve then passes through the calibrated delta at the base alpha, so
        // attaching it to online recalibration does not move a threshold by itself.
        if (a == base && !curve_alphas.empty()) {
          std::map<std::string, std::vector<double>> by_source;
          for (size_t c = 0; c < cs.names.size(); ++c) {
            const std::string& src = col_source[c];
            auto it = by_source.find(src);
            if (it == by_source.end())
              it = by_source.emplace(src, eng.curve(col_rows[src], k, curve_alphas, col_grid[src]))
                       .first;
            CellCurve cc;
            cc.tier = k;
            cc.column = cs.names[c];
            cc.source = src;
            cc.curve.step = o.curve_step;
            cc.curve.delta = it->second;
            res.curves.push_back(std::move(cc));
          }
        }
        // Rows (and unlabeled rows) that reach tier k+1.
        if (o.sequential) {
          // A row goes on unless tier k accepted it; NaN u (no answer, or a tier the router
          // skipped) goes on too, as the engine escalates then.
          std::vector<size_t> next;
          for (size_t r : reach) {
            int c = table->column_for(d.tasks[r]);
            if (!(d.u[r][k] <= col_delta[static_cast<size_t>(c)])) next.push_back(r);
          }
          reach = std::move(next);
          std::vector<size_t> unext;
          for (size_t r : ureach) {
            int c = table->column_for(d.unlabeled_tasks[r]);
            double uu = d.unlabeled_u[r][k];
            if (std::isnan(uu) || !(uu <= col_delta[static_cast<size_t>(c)])) unext.push_back(r);
          }
          ureach = std::move(unext);
        }
      }
    }
  }

  // Provenance.
  auto bytes = [](const void* p, size_t n) { return std::string_view(static_cast<const char*>(p), n); };
  uint64_t h = kFnvOffset;
  for (const auto& t : d.tiers) h = fnv1a64(bytes(t.data(), t.size() + 1), h);
  for (size_t r = 0; r < d.rows(); ++r) {
    h = fnv1a64(bytes(d.tasks[r].data(), d.tasks[r].size() + 1), h);
    for (size_t k = 0; k < K; ++k) {
      h = fnv1a64(bytes(&d.u[r][k], sizeof(double)), h);
      h = fnv1a64(bytes(&d.bad[r][k], 1), h);
      if (!d.quality.empty()) h = fnv1a64(bytes(&d.quality[r][k], sizeof(double)), h);
      if (!d.cost.empty()) h = fnv1a64(bytes(&d.cost[r][k], sizeof(double)), h);
    }
  }
  res.provenance.data_hash = hex64(h);
  res.provenance.n = d.rows();
  res.provenance.alpha = o.alpha;
  res.provenance.epsilon = o.epsilon;
  res.provenance.method = method_name(o.method);
  res.provenance.goal = o.goal == CalibrationGoal::guarantee ? "guarantee" : "quality_target";
  res.provenance.created_utc = detail::utc_now_iso8601();
  res.provenance.library_version = library_version_string();
  res.table = table;
  result_ = std::move(res);
  reach_rows_ = std::move(base_reach);
  data_ = std::move(dptr);
  return result_;
}

std::vector<double> ConformalCalibrator::curve(size_t tier, const std::string& column,
                                               const std::vector<double>& alphas) const {
  if (!data_)
    throw Error(Status::invalid_argument,
                "calibrator: curve() needs the calibration data (not kept by load())");
  if (tier >= reach_rows_.size()) throw Error(Status::invalid_argument, "curve: bad tier");
  const size_t K = data_->tiers.size();
  if (tier + 1 == K) return std::vector<double>(alphas.size(), kInf);
  std::vector<size_t> rows;
  for (size_t r : reach_rows_[tier])
    if (row_in_column(data_->tasks[r], column)) rows.push_back(r);
  Engine eng{*data_, options_, K,
             K > 1 ? options_.epsilon / static_cast<double>(K - 1) : options_.epsilon};
  return eng.curve(rows, tier, alphas, {});
}

}  // namespace routenlp
