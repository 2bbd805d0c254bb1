// Conformal calibration of per-(tier, task) acceptance thresholds for a cascade.
// Accept a tier's answer iff its uncertainty u <= delta[tier][task]. Formulas, defaults and
// guarantees: docs/conformal.md. Thread safety: calibration functions are pure; a
// ConformalCalibrator is one thread per object; a ThresholdTable is immutable once published.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/dataset.hpp"
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

// ---- cascade calibration ------------------------------------------------------------------

// Calibration rows: per query a task and, per tier, u, the "bad" label, quality and cost of
// that tier's answer. NaN u: the tier gave no answer or was skipped (e.g. the router started
// later); the row is left out of that tier's calibration and goes on to the next tier.
struct CalibrationData {
  std::vector<std::string> tiers;          // tier names, cheapest first
  std::vector<std::string> tasks;          // per row
  std::vector<std::vector<double>> u;      // [row][tier]
  std::vector<std::vector<uint8_t>> bad;   // [row][tier]
  std::vector<std::vector<double>> quality;  // [row][tier] (quality-target mode)
  std::vector<std::vector<double>> cost;     // [row][tier] USD (quality-target mode)
  // Optional disjoint unlabeled sample for the LTT grid: tasks and u per tier (no labels).
  std::vector<std::string> unlabeled_tasks;
  std::vector<std::vector<double>> unlabeled_u;  // [row][tier]
  // Optional router-predicted acceptability [row][tier] (NaN unknown): the router's skip rule
  // (a request starts at the first tier with p >= skip_tau) is searched in quality-target mode
  // and applied with CalibrationOptions::skip_tau in guarantee mode.
  std::vector<std::vector<double>> router_p;
  // Optional per tier: 1 when that tier's u is known before it is called (u = 1 - router p; the
  // tier reports no confidence). The engine then does not call it when u > delta, so in
  // quality-target mode such a tier costs nothing for the rows it would escalate.
  std::vector<uint8_t> u_before_call;
  // Optional [start][row][tier]: u when the cascade started at tier `start` (a learned
  // acceptance score depends on which earlier answers exist). Quality-target mode reads it
  // instead of u; empty: u does not depend on the start.
  std::vector<std::vector<std::vector<double>>> u_from_start;
  size_t rows() const { return tasks.size(); }
  void validate() const;  // throws Error(invalid_argument) naming the row/tier
};

// Router-predicted acceptability p for (query, tier): the u source when a tier gives no
// confidence (u = 1 - p). Return NaN when unknown.
using AcceptabilityFn = std::function<double(const Query&, int tier)>;

// Builds rows from a dataset's queries in `split` (u = 1 - confidence, else 1 - router p;
// bad = not acceptable per the portfolio's quality thresholds; cost from outcome_cost).
RN_API CalibrationData calibration_data_from_dataset(const Dataset& data,
                                                     const PortfolioConfig& portfolio,
                                                     std::optional<Split> split = Split::calib,
                                                     const AcceptabilityFn& router_p = {});

enum class CellStatus {
  certified,     // the cell's own rows certify its delta
  pooled,        // delta borrowed from a pool that certifies it; the cell's rows alone do not
  escalate_all,  // nothing certifiable: every answer escalates
  too_small,     // too few rows and no pool could lend a threshold: every answer escalates
  final_tier,    // last tier: always accepted, not controlled
  uncertified,   // quality-target mode without a passing certificate
};
RN_API const char* cell_status_name(CellStatus s) noexcept;

struct CellReport {
  int tier = 0;
  std::string task;    // a task, a domain "legal/*" or "*" (all)
  CellStatus status = CellStatus::too_small;
  std::string source;  // where delta came from: the cell itself, "<domain>/*" or "*"
  size_t n = 0, n_bad = 0, accepted = 0, accepted_bad = 0;
  double delta = -std::numeric_limits<double>::infinity();
  double p_value = 1.0;
  double alpha = 0.05;
};

