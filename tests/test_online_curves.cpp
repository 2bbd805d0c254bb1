// Online recalibration in a deployment: curves computed at calibration time, saved in the
// calibration JSON, loaded and attached to an OnlineRecalibrator; the per-cell summary that
// reports drift alarms.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "routenlp/error.hpp"
#include "routenlp/calibration/online.hpp"

using namespace routenlp;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// Two tiers; task "t" (4,000 rows) with u ~ U(0,1) and P(bad | u) = 0.1 u at tier 0, so LTT
// at alpha accepts up to u ~ 20 alpha (less a margin): a curve graded over alpha in (0, .05].
// Task "s" (60 rows) is too small for its own threshold and borrows one from "*".
CalibrationData synthetic(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  CalibrationData d;
  d.tiers = {"cheap", "strong"};
  for (int i = 0; i < 4060; ++i) {
    double u = U(rng);
    d.tasks.push_back(i < 4000 ? "t" : "s");
    d.u.push_back({u, 0.0});
    d.bad.push_back({static_cast<uint8_t>(U(rng) < 0.1 * u), 0});
  }
  return d;
}

std::string temp_path(const char* name) {
  return std::string(RN_BINARY_DIR) + "/" + name + ".json";
}

const CellSummary* find_cell(const std::vector<CellSummary>& v, size_t tier,
                             const std::string& column) {
  for (const auto& s : v)
    if (s.tier == tier && s.column == column) return &s;
  return nullptr;
}

// A calibration file as format_version 1 wrote it (no curves, no curve options).
const char* kVersion1 = R"({
 "cells": [
  {"accepted": 2400, "accepted_bad": 60, "alpha": 0.05, "delta": 0.61, "guarantee": "cell",
   "n": 4000, "n_bad": 200, "p_value": 0.01, "source": "t", "status": "certified", "task": "t",
   "tier": 0},
  {"accepted": 4000, "accepted_bad": 200, "alpha": 0.05, "delta": 0.61, "guarantee": "cell",
   "n": 4000, "n_bad": 200, "p_value": 0.01, "source": "*", "status": "certified", "task": "*",
   "tier": 0},
  {"accepted": 1600, "accepted_bad": 0, "alpha": 0.05, "delta": "inf", "guarantee": "none",
   "n": 1600, "n_bad": 0, "p_value": 1.0, "source": "t", "status": "final_tier", "task": "t",
   "tier": 1},
  {"accepted": 1600, "accepted_bad": 0, "alpha": 0.05, "delta": "inf", "guarantee": "none",
   "n": 1600, "n_bad": 0, "p_value": 1.0, "source": "*", "status": "final_tier", "task": "*",
   "tier": 1}
 ],
 "format": "routenlp-calibration",
 "format_version": 1,
 "options": {"alpha": 0.05, "allocation": "global", "cell_floor": 200, "epsilon": 0.1,
  "extra_alphas": [], "goal": "guarantee", "grid_step": 0.005, "method": "ltt",
  "min_expected_accepted": 100.0, "qt_bound": "normal", "qt_epsilon": 0.2, "qt_folds": 5,
  "qt_levels": 10, "qt_task_floor": 100, "quality_target": 0.97, "reference_tier": -1,
  "seed": 24301, "sequential": true, "skip_tau": 0.0, "skip_taus": [0.0, 0.2],
  "task_quality_targets": {}},
 "plans": [],
 "provenance": {"alpha": 0.05, "created_utc": "2026-11-30T10:00:00Z",
  "data_hash": "0123456789abcdef", "epsilon": 0.1, "goal": "guarantee",
  "library_version": "0.2.0", "method": "ltt", "n": 4000},
 "selections": [],
 "table": {"alphas": [0.05], "base_alpha": 0, "columns": ["t", "*"], "delta": [0.61, 0.61,
  "inf", "inf"], "expected_cost": [null, null], "mix_column": [-1, -1], "mix_share": [0.0, 0.0],
  "skip_tau": [0.0, 0.0], "start_tier": [0, 0], "tiers": ["cheap", "strong"],
  "u_before_call": [0, 0]}
})";
}  // namespace

