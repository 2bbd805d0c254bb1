// Fuzz target: the `routenlp serve` config file (load_serve_config, serve.hpp). It reads a
// path, so each input is written to serve.yaml in a private directory that also holds the
// files a config may name relative to itself: portfolio.yaml, train.jsonl (for the
// task-prior / tfidf-logreg / knn routers) and calibration.json.
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/serve/serve.hpp"

#ifndef RN_FUZZ_CORPUS_DIR
#error "RN_FUZZ_CORPUS_DIR (fuzz/corpus) must be defined"
#endif

namespace {

void set_up_once() {
  static const bool done = [] {
    rn_fuzz::write_temp("portfolio.yaml",
                        "tiers:\n"
                        "  - {name: small, price_per_1m_input: 0.6, price_per_1m_output: 0.6}\n"
                        "  - {name: large, price_per_1m_input: 10, price_per_1m_output: 30}\n"
                        "alpha: 0.1\n");
    std::string rows;
    for (int i = 0; i < 12; ++i) {
      const std::string q = i % 2 ? "what is " + std::to_string(i) + " plus two" : "translate word " + std::to_string(i);
      const std::string task = i % 2 ? "math" : "mt";
      rows += "{\"id\": \"r" + std::to_string(i) + "\", \"task\": \"" + task + "\", \"query\": \"" + q +
              "\", \"split\": \"train\", \"outcomes\": {\"small\": {\"quality\": " + (i % 3 ? "1.0" : "0.0") +
              ", \"cost\": 0.0001}, \"large\": {\"quality\": 1.0, \"cost\": 0.003}}}\n";
    }
    rn_fuzz::write_temp("train.jsonl", rows);
    // A real calibration file: the calibration_json target's seed.
    std::ifstream in(std::string(RN_FUZZ_CORPUS_DIR) + "/calibration_json/two_tiers.json", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    rn_fuzz::write_temp("calibration.json", ss.str());
    return true;
  }();
  (void)done;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  set_up_once();
  return rn_fuzz::run("serve_yaml", [&] {
    routenlp::ServeConfig c = routenlp::load_serve_config(rn_fuzz::write_temp("serve.yaml", data, size));
    rn_fuzz::check(c.setup.router != nullptr, "serve_yaml", "a loaded config has no router");
    rn_fuzz::check(c.setup.tiers.empty() || c.setup.tiers.size() == c.setup.portfolio.tiers.size(),
                   "serve_yaml", "tiers[] does not match the portfolio");
    // The policy string a config names must either parse or be rejected with Error.
    (void)routenlp::make_named_policy(c.options.default_policy, c.setup.portfolio, *c.setup.router);
  });
}
