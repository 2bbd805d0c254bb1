// Conformal building blocks: exact ranks, the four single-cell formulations (+ the plug-in
// rule) and RouteLLM-style strong-share thresholds. Formulas: docs/conformal.md (after the
// project's conformal reference).
#include "routenlp/calibration/conformal.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "calibration/cell_fits.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

using namespace detail;

namespace detail {

void check_alpha(double alpha, const char* where) {
  if (!(alpha > 0.0 && alpha < 1.0))
    throw Error(Status::invalid_argument,
                std::string(where) + ": alpha must be in (0,1), got " + std::to_string(alpha));
}

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

size_t min_rows_to_certify(double alpha, double eps) {
  return static_cast<size_t>(std::ceil(std::log(eps) / std::log1p(-alpha) - 1e-9));
}

}  // namespace detail

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

// ---- single-cell fits ---------------------------------------------------------------------

// The fits work on sorted rows so that a curve (one cell, many alphas) sorts once.
CellFit detail::split_conformal_sorted(const Sorted& s, double alpha) {
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

CellFit detail::pvalue_bad_sorted(const Sorted& s, double alpha) {
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

CellFit detail::crc_sorted(const Sorted& s, double alpha) {
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



std::vector<detail::LttPoint> detail::ltt_points(const Sorted& s, const LttOptions& o,
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
CellFit detail::ltt_walk(const Sorted& s, const std::vector<LttPoint>& pts, double alpha,
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

CellFit detail::ltt_sorted(const Sorted& s, const LttOptions& o, std::vector<double> grid_src) {
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

}  // namespace routenlp
