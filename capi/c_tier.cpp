// The adapter for tiers written in C: a ModelTier over an rn_tier_vtable (make_c_tier).
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>

#include "c_tier.hpp"
#include "routenlp/error.hpp"

namespace routenlp {

namespace {

// Adapts a C vtable; the destroy hook runs when the last shared_ptr owner goes away.
class CTier final : public ModelTier {
 public:
  explicit CTier(const rn_tier_vtable& vt) {
    if (vt.struct_size < offsetof(rn_tier_vtable, user_data) + sizeof(void*))
      throw Error(Status::invalid_argument, "rn_tier_vtable: struct_size too small");
    std::memset(&vt_, 0, sizeof vt_);
    std::memcpy(&vt_, &vt, std::min<size_t>(vt.struct_size, sizeof vt_));
    if (!vt_.call) throw Error(Status::invalid_argument, "rn_tier_vtable: call is NULL");
    if (!vt_.name || !*vt_.name)
      throw Error(Status::invalid_argument, "rn_tier_vtable: name is NULL or empty");
    name_ = vt_.name;
    vt_.name = nullptr;
  }
  ~CTier() override {
    if (vt_.destroy) {
      try {
        vt_.destroy(vt_.user_data);
      } catch (...) {
        // A destroy hook must not throw; nothing sensible can be done here.
      }
    }
  }
  const std::string& name() const override { return name_; }
  double expected_cost(const TierRequest&) const override {
    return vt_.expected_cost < 0 ? std::numeric_limits<double>::quiet_NaN() : vt_.expected_cost;
  }
  TierResponse call(const TierRequest& request) override {
    rn_tier_request cr;
    std::memset(&cr, 0, sizeof cr);
    cr.struct_size = sizeof cr;
    cr.request_id = request.request_id.c_str();
    cr.query = request.query.c_str();
    cr.task = request.task.c_str();
    cr.tier = request.tier;
    if (request.deadline == SteadyTime::max()) {
      cr.time_left_ms = -1.0;
    } else {
      auto left = std::chrono::duration<double, std::milli>(request.deadline -
                                                            std::chrono::steady_clock::now());
      cr.time_left_ms = std::max(0.0, left.count());
    }
    std::vector<const char*> texts;
    std::vector<int32_t> tiers;
    for (const auto& p : request.previous) {
      texts.push_back(p.response ? p.response->text.c_str() : "");
      tiers.push_back(p.tier);
    }
    cr.n_previous = texts.size();
    cr.previous_texts = texts.empty() ? nullptr : texts.data();
    cr.previous_tiers = tiers.empty() ? nullptr : tiers.data();
    cr.internal = request.cancel;
    rn_tier_reply reply;
    rn_status st;
    try {
      st = vt_.call(&cr, &reply, vt_.user_data);
    } catch (...) {
      return TierResponse::failure(Status::tier, "C tier '" + name_ + "' threw an exception");
    }
    if (st != RN_OK) {
      std::string msg = "C tier '" + name_ + "' returned " + rn_status_name(st);
      if (!reply.impl.error.empty()) msg += ": " + reply.impl.error;
      return TierResponse::failure(Status::tier, msg);
    }
    reply.impl.status = Status::ok;
    reply.impl.error.clear();
    return std::move(reply.impl);
  }

 private:
  rn_tier_vtable vt_;
  std::string name_;
};

}  // namespace

std::shared_ptr<ModelTier> make_c_tier(const rn_tier_vtable& vtable) {
  return std::make_shared<CTier>(vtable);
}

}  // namespace routenlp
