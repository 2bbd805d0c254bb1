// Quality-target planning: cost-ordered plan fronts per task, one price of quality shared by the
// tasks of a group (Lagrangian allocation), and the price chosen by a fixed-sequence test of the
// shortfall on cross-fitted rows. docs/conformal.md "Quality-target mode" states the method.
#include "calibration/quality_planning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "data/hash.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

const char* allocation_name(QualityAllocation a) noexcept {
  return a == QualityAllocation::per_task ? "per_task" : "global";
}

QualityAllocation parse_allocation(const std::string& name) {
  if (name == "global") return QualityAllocation::global;
  if (name == "per_task") return QualityAllocation::per_task;
  throw Error(Status::invalid_argument,
              "unknown quality allocation '" + name + "' (expected global or per_task)");
}

const char* bound_name(QualityBound b) noexcept {
  return b == QualityBound::bernstein ? "bernstein" : "normal";
}

QualityBound parse_bound(const std::string& name) {
  if (name == "normal") return QualityBound::normal;
  if (name == "bernstein") return QualityBound::bernstein;
  throw Error(Status::invalid_argument,
              "unknown quality bound '" + name + "' (expected normal or bernstein)");
}

}  // namespace routenlp

namespace routenlp::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool is_pool(const std::string& column) {
  return column == "*" || (column.size() >= 2 && column.compare(column.size() - 2, 2, "/*") == 0);
}

// One cascade configuration: start tier, router skip level (index into the tau grid) and a
// threshold per tier; cost and quality are sums over the rows that built it.
struct Config {
  int start = 0;
  size_t tau = 0;
  std::vector<double> delta;
  double cost = 0.0, quality = 0.0;
};

// Non-dominated configurations, cost ascending (quality strictly ascending too).
using Front = std::vector<Config>;

struct Planner {
  const CalibrationData& d;
  const CalibrationOptions& o;
  size_t K = 0, ref = 0;
  std::vector<double> taus;              // router skip grid; {0} without router p
  std::vector<std::vector<int>> rstart;  // [row][tau]: the router's start tier
  std::vector<uint8_t> before;           // per tier: u known before the call

  Planner(const CalibrationData& data, const CalibrationOptions& options)
      : d(data), o(options), K(data.tiers.size()) {
    ref = o.reference_tier < 0 ? K - 1 : static_cast<size_t>(o.reference_tier);
    taus = {0.0};
    if (!d.router_p.empty())
      for (double t : o.skip_taus)
        if (t > 0 && t < 1 && std::find(taus.begin(), taus.end(), t) == taus.end())
          taus.push_back(t);
    rstart.assign(d.rows(), std::vector<int>(taus.size(), 0));
    for (size_t r = 0; r < d.rows() && !d.router_p.empty(); ++r)
      for (size_t t = 0; t < taus.size(); ++t) rstart[r][t] = router_start_tier(d.router_p[r], taus[t]);
    before.assign(K, 0);
    for (size_t k = 0; k < K && k < d.u_before_call.size(); ++k) before[k] = d.u_before_call[k];
  }

  // u of row r at tier k when the cascade started at tier s.
  double u(size_t r, size_t s, size_t k) const {
    return d.u_from_start.empty() ? d.u[r][k] : d.u_from_start[s][r][k];
  }

  // Sets c's cost and quality to their sums over rows.
  void evaluate(Config& c, const std::vector<size_t>& rows) const {
    c.cost = c.quality = 0.0;
    for (size_t r : rows) {
      auto [a, cost] = simulate(r, c);
      c.cost += cost;
      c.quality += d.quality[r][a];
    }
  }

  Config reference_config() const {
    Config c;
    c.start = static_cast<int>(ref);
    c.delta.assign(K, -kInf);
    c.delta[ref] = kInf;
    c.delta[K - 1] = kInf;
    return c;
  }

  // Answer tier and cost of row r under a configuration (the engine's rule, docs/cascade.md):
  // tiers before the start are not called; a tier with NaN u is passed over; a tier whose u is
  // known before the call and exceeds delta is not called; the last tier always answers.
  std::pair<size_t, double> simulate(size_t r, const Config& c) const {
    size_t s = static_cast<size_t>(std::max(c.start, rstart[r][c.tau]));
    double cost = 0.0;
    for (size_t k = s; k < K; ++k) {
      const bool last = k + 1 == K;
      const double uk = u(r, s, k);
      if (!last && std::isnan(uk)) continue;
      const bool accept = last || uk <= c.delta[k];
      if (!last && before[k] && !accept) continue;
      cost += d.cost[r][k];
      if (accept) return {k, cost};
    }
    return {K - 1, cost};
  }