enum class CalibrationGoal {
  guarantee,       // every non-final tier: P(bad | accepted) <= alpha (method above)
  quality_target,  // minimise cost s.t. quality >= target x reference quality
};

// How quality-target mode spreads the target over tasks.
enum class QualityAllocation {
  global,    // the aggregate quality ratio over all rows meets quality_target (cheapest)
  per_task,  // every task meets its own target (stricter, costs more)
};
RN_API const char* allocation_name(QualityAllocation a) noexcept;
RN_API QualityAllocation parse_allocation(const std::string& name);  // throws invalid_argument

// The upper confidence bound on the mean shortfall that certifies a quality-target plan.
enum class QualityBound {
  normal,     // CLT: mean + z(1-eps) sd / sqrt(n) (asymptotic; default)
  bernstein,  // empirical Bernstein (Maurer-Pontil): finite-sample, conservative
};
RN_API const char* bound_name(QualityBound b) noexcept;
RN_API QualityBound parse_bound(const std::string& name);  // throws invalid_argument

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::ltt;
  double alpha = 0.05;
  double epsilon = 0.1;              // split as epsilon/(K-1) over the non-final tiers
  std::vector<double> extra_alphas;  // also calibrate these (per-request alpha override)
  size_t cell_floor = 200;           // a cell below this may borrow from its domain / all
  double grid_step = 0.005;          // LTT grid: quantile levels of u
  double min_expected_accepted = 100;  // LTT grid starts where level * n >= this
  bool sequential = true;            // tier k calibrated on the rows that reach it
  // Guarantee mode: the router's skip level (rows with router_p start at the first tier with
  // p >= skip_tau; 0 = no skipping). Quality-target mode searches skip_taus instead.
  double skip_tau = 0.0;
  // Quality-target mode (docs/conformal.md "Quality-target mode").
  CalibrationGoal goal = CalibrationGoal::guarantee;
  double quality_target = 0.97;      // keep this share of the reference tier's quality
  // Tasks listed here are planned on their own and must meet their own target; the others
  // share quality_target as allocation says.
  std::unordered_map<std::string, double> task_quality_targets;
  QualityAllocation allocation = QualityAllocation::global;
  int reference_tier = -1;           // -1: the last tier
  QualityBound qt_bound = QualityBound::normal;
  double qt_epsilon = 0.2;           // the plan's certificate fails with probability <= this
  size_t qt_folds = 5;               // cross-fitting: plans built on other folds certify a fold
  size_t qt_task_floor = 100;        // tasks with fewer rows use their pool's plans (shrinkage)
  size_t qt_levels = 10;             // threshold candidates per tier (quantiles of u)
  std::vector<double> skip_taus = {0.0, 0.2, 0.35, 0.5, 0.65, 0.8};  // searched with router_p
  uint64_t seed = 0x5eed;            // the cross-fitting folds
  // Guarantee mode: store each non-final cell's delta(alpha) on the grid step, 2 step, ...,
  // curve_max_alpha (CalibrationResult::curves; online recalibration). 0: no curves.
  double curve_step = 0.005;
  double curve_max_alpha = 0.5;
};

