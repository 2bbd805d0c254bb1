// The cascade engine: call a tier, accept its answer iff u <= delta[tier][task], else
// escalate; deadlines, dollar budgets, tier errors, cancellation, a trace per request,
// Prometheus metrics and a JSON Lines decision log. Details: docs/cascade.md.
#pragma once

#include <cstddef>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/calibration/online.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/export.h"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

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
  // same score (routenlp/calibration/acceptance.hpp).
  std::shared_ptr<const AcceptanceModel> acceptance;
  // With `online`: called by run(), on its thread, for every audited request once its note is
  // recorded (a shared state backend keeps the note where /feedback on another replica finds
  // it). An exception it throws is swallowed: the request still succeeds.
  std::function<void(const std::string& request_id, const DecisionNote& note)> on_audit;
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
  // A label that arrived through another path (a replicated feedback stream): the audited
  // metrics of the note's column and answer tier, then online->apply_outcome(note, ...); any
  // pending note of request_id here is dropped, not applied. Thread-safe.
  void apply_outcome(const std::string& request_id, const DecisionNote& note, bool acceptable,
                     double event_unix_s = std::numeric_limits<double>::quiet_NaN());
  std::string metrics_prometheus() const;
  size_t tier_count() const;
  const std::string& tier_name(size_t tier) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp
