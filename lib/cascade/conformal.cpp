// Conformal calibration: exact ranks, the four single-cell formulations, sequential cascade
// calibration with hierarchical fallback, quality-target mode with Pareto Testing, JSON I/O.
// Formulas: docs/conformal.md (after the project's conformal reference).
#include "routenlp/conformal.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "cascade/quality_plan.hpp"
#include "common/atomic_file.hpp"
#include "common/hash.hpp"
#include "common/text_io.hpp"
#include "routenlp/error.hpp"
#include "routenlp/portfolio.hpp"
#include "routenlp/version.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Bounds a curve's grid: a hostile file's step of 1e-300 must not allocate without limit.
constexpr double kMaxCurvePoints = 100000;

void check_alpha(double alpha, const char* where) {
  if (!(alpha > 0.0 && alpha < 1.0))
    throw Error(Status::invalid_argument,
                std::string(where) + ": alpha must be in (0,1), got " + std::to_string(alpha));
}

// Sorted (u, bad) pairs; NaN u is an error.
struct Sorted {
  std::vector<double> u;
  std::vector<uint32_t> cum_bad;  // cum_bad[i] = #bad among the first i rows
  size_t n_bad = 0;
};

Sorted sort_rows(const std::vector<double>& u, const std::vector<uint8_t>& bad) {
  if (u.size() != bad.size())
    throw Error(Status::invalid_argument, "calibration: u and bad have different lengths");
  std::vector<size_t> idx(u.size());
  std::iota(idx.begin(), idx.end(), 0);
  for (size_t i = 0; i < u.size(); ++i)
    if (std::isnan(u[i]))
      throw Error(Status::invalid_argument,
                  "calibration: u[" + std::to_string(i) + "] is NaN");
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return u[a] < u[b]; });
  Sorted s;
  s.u.resize(u.size());
  s.cum_bad.assign(u.size() + 1, 0);
  for (size_t i = 0; i < idx.size(); ++i) {
    s.u[i] = u[idx[i]];
    s.cum_bad[i + 1] = s.cum_bad[i] + (bad[idx[i]] ? 1u : 0u);
  }
  s.n_bad = s.cum_bad.back();
  return s;
}

// Rows accepted at delta (u <= delta) and bad among them.
std::pair<size_t, size_t> counts_at(const Sorted& s, double delta) {
  size_t a = static_cast<size_t>(std::upper_bound(s.u.begin(), s.u.end(), delta) - s.u.begin());
  return {a, s.cum_bad[a]};
}

CellFit finish(const Sorted& s, double delta, bool certified) {
  CellFit f;
  f.delta = delta;
  f.certified = certified;
  f.n = s.u.size();
  f.n_bad = s.n_bad;
  auto c = counts_at(s, delta);
  f.accepted = c.first;
  f.accepted_bad = c.second;
  return f;
}

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json num(double x) {
  if (std::isnan(x)) return nullptr;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double from_num(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return kNaN;
  if (j.is_string()) {
    auto s = j.get<std::string>();
    if (s == "inf") return kInf;
    if (s == "-inf") return -kInf;
  }
  if (!j.is_number()) throw Error(Status::parse, where + ": expected a number");
  return j.get<double>();
}

size_t min_rows_to_certify(double alpha, double eps) {
  return static_cast<size_t>(std::ceil(std::log(eps) / std::log1p(-alpha) - 1e-9));
}
}  // namespace

// ---- exact ranks ------------------------------------------------------------------------------

Rational decimal_rational(double x) {
  if (!std::isfinite(x) || std::fabs(x) > 1e6)
    throw Error(Status::invalid_argument, "decimal_rational: value out of range");
  double den = 1.0;
  int64_t iden = 1;
  for (int d = 0; d <= 15; ++d) {
    double num = std::nearbyint(x * den);
    if (num / den == x) return {static_cast<int64_t>(num), iden};
    den *= 10.0;
    iden *= 10;
  }
  // Not a short decimal: the double's value to 15 digits (within 1e-15).
  return {static_cast<int64_t>(std::nearbyint(x * 1e15)), iden / 10};
}

int64_t conformal_upper_rank(int64_t n, double alpha) {
  check_alpha(alpha, "conformal_upper_rank");
  if (n < 0) throw Error(Status::invalid_argument, "conformal_upper_rank: n < 0");
  Rational r = decimal_rational(alpha);
  __int128 a = static_cast<__int128>(n + 1) * (r.den - r.num);
  return static_cast<int64_t>((a + r.den - 1) / r.den);
}

int64_t conformal_lower_rank(int64_t n, double alpha) {
  check_alpha(alpha, "conformal_lower_rank");
  if (n < 0) throw Error(Status::invalid_argument, "conformal_lower_rank: n < 0");
  Rational r = decimal_rational(alpha);
  return static_cast<int64_t>(static_cast<__int128>(n + 1) * r.num / r.den);
}

int64_t crc_m(int64_t n, double alpha) { return conformal_lower_rank(n, alpha) - 1; }

double binom_cdf(int64_t k, int64_t n, double p) {
  if (n < 0 || std::isnan(p) || p < 0 || p > 1)
    throw Error(Status::invalid_argument, "binom_cdf: need n >= 0 and p in [0,1]");
  if (k < 0) return 0.0;
  if (k >= n) return 1.0;
  if (p == 0.0) return 1.0;
  if (p == 1.0) return 0.0;
  auto log_term = [&](int64_t i) {
    return std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(double(n - i) + 1.0) +
           i * std::log(p) + double(n - i) * std::log1p(-p);
  };
  const double q = 1.0 - p;
  if (static_cast<double>(k) < n * p) {
    // Lower tail: terms shrink going down from k.
    double sum = 1.0, t = 1.0;
    for (int64_t i = k; i >= 1; --i) {
      t *= static_cast<double>(i) / static_cast<double>(n - i + 1) * (q / p);
      sum += t;
      if (t < 1e-17 * sum) break;
    }
    return std::min(1.0, std::exp(log_term(k) + std::log(sum)));
  }
  // Upper tail from k+1: terms shrink going up.
  double sum = 1.0, t = 1.0;
  for (int64_t j = k + 1; j < n; ++j) {
    t *= static_cast<double>(n - j) / static_cast<double>(j + 1) * (p / q);
    sum += t;
    if (t < 1e-17 * sum) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_term(k + 1) + std::log(sum)));
}

double strict_to_le(double s) { return std::nextafter(s, -kInf); }

const char* method_name(CalibrationMethod m) noexcept {
  switch (m) {
    case CalibrationMethod::ltt: return "ltt";
    case CalibrationMethod::crc: return "crc";
    case CalibrationMethod::split_conformal: return "split_conformal";
    case CalibrationMethod::pvalue_bad: return "pvalue_bad";
  }
  return "?";
}

CalibrationMethod parse_method(const std::string& name) {
  for (auto m : {CalibrationMethod::ltt, CalibrationMethod::crc,
                 CalibrationMethod::split_conformal, CalibrationMethod::pvalue_bad})
    if (name == method_name(m)) return m;
  throw Error(Status::invalid_argument,
              "unknown calibration method '" + name +
                  "' (expected ltt, crc, split_conformal or pvalue_bad)");
}

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

static CellStatus parse_cell_status(const std::string& s, const std::string& where) {
  for (auto c : {CellStatus::certified, CellStatus::pooled, CellStatus::escalate_all,
                 CellStatus::too_small, CellStatus::final_tier, CellStatus::uncertified})
    if (s == cell_status_name(c)) return c;
  throw Error(Status::parse, where + ": unknown cell status '" + s + "'");
}

// ---- single-cell fits ---------------------------------------------------------------------

// The fits work on sorted rows so that a curve (one cell, many alphas) sorts once.
static CellFit split_conformal_sorted(const Sorted& s, double alpha) {
  check_alpha(alpha, "split_conformal_fit");
  std::vector<double> good;
  for (size_t i = 0; i < s.u.size(); ++i)
    if (s.cum_bad[i + 1] == s.cum_bad[i]) good.push_back(s.u[i]);
  int64_t ng = static_cast<int64_t>(good.size());
  int64_t k = conformal_upper_rank(ng, alpha);
  double delta = k > ng ? kInf : good[static_cast<size_t>(k - 1)];
  return finish(s, delta, true);
}

CellFit split_conformal_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                            double alpha) {
  check_alpha(alpha, "split_conformal_fit");
  return split_conformal_sorted(sort_rows(u, bad), alpha);
}

static std::vector<double> bad_scores(const Sorted& s) {
  std::vector<double> b;
  for (size_t i = 0; i < s.u.size(); ++i)
    if (s.cum_bad[i + 1] != s.cum_bad[i]) b.push_back(s.u[i]);
  return b;
}

static CellFit pvalue_bad_sorted(const Sorted& s, double alpha) {
  check_alpha(alpha, "pvalue_bad_fit");
  auto b = bad_scores(s);
  int64_t j = conformal_lower_rank(static_cast<int64_t>(b.size()), alpha);
  if (j == 0) return finish(s, -kInf, false);
  return finish(s, strict_to_le(b[static_cast<size_t>(j - 1)]), true);
}

CellFit pvalue_bad_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                       double alpha) {
  check_alpha(alpha, "pvalue_bad_fit");
  return pvalue_bad_sorted(sort_rows(u, bad), alpha);
}