TEST_CASE("calibration stores per-cell curves and the JSON keeps them", "[online][curves]") {
  ConformalCalibrator cal;  // LTT, alpha .05, curves on the .005 grid up to .5
  const auto& res = cal.calibrate(synthetic(11));
  // One curve per non-final cell: tier 0 x {t, s, *}.
  REQUIRE(res.curves.size() == 3);
  const size_t n_grid = ThresholdCurve::grid(0.005, 0.5).size();
  for (const auto& c : res.curves) {
    INFO(c.column);
    CHECK(c.tier == 0);
    CHECK(c.curve.step == 0.005);
    CHECK(c.curve.delta.size() == n_grid);
    // The curve passes through the calibrated threshold at the base alpha.
    CHECK(c.curve.delta_for(0.05) == cal.threshold(0, c.column));
    // Stricter alpha, stricter threshold.
    for (size_t i = 1; i < c.curve.delta.size(); ++i)
      CHECK(c.curve.delta[i] >= c.curve.delta[i - 1]);
  }
  const CellCurve* t = nullptr;
  const CellCurve* s = nullptr;
  for (const auto& c : res.curves) {
    if (c.column == "t") t = &c;
    if (c.column == "s") s = &c;
  }
  REQUIRE(t);
  REQUIRE(s);
  CHECK(t->source == "t");
  // "s" borrowed its delta from "*", and so its curve.
  REQUIRE(cal.cell(0, "s")->status == CellStatus::pooled);
  CHECK(s->source == "*");
  // Graded: finite and below the calibrated delta at .025, nothing accepted at .005.
  const double d05 = t->curve.delta_for(0.05), d025 = t->curve.delta_for(0.025);
  CHECK(std::isfinite(d025));
  CHECK(d025 < d05 - 0.2);
  CHECK(t->curve.delta_for(0.005) == -kInf);
  // It matches ConformalCalibrator::curve() for a cell whose delta is its own.
  CHECK(cal.curve(0, "t", ThresholdCurve::grid(0.005, 0.5)) == t->curve.delta);

  // Save / load: same curves, format_version 2.
  const std::string path = temp_path("online_curves_cal");
  cal.save(path);
  auto back = ConformalCalibrator::load(path);
  REQUIRE(back.result().curves.size() == res.curves.size());
  for (size_t i = 0; i < res.curves.size(); ++i) {
    CHECK(back.result().curves[i].tier == res.curves[i].tier);
    CHECK(back.result().curves[i].column == res.curves[i].column);
    CHECK(back.result().curves[i].source == res.curves[i].source);
    CHECK(back.result().curves[i].curve.step == res.curves[i].curve.step);
    CHECK(back.result().curves[i].curve.delta == res.curves[i].curve.delta);
  }
  const std::string text = cal.to_json();
  CHECK(text.find("\"format_version\": 2") != std::string::npos);
  CHECK(back.to_json() == text);
  std::remove(path.c_str());

  // A curve naming a column the table lacks is a parse error that names the field.
  std::string bad = text;
  auto pos = bad.find("\"column\": \"s\"");
  REQUIRE(pos != std::string::npos);
  bad.replace(pos, 13, "\"column\": \"q\"");
  CHECK_THROWS_WITH(ConformalCalibrator::from_json(bad, "cal.json"),
                    Catch::Contains("cal.json") && Catch::Contains("curves.cells[") &&
                        Catch::Contains("column"));
  // So is a curve on a tier that is not a non-final one (here: -1).
  std::string neg = text;
  pos = neg.find("\"tier\": 0", neg.find("\"curves\""));
  REQUIRE(pos != std::string::npos);
  neg.replace(pos, 10, "\"tier\": -1");
  CHECK_THROWS_WITH(ConformalCalibrator::from_json(neg, "cal.json"),
                    Catch::Contains("curves.cells[") && Catch::Contains("tier"));
  // No curves when asked for none.
  CalibrationOptions none;
  none.curve_max_alpha = 0;
  ConformalCalibrator c0(none);
  CHECK(c0.calibrate(synthetic(11)).curves.empty());
  CHECK(c0.to_json().find("\"curves\"") == std::string::npos);
}

