// Fuzz target: a saved acceptance model (AcceptanceModel::from_json, acceptance.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "routenlp/calibration/acceptance.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("acceptance_json", [&] {
    auto m = routenlp::AcceptanceModel::from_json(rn_fuzz::as_string(data, size), "fuzz.json");
    // Score every tier the file declares, with and without earlier answers.
    std::vector<routenlp::EarlierAnswer> earlier;
    for (size_t t = 0; t < m.tier_count(); ++t) {
      const int tier = static_cast<int>(t);
      (void)m.used(tier);
      (void)m.p_acceptable(tier, "gsm8k", 0.7, 0.5, "The answer is 42.", earlier);
      (void)m.p_acceptable(tier, "no-such-task", std::nan(""), 0.1, "", earlier);
      earlier.push_back({tier, "the answer is 41", 0.4});
    }
    auto back = routenlp::AcceptanceModel::from_json(m.to_json(), "round-trip");
    rn_fuzz::check(back.tiers() == m.tiers(), "acceptance_json", "to_json + from_json changed the tiers");
  });
}
