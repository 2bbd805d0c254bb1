// The tier interface of a cascade: a C++ abstract class, a std::function tier, a tier that
// replays a routing dataset's recorded outcomes, and an adapter for tiers written in C.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "routenlp/data/dataset.hpp"
#include "routenlp/error.hpp"
#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"

struct rn_tier_vtable;  // C vtable (routenlp/rn_cascade.h)

namespace routenlp {

using SteadyTime = std::chrono::steady_clock::time_point;

// What one tier produced (or why it failed).
struct TierResponse {
  std::string text;
  std::optional<double> confidence;  // in [0,1]; u = 1 - confidence
  double cost = 0.0;                 // USD
  double latency_ms = 0.0;           // as measured by the tier (the engine measures too)
  int64_t input_tokens = 0, output_tokens = 0;
  Status status = Status::ok;        // not ok: the call failed and the cascade escalates
  std::string error;                 // message when status != ok
  bool ok() const { return status == Status::ok; }
  static TierResponse failure(Status s, std::string message) {
    TierResponse r;
    r.status = s;
    r.error = std::move(message);
    return r;
  }
};

// A previous tier's answer, as seen by later tiers.
struct PreviousAnswer {
  int tier = 0;
  const TierResponse* response = nullptr;  // valid during the call
};

struct TierRequest {
  std::string request_id;
  std::string query;
  std::string task;
  int tier = 0;                         // index of this tier in the cascade
  SteadyTime deadline = SteadyTime::max();  // max(): none
  const std::atomic<bool>* cancel = nullptr;  // set by the caller to cancel; may be null
  std::vector<PreviousAnswer> previous;  // earlier tiers of this request, in call order
  bool cancelled() const { return cancel && cancel->load(std::memory_order_relaxed); }
  bool expired() const { return std::chrono::steady_clock::now() >= deadline; }
};

// A model tier. call() is invoked concurrently from many threads (the engine's callers and
// its pool) and must be thread-safe. It may throw; the engine turns that into a tier error.
class RN_API ModelTier {
 public:
  virtual ~ModelTier();
  virtual const std::string& name() const = 0;
  virtual TierResponse call(const TierRequest& request) = 0;
  // Expected USD of one call (for the budget rule); NaN when unknown.
  virtual double expected_cost(const TierRequest& request) const;
};

// A tier backed by a std::function (which must be thread-safe).
class RN_API CallbackTier : public ModelTier {
 public:
  using Fn = std::function<TierResponse(const TierRequest&)>;
  CallbackTier(std::string name, Fn fn, double expected_cost = -1.0);
  const std::string& name() const override { return name_; }
  TierResponse call(const TierRequest& request) override;
  double expected_cost(const TierRequest& request) const override;

 private:
  std::string name_;
  Fn fn_;
  double expected_cost_;
};

// Serves one tier's recorded outcomes of a Dataset by query id (TierRequest::request_id);
// cost and latency from outcome_cost / outcome_latency_ms. A missing outcome is a tier error.
// Immutable after construction: thread-safe.
class RN_API ReplayTier : public ModelTier {
 public:
  ReplayTier(std::shared_ptr<const Dataset> data, PortfolioConfig portfolio,
             const std::string& tier_name);
  const std::string& name() const override { return name_; }
  TierResponse call(const TierRequest& request) override;
  double expected_cost(const TierRequest& request) const override;

 private:
  std::shared_ptr<const Dataset> data_;
  PortfolioConfig portfolio_;
  std::string name_;
  int tier_ = -1;
  std::unordered_map<std::string, size_t> by_id_;
  double mean_cost_ = 0.0;
};

// Wraps a C vtable (see rn_cascade.h). The vtable's destroy hook runs when the last owner
// releases it. A callback returning an error becomes a tier error on that call.
RN_API std::shared_ptr<ModelTier> make_c_tier(const rn_tier_vtable& vtable);

}  // namespace routenlp