TEST_CASE("a format_version 1 file still loads, without curves", "[online][curves]") {
  auto cal = ConformalCalibrator::from_json(kVersion1, "v1.json");
  CHECK(cal.threshold(0, "t") == 0.61);
  CHECK(cal.threshold(1, "t") == kInf);
  CHECK(cal.result().curves.empty());
  CHECK(cal.options().curve_max_alpha == 0.5);  // default: a new calibration would store them
  OnlineRecalibrator rec(cal.thresholds());
  CHECK(rec.set_curves(cal.result()) == 0);
  // Neither stored curves nor data to compute them from.
  CHECK_THROWS_AS(rec.set_curves_from(cal), Error);
  CHECK_FALSE(find_cell(rec.cells(), 0, "t")->has_curve);
  // A version this library does not know is refused.
  std::string v9 = kVersion1;
  auto pos = v9.find("\"format_version\": 1");
  REQUIRE(pos != std::string::npos);
  v9.replace(pos, 19, "\"format_version\": 9");
  CHECK_THROWS_WITH(ConformalCalibrator::from_json(v9, "v9.json"),
                    Catch::Contains("format_version"));
}

TEST_CASE("a loaded calibration adapts along its curve under drift", "[online][curves]") {
  ConformalCalibrator fitted;
  fitted.calibrate(synthetic(11));
  const std::string path = temp_path("online_curves_drift");
  fitted.save(path);
  auto cal = ConformalCalibrator::load(path);  // a deployment: no calibration data
  std::remove(path.c_str());
  const double calibrated = cal.threshold(0, "t");
  REQUIRE(std::isfinite(calibrated));

  std::vector<DriftEvent> events;
  OnlineOptions o;  // joint target, alpha .05, gamma .005
  o.audit_rate = 1.0;
  o.on_event = [&](const DriftEvent& e) { events.push_back(e); };
  OnlineRecalibrator rec(cal.thresholds(), o);
  CHECK(rec.set_curves_from(cal) == 3);  // the stored curves, not the (absent) data
  const ThresholdCurve* curve = nullptr;
  for (const auto& c : cal.result().curves)
    if (c.column == "t") curve = &c.curve;
  REQUIRE(curve);

  // One request per step, served as the engine would: tier 0 answers when u <= delta, else
  // tier 1 does; every answer is labeled at once. p_bad(u) is the bad rate at tier 0.
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> U(0, 1);
  size_t step = 0;
  auto run = [&](size_t n, double bad_slope, std::vector<double>* deltas) {
    for (size_t i = 0; i < n; ++i, ++step) {
      const double d = rec.snapshot()->lookup(0, "t", std::nan(""));
      const double u = U(rng);
      const bool bad = U(rng) < bad_slope * u;
      DecisionNote note;
      note.task = "t";
      if (u <= d) {
        note.answer_tier = 0;
        note.answer_accepted = true;
      } else {
        note.rejected_tiers = {0};
        note.answer_tier = 1;
      }
      const std::string id = "q" + std::to_string(step);
      rec.record_decision(id, note);
      REQUIRE(rec.record_outcome(id, u <= d ? !bad : true));
      if (deltas) deltas->push_back(rec.snapshot()->lookup(0, "t", std::nan("")));
    }
  };
  // Mean of the finite thresholds from index `from` on, and their share.
  auto mean = [](const std::vector<double>& v, size_t from, double* finite_share = nullptr) {
    double s = 0;
    size_t n = 0;
    for (size_t i = from; i < v.size(); ++i)
      if (std::isfinite(v[i])) {
        s += v[i];
        ++n;
      }
    if (finite_share) *finite_share = static_cast<double>(n) / static_cast<double>(v.size() - from);
    return n ? s / static_cast<double>(n) : -kInf;
  };

  // In control (bad rate half the calibration's): no alarm, the threshold does not tighten.
  std::vector<double> calm;
  run(1500, 0.05, &calm);
  auto sum0 = rec.cells();
  const CellSummary* c0 = find_cell(sum0, 0, "t");
  REQUIRE(c0);
  CHECK(c0->has_curve);
  CHECK(c0->calibrated_delta == calibrated);
  CHECK(c0->labels == 1500);
  CHECK(c0->cusum_alarms + c0->window_alarms + c0->stall_alarms == 0);
  CHECK(c0->last_alarm.empty());
  double calm_finite = 0;
  CHECK(mean(calm, 500, &calm_finite) >= calibrated);
  CHECK(calm_finite == 1.0);

  // Drift: the bad rate at tier 0 triples (six times the calm phase). Joint ACI settles where
  // P(accept and bad) = .15 d^2 = .05, d ~ .58, well below the calibrated ~.9; on the curve
  // that is alpha ~ .035, clear of its -inf region (alpha < .025 here).
  std::vector<double> drift;
  run(4000, 0.3, &drift);
  double drift_finite = 0;
  const double drift_mean = mean(drift, 2000, &drift_finite);
  INFO("calibrated " << calibrated << ", mean finite delta in drift " << drift_mean
                     << ", finite share " << drift_finite);
  CHECK(drift_mean < calibrated - 0.2);
  CHECK(drift_mean > 0.3);
  // Mostly a finite threshold: ACI's noise (one bad answer moves alpha_t by ~one grid step)
  // only now and then dips below the curve's finite region.
  CHECK(drift_finite >= 0.9);
  auto st = rec.cell_state(0, "t");
  // Stricter, on the curve, and not "accept nothing".
  CHECK(st.delta == curve->delta_for(st.alpha_t));
  CHECK(std::isfinite(st.delta));
  CHECK(st.delta < calibrated);
  // The drift raised alarms, and the summary shows them.
  auto sum1 = rec.cells();
  const CellSummary* c1 = find_cell(sum1, 0, "t");
  REQUIRE(c1);
  CHECK(c1->cusum_alarms >= 1);
  CHECK(c1->window_alarms + c1->cusum_alarms + c1->stall_alarms == st.alarms);
  CHECK(!c1->last_alarm.empty());
  CHECK(c1->last_alarm_labels > 1500);
  CHECK(c1->last_alarm_unix_s > 0);
  CHECK(c1->delta == st.delta);
  CHECK(c1->alpha_t == st.alpha_t);
  size_t cusum_events = 0;
  for (const auto& e : events) cusum_events += e.kind == "cusum" && e.column == "t";
  CHECK(cusum_events == c1->cusum_alarms);
  // The summary lists exactly the adapted cells: tier 0 x {t, s, *}.
  CHECK(sum1.size() == 3);
  CHECK(find_cell(sum1, 1, "t") == nullptr);

  // The bad rate falls back: alpha_t climbs and the threshold loosens again.
  std::vector<double> recovery;
  run(4000, 0.02, &recovery);
  const double recovery_mean = mean(recovery, 2000);
  INFO("mean delta in recovery " << recovery_mean);
  CHECK(recovery_mean > drift_mean + 0.25);
  CHECK(rec.cell_state(0, "t").delta >= calibrated);
}

