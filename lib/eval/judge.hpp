// Judging systems against the quality target: per-seed pass counts, cost at the target, area
// under the frontier, the cheapest system meeting the target. Definitions: docs/evaluation.md
// ("Meeting the target"). Internal header.
#pragma once

#include <optional>
#include <vector>

#include "routenlp/eval/eval.hpp"

namespace routenlp::detail {

// Least cost ratio at which the sweep, sorted by (cost, quality) and joined linearly, first
// reaches quality ratio `target`; nullopt when it never does or there is no point.
std::optional<double> cost_at_target(const std::vector<SweepPoint>& sweep, double target);

// Integral over cost budgets x in [0, 1] of the best quality ratio among the points with
// cost ratio <= x (0 below the cheapest one); nullopt without points.
std::optional<double> frontier_area(const std::vector<SweepPoint>& sweep);

// Fills seeds_met, met_target, cost_at_target and frontier_area of every system from its
// seed_quality_ratio, mean and sweep (cleared for systems whose status is not "ok").
void judge_systems(EvalReport& report);

// The "ok" system with the lowest mean cost ratio among those that met the target (ties: the
// higher quality ratio, then the first), never the oracle (it reads test labels); null if none.
const SystemReport* cheapest_meeting_target(const EvalReport& report);

}  // namespace routenlp::detail
