// Bundled tiers: the ModelTier base, CallbackTier (a host function) and ReplayTier (recorded
// outcomes of a dataset).
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "routenlp/tiers/tier.hpp"

namespace routenlp {

ModelTier::~ModelTier() = default;

double ModelTier::expected_cost(const TierRequest&) const {
  return std::numeric_limits<double>::quiet_NaN();
}

CallbackTier::CallbackTier(std::string name, Fn fn, double expected_cost)
    : name_(std::move(name)), fn_(std::move(fn)), expected_cost_(expected_cost) {
  if (name_.empty()) throw Error(Status::invalid_argument, "CallbackTier: empty name");
  if (!fn_) throw Error(Status::invalid_argument, "CallbackTier '" + name_ + "': no function");
}

TierResponse CallbackTier::call(const TierRequest& request) { return fn_(request); }

double CallbackTier::expected_cost(const TierRequest&) const {
  return expected_cost_ < 0 ? std::numeric_limits<double>::quiet_NaN() : expected_cost_;
}

ReplayTier::ReplayTier(std::shared_ptr<const Dataset> data, PortfolioConfig portfolio,
                       const std::string& tier_name)
    : data_(std::move(data)), portfolio_(std::move(portfolio)), name_(tier_name) {
  if (!data_) throw Error(Status::invalid_argument, "ReplayTier: no dataset");
  tier_ = portfolio_.tier_index(tier_name);
  if (tier_ < 0)
    throw Error(Status::invalid_argument,
                "ReplayTier: tier '" + tier_name + "' is not in the portfolio");
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < data_->queries.size(); ++i) {
    const Query& q = data_->queries[i];
    by_id_.emplace(q.id, i);
    auto it = q.outcomes.find(name_);
    if (it != q.outcomes.end()) {
      sum += outcome_cost(portfolio_, tier_, it->second);
      ++n;
    }
  }
  mean_cost_ = n ? sum / static_cast<double>(n) : 0.0;
}

TierResponse ReplayTier::call(const TierRequest& request) {
  auto it = by_id_.find(request.request_id);
  if (it == by_id_.end())
    return TierResponse::failure(Status::tier, "ReplayTier '" + name_ + "': no query with id '" +
                                                   request.request_id + "'");
  const Query& q = data_->queries[it->second];
  auto o = q.outcomes.find(name_);
  if (o == q.outcomes.end())
    return TierResponse::failure(Status::tier, "ReplayTier '" + name_ +
                                                   "': no recorded outcome for query '" +
                                                   q.id + "'");
  TierResponse r;
  r.text = o->second.response.value_or(std::string());
  r.confidence = o->second.confidence;
  r.cost = outcome_cost(portfolio_, tier_, o->second);
  r.latency_ms = outcome_latency_ms(portfolio_, tier_, o->second, q.id);
  r.input_tokens = o->second.input_tokens.value_or(0);
  r.output_tokens = o->second.output_tokens.value_or(0);
  return r;
}

double ReplayTier::expected_cost(const TierRequest& request) const {
  auto it = by_id_.find(request.request_id);
  if (it != by_id_.end()) {
    const Query& q = data_->queries[it->second];
    auto o = q.outcomes.find(name_);
    if (o != q.outcomes.end()) return outcome_cost(portfolio_, tier_, o->second);
  }
  return mean_cost_;
}

}  // namespace routenlp
