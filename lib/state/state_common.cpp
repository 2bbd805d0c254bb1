// The parts of the Redis state backend that need no hiredis: redis:// URLs and note JSON.
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/json_int.hpp"
#include "routenlp/error.hpp"
#include "state/redis_state.hpp"

namespace routenlp::state {

std::string RedisUrl::redacted() const {
  std::string s = "redis://";
  if (!user.empty() || !password.empty()) s += (user.empty() ? "" : user) + ":***@";
  s += host + ":" + std::to_string(port) + "/" + std::to_string(db);
  return s;
}

RedisUrl parse_redis_url(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    throw Error(Status::invalid_argument,
                "state: expected a redis://[[user]:password@]host[:port][/db] URL (other schemes, "
                "rediss:// included, are not supported)");
  RedisUrl u;
  std::string rest = url.substr(scheme.size());
  auto at = rest.rfind('@');
  if (at != std::string::npos) {
    const std::string cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = cred.find(':');
    if (colon == std::string::npos) {
      u.password = cred;  // redis://password@host: the password alone
    } else {
      u.user = cred.substr(0, colon);
      u.password = cred.substr(colon + 1);
    }
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) {
      char* end = nullptr;
      long v = std::strtol(db.c_str(), &end, 10);
      if (end != db.c_str() + db.size() || v < 0 || v > 1000000)
        throw Error(Status::invalid_argument, "state: the Redis URL's database must be a number >= 0");
      u.db = static_cast<int>(v);
    }
  }
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    const std::string port = hostport.substr(colon + 1);
    hostport = hostport.substr(0, colon);
    char* end = nullptr;
    long v = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || end != port.c_str() + port.size() || v < 1 || v > 65535)
      throw Error(Status::invalid_argument, "state: the Redis URL's port must be in [1, 65535]");
    u.port = static_cast<int>(v);
  }
  if (!hostport.empty()) u.host = hostport;
  return u;
}

std::string note_to_json(const DecisionNote& note) {
  nlohmann::json j = {{"task", note.task},
                      {"rejected", note.rejected_tiers},
                      {"tier", note.answer_tier},
                      {"accepted", note.answer_accepted}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool note_from_json(const std::string& text, DecisionNote& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  auto task = j.find("task"), rej = j.find("rejected"), tier = j.find("tier"), acc = j.find("accepted");
  if (task == j.end() || !task->is_string() || rej == j.end() || !rej->is_array() || tier == j.end() ||
      !tier->is_number_integer() || acc == j.end() || !acc->is_boolean())
    return false;
  DecisionNote n;
  n.task = task->get<std::string>();
  try {  // tiers out of int's range (4294967296, 1e300) are malformed too
    n.rejected_tiers = routenlp::detail::json_ints<int>(*rej, "decision note", "rejected");
    n.answer_tier = routenlp::detail::json_int<int>(*tier, "decision note", "tier");
  } catch (const Error&) {
    return false;
  }
  n.answer_accepted = acc->get<bool>();
  out = std::move(n);
  return true;
}

}  // namespace routenlp::state