  // Greedy cost descent from "everything escalates": each step raises one tier's threshold to
  // its next u-quantile, taking the move with the most cost saved per quality lost. Every
  // configuration on the way is appended to out. Incremental: a move only touches the rows
  // whose u falls in the new threshold band and that still reach the tier.
  void greedy(const std::vector<size_t>& rows, int start, size_t tau,
              std::vector<Config>& out) const {
    const size_t n = rows.size();
    std::vector<std::vector<double>> cand(K);
    std::vector<std::vector<std::vector<uint32_t>>> bucket(K);
    std::vector<int> srow(n);
    for (size_t i = 0; i < n; ++i) srow[i] = std::max(start, rstart[rows[i]][tau]);
    for (size_t k = static_cast<size_t>(start); k + 1 < K; ++k) {
      cand[k].push_back(-kInf);
      std::vector<double> uk;
      for (size_t i = 0; i < n; ++i) {
        double x = u(rows[i], static_cast<size_t>(srow[i]), k);
        if (srow[i] <= static_cast<int>(k) && !std::isnan(x)) uk.push_back(x);
      }
      if (uk.empty()) continue;
      std::sort(uk.begin(), uk.end());
      for (size_t j = 1; j <= o.qt_levels; ++j) {
        size_t rank = (j * uk.size() + o.qt_levels - 1) / o.qt_levels;
        double v = uk[rank - 1];
        if (v > cand[k].back()) cand[k].push_back(v);
      }
      bucket[k].resize(cand[k].size());
      for (size_t i = 0; i < n; ++i) {
        if (srow[i] > static_cast<int>(k)) continue;
        double x = u(rows[i], static_cast<size_t>(srow[i]), k);
        if (srow[i] > static_cast<int>(k) || std::isnan(x)) continue;
        size_t lv = static_cast<size_t>(std::lower_bound(cand[k].begin() + 1, cand[k].end(), x) -
                                        cand[k].begin());
        if (lv < cand[k].size()) bucket[k][lv].push_back(static_cast<uint32_t>(i));
      }
    }
    Config cur;
    cur.start = start;
    cur.tau = tau;
    cur.delta.assign(K, -kInf);
    cur.delta[K - 1] = kInf;
    std::vector<size_t> ans(n);
    std::vector<double> cst(n);
    for (size_t i = 0; i < n; ++i) {
      auto [a, c] = simulate(rows[i], cur);
      ans[i] = a;
      cst[i] = c;
      cur.cost += c;
      cur.quality += d.quality[rows[i]][a];
    }
    out.push_back(cur);
    std::vector<size_t> level(K, 0);
    // Cost of a row answered at tier k, every tier before it having escalated.
    auto cost_to = [&](size_t i, size_t k) {
      double c = d.cost[rows[i]][k];
      for (size_t j = static_cast<size_t>(srow[i]); j < k; ++j)
        if (!std::isnan(u(rows[i], static_cast<size_t>(srow[i]), j)) && !before[j])
          c += d.cost[rows[i]][j];
      return c;
    };
    for (;;) {
      int best_k = -1;
      double best_score = -kInf, best_dc = 0, best_dq = 0;
      for (size_t k = static_cast<size_t>(start); k + 1 < K; ++k) {
        if (level[k] + 1 >= cand[k].size()) continue;
        double dc = 0, dq = 0;
        for (uint32_t i : bucket[k][level[k] + 1]) {
          if (ans[i] <= k || srow[i] > static_cast<int>(k)) continue;
          dc += cost_to(i, k) - cst[i];
          dq += d.quality[rows[i]][k] - d.quality[rows[i]][ans[i]];
        }
        const double saving = -dc, loss = -dq;
        if (saving <= 0 && loss > 0) continue;  // dearer and worse
        const double score = loss <= 1e-12 ? 1e30 + saving : saving / loss;
        if (score > best_score) {
          best_score = score;
          best_k = static_cast<int>(k);
          best_dc = dc;
          best_dq = dq;
        }
      }
      if (best_k < 0) break;
      const size_t k = static_cast<size_t>(best_k);
      ++level[k];
      cur.delta[k] = cand[k][level[k]];
      for (uint32_t i : bucket[k][level[k]]) {
        if (ans[i] <= k || srow[i] > static_cast<int>(k)) continue;
        cst[i] = cost_to(i, k);
        ans[i] = k;
      }
      cur.cost += best_dc;
      cur.quality += best_dq;
      out.push_back(cur);
    }
  }