TEST_CASE("quality-target results carry no curves; ACI only monitors", "[online][curves]") {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> U(0, 1);
  CalibrationData d;
  d.tiers = {"cheap", "strong"};
  for (int i = 0; i < 1000; ++i) {
    double u = U(rng);
    bool bad = U(rng) < 0.5 * u;
    d.tasks.push_back("t");
    d.u.push_back({u, 0.0});
    d.bad.push_back({static_cast<uint8_t>(bad), 0});
    d.quality.push_back({bad ? 0.0 : 1.0, 1.0});
    d.cost.push_back({0.001, 0.01});
  }
  CalibrationOptions qo;
  qo.goal = CalibrationGoal::quality_target;
  qo.quality_target = 0.9;
  ConformalCalibrator cal(qo);
  CHECK(cal.calibrate(d).curves.empty());
  OnlineRecalibrator rec(cal.thresholds());
  CHECK(rec.set_curves(cal.result()) == 0);
  // Not from its data either: an alpha curve would replace the plan's thresholds.
  CHECK(rec.set_curves_from(cal) == 0);
  // So the plan's thresholds stay while alpha_t > 0, and ACI and the monitors still run.
  const double plan = cal.threshold(0, "t");
  for (int i = 0; i < 20; ++i) {
    const std::string id = "p" + std::to_string(i);
    rec.record_decision(id, DecisionNote{"t", {}, 0, true});
    rec.record_outcome(id, i % 2 == 0);
  }
  auto st = rec.cell_state(0, "t");
  CHECK(st.labels == 20);
  CHECK(st.alpha_t > 0);
  CHECK(st.alpha_t < 0.05);
  CHECK(st.delta == plan);
  CHECK_FALSE(find_cell(rec.cells(), 0, "t")->has_curve);
}
