// Built without hiredis: `state: redis://...` is a clear configuration error.
#include "routenlp/error.hpp"
#include "state/redis_state.hpp"

namespace routenlp::state {

bool redis_available() { return false; }

struct RedisState::Impl {};

RedisState::RedisState(RedisStateOptions, std::shared_ptr<OnlineRecalibrator>, ApplyFn) {
  throw Error(Status::invalid_argument,
              "state: this routenlp was built without Redis support (install libhiredis-dev and "
              "reconfigure with -DROUTENLP_WITH_REDIS=ON)");
}
RedisState::~RedisState() = default;
void RedisState::start() {}
void RedisState::stop() {}
void RedisState::note_decision(const std::string&, const DecisionNote&) {}
RedisState::Feedback RedisState::feedback(const std::string&, bool, std::string*) {
  return Feedback::unavailable;
}
RedisState::Stats RedisState::stats() const { return {}; }
std::string RedisState::url_redacted() const { return {}; }
std::string RedisState::metrics_prometheus() const { return {}; }

}  // namespace routenlp::state