// Immutable threshold snapshot the engine reads: delta[alpha][tier][column].
// Columns: each calibrated task, each domain ("legal/*") and "*" (all tasks).
struct RN_API ThresholdTable {
  std::vector<std::string> tiers;
  std::vector<std::string> columns;
  std::vector<double> alphas;        // ascending
  size_t base_alpha = 0;             // index of the calibration alpha
  std::vector<double> delta;         // size alphas * tiers * columns
  std::vector<int> start_tier;       // per column (quality-target mode); 0 otherwise
  std::vector<double> expected_cost; // per tier: mean USD on the calibration rows (NaN unknown)
  // Per column: with router p in the request, start at the first tier with p >= skip_tau
  // (never before start_tier); 0 = no skipping.
  std::vector<double> skip_tau;
  // Per tier: u comes from the router before the call (no confidence); the engine does not
  // call such a tier when 1 - p > delta.
  std::vector<uint8_t> u_before_call;
  // Per column: a share mix_share of the requests (chosen by a hash of the request id) uses
  // column mix_column's plan instead: the randomised mixture of two adjacent plans that puts
  // a quality-target operating point between them. -1 / 0: none. Mixture columns are named
  // "<column>\x1fmix" and are never chosen for a task directly.
  std::vector<int> mix_column;
  std::vector<double> mix_share;
  // The column a request of this task uses: column_for(task), then the mixture rule.
  int column_for_request(const std::string& task, const std::string& request_id) const;
  // The mixture rule alone: `column` itself, or its partner for this request id.
  int mixed_column(int column, const std::string& request_id) const;
  std::unordered_map<std::string, int> column_index;

  static constexpr size_t npos = static_cast<size_t>(-1);
  // Empty table: every non-final tier escalates everything.
  static ThresholdTable escalate_all(std::vector<std::string> tiers, double alpha = 0.05);
  void reset_shape(std::vector<std::string> tier_names, std::vector<std::string> column_names,
                   std::vector<double> alpha_values, size_t base);
  // The column serving a task: the task itself, else its domain, else "*"; -1 if none.
  int column_for(const std::string& task) const;
  // Largest precomputed alpha <= alpha (within 1e-12); npos when every one is larger.
  size_t alpha_index(double alpha) const;
  double at(size_t a, size_t tier, size_t column) const {
    return delta[(a * tiers.size() + tier) * columns.size() + column];
  }
  double& at(size_t a, size_t tier, size_t column) {
    return delta[(a * tiers.size() + tier) * columns.size() + column];
  }
  // Threshold for (tier, task) at alpha (NaN: the base alpha). -inf when nothing applies;
  // +inf for the last tier.
  double lookup(size_t tier, const std::string& task, double alpha) const;
};

// Per-column result of quality-target mode (a task, a domain "d/*" or "*").
struct QualityPlan {
  std::string task;
  int start_tier = 0;
  std::vector<double> delta;   // per tier (-inf below start_tier; +inf last)
  double skip_tau = 0.0;       // router skip level (0: none)
  // The randomised mixture with the next cheaper plan: this share of the task's requests
  // (by request-id hash) runs the mix_* plan instead. 0: none.
  double mix_share = 0.0;
  int mix_start_tier = 0;
  std::vector<double> mix_delta;
  double mix_skip_tau = 0.0;
  double level = 0.0;          // its group's in-sample cost-ratio level (-1: the reference
                               // tier alone)
  std::string source;          // whose rows built the plan: the column itself, or its pool
  double expected_cost = 0.0;  // mean USD per query on the calibration rows
  double quality = 0.0;        // mean end-to-end quality on the calibration rows
  double reference_quality = 0.0;
  double reference_cost = 0.0;
  double target = 0.0;         // the group's target ratio x reference_quality
  bool certified = false;      // its group's certificate passed at level qt_epsilon
  double bound = 0.0;          // the group's upper bound on mean(t q_ref - q) (<= 0 passes)
  size_t n_build = 0, n_test = 0;  // rows that built the plan; rows that certified its group
};

// How one group of tasks (all of them under global allocation) chose its operating point:
// the fixed-sequence test over the cost-ordered plan sequence on cross-fitted rows.
struct QualitySelection {
  std::string group;           // "*" (global) or the task
  double target = 0.0;         // quality-ratio target
  double level = 0.0;          // chosen in-sample cost-ratio level (-1: the reference alone)
  bool certified = false;
  size_t n = 0, folds = 0, sequence = 0, passed = 0;
  double cv_quality_ratio = 0.0;  // cross-fitted quality ratio at the chosen point
  double cv_cost_ratio = 0.0;     // cross-fitted cost ratio
  double ratio_lower_bound = 0.0; // lower confidence bound on the quality ratio there
};

