// Quality-target planning (internal): per-task plan fronts, their allocation under one price
// of quality (Lagrangian) and the cross-fitted fixed-sequence certificate that picks the price.
// The method and what it promises: docs/conformal.md "Quality-target mode".
#pragma once

#include <string>
#include <vector>

#include "routenlp/calibration/quality_plan.hpp"
#include "routenlp/calibration/calibrator.hpp"

namespace routenlp::detail {

struct QualityPlanning {
  std::vector<QualityPlan> plans;  // one per column, in `columns` order
  std::vector<QualitySelection> selections;
};

// `columns`: every task, every domain "d/*" and "*" (ConformalCalibrator's column set).
QualityPlanning plan_quality_target(const CalibrationData& d, const CalibrationOptions& o,
                                    const std::vector<std::string>& columns);

// Whether a task belongs to a column ("*", "d/*" or the task itself).
bool row_in_column(const std::string& task, const std::string& column);

// First tier with router p >= tau (tiers before the last); the last tier when none; 0 when
// tau <= 0 or p is empty. NaN p never qualifies.
int router_start_tier(const std::vector<double>& p, double tau);

// z such that P(N(0,1) > z) = eps.
double normal_upper_quantile(double eps);

}  // namespace routenlp::detail
