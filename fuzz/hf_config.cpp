// Fuzz target: HF config.json (EncoderConfig::from_hf_config_json_string, encoder.hpp).
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/encoder/encoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("hf_config", [&] {
    auto c = routenlp::EncoderConfig::from_hf_config_json_string(rn_fuzz::as_string(data, size), "fuzz.json");
    const std::string once = c.to_hf_config_json();
    auto back = routenlp::EncoderConfig::from_hf_config_json_string(once, "round-trip");
    rn_fuzz::check(back.to_hf_config_json() == once, "hf_config", "to_hf_config_json + parse is not stable");
    c.validate();  // Error(model) for inconsistent sizes is an expected outcome
  });
}
