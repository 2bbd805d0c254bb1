// Online recalibration: adaptive conformal inference (ACI) per (tier, task) cell with delayed
// and missing feedback, Bernoulli CUSUM and window-binomial drift monitors, and threshold
// snapshots swapped atomically. Formulas: docs/conformal.md ("Online recalibration").
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/export.h"

namespace routenlp {

enum class AciTarget {
  joint,        // err = 1{accepted and bad}; rejected answers count 0 (need no label)
  conditional,  // update only on labeled accepted answers with err = bad
};

struct AciOptions {
  double alpha = 0.05;   // target
  double gamma = 0.005;  // step per label
  double alpha_init = std::numeric_limits<double>::quiet_NaN();  // NaN: alpha
  AciTarget target = AciTarget::joint;
};

// alpha_{t+1} = alpha_t + gamma (alpha - err_t), unclipped. One thread per object.
class RN_API AciTracker {
 public:
  explicit AciTracker(AciOptions options = {});
  // One labeled outcome (joint: any answer of this cell; conditional: ignored unless accepted).
  void update(bool accepted, bool bad) noexcept {
    if (target_ == AciTarget::conditional && !accepted) return;
    const double err = (accepted && bad) ? 1.0 : 0.0;
    alpha_t_ += gamma_ * (alpha_ - err);
    err_sum_ += err;
    ++updates_;
  }
  double alpha_t() const noexcept { return alpha_t_; }
  uint64_t updates() const noexcept { return updates_; }
  double mean_err() const noexcept { return updates_ ? err_sum_ / double(updates_) : 0.0; }
  // Deterministic bound on mean err after T updates with labels up to D late.
  double bound(uint64_t T, uint64_t delay = 0) const noexcept;
  const AciOptions& options() const noexcept { return options_; }

 private:
  friend class OnlineRecalibrator;  // state_json() / restore_state()
  AciOptions options_;
  AciTarget target_;
  double alpha_, gamma_, alpha_t_;
  double err_sum_ = 0.0;
  uint64_t updates_ = 0;
};

// S_t = max(0, S_{t-1} + x ln(p1/p0) + (1-x) ln((1-p1)/(1-p0))); alarm at S >= h, then reset.
class RN_API BernoulliCusum {
 public:
  BernoulliCusum(double p0 = 0.05, double p1 = 0.08, double h = 4.0);
  bool update(bool bad) noexcept {
    s_ += bad ? up_ : down_;
    if (s_ < 0) s_ = 0;
    ++n_;
    if (s_ >= h_) {
      s_ = 0;
      return true;
    }
    return false;
  }
  double statistic() const noexcept { return s_; }
  uint64_t labels() const noexcept { return n_; }

 private:
  friend class OnlineRecalibrator;  // state_json() / restore_state()
  double up_, down_, h_, s_ = 0.0;
  uint64_t n_ = 0;
};

// Blocks of W labels; at the end of each block alarm when #bad >= threshold.
class RN_API WindowBinomialMonitor {
 public:
  WindowBinomialMonitor(size_t window = 500, size_t threshold = 38);
  bool update(bool bad) noexcept;
  size_t count() const noexcept { return bad_; }

 private:
  friend class OnlineRecalibrator;  // state_json() / restore_state()
  size_t w_, thr_, seen_ = 0, bad_ = 0;
};

struct DriftEvent {
  std::string kind;    // "cusum", "window" or "aci_stall"
  size_t tier = 0;
  std::string column;  // task, "domain/*" or "*"
  double statistic = 0.0;
  uint64_t labels = 0;
};

struct OnlineOptions {
  AciOptions aci;                // target alpha, step gamma, joint or conditional
  double audit_rate = 0.1;       // share of requests should_audit() selects
  uint64_t audit_seed = 0x61756469;
  double cusum_p0 = 0.05, cusum_p1 = 0.08, cusum_h = 4.0;
  size_t window = 500, window_alarm = 38;
  size_t stall_labels = 200;     // consecutive labels at alpha_t <= 0 before an aci_stall event
  size_t max_pending = 100000;   // decisions awaiting feedback; the oldest are dropped
  // Called from the thread that calls record_outcome(), outside internal locks.
  std::function<void(const DriftEvent&)> on_event;
};

// One adapted cell as cells() reports it (a copy; cheap enough for every /metrics scrape).
struct CellSummary {
  size_t tier = 0;
  std::string column;                 // task, "domain/*" or "*"
  double alpha_t = 0.0;               // ACI's current alpha
  double delta = 0.0;                 // threshold in the current snapshot (base alpha)
  double calibrated_delta = 0.0;      // threshold in the initial table
  bool has_curve = false;             // false: delta is calibrated_delta, or -inf at alpha_t <= 0
  double cusum = 0.0;                 // CUSUM statistic now
  uint64_t labels = 0, accepted_labels = 0, accepted_bad = 0;
  uint64_t cusum_alarms = 0, window_alarms = 0, stall_alarms = 0;
  std::string last_alarm;             // kind of the latest alarm ("cusum", "window",
                                      // "aci_stall"); empty: none yet
  uint64_t last_alarm_labels = 0;     // the cell's label count when it fired
  double last_alarm_unix_s = 0.0;     // system clock, seconds since the epoch; 0: none
};

// What one request did, kept until its label arrives.
struct DecisionNote {
  std::string task;
  std::vector<int> rejected_tiers;  // tiers that escalated this request
  int answer_tier = -1;             // tier whose answer was returned
  bool answer_accepted = false;     // accepted by its threshold (false: forced last answer)
};

// Per-cell ACI + monitors over a ThresholdTable. record_decision/record_outcome are
// thread-safe (serialized internally); snapshot() is lock-free for readers in practice
// (std::atomic_load on shared_ptr) and never sees a half-updated table.
class RN_API OnlineRecalibrator {
 public:
  OnlineRecalibrator(std::shared_ptr<const ThresholdTable> initial, OnlineOptions options = {});
  ~OnlineRecalibrator();
  OnlineRecalibrator(const OnlineRecalibrator&) = delete;
  OnlineRecalibrator& operator=(const OnlineRecalibrator&) = delete;

