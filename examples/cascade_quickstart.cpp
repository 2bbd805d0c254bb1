// Quick start: a two-tier cascade over host-supplied tiers, with thresholds calibrated so that
// at most alpha of the cheap tier's *accepted* answers are bad (Learn-then-Test).
//
// The "models" here are simulated so the program runs anywhere: each query has a hidden
// difficulty z; the cheap tier is right when z < 0.6 and reports a noisy confidence; the
// strong tier is always right and costs 20x more. Replace the two lambdas with calls to your
// own backends (vLLM, a cloud API, a local classifier).
#include <routenlp/routenlp.hpp>

#include <cstdio>
#include <memory>
#include <random>
#include <string>

using namespace routenlp;

namespace {

// Deterministic hidden difficulty and confidence for a query id.
struct Sim {
  double z;     // difficulty in [0,1)
  double conf;  // cheap tier's confidence
};
Sim simulate(const std::string& id) {
  std::mt19937_64 rng(std::hash<std::string>{}(id));
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.1);
  double z = uni(rng);
  double conf = std::min(1.0, std::max(0.0, 1.0 - z + noise(rng)));
  return {z, conf};
}

}  // namespace

int main() {
  const double cheap_cost = 0.0005, strong_cost = 0.01;

  // 1. Calibration data: per query, the cheap tier's uncertainty u = 1 - confidence and
  //    whether its answer was bad (from labelled traffic or an offline evaluation).
  CalibrationData cal;
  cal.tiers = {"cheap", "strong"};
  for (int i = 0; i < 3000; ++i) {
    Sim s = simulate("calib-" + std::to_string(i));
    cal.tasks.push_back("faq");
    cal.u.push_back({1.0 - s.conf, 0.0});
    cal.bad.push_back({static_cast<uint8_t>(s.z >= 0.6), 0});
  }
  CalibrationOptions opts;
  opts.alpha = 0.05;  // at most 5% bad among accepted cheap answers (w.p. >= 1 - epsilon)
  ConformalCalibrator calibrator(opts);
  calibrator.calibrate(cal);
  std::printf("calibrated: accept the cheap tier iff u <= %.4f\n",
              calibrator.threshold(0, "faq"));

  // 2. Tiers: any thread-safe callable. Errors and exceptions escalate, never crash.
  auto cheap = std::make_shared<CallbackTier>(
      "cheap",
      [&](const TierRequest& r) {
        Sim s = simulate(r.request_id);
        TierResponse out;
        out.text = s.z < 0.6 ? "right" : "wrong";
        out.confidence = s.conf;
        out.cost = cheap_cost;
        return out;
      },
      cheap_cost);
  auto strong = std::make_shared<CallbackTier>(
      "strong",
      [&](const TierRequest&) {
        TierResponse out;
        out.text = "right";
        out.cost = strong_cost;
        return out;
      },
      strong_cost);

  // 3. The engine: run() is const and thread-safe.
  CascadeEngine engine({cheap, strong}, calibrator.thresholds());
  int n = 5000, accepted_cheap = 0, accepted_bad = 0;
  double cost = 0.0;
  for (int i = 0; i < n; ++i) {
    CascadeRequest req;
    req.id = "live-" + std::to_string(i);
    req.query = "How do I reset my password?";
    req.task = "faq";
    CascadeResult res = engine.run(req);
    cost += res.cost;
    if (res.tier == 0) {
      ++accepted_cheap;
      accepted_bad += res.answer == "wrong";
    }
  }
  std::printf("cheap tier answered %.1f%% of queries; bad among them %.2f%% (alpha 5%%)\n",
              100.0 * accepted_cheap / n, accepted_cheap ? 100.0 * accepted_bad / accepted_cheap : 0.0);
  std::printf("cost %.2f USD vs %.2f USD always-strong (ratio %.3f)\n", cost, n * strong_cost,
              cost / (n * strong_cost));
  // The guarantee is statistical; with these settings the realised rate sits near 4-5%.
  return accepted_cheap > 0 && accepted_bad <= 0.08 * accepted_cheap ? 0 : 1;
}
