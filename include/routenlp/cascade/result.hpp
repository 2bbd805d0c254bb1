// What a cascade is asked (CascadeRequest) and what it returns (CascadeResult, with the trace
// of every tier it considered). `tier` is always a tier index and `tier_name` its name, here,
// in the decision log and in the server's JSON. docs/cascade.md.
#pragma once

#include <atomic>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/export.h"

namespace routenlp {

enum class TraceDecision {
  accepted,          // u <= delta at a calibrated tier
  escalated,         // u > delta, or u unknown/NaN
  final_answer,      // answer of the last allowed tier, returned whatever u is
  error,             // the tier failed, timed out or threw: escalated
  skipped_budget,    // not called: expected cost exceeds the remaining budget
  skipped_deadline,  // not called: the deadline had passed
  cancelled,         // not called: the request was cancelled
  skipped_threshold, // not called: its answer could not be accepted (delta = -inf, or the
                     // router's u, known before the call, exceeds delta)
};
RN_API const char* trace_decision_name(TraceDecision d) noexcept;

struct TraceEntry {
  int tier = 0;
  std::string tier_name;
  double latency_ms = 0.0;  // measured by the engine around the call
  double cost = 0.0;        // USD reported by the tier
  double uncertainty = std::numeric_limits<double>::quiet_NaN();  // NaN: none available
  double delta = std::numeric_limits<double>::quiet_NaN();        // threshold applied
  TraceDecision decision = TraceDecision::escalated;
  bool nan_confidence = false;  // the tier reported a NaN confidence (treated as uncertain)
  Status error_status = Status::ok;
  std::string error;
};

struct CascadeRequest {
  std::string id;      // empty: the engine assigns "rn-<n>"
  std::string query;
  std::string task;
  int start_tier = -1;  // -1: the thresholds' start tier for the task (0 in guarantee mode)
  int max_tier = -1;    // -1: the last tier
  double alpha = std::numeric_limits<double>::quiet_NaN();  // NaN: calibration alpha
  double budget_usd = std::numeric_limits<double>::infinity();
  double deadline_ms = 0.0;  // > 0: deadline = now + deadline_ms (SLA); 0: none
  std::shared_ptr<std::atomic<bool>> cancel;  // set to true to cancel; may be null
  // Router-predicted acceptability per tier: u = 1 - p when a tier gives no confidence.
  std::vector<double> router_p;
};

struct CascadeResult {
  std::string request_id;
  std::string task;
  Status status = Status::ok;  // not ok: no answer (budget, timeout, tier, cancelled)
  std::string error;
  std::string answer;
  int tier = -1;               // tier whose answer is returned
  std::string tier_name;
  bool uncertain = false;      // returned without passing a calibrated threshold
  std::string stop_reason;     // accepted, last_tier, budget, deadline, errors, cancelled
  double cost = 0.0;           // USD, all tiers called
  double latency_ms = 0.0;     // wall time of run()
  double alpha = 0.0;          // alpha whose thresholds were applied (NaN: none matched)
  bool audited = false;        // selected for feedback: send record_outcome(request_id, ...)
  std::vector<TraceEntry> trace;
};

}  // namespace routenlp
