// Fuzz target: router training config JSON (RouterTrainConfig::from_json, router.hpp).
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/neural.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("router_train_config", [&] {
    auto c = routenlp::RouterTrainConfig::from_json(rn_fuzz::as_string(data, size), "fuzz.json");
    // to_json() must give a config that loads again to the same JSON.
    const std::string once = c.to_json();
    auto back = routenlp::RouterTrainConfig::from_json(once, "round-trip");
    rn_fuzz::check(back.to_json() == once, "router_train_config", "to_json + from_json is not stable");
  });
}
