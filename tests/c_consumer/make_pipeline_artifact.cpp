// Writes the pipeline artifact that the C99 consumer (pipeline.c) and the Python package test
// load: tiers small/large, a task-prior router and guarantee-mode thresholds (alpha 0.1)
// calibrated on synthetic rows. Run by ctest as the fixture `pipeline_artifact`.
//
// What the consumers may rely on (they assert it):
//  - router p (task prior): math {0.75, 1.0}, qa {0.2, 0.9}, any other task the overall
//    rates {0.475, 0.95} with task_unseen set;
//  - the small tier's threshold lies between u = 0.25 (1 - math's p) and u = 0.8 (1 - qa's
//    p), so a small tier that reports no confidence is accepted for math and escalates for qa;
//  - cells (0, math) and (0, qa) are certified, (1, *) is final_tier.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "routenlp/calibration/calibrator.hpp"
#include "routenlp/error.hpp"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/neural.hpp"

namespace {

const char* kPortfolio = R"(tiers:
  - name: small
    price_per_1m_input: 0.5
    price_per_1m_output: 0.5
  - name: large
    price_per_1m_input: 10.0
    price_per_1m_output: 30.0
alpha: 0.1
)";

// Labels with exact per-task acceptance rates (see the header comment).
routenlp::RoutingLabels router_labels() {
  routenlp::RoutingLabels l;
  l.tiers = {"small", "large"};
  for (int j = 0; j < 200; ++j) {
    l.queries.push_back({"math question " + std::to_string(j), "math"});
    l.acceptable.push_back({static_cast<int8_t>(j % 4 != 0), 1});
    l.queries.push_back({"qa question " + std::to_string(j), "qa"});
    l.acceptable.push_back({static_cast<int8_t>(j % 5 == 0), static_cast<int8_t>(j % 10 != 3)});
  }
  for (size_t i = 0; i < l.queries.size(); ++i) l.quality.push_back({1.0, 1.0});
  return l;
}

// Small-tier answers are bad with probability u^2 (u uniform), the large tier's never: with
// alpha 0.1 the small tier's threshold lands near 0.5.
routenlp::CalibrationData calibration_rows() {
  routenlp::CalibrationData d;
  d.tiers = {"small", "large"};
  uint64_t s = 0x9e3779b97f4a7c15ull;
  auto uniform = [&s] {  // splitmix64: deterministic across platforms
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
  };
  for (int i = 0; i < 1600; ++i) {
    const double u = uniform();
    d.tasks.push_back(i % 2 ? "qa" : "math");
    d.u.push_back({u, 0.0});
    d.bad.push_back({static_cast<uint8_t>(uniform() < u * u), 0});
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <artifact dir>\n", argv[0]);
    return 2;
  }
  try {
    routenlp::PipelineParts parts;
    parts.portfolio = routenlp::parse_portfolio(kPortfolio, "make_pipeline_artifact");
    parts.router = routenlp::make_task_prior_router(router_labels());
    routenlp::CalibrationOptions o;
    o.alpha = 0.1;
    auto cal = std::make_shared<routenlp::ConformalCalibrator>(o);
    cal->calibrate(calibration_rows());
    const double d_math = cal->threshold(0, "math"), d_qa = cal->threshold(0, "qa");
    if (!(d_math > 0.25 && d_math < 0.8 && d_qa > 0.25 && d_qa < 0.8)) {
      std::fprintf(stderr,
                   "make_pipeline_artifact: small-tier thresholds %.3f (math) %.3f (qa) "
                   "are outside (0.25, 0.8)\n",
                   d_math, d_qa);
      return 1;
    }
    parts.calibration = cal;
    parts.system = "custom";
    parts.description = "C ABI / Python test artifact: task-prior router, LTT alpha 0.1";
    routenlp::Pipeline(std::move(parts)).save(argv[1], /*overwrite=*/true);
    std::printf("make_pipeline_artifact: wrote %s (small-tier delta math %.3f, qa %.3f)\n", argv[1],
                d_math, d_qa);
    return 0;
  } catch (const routenlp::Error& e) {
    std::fprintf(stderr, "make_pipeline_artifact: %s: %s\n", routenlp::status_name(e.code()),
                 e.what());
    return 1;
  }
}