  // delta(alpha) for a cell on ThresholdCurve::grid(step, ...); cells without a curve keep
  // their calibrated delta (ACI still tracks them). Thread-safe.
  void set_curve(size_t tier, const std::string& column, ThresholdCurve curve);
  // The curves stored in a calibration result (CalibrationResult::curves: computed by
  // calibrate() and kept by save()/load()), matched by tier index and column name. All or
  // nothing: throws invalid_argument if one names a cell this table lacks. Returns how many
  // cells got a curve (0 for a quality-target or format_version 1 result). Thread-safe.
  size_t set_curves(const std::vector<CellCurve>& curves);
  size_t set_curves(const CalibrationResult& result) { return set_curves(result.curves); }
  // The calibrator's stored curves when it has them (a loaded file included; step and
  // max_alpha are then those of the file), else curves computed from the data it still holds
  // on ThresholdCurve::grid(step, max_alpha). Throws when it has neither (a loaded
  // format_version 1 file or a quality-target result). Returns how many cells got a curve.
  size_t set_curves_from(const ConformalCalibrator& calibrator, double step = 0.005,
                         double max_alpha = 0.5);

  std::shared_ptr<const ThresholdTable> snapshot() const noexcept;
  // Deterministic random sample (hash of id and seed) of audit_rate of requests.
  bool should_audit(const std::string& request_id) const noexcept;
  void record_decision(const std::string& request_id, DecisionNote note);
  // Label of the returned answer. False when the request is unknown (never recorded, or
  // dropped as too old). Updates ACI and monitors, may publish a new snapshot and fire events.
  bool record_outcome(const std::string& request_id, bool acceptable);
  // The deterministic core of record_outcome(): applies one label of `note` (ACI, monitors, a
  // new snapshot when a threshold moves, events) without looking up or consuming a pending
  // note. Replicas that apply the same notes in the same order reach bit-identical states.
  // event_unix_s stamps alarms (NaN: now); a replicated event passes the time it was accepted
  // so every replica records the same alarm time. Thread-safe.
  void apply_outcome(const DecisionNote& note, bool acceptable,
                     double event_unix_s = std::numeric_limits<double>::quiet_NaN());
  // Drops the pending note of request_id (its label arrived through another path). True when
  // there was one. Thread-safe.
  bool discard_decision(const std::string& request_id);
  // Every cell's adaptive state (ACI alpha_t and sums, counters, CUSUM and window statistics,
  // alarm counts, the threshold in force) and the snapshot count as JSON, doubles as exact
  // hex floats; pending notes are not included. Thread-safe.
  std::string state_json() const;
  // Replaces the adaptive state with one state_json() wrote, publishing its thresholds as a new
  // snapshot. Throws Error(invalid_argument) when it was written over another table (other
  // tiers, columns, calibrated thresholds, curves or ACI options: see table_fingerprint()) and
  // Error(parse) when it is malformed; either way nothing changes. Thread-safe.
  void restore_state(const std::string& state);
  // 16 hex digits identifying the initial table, curves and ACI/monitor options: replicas may
  // share state only when theirs are equal. Thread-safe.
  std::string table_fingerprint() const;
  // 16 hex digits of state_json(): equal digests, equal states. Thread-safe.
  std::string state_digest() const;

  struct CellState {
    double alpha_t = 0.0, delta = 0.0, cusum = 0.0;
    uint64_t labels = 0, accepted_labels = 0, accepted_bad = 0, alarms = 0;
  };
  CellState cell_state(size_t tier, const std::string& column) const;
  // Every adapted cell (non-final tiers; not the hidden mixture columns), tier-major, under
  // one short lock: for a server's /metrics or a C accessor. Thread-safe.
  std::vector<CellSummary> cells() const;
  // cells() as Prometheus text: per (tier, column) gauges routenlp_online_alpha_t,
  // routenlp_online_delta, routenlp_online_calibrated_delta, routenlp_online_cusum, counters
  // routenlp_online_labels_total, routenlp_online_alarms_total{kind}. The cascade engine appends
  // it to its own metrics when it runs with this recalibrator. Thread-safe.
  std::string metrics_prometheus() const;
  size_t pending() const;
  uint64_t snapshots_published() const;

 private:
  struct Cell;
  OnlineOptions options_;
  std::shared_ptr<const ThresholdTable> table_;  // accessed with std::atomic_load/store
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Cell>> cells_;     // [tier * columns + column]
  struct Pending;
  std::unique_ptr<Pending> pending_;
  uint64_t published_ = 0;
};

}  // namespace routenlp