static CellFit crc_sorted(const Sorted& s, double alpha) {
  check_alpha(alpha, "crc_fit");
  auto b = bad_scores(s);
  int64_t m = crc_m(static_cast<int64_t>(s.u.size()), alpha);
  if (m < 0) return finish(s, -kInf, false);
  if (static_cast<int64_t>(b.size()) <= m) return finish(s, kInf, true);
  return finish(s, strict_to_le(b[static_cast<size_t>(m)]), true);
}

CellFit crc_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad, double alpha) {
  check_alpha(alpha, "crc_fit");
  return crc_sorted(sort_rows(u, bad), alpha);
}

CellFit plugin_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad, double alpha) {
  check_alpha(alpha, "plugin_fit");
  Sorted s = sort_rows(u, bad);
  double best = -kInf;
  for (size_t i = 0; i < s.u.size(); ++i) {
    if (i + 1 < s.u.size() && s.u[i + 1] == s.u[i]) continue;  // end of a tie group
    double a = static_cast<double>(i + 1), k = s.cum_bad[i + 1];
    if (k <= alpha * a) best = s.u[i];
  }
  return finish(s, best, best > -kInf);
}

// LTT's grid points, strict to lax, with the rows each accepts and the bad among them. They do
// not depend on alpha, so a curve (one cell, many alphas) builds them once.
struct LttPoint {
  double g;
  size_t accepted, bad;
};

static std::vector<LttPoint> ltt_points(const Sorted& s, const LttOptions& o,
                                        std::vector<double> grid_src) {
  if (!(o.grid_step > 0 && o.grid_step <= 0.5))
    throw Error(Status::invalid_argument, "ltt_fit: grid_step must be in (0, 0.5]");
  std::vector<LttPoint> pts;
  const size_t n = s.u.size();
  if (n == 0) return pts;
  if (grid_src.empty()) {
    grid_src = s.u;
  } else {
    for (double g : grid_src)
      if (std::isnan(g)) throw Error(Status::invalid_argument, "ltt_fit: NaN in grid sample");
    std::sort(grid_src.begin(), grid_src.end());
  }
  const size_t m = grid_src.size();
  const size_t steps = static_cast<size_t>(std::llround(1.0 / o.grid_step));
  const double need = std::min(o.min_expected_accepted, static_cast<double>(n));
  for (size_t j = 1; j <= steps; ++j) {
    if (static_cast<double>(j) * static_cast<double>(n) < need * static_cast<double>(steps))
      continue;  // expected accepted count below the start
    size_t rank = (j * m + steps - 1) / steps;  // ceil(j m / steps), exact
    double g = grid_src[std::max<size_t>(rank, 1) - 1];
    auto c = counts_at(s, g);
    pts.push_back({g, c.first, c.second});
  }
  return pts;
}

// The fixed-sequence test over the points at this alpha: stop at the first p > epsilon.
static CellFit ltt_walk(const Sorted& s, const std::vector<LttPoint>& pts, double alpha,
                        double epsilon) {
  CellFit best = finish(s, -kInf, false);
  double first_fail_p = 1.0;
  for (const auto& pt : pts) {
    double p = pt.accepted == 0 ? 1.0
                                : binom_cdf(static_cast<int64_t>(pt.bad),
                                            static_cast<int64_t>(pt.accepted), alpha);
    if (p > epsilon) {
      first_fail_p = p;
      break;
    }
    best = finish(s, pt.g, true);
    best.p_value = p;
  }
  if (!best.certified) best.p_value = first_fail_p;
  return best;
}

static CellFit ltt_sorted(const Sorted& s, const LttOptions& o, std::vector<double> grid_src) {
  check_alpha(o.alpha, "ltt_fit");
  if (!(o.epsilon > 0 && o.epsilon < 1))
    throw Error(Status::invalid_argument, "ltt_fit: epsilon must be in (0,1)");
  return ltt_walk(s, ltt_points(s, o, std::move(grid_src)), o.alpha, o.epsilon);
}

CellFit ltt_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                const LttOptions& options, const std::vector<double>& grid_source) {
  return ltt_sorted(sort_rows(u, bad), options, grid_source);
}

CellFit ltt_single_test(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                        double delta, double alpha, double epsilon) {
  check_alpha(alpha, "ltt_single_test");
  Sorted s = sort_rows(u, bad);
  CellFit f = finish(s, delta, false);
  f.p_value = f.accepted == 0 ? 1.0
                              : binom_cdf(static_cast<int64_t>(f.accepted_bad),
                                          static_cast<int64_t>(f.accepted), alpha);
  f.certified = f.p_value <= epsilon;
  return f;
}

