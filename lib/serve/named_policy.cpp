// Policies named in a serve config or a request's `model` (docs/serving.md "Policies").
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/serve/serve.hpp"

namespace routenlp {

namespace {

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

std::vector<double> price_costs(const PortfolioConfig& p) {
  std::vector<double> c;
  double mx = 0.0;
  for (const auto& t : p.tiers) {
    c.push_back(t.price_per_1m_input + t.price_per_1m_output);
    mx = std::max(mx, c.back());
  }
  for (auto& x : c) x = mx > 0 ? x / mx : 1.0;
  return c;
}

}  // namespace

std::unique_ptr<RoutingPolicy> make_named_policy(const std::string& spec,
                                                 const PortfolioConfig& portfolio,
                                                 const RouterModel& router) {
  auto bad = [&](const std::string& why) {
    return Error(Status::invalid_argument, "policy '" + spec + "': " + why +
                                               " (use threshold, threshold-<p>, knob-<lambda> or "
                                               "router-" + router.name() + "-<t>)");
  };
  if (spec.empty() || spec == "threshold" || spec == "auto" || spec == "routenlp")
    return std::make_unique<ThresholdPolicy>(ThresholdPolicy::from_portfolio(portfolio));
  double v = 0.0;
  if (spec.rfind("threshold-", 0) == 0) {
    if (!parse_number(spec.substr(10), &v) || v < 0.0 || v > 1.0) throw bad("target must be in [0,1]");
    return std::make_unique<ThresholdPolicy>(v);
  }
  if (spec.rfind("knob-", 0) == 0) {
    if (!parse_number(spec.substr(5), &v) || v < 0.0) throw bad("lambda must be >= 0");
    return std::make_unique<CostKnobPolicy>(v, price_costs(portfolio));
  }
  if (spec.rfind("router-", 0) == 0) {
    auto dash = spec.rfind('-');
    std::string name = dash > 7 ? spec.substr(7, dash - 7) : "";
    if (name != router.name()) throw bad("no router named '" + name + "' is loaded");
    if (!parse_number(spec.substr(dash + 1), &v)) throw bad("threshold is not a number");
    if (portfolio.tiers.size() < 2) throw bad("needs at least two tiers");
    return std::make_unique<TwoTierPolicy>(0, static_cast<int>(portfolio.tiers.size()) - 1, v,
                                           ThresholdRule::quantile);
  }
  throw bad("unknown policy");
}

}  // namespace routenlp