  Front build_front(const std::vector<size_t>& rows) const {
    std::vector<Config> all;
    if (rows.empty()) return {};
    for (size_t t = 0; t < taus.size(); ++t)
      for (size_t s = 0; s < K; ++s) greedy(rows, static_cast<int>(s), t, all);
    Config refc = reference_config();
    evaluate(refc, rows);
    all.push_back(refc);
    std::sort(all.begin(), all.end(), [](const Config& a, const Config& b) {
      return a.cost < b.cost || (a.cost == b.cost && a.quality > b.quality);
    });
    Front front;
    double best_q = -kInf;
    const double tol = 1e-9 * static_cast<double>(rows.size());
    for (auto& c : all)
      if (c.quality > best_q + tol) {
        best_q = c.quality;
        front.push_back(std::move(c));
      }
    return front;
  }
};

// The upper concave hull of a front (cost ascending): the plans a price of quality can select.
Front concave_hull(const Front& f) {
  Front h;
  for (const Config& c : f) {
    while (h.size() >= 2) {
      const Config& a = h[h.size() - 2];
      const Config& b = h.back();
      // b lies on or below the chord a -> c: drop it.
      if ((b.quality - a.quality) * (c.cost - a.cost) <= (c.quality - a.quality) * (b.cost - a.cost))
        h.pop_back();
      else
        break;
    }
    h.push_back(c);
  }
  return h;
}

// Upper confidence bound on the mean of L at level eps.
double upper_bound(const std::vector<double>& L, double eps, QualityBound kind, double range) {
  const double n = static_cast<double>(L.size());
  if (L.size() < 2) return kInf;
  double mean = 0, var = 0;
  for (double x : L) mean += x;
  mean /= n;
  for (double x : L) var += (x - mean) * (x - mean);
  var /= (n - 1);
  if (kind == QualityBound::bernstein) {
    const double lg = std::log(2.0 / eps);
    return mean + std::sqrt(2.0 * var * lg / n) + 7.0 * range * lg / (3.0 * (n - 1));
  }
  return mean + normal_upper_quantile(eps) * std::sqrt(var / n);
}

struct Group {
  std::string name;
  double target = 0;
  std::vector<size_t> rows;      // calibration rows the certificate runs on
  std::vector<size_t> plan_col;  // per row: the column whose plan serves it
};

}  // namespace

bool row_in_column(const std::string& task, const std::string& column) {
  if (column == "*") return true;
  if (column.size() >= 2 && column.compare(column.size() - 2, 2, "/*") == 0)
    return task_domain(task) == column.substr(0, column.size() - 2);
  return task == column;
}

int router_start_tier(const std::vector<double>& p, double tau) {
  if (!(tau > 0) || p.empty()) return 0;
  const int last = static_cast<int>(p.size()) - 1;
  for (int k = 0; k < last; ++k)
    if (p[static_cast<size_t>(k)] >= tau) return k;
  return last;
}

