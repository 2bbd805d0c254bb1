// Fuzz target: saved calibration JSON (ConformalCalibrator::from_json, conformal.hpp).
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/calibration/calibrator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("calibration_json", [&] {
    auto cal = routenlp::ConformalCalibrator::from_json(rn_fuzz::as_string(data, size), "fuzz.json");
    auto table = cal.thresholds();
    if (!table) return;
    // Look a threshold up for every tier and column the file declares, and for unknown ones.
    for (size_t t = 0; t < table->tiers.size(); ++t) {
      for (const auto& c : table->columns) {
        (void)cal.threshold(t, c);
        (void)table->lookup(t, c, 0.01);
      }
      (void)cal.threshold(t, "no-such-task");
      (void)table->lookup(t, "legal/clause", 0.5);
    }
    for (const auto& c : table->columns) (void)table->column_for_request(c, "rn-1");
    // What save() writes must load again.
    auto back = routenlp::ConformalCalibrator::from_json(cal.to_json(), "round-trip");
    rn_fuzz::check(back.thresholds() && back.thresholds()->tiers == table->tiers, "calibration_json",
                   "to_json + from_json changed the tiers");
  });
}