// delta(alpha) on the grid alpha = step, 2 step, ...: delta_for(a) takes the largest grid alpha
// <= a (conservative); a <= 0 or below the grid accepts none (-inf); above the grid, the last
// value. Online recalibration (routenlp/online.hpp) moves a cell's threshold along it.
struct RN_API ThresholdCurve {
  double step = 0.005;
  std::vector<double> delta;  // delta[i] at alpha = (i + 1) step
  double delta_for(double alpha) const noexcept;
  static std::vector<double> grid(double step, double max_alpha);
};

// The curve of one non-final cell (guarantee mode), computed at calibration time on the rows
// that reach the tier under the base thresholds, with the base method, from the column its
// delta came from (the cell itself, or the pool a small cell borrowed from), so the curve at
// the base alpha is the calibrated delta. Saved in the calibration JSON.
struct CellCurve {
  size_t tier = 0;
  std::string column;  // task, "domain/*" or "*"
  std::string source;  // whose rows built the curve
  ThresholdCurve curve;
};

struct Provenance {
  std::string data_hash;  // FNV-1a 64 of the calibration rows, hex
  size_t n = 0;
  double alpha = 0.05, epsilon = 0.1;
  std::string method, goal;
  std::string created_utc;
  std::string library_version;
};

struct CalibrationResult {
  Provenance provenance;
  std::vector<CellReport> cells;  // base alpha: every (tier, column); final tier reported too
  std::vector<QualityPlan> plans; // quality-target mode only
  std::vector<QualitySelection> selections;  // quality-target mode only
  std::shared_ptr<const ThresholdTable> table;
  // Guarantee mode: delta(alpha) per non-final (tier, column) on ThresholdCurve::grid(
  // curve_step, curve_max_alpha), for OnlineRecalibrator::set_curves. Empty in quality-target
  // mode (its plans are not indexed by alpha), with curve_max_alpha = 0, and after loading a
  // format_version 1 file.
  std::vector<CellCurve> curves;
};

// Calibrates a cascade (one thread per object; thresholds() snapshots are immutable).
class RN_API ConformalCalibrator {
 public:
  explicit ConformalCalibrator(CalibrationOptions options = {});
  const CalibrationOptions& options() const { return options_; }
  // Calibrates every (tier, column) cell; replaces any previous result.
  const CalibrationResult& calibrate(const CalibrationData& data);
  bool calibrated() const { return result_.table != nullptr; }
  const CalibrationResult& result() const;
  std::shared_ptr<const ThresholdTable> thresholds() const;
  // delta for (tier, task) at alpha (NaN = base). Throws if not calibrated.
  double threshold(size_t tier, const std::string& task,
                   double alpha = std::numeric_limits<double>::quiet_NaN()) const;
  // The report of a cell (exact column name: task, "domain/*" or "*"); nullptr if none.
  const CellReport* cell(size_t tier, const std::string& column) const;
  // delta(alpha) for a column's own rows at the base method, on alphas. Needs the calibration
  // data of this object (not available after load(); the saved result().curves are).
  std::vector<double> curve(size_t tier, const std::string& column,
                            const std::vector<double>& alphas) const;

  std::string to_json() const;
  static ConformalCalibrator from_json(const std::string& text,
                                       const std::string& source = "<string>");
  void save(const std::string& path) const;  // atomic write
  static ConformalCalibrator load(const std::string& path);

 private:
  CalibrationOptions options_;
  CalibrationResult result_;
  // Rows that reached each tier under the base thresholds, kept for curve().
  std::vector<std::vector<size_t>> reach_rows_;
  std::shared_ptr<const CalibrationData> data_;
};

// Domain of a task: the part before the first '/', or "" when there is none.
RN_API std::string task_domain(const std::string& task);

}  // namespace routenlp
