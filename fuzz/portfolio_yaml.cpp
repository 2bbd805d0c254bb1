// Fuzz target: the portfolio YAML parser (include/routenlp/data/portfolio.hpp).
#include <string>

#include "fuzz_common.hpp"
#include "routenlp/data/portfolio.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("portfolio_yaml", [&] {
    routenlp::PortfolioConfig p = routenlp::parse_portfolio(rn_fuzz::as_string(data, size), "fuzz.yaml");
    // Accessors over whatever the file set up.
    for (const char* task : {"default", "gsm8k", "legal/clause", ""}) {
      (void)p.alpha_for(task);
      (void)p.quality_target_for(task);
      (void)p.acceptable(task, 0.5);
    }
    for (size_t k = 0; k < p.tiers.size(); ++k) (void)p.price(static_cast<int>(k), 1000, 1000);
    (void)p.reference_tier_index();
    // What save_portfolio() writes must load again, with the same tiers.
    routenlp::PortfolioConfig back = routenlp::parse_portfolio(routenlp::portfolio_to_yaml(p), "round-trip");
    rn_fuzz::check(back.tiers.size() == p.tiers.size(), "portfolio_yaml",
                   "portfolio_to_yaml + parse_portfolio changed the tiers");
    for (size_t k = 0; k < p.tiers.size(); ++k)
      rn_fuzz::check(back.tiers[k].name == p.tiers[k].name, "portfolio_yaml",
                     "portfolio_to_yaml + parse_portfolio renamed tier '" + p.tiers[k].name + "' to '" +
                         back.tiers[k].name + "'");
  });
}
