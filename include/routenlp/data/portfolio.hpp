// Portfolio config (YAML): the ordered tiers, their prices and latency models, per-task quality
// thresholds and calibration goals. Format: docs/dataset-format.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/export.h"

namespace routenlp {

struct Outcome;

struct LatencyModel {
  double p50_ms = 0.0;
  double p99_ms = 0.0;
};

struct TierSpec {
  std::string name;
  double price_per_1m_input = 0.0;   // USD
  double price_per_1m_output = 0.0;  // USD
  std::optional<LatencyModel> latency_ms;
};

// Per-task settings; unset fields fall back to the domain ("legal" for "legal/clause"), then
// to tasks.default, then to the top-level values.
struct TaskPolicy {
  std::optional<double> quality_threshold;
  std::optional<double> alpha;
  std::optional<double> quality_target;
};

struct PortfolioConfig {
  std::vector<TierSpec> tiers;                 // cheapest -> most capable
  std::map<std::string, TaskPolicy> tasks;     // includes "default" when given
  double sla_ms = 0.0;                         // 0 = no SLA
  double alpha = 0.05;                         // guarantee mode target
  std::optional<double> quality_target;        // quality-target mode when set
  // "global" (the aggregate meets quality_target; default) or "per_task" (every task does).
  std::optional<std::string> quality_allocation;
  std::optional<std::string> reference_tier;   // defaults to the last tier
  double default_quality_threshold = 1.0;      // top-level `quality_threshold` (optional key)
  std::string source;                          // file it came from (for messages)

  // Index of a tier by name, or -1.
  RN_API int tier_index(const std::string& name) const;
  // Tier that quality_ratio / cost_ratio compare against.
  RN_API int reference_tier_index() const;
  // Effective per-task values (with the fallbacks above).
  RN_API double quality_threshold(const std::string& task) const;
  RN_API double alpha_for(const std::string& task) const;
  RN_API std::optional<double> quality_target_for(const std::string& task) const;
  // "Acceptable" label: quality >= the task's threshold.
  RN_API bool acceptable(const std::string& task, double quality) const;
  // USD for a call priced from token counts.
  RN_API double price(int tier, int64_t input_tokens, int64_t output_tokens) const;
};

// Parse and validate. Errors (Status::parse / io) name the file, the line and the field.
RN_API PortfolioConfig load_portfolio(const std::string& path);
RN_API PortfolioConfig parse_portfolio(const std::string& yaml_text,
                                       const std::string& source_name = "<string>");
// Write as YAML (atomically).
RN_API void save_portfolio(const PortfolioConfig& config, const std::string& path);
// The YAML text save_portfolio() writes.
RN_API std::string portfolio_to_yaml(const PortfolioConfig& config);

}  // namespace routenlp
