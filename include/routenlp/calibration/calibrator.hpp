// Calibration of per-(tier, task) acceptance thresholds for a cascade: the calibration rows,
// options, per-cell reports and the ConformalCalibrator that fits, saves and loads them.
// Accept a tier's answer iff its uncertainty u <= delta[tier][task]. Formulas, defaults and
// guarantees: docs/conformal.md. Thread safety: a ConformalCalibrator is one thread per
// object; its ThresholdTable snapshots are immutable once published.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/calibration/conformal.hpp"
#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/data/dataset.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/export.h"

namespace routenlp {

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

}  // namespace routenlp
