// Conformal building blocks: exact rank arithmetic and single-cell threshold fits (split
// conformal, p-value, CRC, Learn-then-Test, plug-in) over scores u with "bad" labels, and
// RouteLLM-style strong-share thresholds. Formulas and guarantees: docs/conformal.md.
// All functions are pure.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

// ---- exact rank arithmetic ----------------------------------------------------------------

// alpha as the shortest decimal fraction that round-trips to the same double (0.18 -> 18/100).
struct Rational {
  int64_t num = 0;
  int64_t den = 1;
};
RN_API Rational decimal_rational(double x);
// ceil((n+1)(1-alpha)) computed exactly on alpha's decimal fraction.
RN_API int64_t conformal_upper_rank(int64_t n, double alpha);
// floor(alpha(n+1)) computed exactly.
RN_API int64_t conformal_lower_rank(int64_t n, double alpha);
// CRC's m = floor(alpha(n+1)) - 1 (may be negative: accept none).
RN_API int64_t crc_m(int64_t n, double alpha);
// P(Binomial(n, p) <= k), summed in log space (stable for large n).
RN_API double binom_cdf(int64_t k, int64_t n, double p);
// Threshold d such that "u <= d" is the same as "u < s" for every double u (s's predecessor).
RN_API double strict_to_le(double s);

// ---- single-cell calibration (scores u with labels bad) -----------------------------------

enum class CalibrationMethod {
  ltt,              // Learn-then-Test: P(bad | accepted) <= alpha w.p. >= 1 - epsilon (default)
  crc,              // conformal risk control: E[P(bad and accepted)] <= alpha
  split_conformal,  // split conformal on good answers: P(accept | good) >= 1 - alpha
  pvalue_bad,       // conformal p-value on bad answers: P(accept | bad) <= alpha
};
RN_API const char* method_name(CalibrationMethod m) noexcept;
RN_API CalibrationMethod parse_method(const std::string& name);  // throws invalid_argument

struct CellFit {
  double delta = -std::numeric_limits<double>::infinity();  // accept iff u <= delta
  bool certified = false;  // a threshold that the method's guarantee covers was found
  size_t n = 0, n_bad = 0;
  size_t accepted = 0, accepted_bad = 0;  // among the calibration rows at delta
  double p_value = 1.0;    // LTT: p-value of the chosen point (or of the first failing one)
};

struct LttOptions {
  double alpha = 0.05;
  double epsilon = 0.1;             // this cell's share of the error budget
  double grid_step = 0.005;         // quantile levels of the grid
  double min_expected_accepted = 100;  // the grid starts where level * n >= this (or n)
};

// (a) delta = k-th smallest good score, k = ceil((n_g+1)(1-alpha)); +inf if k > n_g.
RN_API CellFit split_conformal_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                                   double alpha);
// (b) accept iff u < j-th smallest bad score, j = floor(alpha(n_b+1)); none when j = 0.
RN_API CellFit pvalue_bad_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                              double alpha);
// (c) CRC: accept iff u < (m+1)-th smallest bad score; none if m < 0, all if n_b <= m.
RN_API CellFit crc_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                       double alpha);
// (d) LTT with a fixed-sequence test over a quantile grid. grid_source: unlabeled scores the
// grid quantiles come from (empty: the calibration scores themselves).
RN_API CellFit ltt_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                       const LttOptions& options, const std::vector<double>& grid_source = {});
// LTT single test of one given threshold on these rows: p = BinomCDF(K; A, alpha).
RN_API CellFit ltt_single_test(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                               double delta, double alpha, double epsilon);
// Plug-in rule (largest delta with K/A <= alpha): no guarantee; for comparison only.
RN_API CellFit plugin_fit(const std::vector<double>& u, const std::vector<uint8_t>& bad,
                          double alpha);

// RouteLLM budget threshold: quantile(1 - strong_pct) with linear interpolation; strong iff
// score >= threshold.
RN_API double routellm_budget_threshold(std::vector<double> scores, double strong_pct);
// Conformal version: the ceil((n+1)(1-p))-th smallest score; strong iff score > threshold.
RN_API double conformal_budget_threshold(std::vector<double> scores, double strong_pct);

}  // namespace routenlp
