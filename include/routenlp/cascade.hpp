// The cascade engine: call a tier, accept its answer iff u <= delta[tier][task], else
// escalate; deadlines, dollar budgets, tier errors, cancellation, a trace per request,
// Prometheus metrics and a JSON Lines decision log. Details: docs/cascade.md.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "routenlp/acceptance.hpp"
#include "routenlp/conformal.hpp"
#include "routenlp/error.hpp"
#include "routenlp/export.h"
#include "routenlp/online.hpp"
#include "routenlp/tier.hpp"

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

// Receives one JSON line per request. Implementations must be thread-safe.
class RN_API DecisionSink {
 public:
  virtual ~DecisionSink();
  virtual void write(const std::string& json_line) = 0;
};

// Appends lines to a file; each line is written whole under a lock and flushed.
class RN_API JsonlFileSink : public DecisionSink {
 public:
  explicit JsonlFileSink(const std::string& path, bool append = true);
  ~JsonlFileSink() override;
  void write(const std::string& json_line) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keeps lines in memory (tests, embedding).
class RN_API MemoryDecisionSink : public DecisionSink {
 public:
  void write(const std::string& json_line) override;
  std::vector<std::string> lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// One decision-log line (docs/cascade.md) and back.
RN_API std::string decision_to_json(const CascadeResult& result);
RN_API CascadeResult decision_from_json(const std::string& line,
                                        const std::string& where = "<line>");
// All records of a log; a torn (unterminated, unparsable) last line is skipped. Errors name
// file:line.
RN_API std::vector<CascadeResult> read_decision_log(const std::string& path);

struct CascadeOptions {
  size_t threads = 0;  // pool for run_batch / run_async (0: hardware threads), started lazily
  // When set, thresholds come from its snapshots and audited decisions are recorded for
  // record_outcome(). When null, set_thresholds() / the constructor's table are used.
  std::shared_ptr<OnlineRecalibrator> online;
  std::shared_ptr<DecisionSink> decision_log;  // null: no log
  double audit_rate = 0.1;   // without `online`: share of requests kept for audited metrics
  size_t max_pending = 100000;
  std::vector<double> latency_buckets_ms = {1,   2,   5,    10,   20,   50,    100,
                                            200, 500, 1000, 2000, 5000, 10000, 30000};
  // When set, u = 1 - its P(acceptable) for the tiers it scores (the tier's confidence, the
  // earlier answers of this request and router p); the thresholds must be calibrated on the
  // same score (routenlp/acceptance.hpp).
  std::shared_ptr<const AcceptanceModel> acceptance;
};

// Where the engine's run() of `request` under `table` begins, without calling a tier: the start
// rule (request start_tier, else the column's plan start raised by the router's skip level) and
// the first tier actually called (tiers whose answer could not be accepted are passed over). With
// an empty request id the mixture partner of a randomised plan cannot be known: the task's own
// column is used.
struct CascadeFirstCall {
  int start_tier = 0;
  int first_tier = 0;
  int column = -1;  // threshold column applied (-1: none matches the task)
};
RN_API CascadeFirstCall cascade_first_call(const ThresholdTable& table,
                                           const CascadeRequest& request);

// Runs requests through the tiers. run(), run_batch(), run_async(), record_outcome(),
// set_thresholds() and metrics_prometheus() are all thread-safe.
class RN_API CascadeEngine {
 public:
  CascadeEngine(std::vector<std::shared_ptr<ModelTier>> tiers,
                std::shared_ptr<const ThresholdTable> thresholds, CascadeOptions options = {});
  ~CascadeEngine();
  CascadeEngine(const CascadeEngine&) = delete;
  CascadeEngine& operator=(const CascadeEngine&) = delete;

  CascadeResult run(const CascadeRequest& request) const;
  // Runs on the internal pool; results in request order. Do not call from a tier.
  std::vector<CascadeResult> run_batch(const std::vector<CascadeRequest>& requests) const;
  std::future<CascadeResult> run_async(CascadeRequest request) const;

  void set_thresholds(std::shared_ptr<const ThresholdTable> thresholds);
  std::shared_ptr<const ThresholdTable> thresholds() const;
  // Label of an audited request's answer: updates the audited violation metrics and the
  // online recalibrator. False when the request is unknown (not audited, or too old).
  bool record_outcome(const std::string& request_id, bool acceptable);
  std::string metrics_prometheus() const;
  size_t tier_count() const;
  const std::string& tier_name(size_t tier) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp
