// API keys, per-key budgets and rate limits, and the access log of `routenlp serve` (internal).
// docs/serving.md "API keys, budgets and the access log".
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/serve/serve.hpp"

namespace routenlp::serve_detail {

inline std::string short_number(double x) {
  std::ostringstream o;
  o << x;
  return o.str();
}

// Equal strings, in time that depends only on the lengths (no early exit on the first
// differing byte). Used for bearer tokens.
inline bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

struct KeyState {
  ApiKey key;
  std::mutex mu;
  int64_t requests = 0;  // admitted
  double cost_usd = 0.0;
  double tokens = 0.0;  // token bucket
  std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();
  std::map<int, uint64_t> by_status;  // responses per HTTP status
};

// Why a request was refused (status 0: admitted).
struct Admission {
  int status = 0;
  std::string type, message;
  double retry_after_s = 0.0;  // > 0: send Retry-After
  KeyState* key = nullptr;
};

class AccessControl {
 public:
  explicit AccessControl(const std::vector<ApiKey>& keys) {
    for (const auto& k : keys) {
      if (k.id.empty() || k.key.empty()) throw Error(Status::invalid_argument, "serve: an API key needs an id and a key");
      for (const auto& s : states_)
        if (s->key.id == k.id) throw Error(Status::invalid_argument, "serve: API key id '" + k.id + "' is listed twice");
      auto s = std::make_unique<KeyState>();
      s->key = k;
      s->tokens = k.burst > 0 ? k.burst : std::max(1.0, k.rate_per_s);
      states_.push_back(std::move(s));
    }
  }
  bool enabled() const { return !states_.empty(); }
  const std::vector<std::unique_ptr<KeyState>>& keys() const { return states_; }

  // Checks the Authorization header, then the key's budgets and rate. Never puts the token in
  // a message.
  Admission admit(const std::string& authorization) {
    Admission a;
    const std::string prefix = "Bearer ";
    std::string token;
    if (authorization.size() > prefix.size() &&
        std::equal(prefix.begin(), prefix.end(), authorization.begin(),
                   [](char x, char y) { return std::tolower(x) == std::tolower(y); }))
      token = authorization.substr(prefix.size());
    KeyState* found = nullptr;
    for (const auto& s : states_)  // every key compared: no timing hint of which one matched
      if (constant_time_equal(token, s->key.key) && !token.empty()) found = s.get();
    if (found == nullptr) {
      a.status = 401;
      a.type = "invalid_api_key";
      a.message = authorization.empty() ? "missing API key: send Authorization: Bearer <key>"
                                        : "invalid API key";
      return a;
    }
    a.key = found;
    std::lock_guard<std::mutex> lock(found->mu);
    const ApiKey& k = found->key;
    if (k.max_requests >= 0 && found->requests >= k.max_requests) {
      a.status = 429;
      a.type = "insufficient_quota";
      a.message = "request budget of key '" + k.id + "' is spent (" + std::to_string(k.max_requests) + " requests)";
      return a;
    }
    if (k.max_cost_usd >= 0 && found->cost_usd >= k.max_cost_usd) {
      a.status = 429;
      a.type = "insufficient_quota";
      a.message = "cost budget of key '" + k.id + "' is spent (" + short_number(found->cost_usd) + " of " +
                  short_number(k.max_cost_usd) + " USD)";
      return a;
    }
    if (k.rate_per_s > 0) {
      const double burst = k.burst > 0 ? k.burst : std::max(1.0, k.rate_per_s);
      auto now = std::chrono::steady_clock::now();
      found->tokens = std::min(burst, found->tokens + k.rate_per_s * std::chrono::duration<double>(now - found->refilled).count());
      found->refilled = now;
      if (found->tokens < 1.0) {
        a.status = 429;
        a.type = "rate_limit_exceeded";
        a.retry_after_s = (1.0 - found->tokens) / k.rate_per_s;
        a.message = "rate limit of key '" + k.id + "' exceeded (" + short_number(k.rate_per_s) +
                    " requests/s, burst " + short_number(burst) + ")";
        return a;
      }
      found->tokens -= 1.0;
    }
    ++found->requests;
    return a;
  }

  // Cost budget left for a key (infinity without one).
  static double remaining_usd(KeyState* k) {
    if (k == nullptr || k->key.max_cost_usd < 0) return INFINITY;
    std::lock_guard<std::mutex> lock(k->mu);
    return std::max(0.0, k->key.max_cost_usd - k->cost_usd);
  }

  static void record(KeyState* k, int status, double cost) {
    if (k == nullptr) return;
    std::lock_guard<std::mutex> lock(k->mu);
    if (std::isfinite(cost) && cost > 0) k->cost_usd += cost;
    ++k->by_status[status];
  }

 private:
  std::vector<std::unique_ptr<KeyState>> states_;
};

// One JSON line per request, appended and flushed.
class AccessLog {
 public:
  explicit AccessLog(const std::string& path) : out_(path, std::ios::app) {
    if (!out_) throw Error(Status::io, "serve: cannot open access_log '" + path + "' for appending");
  }
  void write(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    out_ << line << '\n';
    out_.flush();
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
};

}  // namespace routenlp::serve_detail
