// Fit + calibration time of quality-target mode at production size: 10,000 queries x 9 tiers
// (the budget: <= 60 s on 2 cores). Fit = the learned acceptance score on the answers;
// calibration = plan fronts, the global allocation path and the 5-fold cross-fitted certificate.
// Synthetic rows, fixed seed; timed with Google Benchmark (real time, one iteration each).
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "routenlp/calibration/acceptance.hpp"
#include "routenlp/calibration/calibrator.hpp"

using namespace routenlp;

namespace {
struct Rows {
  CalibrationData cal;
  AcceptanceData acc;
};

// 9 tiers with rising skill and cost; 14 tasks of different difficulty; confidences that are
// informative but noisy; answers that agree when right.
Rows make_rows(size_t n, size_t K) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> U(0, 1);
  std::normal_distribution<double> N(0, 1);
  Rows r;
  for (size_t k = 0; k < K; ++k) r.cal.tiers.push_back("tier" + std::to_string(k));
  r.acc.tiers = r.cal.tiers;
  for (size_t i = 0; i < n; ++i) {
    const size_t t = i % 14;
    const double z = 0.05 * double(t) + 0.3 * U(rng);
    std::vector<double> u(K), q(K), c(K), conf(K);
    std::vector<uint8_t> bad(K);
    std::vector<std::string> ans(K);
    for (size_t k = 0; k < K; ++k) {
      const double skill = 0.2 + 0.8 * double(k) / double(K - 1);
      const double p = 1.0 / (1.0 + std::exp(-(skill - z) / 0.1));
      const bool ok = U(rng) < p;
      conf[k] = std::min(1.0, std::max(0.0, p + 0.2 * N(rng)));
      u[k] = 1.0 - conf[k];
      q[k] = ok;
      bad[k] = !ok;
      c[k] = 1e-5 * std::pow(2.0, double(k));
      ans[k] = ok ? "right" : "wrong" + std::to_string(k);
    }
    const std::string task = "task" + std::to_string(t);
    r.cal.tasks.push_back(task);
    r.cal.u.push_back(u);
    r.cal.bad.push_back(bad);
    r.cal.quality.push_back(q);
    r.cal.cost.push_back(c);
    r.acc.tasks.push_back(task);
    r.acc.confidence.push_back(conf);
    r.acc.answers.push_back(ans);
    r.acc.acceptable.push_back(std::vector<uint8_t>(q.begin(), q.end()));
  }
  return r;
}

const Rows& rows() {
  static const Rows r = make_rows(10000, 9);
  return r;
}
}  // namespace

static void BM_AcceptanceFit_10k_x9(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(AcceptanceModel::fit(rows().acc));
}
BENCHMARK(BM_AcceptanceFit_10k_x9)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

static void BM_QualityTargetCalibration_10k_x9(benchmark::State& state) {
  CalibrationOptions o;
  o.goal = CalibrationGoal::quality_target;
  o.quality_target = 0.97;
  for (auto _ : state) {
    ConformalCalibrator cal(o);
    benchmark::DoNotOptimize(cal.calibrate(rows().cal).table);
  }
}
BENCHMARK(BM_QualityTargetCalibration_10k_x9)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// With a router's p: the skip level is searched too (six levels).
static void BM_QualityTargetCalibration_Router_10k_x9(benchmark::State& state) {
  CalibrationData d = rows().cal;
  for (const auto& u : d.u) {
    std::vector<double> p(u.size());
    for (size_t k = 0; k < u.size(); ++k) p[k] = 1.0 - u[k];
    d.router_p.push_back(p);
  }
  CalibrationOptions o;
  o.goal = CalibrationGoal::quality_target;
  o.quality_target = 0.97;
  for (auto _ : state) {
    ConformalCalibrator cal(o);
    benchmark::DoNotOptimize(cal.calibrate(d).table);
  }
}
BENCHMARK(BM_QualityTargetCalibration_Router_10k_x9)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
