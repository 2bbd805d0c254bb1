// The server's own Prometheus series (internal): HTTP requests by route and code, handler time
// histograms, requests in flight and routing decisions by tier.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/prometheus_text.hpp"

namespace routenlp::serve_detail {

inline const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1,    0.25,  0.5,    1.0,   2.5,  5.0,  10.0, 30.0};

class HttpMetrics {
 public:
  void count(const std::string& route, int code) {
    std::lock_guard<std::mutex> lock(mu_);
    ++requests_[{route, code}];
  }
  void observe(const std::string& route, double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& h = hist_[route];
    if (h.buckets.empty()) h.buckets.assign(kLatencyBuckets.size(), 0);
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i)
      if (seconds <= kLatencyBuckets[i]) ++h.buckets[i];
    ++h.count;
    h.sum += seconds;
  }
  void decision(const std::string& tier) {
    std::lock_guard<std::mutex> lock(mu_);
    ++decisions_[tier];
  }
  std::atomic<int64_t> in_flight{0};

  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    out += "# HELP routenlp_http_requests_total HTTP requests by route and status code.\n";
    out += "# TYPE routenlp_http_requests_total counter\n";
    for (const auto& [k, n] : requests_)
      out += "routenlp_http_requests_total{route=\"" + k.first + "\",code=\"" +
             std::to_string(k.second) + "\"} " + std::to_string(n) + "\n";
    out += "# HELP routenlp_http_request_duration_seconds Handler time by route.\n";
    out += "# TYPE routenlp_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : hist_) {
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%g", kLatencyBuckets[i]);
        out += "routenlp_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" + le +
               "\"} " + std::to_string(h.buckets[i]) + "\n";
      }
      out += "routenlp_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      char sum[64];
      std::snprintf(sum, sizeof sum, "%.9g", h.sum);
      out += "routenlp_http_request_duration_seconds_sum{route=\"" + route + "\"} " + sum + "\n";
      out += "routenlp_http_request_duration_seconds_count{route=\"" + route + "\"} " +
             std::to_string(h.count) + "\n";
    }
    out += "# HELP routenlp_http_in_flight Requests being handled now.\n";
    out += "# TYPE routenlp_http_in_flight gauge\n";
    out += "routenlp_http_in_flight " + std::to_string(in_flight.load()) + "\n";
    out += "# HELP routenlp_route_decisions_total Routing decisions by chosen tier.\n";
    out += "# TYPE routenlp_route_decisions_total counter\n";
    for (const auto& [t, n] : decisions_)
      out += "routenlp_route_decisions_total{tier=\"" + detail::prometheus_label(t) + "\"} " + std::to_string(n) + "\n";
    return out;
  }

 private:
  struct Hist {
    std::vector<uint64_t> buckets;
    uint64_t count = 0;
    double sum = 0.0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Hist> hist_;
  std::map<std::string, uint64_t> decisions_;
};

// The route label of a path: a known route, else "other" (bounds the label set).
inline const char* const kKnownRoutes[] = {"/route", "/route/batch", "/v1/chat/completions", "/feedback",
                              "/health", "/metrics", "/v1/models"};

inline std::string route_label(const std::string& path) {
  for (const char* r : kKnownRoutes)
    if (path == r) return r;
  return "other";
}

}  // namespace routenlp::serve_detail