double normal_upper_quantile(double eps) {
  double lo = -12, hi = 12;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    if (0.5 * std::erfc(mid / std::sqrt(2.0)) > eps) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

QualityPlanning plan_quality_target(const CalibrationData& d, const CalibrationOptions& o,
                                    const std::vector<std::string>& columns) {
  if (d.quality.empty() || d.cost.empty())
    throw Error(Status::invalid_argument,
                "quality-target calibration needs quality and cost for every row");
  Planner P(d, o);
  const size_t K = P.K, C = columns.size();
  if (P.ref >= K) throw Error(Status::invalid_argument, "reference_tier out of range");
  if (!(o.qt_epsilon > 0 && o.qt_epsilon < 1))
    throw Error(Status::invalid_argument, "CalibrationOptions.qt_epsilon must be in (0,1)");

  // Complete rows only: every tier's quality and cost known.
  std::vector<size_t> rows;
  for (size_t r = 0; r < d.rows(); ++r) {
    bool ok = true;
    for (size_t k = 0; k < K && ok; ++k)
      ok = !std::isnan(d.quality[r][k]) && !std::isnan(d.cost[r][k]);
    if (ok) rows.push_back(r);
  }
  std::vector<std::vector<size_t>> col_rows(C);
  for (size_t c = 0; c < C; ++c)
    for (size_t r : rows)
      if (row_in_column(d.tasks[r], columns[c])) col_rows[c].push_back(r);
  std::map<std::string, size_t> col_index;
  for (size_t c = 0; c < C; ++c) col_index[columns[c]] = c;
  auto target_of = [&](const std::string& col) {
    auto it = o.task_quality_targets.find(col);
    return it == o.task_quality_targets.end() ? o.quality_target : it->second;
  };

  // Shrinkage: a task with fewer than qt_task_floor rows uses its pool's front (its domain's
  // when that pool is large enough, else all tasks'). Pools always use their own.
  std::vector<size_t> front_of(C);
  for (size_t c = 0; c < C; ++c) {
    front_of[c] = c;
    if (is_pool(columns[c]) || col_rows[c].size() >= o.qt_task_floor) continue;
    std::string dom = task_domain(columns[c]);
    auto it = dom.empty() ? col_index.end() : col_index.find(dom + "/*");
    if (it != col_index.end() && col_rows[it->second].size() >= o.qt_task_floor)
      front_of[c] = it->second;
    else if (col_index.count("*"))
      front_of[c] = col_index["*"];
  }

  // Groups: under global allocation one group holds every task without its own target and
  // lends its price to the pools; tasks with their own target (and, per task, every column)
  // are groups of their own.
  std::vector<Group> groups;
  std::vector<int> group_of(C, -1);
  const bool global = o.allocation == QualityAllocation::global;
  if (global) {
    Group g;
    g.name = "*";
    g.target = o.quality_target;
    for (size_t r : rows)
      if (!o.task_quality_targets.count(d.tasks[r])) {
        g.rows.push_back(r);
        g.plan_col.push_back(col_index.at(d.tasks[r]));
      }
    if (!g.rows.empty()) {
      for (size_t c = 0; c < C; ++c)
        if (is_pool(columns[c]) || !o.task_quality_targets.count(columns[c])) group_of[c] = 0;
      groups.push_back(std::move(g));
    }
  }
  for (size_t c = 0; c < C; ++c) {
    if (group_of[c] >= 0) continue;
    Group g;
    g.name = columns[c];
    g.target = target_of(columns[c]);
    g.rows = col_rows[c];
    g.plan_col.assign(g.rows.size(), c);
    group_of[c] = static_cast<int>(groups.size());
    groups.push_back(std::move(g));
  }

  // Per task: the plans it may use, with cost and quality summed over the given rows: the
  // reference plan, then the concave hull of the cheaper plans of its front. A task with its
  // own front uses it; a small task chooses among its pool's plans (shrinkage).
  auto task_plans = [&](const std::vector<Front>& fronts, size_t c,
                        const std::vector<size_t>& rs) -> Front {
    Config ref = P.reference_config();
    P.evaluate(ref, rs);
    Front f;
    for (Config cfg : fronts[front_of[c]]) {
      if (front_of[c] != c) P.evaluate(cfg, rs);  // a pool's plan, on this task's rows
      if (cfg.cost < ref.cost - 1e-12 * (1.0 + ref.cost)) f.push_back(std::move(cfg));
    }
    std::sort(f.begin(), f.end(), [](const Config& x, const Config& y) {
      return x.cost < y.cost || (x.cost == y.cost && x.quality > y.quality);
    });
    Front nd;
    for (auto& x : f)
      if (nd.empty() || x.quality > nd.back().quality + 1e-12) nd.push_back(std::move(x));
    nd.push_back(ref);  // the path starts here, whatever its in-sample quality
    return concave_hull(nd);
  };

  // A group's allocation path on some rows: every task starts at the reference plan, then the
  // task whose next cheaper hull plan saves the most cost per quality lost steps down, one task
  // at a time (the Lagrangian sweep with ties broken task by task). Point j of the path is an
  // allocation; its in-sample cost ratio falls with j.
  struct Path {
    std::vector<size_t> cols;               // plan columns of the group
    std::vector<Front> plans;               // per col: hull, cost ascending
    std::vector<std::pair<size_t, size_t>> moves;  // (col slot, new plan index)
    std::vector<double> ratio;              // in-sample quality ratio after each point
    std::vector<double> cost;               // in-sample cost ratio after each point
    // Allocation (plan index per col slot) at path point j.
    std::vector<size_t> at(size_t j) const {
      std::vector<size_t> a(cols.size());
      for (size_t i = 0; i < cols.size(); ++i) a[i] = plans[i].size() - 1;
      for (size_t m = 0; m < j && m < moves.size(); ++m) a[moves[m].first] = moves[m].second;
      return a;
    }
    // The point for an in-sample cost-ratio level: the last point j still >= level, and the
    // share phi of the next move's task that takes its next plan so that the expected
    // in-sample cost ratio is the level itself (the randomised mixture of two adjacent plans).
    std::pair<size_t, double> point_for(double level) const {
      size_t j = 0;
      while (j + 1 < cost.size() && cost[j + 1] >= level - 1e-12) ++j;
      double phi = 0.0;
      if (j + 1 < cost.size() && cost[j] > level && cost[j] > cost[j + 1])
        phi = std::min(1.0, (cost[j] - level) / (cost[j] - cost[j + 1]));
      if (phi >= 1.0 - 1e-12) {
        ++j;
        phi = 0.0;
      }
      return {j, phi};
    }
  };
  // A column's plan at a path point: the allocation's config, and the mixture partner.
  struct Mixed {
    Config main, alt;
    double share = 0.0;
  };
  auto mixed_at = [&](const Path& path, std::pair<size_t, double> pt) {
    std::map<size_t, Mixed> out;
    auto alloc = path.at(pt.first);
    for (size_t i = 0; i < path.cols.size(); ++i) out[path.cols[i]].main = path.plans[i][alloc[i]];
    if (pt.second > 0 && pt.first < path.moves.size()) {
      const auto& mv = path.moves[pt.first];
      Mixed& m = out[path.cols[mv.first]];
      m.alt = path.plans[mv.first][mv.second];
      m.share = pt.second;
    }
    return out;
  };
  // Which rows take the mixture partner: a hash of the row (the engine hashes request ids).
  auto takes_alt = [&](size_t r, double share) {
    return share > 0 && static_cast<double>(splitmix64(o.seed ^ 0x6d6978ULL ^ (r * 0xbf58476d1ce4e5b9ULL)) >> 11) * 0x1.0p-53 < share;
  };
  auto make_path = [&](const std::vector<Front>& fronts, const Group& G,
                       const std::vector<uint8_t>* in_build) {
    Path path;
    std::map<size_t, std::vector<size_t>> rows_of;
    double qref = 0, cref = 0;
    for (size_t i = 0; i < G.rows.size(); ++i) {
      size_t r = G.rows[i];
      if (in_build && !(*in_build)[r]) continue;
      rows_of[G.plan_col[i]].push_back(r);
      qref += d.quality[r][P.ref];
      cref += d.cost[r][P.ref];
    }
    double Q = 0, Cs = 0;
    for (auto& [c, rs] : rows_of) {
      Front h = task_plans(fronts, c, rs);
      if (h.empty()) continue;
      path.cols.push_back(c);
      Q += h.back().quality;
      Cs += h.back().cost;
      path.plans.push_back(std::move(h));
    }
    if (qref <= 0) qref = 1;
    if (cref <= 0) cref = 1;
    std::vector<size_t> cur(path.cols.size());
    for (size_t i = 0; i < cur.size(); ++i) cur[i] = path.plans[i].size() - 1;
    path.ratio.push_back(Q / qref);
    path.cost.push_back(Cs / cref);
    for (;;) {
      int best = -1;
      double best_rate = -kInf;
      for (size_t i = 0; i < cur.size(); ++i) {
        if (cur[i] == 0) continue;
        const Config& a = path.plans[i][cur[i]];
        const Config& b = path.plans[i][cur[i] - 1];
        const double saving = a.cost - b.cost, loss = a.quality - b.quality;
        const double rate = loss <= 1e-12 ? kInf : saving / loss;
        if (rate > best_rate) {
          best_rate = rate;
          best = static_cast<int>(i);
        }
      }
      if (best < 0) break;
      const size_t i = static_cast<size_t>(best);
      Q -= path.plans[i][cur[i]].quality - path.plans[i][cur[i] - 1].quality;
      Cs -= path.plans[i][cur[i]].cost - path.plans[i][cur[i] - 1].cost;
      --cur[i];
      path.moves.push_back({i, cur[i]});
      path.ratio.push_back(Q / qref);
      path.cost.push_back(Cs / cref);
    }
    return path;
  };

  // The level sequence, safest first: position 0 is the reference tier alone, then the
  // in-sample cost ratio of the allocation falls from 1 in steps of 0.0025. The certificate
  // tests them in this order on cross-fitted rows.
  const double step = 0.0025;
  auto level_of = [&](size_t p) { return p == 0 ? -1.0 : 1.0 - step * double(p - 1); };
  const size_t S = 2 + static_cast<size_t>(1.0 / step);

  const size_t F = std::max<size_t>(2, o.qt_folds);
  std::vector<size_t> fold(d.rows(), 0);
  for (size_t r : rows) fold[r] = splitmix64(o.seed ^ (r * 0x9e3779b97f4a7c15ULL)) % F;
  std::vector<uint8_t> needed(C, 0);
  for (const auto& g : groups)
    for (size_t c : g.plan_col) needed[front_of[c]] = 1;
  // Per fold: fronts built on the other folds, and each group's path on them.
  std::vector<std::vector<Path>> fold_paths(F);
  for (size_t f = 0; f < F; ++f) {
    std::vector<Front> fronts(C);
    std::vector<uint8_t> in_build(d.rows(), 0);
    for (size_t r : rows) in_build[r] = fold[r] != f;
    for (size_t c = 0; c < C; ++c) {
      if (!needed[c]) continue;
      std::vector<size_t> build;
      for (size_t r : col_rows[c])
        if (in_build[r]) build.push_back(r);
      fronts[c] = P.build_front(build);
    }
    for (const auto& G : groups) fold_paths[f].push_back(make_path(fronts, G, &in_build));
  }

  // Fixed-sequence test per group: walk the positions from the safest, stop at the first
  // whose upper bound on the mean shortfall t * q_ref - q exceeds 0.
  QualityPlanning out;
  std::vector<size_t> chosen(groups.size(), 0);
  std::vector<double> chosen_bound(groups.size(), kInf);
  for (size_t g = 0; g < groups.size(); ++g) {
    const Group& G = groups[g];
    QualitySelection sel;
    sel.group = G.name;
    sel.target = G.target;
    sel.n = G.rows.size();
    sel.folds = F;
    double qref = 0, cref = 0;
    for (size_t r : G.rows) {
      qref += d.quality[r][P.ref];
      cref += d.cost[r][P.ref];
    }
    std::vector<double> L(G.rows.size()), q(G.rows.size()), cost(G.rows.size());
    std::vector<std::pair<size_t, double>> last_points(F, {static_cast<size_t>(-1), 0.0});
    size_t pick = 0;
    double pick_bound = kInf, pick_q = 0, pick_c = 0;
    size_t tested = 0;
    for (size_t p = 0; p < S; ++p) {
      // Allocation per fold at this position; skip positions that change nothing.
      std::vector<std::pair<size_t, double>> pts(F);
      for (size_t f = 0; f < F; ++f) {
        const Path& path = fold_paths[f][g];
        pts[f] = p == 0 ? std::pair<size_t, double>{static_cast<size_t>(-2), 0.0}
                        : path.point_for(level_of(p));
      }
      if (p > 1 && pts == last_points) continue;
      last_points = pts;
      ++tested;
      for (size_t f = 0; f < F; ++f) {
        const Path& path = fold_paths[f][g];
        std::map<size_t, Mixed> plan_of;
        if (p > 0) plan_of = mixed_at(path, pts[f]);
        for (size_t i = 0; i < G.rows.size(); ++i) {
          const size_t r = G.rows[i];
          if (fold[r] != f) continue;
          auto it = plan_of.find(G.plan_col[i]);
          Config cfg = P.reference_config();
          if (it != plan_of.end())
            cfg = takes_alt(r, it->second.share) ? it->second.alt : it->second.main;
          auto [a, c] = P.simulate(r, cfg);
          q[i] = d.quality[r][a];
          cost[i] = c;
        }
      }
      for (size_t i = 0; i < G.rows.size(); ++i)
        L[i] = G.target * d.quality[G.rows[i]][P.ref] - q[i];
      const double b = upper_bound(L, o.qt_epsilon, o.qt_bound, 1.0 + G.target);
      if (!(b <= 0)) {
        if (p == 0) pick_bound = b;
        break;
      }
      sel.certified = true;
      sel.passed = tested;
      pick = p;
      pick_bound = b;
      pick_q = std::accumulate(q.begin(), q.end(), 0.0);
      pick_c = std::accumulate(cost.begin(), cost.end(), 0.0);
    }
    sel.sequence = tested;
    chosen[g] = pick;
    chosen_bound[g] = pick_bound;
    sel.level = level_of(pick);
    sel.cv_quality_ratio = qref > 0 ? pick_q / qref : 0.0;
    sel.cv_cost_ratio = cref > 0 ? pick_c / cref : 0.0;
    const double n = static_cast<double>(std::max<size_t>(G.rows.size(), 1));
    sel.ratio_lower_bound = qref > 0 ? G.target - pick_bound * n / qref : 0.0;
    out.selections.push_back(sel);
  }

  // Final plans: fronts and paths on every row; each group at its chosen level. A pool column
  // (the plan for tasks never calibrated) takes the cheapest plan of its own front whose
  // in-sample ratio reaches its group's level.
  std::vector<Front> fronts(C);
  for (size_t c = 0; c < C; ++c)
    if (front_of[c] == c) fronts[c] = P.build_front(col_rows[c]);
  std::vector<Mixed> final_cfg(C);
  for (auto& m : final_cfg) m.main = P.reference_config();
  std::vector<uint8_t> assigned(C, 0);
  for (size_t g = 0; g < groups.size(); ++g) {
    if (chosen[g] == 0) continue;
    Path path = make_path(fronts, groups[g], nullptr);
    for (auto& [c, m] : mixed_at(path, path.point_for(level_of(chosen[g])))) {
      final_cfg[c] = m;
      assigned[c] = 1;
    }
  }
  for (size_t c = 0; c < C; ++c) {
    const size_t g = static_cast<size_t>(group_of[c]);
    if (assigned[c] || chosen[g] == 0 || col_rows[c].empty()) continue;
    Front h = task_plans(fronts, c, col_rows[c]);
    if (h.empty()) continue;
    size_t j = h.size() - 1;
    const double level = level_of(chosen[g]), cref = h.back().cost > 0 ? h.back().cost : 1.0;
    while (j > 0 && h[j - 1].cost / cref >= level - 1e-12) --j;
    final_cfg[c].main = h[j];
  }
  for (size_t c = 0; c < C; ++c) {
    const size_t g = static_cast<size_t>(group_of[c]);
    const Config& cfg = final_cfg[c].main;
    QualityPlan plan;
    plan.task = columns[c];
    plan.start_tier = cfg.start;
    plan.delta = cfg.delta;
    for (size_t k = 0; k < static_cast<size_t>(cfg.start); ++k) plan.delta[k] = -kInf;
    plan.delta[K - 1] = kInf;
    plan.skip_tau = P.taus[cfg.tau];
    plan.mix_share = final_cfg[c].share;
    if (plan.mix_share > 0) {
      const Config& alt = final_cfg[c].alt;
      plan.mix_start_tier = alt.start;
      plan.mix_delta = alt.delta;
      for (size_t k = 0; k < static_cast<size_t>(alt.start); ++k) plan.mix_delta[k] = -kInf;
      plan.mix_delta[K - 1] = kInf;
      plan.mix_skip_tau = P.taus[alt.tau];
    }
    plan.level = level_of(chosen[g]);
    plan.source = columns[front_of[c]];
    double q = 0, cost = 0, rq = 0, rc = 0;
    for (size_t r : col_rows[c]) {
      auto [a, rcost] = P.simulate(r, takes_alt(r, final_cfg[c].share) ? final_cfg[c].alt : cfg);
      q += d.quality[r][a];
      cost += rcost;
      rq += d.quality[r][P.ref];
      rc += d.cost[r][P.ref];
    }
    const double n = col_rows[c].empty() ? 1.0 : static_cast<double>(col_rows[c].size());
    plan.expected_cost = cost / n;
    plan.quality = q / n;
    plan.reference_quality = rq / n;
    plan.reference_cost = rc / n;
    plan.target = groups[g].target * plan.reference_quality;
    plan.certified = out.selections[g].certified;
    plan.bound = chosen_bound[g];
    plan.n_build = col_rows[front_of[c]].size();
    plan.n_test = groups[g].rows.size();
    out.plans.push_back(std::move(plan));
  }
  return out;
}

}  // namespace routenlp::detail
