// Cascade engine overhead, ACI update and threshold lookup + decision (docs/results.md).
#include <benchmark/benchmark.h>

#include <memory>

#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/engine.hpp"

using namespace routenlp;

namespace {
// Tiers that return at once: what is left of a run is the engine's own overhead.
std::shared_ptr<ModelTier> instant_tier(const std::string& name, double confidence) {
  return std::make_shared<CallbackTier>(
      name,
      [confidence](const TierRequest&) {
        TierResponse r;
        r.text = "ok";
        r.confidence = confidence;
        r.cost = 0.001;
        return r;
      },
      0.001);
}

std::shared_ptr<ThresholdTable> table(size_t tasks) {
  std::vector<std::string> cols;
  for (size_t i = 0; i < tasks; ++i) cols.push_back("task" + std::to_string(i));
  cols.push_back("*");
  auto t = std::make_shared<ThresholdTable>();
  t->reset_shape({"t0", "t1", "t2"}, cols, {0.05}, 0);
  for (size_t c = 0; c < cols.size(); ++c) {
    t->at(0, 0, c) = 0.2;
    t->at(0, 1, c) = 0.2;
  }
  return t;
}

void run_engine(benchmark::State& state, double c0, double c1) {
  CascadeOptions o;
  o.audit_rate = 0.1;
  CascadeEngine eng({instant_tier("t0", c0), instant_tier("t1", c1), instant_tier("t2", 1.0)},
                    table(16), o);
  CascadeRequest r;
  r.id = "bench-request-000001";
  r.query = "What is the capital of France? Answer in one word.";
  r.task = "task7";
  for (auto _ : state) benchmark::DoNotOptimize(eng.run(r));
}
}  // namespace

// Accepted at tier 0 (one tier call).
static void BM_EngineRun_Accept0(benchmark::State& s) { run_engine(s, 0.9, 0.9); }
BENCHMARK(BM_EngineRun_Accept0);
// Escalated through all 3 tiers.
static void BM_EngineRun_Escalate3(benchmark::State& s) { run_engine(s, 0.1, 0.1); }
BENCHMARK(BM_EngineRun_Escalate3);

// Baseline: the same tier calls made directly (subtract to get the engine overhead).
static void BM_TierCallsOnly3(benchmark::State& state) {
  auto a = instant_tier("t0", 0.1), b = instant_tier("t1", 0.1), c = instant_tier("t2", 1.0);
  TierRequest r;
  r.query = "What is the capital of France? Answer in one word.";
  for (auto _ : state) {
    benchmark::DoNotOptimize(a->call(r));
    benchmark::DoNotOptimize(b->call(r));
    benchmark::DoNotOptimize(c->call(r));
  }
}
BENCHMARK(BM_TierCallsOnly3);

// Multi-threaded runs (contention on metrics and snapshots).
static void BM_EngineRun_Threads(benchmark::State& state) {
  static CascadeEngine* eng = nullptr;
  if (state.thread_index() == 0)
    eng = new CascadeEngine(
        {instant_tier("t0", 0.1), instant_tier("t1", 0.9), instant_tier("t2", 1.0)}, table(16));
  CascadeRequest r;
  r.id = "bench-" + std::to_string(state.thread_index());
  r.query = "q";
  r.task = "task3";
  for (auto _ : state) benchmark::DoNotOptimize(eng->run(r));
  if (state.thread_index() == 0) {
    delete eng;
    eng = nullptr;
  }
}
BENCHMARK(BM_EngineRun_Threads)->Threads(1)->Threads(4)->Threads(8)->UseRealTime();

static void BM_AciUpdate(benchmark::State& state) {
  AciTracker aci;
  ThresholdCurve curve;
  curve.step = 0.005;
  for (double a : ThresholdCurve::grid(0.005, 0.5)) curve.delta.push_back(a * 2);
  uint64_t x = 88172645463325252ULL;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    aci.update(true, (x & 31) == 0);
    benchmark::DoNotOptimize(curve.delta_for(aci.alpha_t()));
  }
}
BENCHMARK(BM_AciUpdate);

static void BM_ThresholdLookupDecision(benchmark::State& state) {
  auto t = table(64);
  const std::string task = "task42";
  double u = 0.15;
  for (auto _ : state) {
    int c = t->column_for(task);
    size_t a = t->alpha_index(std::numeric_limits<double>::quiet_NaN());
    bool accept = u <= t->at(a, 0, static_cast<size_t>(c));
    benchmark::DoNotOptimize(accept);
    u = u < 0.3 ? u + 0.01 : 0.1;
  }
}
BENCHMARK(BM_ThresholdLookupDecision);

static void BM_SnapshotLoad(benchmark::State& state) {
  OnlineRecalibrator rec(table(16));
  for (auto _ : state) benchmark::DoNotOptimize(rec.snapshot());
}
BENCHMARK(BM_SnapshotLoad);

BENCHMARK_MAIN();
