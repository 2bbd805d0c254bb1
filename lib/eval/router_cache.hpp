// Router scores cached per table row, and the neural router shared by the routenlp systems.
// Internal header.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "routenlp/eval.hpp"
#include "routenlp/router.hpp"

namespace routenlp::detail {

struct ScoreCache {
  const RouterModel* model = nullptr;
  std::unordered_map<size_t, RouterScores> scores;  // row -> scores
  std::unordered_map<size_t, double> router_ms;     // row -> batched scoring time per query
  void ensure(const SystemContext& ctx, const std::vector<size_t>& rows);
};

// Routing labels of table rows (all tiers present).
RoutingLabels labels_for_rows(const SystemContext& ctx, const std::vector<size_t>& rows);

// The neural router trained on ctx.train (cached per seed and train rows, so the routenlp
// systems of one evaluation share one training run).
std::shared_ptr<const RouterModel> neural_router_for(const SystemContext& ctx);

}  // namespace routenlp::detail