double routellm_budget_threshold(std::vector<double> scores, double strong_pct) {
  if (scores.empty()) throw Error(Status::invalid_argument, "routellm_budget_threshold: no scores");
  if (!(strong_pct >= 0 && strong_pct <= 1))
    throw Error(Status::invalid_argument, "routellm_budget_threshold: strong_pct not in [0,1]");
  std::sort(scores.begin(), scores.end());
  double pos = (1.0 - strong_pct) * static_cast<double>(scores.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  if (lo + 1 >= scores.size()) return scores.back();
  double frac = pos - static_cast<double>(lo);
  return scores[lo] + frac * (scores[lo + 1] - scores[lo]);
}

double conformal_budget_threshold(std::vector<double> scores, double strong_pct) {
  if (scores.empty())
    throw Error(Status::invalid_argument, "conformal_budget_threshold: no scores");
  std::sort(scores.begin(), scores.end());
  int64_t k = conformal_upper_rank(static_cast<int64_t>(scores.size()), strong_pct);
  if (k > static_cast<int64_t>(scores.size())) return kInf;
  return scores[static_cast<size_t>(k - 1)];
}

// ---- data -------------------------------------------------------------------------------------

std::string task_domain(const std::string& task) {
  auto p = task.find('/');
  return p == std::string::npos ? std::string() : task.substr(0, p);
}

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

// ---- threshold table --------------------------------------------------------------------------

ThresholdTable ThresholdTable::escalate_all(std::vector<std::string> tier_names, double alpha) {
  ThresholdTable t;
  t.reset_shape(std::move(tier_names), {"*"}, {alpha}, 0);
  return t;
}

void ThresholdTable::reset_shape(std::vector<std::string> tier_names,
                                 std::vector<std::string> column_names,
                                 std::vector<double> alpha_values, size_t base) {
  tiers = std::move(tier_names);
  columns = std::move(column_names);
  alphas = std::move(alpha_values);
  base_alpha = base;
  delta.assign(alphas.size() * tiers.size() * columns.size(), -kInf);
  for (size_t a = 0; a < alphas.size(); ++a)
    for (size_t c = 0; c < columns.size() && !tiers.empty(); ++c)
      at(a, tiers.size() - 1, c) = kInf;
  start_tier.assign(columns.size(), 0);
  expected_cost.assign(tiers.size(), kNaN);
  skip_tau.assign(columns.size(), 0.0);
  u_before_call.assign(tiers.size(), 0);
  mix_column.assign(columns.size(), -1);
  mix_share.assign(columns.size(), 0.0);
  column_index.clear();
  for (size_t c = 0; c < columns.size(); ++c) column_index[columns[c]] = static_cast<int>(c);
}

int ThresholdTable::column_for_request(const std::string& task,
                                       const std::string& request_id) const {
  return mixed_column(column_for(task), request_id);
}

int ThresholdTable::mixed_column(int c, const std::string& request_id) const {
  if (c < 0 || static_cast<size_t>(c) >= mix_share.size()) return c;
  const double share = mix_share[static_cast<size_t>(c)];
  if (!(share > 0)) return c;
  const double x = static_cast<double>(detail::hash_id(request_id, 0x6d6978) >> 11) * 0x1.0p-53;
  return x < share ? mix_column[static_cast<size_t>(c)] : c;
}

int ThresholdTable::column_for(const std::string& task) const {
  auto it = column_index.find(task);
  if (it != column_index.end()) return it->second;
  auto d = task_domain(task);
  if (!d.empty()) {
    it = column_index.find(d + "/*");
    if (it != column_index.end()) return it->second;
  }
  it = column_index.find("*");
  return it == column_index.end() ? -1 : it->second;
}

size_t ThresholdTable::alpha_index(double alpha) const {
  if (std::isnan(alpha)) return base_alpha;
  size_t best = npos;
  for (size_t a = 0; a < alphas.size(); ++a)
    if (alphas[a] <= alpha + 1e-12) best = a;
  return best;
}

double ThresholdTable::lookup(size_t tier, const std::string& task, double alpha) const {
  if (tier >= tiers.size()) throw Error(Status::invalid_argument, "threshold lookup: bad tier");
  if (tier + 1 == tiers.size()) return kInf;
  int c = column_for(task);
  size_t a = alpha_index(alpha);
  if (c < 0 || a == npos) return -kInf;
  return at(a, tier, static_cast<size_t>(c));
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
          options_.curve_max_alpha / options_.curve_step <= kMaxCurvePoints))
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
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& t : d.tiers) h = fnv1a(h, t.data(), t.size() + 1);
  for (size_t r = 0; r < d.rows(); ++r) {
    h = fnv1a(h, d.tasks[r].data(), d.tasks[r].size() + 1);
    for (size_t k = 0; k < K; ++k) {
      h = fnv1a(h, &d.u[r][k], sizeof(double));
      h = fnv1a(h, &d.bad[r][k], 1);
      if (!d.quality.empty()) h = fnv1a(h, &d.quality[r][k], sizeof(double));
      if (!d.cost.empty()) h = fnv1a(h, &d.cost[r][k], sizeof(double));
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  res.provenance.data_hash = hex;
  res.provenance.n = d.rows();
  res.provenance.alpha = o.alpha;
  res.provenance.epsilon = o.epsilon;
  res.provenance.method = method_name(o.method);
  res.provenance.goal = o.goal == CalibrationGoal::guarantee ? "guarantee" : "quality_target";
  res.provenance.created_utc = utc_now();
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

// ---- JSON -------------------------------------------------------------------------------------

std::string ConformalCalibrator::to_json() const {
  using nlohmann::json;
  const auto& r = result();
  const ThresholdTable& t = *r.table;
  json j;
  j["format"] = "routenlp-calibration";
  // 2: adds "curves" (and options.curve_step / curve_max_alpha); version 1 files still load.
  j["format_version"] = 2;
  j["provenance"] = {{"data_hash", r.provenance.data_hash},
                     {"n", r.provenance.n},
                     {"alpha", r.provenance.alpha},
                     {"epsilon", r.provenance.epsilon},
                     {"method", r.provenance.method},
                     {"goal", r.provenance.goal},
                     {"created_utc", r.provenance.created_utc},
                     {"library_version", r.provenance.library_version}};
  json opt = {{"method", method_name(options_.method)},
              {"alpha", options_.alpha},
              {"epsilon", options_.epsilon},
              {"extra_alphas", options_.extra_alphas},
              {"cell_floor", options_.cell_floor},
              {"grid_step", options_.grid_step},
              {"min_expected_accepted", options_.min_expected_accepted},
              {"sequential", options_.sequential},
              {"goal", r.provenance.goal},
              {"quality_target", options_.quality_target},
              {"reference_tier", options_.reference_tier},
              {"allocation", allocation_name(options_.allocation)},
              {"qt_bound", bound_name(options_.qt_bound)},
              {"qt_epsilon", options_.qt_epsilon},
              {"qt_folds", options_.qt_folds},
              {"qt_task_floor", options_.qt_task_floor},
              {"qt_levels", options_.qt_levels},
              {"skip_tau", options_.skip_tau},
              {"skip_taus", options_.skip_taus},
              {"seed", options_.seed},
              {"curve_step", options_.curve_step},
              {"curve_max_alpha", options_.curve_max_alpha}};
  json tq = json::object();
  for (const auto& kv : options_.task_quality_targets) tq[kv.first] = kv.second;
  opt["task_quality_targets"] = tq;
  j["options"] = opt;
  json delta = json::array();
  for (double x : t.delta) delta.push_back(num(x));
  json ec = json::array();
  for (double x : t.expected_cost) ec.push_back(num(x));
  j["table"] = {{"tiers", t.tiers},           {"columns", t.columns},
                {"alphas", t.alphas},         {"base_alpha", t.base_alpha},
                {"delta", delta},             {"start_tier", t.start_tier},
                {"expected_cost", ec},        {"skip_tau", t.skip_tau},
                {"u_before_call", t.u_before_call},
                {"mix_column", t.mix_column}, {"mix_share", t.mix_share}};
  json cells = json::array();
  for (const auto& c : r.cells)
    cells.push_back({{"tier", c.tier},
                     {"task", c.task},
                     {"status", cell_status_name(c.status)},
                     {"guarantee", c.status == CellStatus::pooled ? "pooled"
                                   : c.status == CellStatus::certified ? "cell"
                                                                        : "none"},
                     {"source", c.source},
                     {"n", c.n},
                     {"n_bad", c.n_bad},
                     {"accepted", c.accepted},
                     {"accepted_bad", c.accepted_bad},
                     {"delta", num(c.delta)},
                     {"p_value", num(c.p_value)},
                     {"alpha", c.alpha}});
  j["cells"] = cells;
  json plans = json::array();
  for (const auto& p : r.plans) {
    json pd = json::array();
    for (double x : p.delta) pd.push_back(num(x));
    plans.push_back({{"task", p.task},
                     {"start_tier", p.start_tier},
                     {"delta", pd},
                     {"skip_tau", p.skip_tau},
                     {"mix_share", p.mix_share},
                     {"mix_start_tier", p.mix_start_tier},
                     {"mix_delta", [&] {
                        json md = json::array();
                        for (double x : p.mix_delta) md.push_back(num(x));
                        return md;
                      }()},
                     {"mix_skip_tau", p.mix_skip_tau},
                     {"level", num(p.level)},
                     {"source", p.source},
                     {"expected_cost", p.expected_cost},
                     {"quality", p.quality},
                     {"reference_quality", p.reference_quality},
                     {"reference_cost", p.reference_cost},
                     {"target", p.target},
                     {"certified", p.certified},
                     {"bound", num(p.bound)},
                     {"n_build", p.n_build},
                     {"n_test", p.n_test}});
  }
  j["plans"] = plans;
  json sels = json::array();
  for (const auto& q : r.selections)
    sels.push_back({{"group", q.group},
                    {"target", q.target},
                    {"level", num(q.level)},
                    {"certified", q.certified},
                    {"n", q.n},
                    {"folds", q.folds},
                    {"sequence", q.sequence},
                    {"passed", q.passed},
                    {"cv_quality_ratio", q.cv_quality_ratio},
                    {"cv_cost_ratio", q.cv_cost_ratio},
                    {"ratio_lower_bound", num(q.ratio_lower_bound)}});
  j["selections"] = sels;
  if (!r.curves.empty()) {
    // One array per cell; a trailing run of equal values is left out (the curve keeps its last
    // value above its grid, so the loaded curve is the same).
    json cc = json::array();
    for (const auto& c : r.curves) {
      const auto& v = c.curve.delta;
      size_t len = v.size();
      while (len > 1 && v[len - 1] == v[len - 2]) --len;
      json dv = json::array();
      for (size_t i = 0; i < len; ++i) dv.push_back(num(v[i]));
      cc.push_back({{"tier", c.tier}, {"column", c.column}, {"source", c.source}, {"delta", dv}});
    }
    // Every curve shares one grid (calibrate() builds them so).
    const auto& first = r.curves.front().curve;
    j["curves"] = {{"step", first.step},
                   {"max_alpha", first.step * static_cast<double>(first.delta.size())},
                   {"cells", cc}};
  }
  return j.dump(1);
}

ConformalCalibrator ConformalCalibrator::from_json(const std::string& text,
                                                   const std::string& source) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Status::parse, source + ": not valid JSON: " + e.what());
  }
  auto need = [&](const json& obj, const char* key, const std::string& where) -> const json& {
    if (!obj.is_object() || !obj.contains(key))
      throw Error(Status::parse, source + ": " + where + ": missing field '" + key + "'");
    return obj.at(key);
  };
  try {
    if (need(j, "format", "top level") != "routenlp-calibration")
      throw Error(Status::parse, source + ": format: not a routenlp calibration file");
    const int version = need(j, "format_version", "top level").get<int>();
    if (version < 1 || version > 2)
      throw Error(Status::parse, source + ": format_version: unsupported (" +
                                     std::to_string(version) + "; this library reads 1 and 2)");
    const json& o = need(j, "options", "top level");
    CalibrationOptions opt;
    opt.method = parse_method(need(o, "method", "options").get<std::string>());
    opt.alpha = need(o, "alpha", "options").get<double>();
    opt.epsilon = need(o, "epsilon", "options").get<double>();
    opt.extra_alphas = o.value("extra_alphas", std::vector<double>{});
    opt.cell_floor = o.value("cell_floor", opt.cell_floor);
    opt.grid_step = o.value("grid_step", opt.grid_step);
    opt.min_expected_accepted = o.value("min_expected_accepted", opt.min_expected_accepted);
    opt.sequential = o.value("sequential", true);
    opt.goal = o.value("goal", std::string("guarantee")) == "quality_target"
                   ? CalibrationGoal::quality_target
                   : CalibrationGoal::guarantee;
    opt.quality_target = o.value("quality_target", opt.quality_target);
    opt.reference_tier = o.value("reference_tier", -1);
    opt.allocation = parse_allocation(o.value("allocation", std::string("global")));
    opt.qt_bound = parse_bound(o.value("qt_bound", std::string("normal")));
    opt.qt_epsilon = o.value("qt_epsilon", opt.qt_epsilon);
    opt.qt_folds = o.value("qt_folds", opt.qt_folds);
    opt.qt_task_floor = o.value("qt_task_floor", opt.qt_task_floor);
    opt.qt_levels = o.value("qt_levels", opt.qt_levels);
    opt.skip_tau = o.value("skip_tau", opt.skip_tau);
    opt.skip_taus = o.value("skip_taus", opt.skip_taus);
    opt.seed = o.value("seed", opt.seed);
    opt.curve_step = o.value("curve_step", opt.curve_step);
    opt.curve_max_alpha = o.value("curve_max_alpha", opt.curve_max_alpha);
    if (o.contains("task_quality_targets"))
      for (auto& kv : o.at("task_quality_targets").items())
        opt.task_quality_targets[kv.key()] = kv.value().get<double>();
    ConformalCalibrator cal(opt);
    CalibrationResult res;
    const json& p = need(j, "provenance", "top level");
    res.provenance.data_hash = need(p, "data_hash", "provenance").get<std::string>();
    res.provenance.n = need(p, "n", "provenance").get<size_t>();
    res.provenance.alpha = need(p, "alpha", "provenance").get<double>();
    res.provenance.epsilon = need(p, "epsilon", "provenance").get<double>();
    res.provenance.method = need(p, "method", "provenance").get<std::string>();
    res.provenance.goal = p.value("goal", std::string("guarantee"));
    res.provenance.created_utc = p.value("created_utc", std::string());
    res.provenance.library_version = p.value("library_version", std::string());
    const json& t = need(j, "table", "top level");
    auto table = std::make_shared<ThresholdTable>();
    auto alphas = need(t, "alphas", "table").get<std::vector<double>>();
    size_t base = need(t, "base_alpha", "table").get<size_t>();
    table->reset_shape(need(t, "tiers", "table").get<std::vector<std::string>>(),
                       need(t, "columns", "table").get<std::vector<std::string>>(), alphas, base);
    if (table->tiers.empty() || table->columns.empty() || alphas.empty() || base >= alphas.size())
      throw Error(Status::parse, source + ": table: empty tiers/columns/alphas or bad base_alpha");
    const json& dl = need(t, "delta", "table");
    if (!dl.is_array() || dl.size() != table->delta.size())
      throw Error(Status::parse, source + ": table.delta: expected " +
                                     std::to_string(table->delta.size()) + " values");
    for (size_t i = 0; i < dl.size(); ++i)
      table->delta[i] = from_num(dl[i], source + ": table.delta[" + std::to_string(i) + "]");
    for (double& x : table->delta)
      if (std::isnan(x)) throw Error(Status::parse, source + ": table.delta: null value");
    auto st = t.value("start_tier", std::vector<int>(table->columns.size(), 0));
    if (st.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.start_tier: wrong length");
    for (int s : st)
      if (s < 0 || s >= static_cast<int>(table->tiers.size()))
        throw Error(Status::parse, source + ": table.start_tier: out of range");
    table->start_tier = st;
    if (t.contains("expected_cost")) {
      const json& ec = t.at("expected_cost");
      if (!ec.is_array() || ec.size() != table->tiers.size())
        throw Error(Status::parse, source + ": table.expected_cost: wrong length");
      for (size_t i = 0; i < ec.size(); ++i)
        table->expected_cost[i] = from_num(ec[i], source + ": table.expected_cost");
    }
    auto tau = t.value("skip_tau", std::vector<double>(table->columns.size(), 0.0));
    if (tau.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.skip_tau: wrong length");
    for (double x : tau)
      if (!(x >= 0 && x < 1)) throw Error(Status::parse, source + ": table.skip_tau: out of [0,1)");
    table->skip_tau = tau;
    auto ubc = t.value("u_before_call", std::vector<int>(table->tiers.size(), 0));
    if (ubc.size() != table->tiers.size())
      throw Error(Status::parse, source + ": table.u_before_call: wrong length");
    for (size_t k = 0; k < ubc.size(); ++k) table->u_before_call[k] = ubc[k] != 0;
    auto mc = t.value("mix_column", std::vector<int>(table->columns.size(), -1));
    auto ms = t.value("mix_share", std::vector<double>(table->columns.size(), 0.0));
    if (mc.size() != table->columns.size() || ms.size() != table->columns.size())
      throw Error(Status::parse, source + ": table.mix_column/mix_share: wrong length");
    for (size_t c = 0; c < mc.size(); ++c) {
      if (mc[c] < -1 || mc[c] >= static_cast<int>(mc.size()) || mc[c] == static_cast<int>(c))
        throw Error(Status::parse, source + ": table.mix_column[" + std::to_string(c) +
                                       "]: not a column index");
      if (!(ms[c] >= 0 && ms[c] < 1) || (ms[c] > 0 && mc[c] < 0))
        throw Error(Status::parse, source + ": table.mix_share[" + std::to_string(c) +
                                       "]: must be in [0,1) with a mix_column");
    }
    table->mix_column = mc;
    table->mix_share = ms;
    for (const auto& c : need(j, "cells", "top level")) {
      CellReport cr;
      cr.tier = need(c, "tier", "cells[]").get<int>();
      cr.task = need(c, "task", "cells[]").get<std::string>();
      cr.status = parse_cell_status(need(c, "status", "cells[]").get<std::string>(),
                                    source + ": cells[].status");
      cr.source = c.value("source", cr.task);
      cr.n = c.value("n", size_t{0});
      cr.n_bad = c.value("n_bad", size_t{0});
      cr.accepted = c.value("accepted", size_t{0});
      cr.accepted_bad = c.value("accepted_bad", size_t{0});
      cr.delta = from_num(need(c, "delta", "cells[]"), source + ": cells[].delta");
      cr.p_value = c.contains("p_value") ? from_num(c.at("p_value"), source) : 1.0;
      cr.alpha = c.value("alpha", opt.alpha);
      res.cells.push_back(cr);
    }
    if (j.contains("plans"))
      for (const auto& pj : j.at("plans")) {
        QualityPlan qp;
        qp.task = need(pj, "task", "plans[]").get<std::string>();
        qp.start_tier = pj.value("start_tier", 0);
        for (const auto& x : need(pj, "delta", "plans[]")) qp.delta.push_back(from_num(x, source));
        qp.skip_tau = pj.value("skip_tau", 0.0);
        qp.mix_share = pj.value("mix_share", 0.0);
        qp.mix_start_tier = pj.value("mix_start_tier", 0);
        if (pj.contains("mix_delta"))
          for (const auto& x : pj.at("mix_delta")) qp.mix_delta.push_back(from_num(x, source));
        qp.mix_skip_tau = pj.value("mix_skip_tau", 0.0);
        qp.level = pj.contains("level") ? from_num(pj.at("level"), source) : 0.0;
        qp.source = pj.value("source", qp.task);
        qp.expected_cost = pj.value("expected_cost", 0.0);
        qp.quality = pj.value("quality", 0.0);
        qp.reference_quality = pj.value("reference_quality", 0.0);
        qp.reference_cost = pj.value("reference_cost", 0.0);
        qp.target = pj.value("target", 0.0);
        qp.certified = pj.value("certified", false);
        qp.bound = pj.contains("bound") ? from_num(pj.at("bound"), source) : 0.0;
        qp.n_build = pj.value("n_build", size_t{0});
        qp.n_test = pj.value("n_test", size_t{0});
        res.plans.push_back(qp);
      }
    if (j.contains("selections"))
      for (const auto& sj : j.at("selections")) {
        QualitySelection q;
        q.group = need(sj, "group", "selections[]").get<std::string>();
        q.target = sj.value("target", 0.0);
        q.level = sj.contains("level") ? from_num(sj.at("level"), source) : 0.0;
        q.certified = sj.value("certified", false);
        q.n = sj.value("n", size_t{0});
        q.folds = sj.value("folds", size_t{0});
        q.sequence = sj.value("sequence", size_t{0});
        q.passed = sj.value("passed", size_t{0});
        q.cv_quality_ratio = sj.value("cv_quality_ratio", 0.0);
        q.cv_cost_ratio = sj.value("cv_cost_ratio", 0.0);
        q.ratio_lower_bound =
            sj.contains("ratio_lower_bound") ? from_num(sj.at("ratio_lower_bound"), source) : 0.0;
        res.selections.push_back(q);
      }
    if (j.contains("curves")) {
      const json& cv = j.at("curves");
      const double step = need(cv, "step", "curves").get<double>();
      const double max_alpha = need(cv, "max_alpha", "curves").get<double>();
      if (!(step > 0 && max_alpha >= step && max_alpha < 1 && max_alpha / step <= kMaxCurvePoints))
        throw Error(Status::parse, source + ": curves.step/max_alpha: need 0 < step <= max_alpha "
                                            "< 1 and at most 100000 grid points");
      const size_t n = ThresholdCurve::grid(step, max_alpha).size();
      const json& cells = need(cv, "cells", "curves");
      if (!cells.is_array()) throw Error(Status::parse, source + ": curves.cells: expected an array");
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string where = source + ": curves.cells[" + std::to_string(i) + "]";
        const json& cj = cells[i];
        CellCurve cc;
        cc.tier = need(cj, "tier", "curves.cells[]").get<size_t>();
        cc.column = need(cj, "column", "curves.cells[]").get<std::string>();
        cc.source = cj.value("source", cc.column);
        if (cc.tier >= table->tiers.size() - 1)
          throw Error(Status::parse, where + ".tier: not a non-final tier");
        if (!table->column_index.count(cc.column))
          throw Error(Status::parse, where + ".column: '" + cc.column + "' is not a table column");
        const json& dv = need(cj, "delta", "curves.cells[]");
        if (!dv.is_array() || dv.empty() || dv.size() > n)
          throw Error(Status::parse, where + ".delta: expected 1 to " + std::to_string(n) +
                                         " values");
        cc.curve.step = step;
        for (const auto& x : dv) {
          double v = from_num(x, where + ".delta");
          if (std::isnan(v)) throw Error(Status::parse, where + ".delta: null value");
          cc.curve.delta.push_back(v);
        }
        cc.curve.delta.resize(n, cc.curve.delta.back());  // the trimmed trailing run
        res.curves.push_back(std::move(cc));
      }
    }
    res.table = table;
    cal.result_ = std::move(res);
    return cal;
  } catch (const json::exception& e) {
    throw Error(Status::parse, source + ": wrong type in calibration file: " + e.what());
  }
}

void ConformalCalibrator::save(const std::string& path) const {
  detail::write_file_atomic(path, to_json() + "\n");
}

ConformalCalibrator ConformalCalibrator::load(const std::string& path) {
  return from_json(detail::read_file(path), path);
}

}  // namespace routenlp
