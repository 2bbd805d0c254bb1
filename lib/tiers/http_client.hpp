// Internal: a small pooled libcurl client (POST only) used by OpenAICompatibleTier.
// post() is thread-safe: each call borrows one CURL easy handle from a pool, so concurrent
// calls reuse keep-alive connections without sharing a handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace routenlp::http {

using Clock = std::chrono::steady_clock;

struct PostRequest {
  std::string url;
  std::string body;
  std::vector<std::string> headers;            // "Name: value"
  long connect_timeout_ms = 2000;
  Clock::time_point deadline = Clock::time_point::max();  // whole transfer must end by then
  std::function<bool()> cancelled;              // polled during the transfer; true aborts it
  size_t max_response_bytes = 64u << 20;
};

enum class Outcome {
  ok,            // an HTTP response arrived (any status code)
  connect,       // could not connect (refused, unreachable, DNS)
  timeout,       // the deadline passed
  cancelled,     // cancelled() returned true
  too_large,     // response body exceeded max_response_bytes
  transport,     // other transfer failure (reset, send/recv error, TLS)
};

struct PostResult {
  Outcome outcome = Outcome::transport;
  long status = 0;           // HTTP status when outcome == ok
  std::string body;
  std::string retry_after;   // Retry-After header value, if any
  std::string error;         // libcurl's message when outcome != ok
  double elapsed_ms = 0.0;
};

const char* outcome_name(Outcome o);

class CurlPool {
 public:
  explicit CurlPool(size_t max_idle = 8);
  ~CurlPool();
  CurlPool(const CurlPool&) = delete;
  CurlPool& operator=(const CurlPool&) = delete;

  PostResult post(const PostRequest& request);

 private:
  void* acquire();
  void release(void* handle);

  std::mutex mu_;
  std::vector<void*> idle_;
  size_t max_idle_;
};

}  // namespace routenlp::http
