// Writes the seeds of the fuzz targets whose inputs are routenlp's own output formats
// (calibration and acceptance-model JSON, decision-log lines), so that they follow the
// writers: build the fuzz_make_seeds target and run
//   fuzz_make_seeds fuzz/corpus
// Synthetic data, fixed seeds: the files come out the same on every run.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/calibration/calibrator.hpp"

using namespace routenlp;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::printf("%s (%zu bytes)\n", path.c_str(), text.size());
}

// Two or three tiers; a cheap tier right about 70% of the time, more often when its u is low.
CalibrationData synthetic_rows(size_t n, size_t tiers, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  CalibrationData d;
  const char* names[] = {"small", "medium", "large"};
  for (size_t t = 0; t < tiers; ++t) d.tiers.push_back(names[3 - tiers + t]);
  for (size_t i = 0; i < n; ++i) {
    d.tasks.push_back(i % 3 == 0 ? "gsm8k" : i % 3 == 1 ? "legal/clause" : "mt-bench");
    std::vector<double> u, q, c;
    std::vector<uint8_t> bad;
    for (size_t t = 0; t < tiers; ++t) {
      const double ut = U(rng);
      const bool last = t + 1 == tiers;
      const bool ok = last || U(rng) < 1.0 - 0.6 * ut;
      u.push_back(ut);
      bad.push_back(ok ? 0 : 1);
      q.push_back(ok ? 1.0 : 0.0);
      c.push_back(0.0001 * std::pow(20.0, static_cast<double>(t)));
    }
    d.u.push_back(u);
    d.bad.push_back(bad);
    d.quality.push_back(q);
    d.cost.push_back(c);
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];

  // Calibration: guarantee mode (2 tiers, an extra alpha) and quality-target mode (3 tiers).
  {
    CalibrationOptions o;
    o.alpha = 0.3;
    o.extra_alphas = {0.4};
    o.cell_floor = 50;
    o.min_expected_accepted = 10;
    ConformalCalibrator cal(o);
    cal.calibrate(synthetic_rows(1500, 2, 1));
    write(dir + "/calibration_json/two_tiers.json", cal.to_json() + "\n");
  }
  {
    CalibrationOptions o;
    o.goal = CalibrationGoal::quality_target;
    o.quality_target = 0.9;
    o.qt_task_floor = 30;
    o.qt_levels = 4;
    ConformalCalibrator cal(o);
    cal.calibrate(synthetic_rows(300, 3, 2));
    write(dir + "/calibration_json/quality_target.json", cal.to_json() + "\n");
  }

  // Acceptance model over three tiers: agreement between answers predicts acceptability.
  {
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> U(0, 1);
    AcceptanceData a;
    a.tiers = {"small", "medium", "large"};
    for (size_t i = 0; i < 400; ++i) {
      a.tasks.push_back(i % 2 ? "gsm8k" : "mt-bench");
      const bool ok0 = U(rng) < 0.5, ok1 = U(rng) < 0.7;
      a.confidence.push_back({0.5, std::min(0.99, 0.4 + (ok1 ? 0.2 : 0.0) + 0.3 * U(rng)), 0.9});
      a.answers.push_back({ok0 ? "42" : "41", ok1 ? "42" : "the answer is 40", "42"});
      a.acceptable.push_back({uint8_t(ok0), uint8_t(ok1), 1});
    }
    AcceptanceOptions o;
    o.folds = 3;
    write(dir + "/acceptance_json/three_tiers.json", AcceptanceModel::fit(a, o).to_json() + "\n");
  }

  // A decision-log line as the engine writes it.
  {
    CascadeResult r;
    r.request_id = "rn-7";
    r.task = "gsm8k";
    r.answer = "42";
    r.tier = 1;
    r.tier_name = "large";
    r.stop_reason = "last_tier";
    r.uncertain = true;
    r.cost = 0.0031;
    r.latency_ms = 40.5;
    r.alpha = 0.1;
    TraceEntry e0;
    e0.tier = 0;
    e0.tier_name = "small";
    e0.cost = 0.0001;
    e0.uncertainty = 0.7;
    e0.delta = 0.3;
    e0.decision = TraceDecision::escalated;
    TraceEntry e1 = e0;
    e1.tier = 1;
    e1.tier_name = "large";
    e1.cost = 0.003;
    e1.uncertainty = std::nan("");
    e1.delta = INFINITY;
    e1.decision = TraceDecision::final_answer;
    r.trace = {e0, e1};
    write(dir + "/decision_log/engine.jsonl", decision_to_json(r) + "\n");
  }
  return 0;
}
