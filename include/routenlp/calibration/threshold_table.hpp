// The immutable threshold snapshot a cascade engine reads (delta per alpha, tier and task
// column) and a cell's delta(alpha) curve for online recalibration. docs/conformal.md.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

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

// delta(alpha) on the grid alpha = step, 2 step, ...: delta_for(a) takes the largest grid alpha
// <= a (conservative); a <= 0 or below the grid accepts none (-inf); above the grid, the last
// value. Online recalibration (routenlp/calibration/online.hpp) moves a cell's threshold along it.
struct RN_API ThresholdCurve {
  double step = 0.005;
  std::vector<double> delta;  // delta[i] at alpha = (i + 1) step
  // Most grid points a curve may have (bounds what a hostile file's tiny step allocates).
  static constexpr double kMaxPoints = 100000;
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

// Domain of a task: the part before the first '/', or "" when there is none.
RN_API std::string task_domain(const std::string& task);

}  // namespace routenlp
