// Quality-target mode's results: per-column plans (start tier, thresholds, router skip level,
// randomised mixture) and how each task group chose its operating point.
// docs/conformal.md "Quality-target mode".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

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

}  // namespace routenlp
