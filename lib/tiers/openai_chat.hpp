// Internal: the OpenAI-compatible /v1/chat/completions client behind OpenAICompatibleTier.
// Builds the JSON request, retries with exponential backoff + full jitter, parses the answer,
// log-probabilities and token usage. call() is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "routenlp/error.hpp"
#include "routenlp/tiers/openai_tier.hpp"
#include "tiers/http_client.hpp"

namespace routenlp::openai {

struct Message {
  std::string role;
  std::string content;
};

struct ChatResult {
  bool ok = false;
  Status status = Status::ok;     // tier / timeout / cancelled on failure
  std::string error;              // one line naming the endpoint and what went wrong
  std::string text;
  std::optional<double> confidence;  // exp(mean token logprob) when the server returned them
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool usage_reported = false;
  int attempts = 0;
  long http_status = 0;
  std::string finish_reason;
  std::string tool_calls;  // choices[0].message.tool_calls as JSON text (an array), "" = none
  double latency_ms = 0.0;
};

// What the last successful OpenAICompatibleTier::chat() on this thread returned besides the
// TierResponse (internal: the serve gateway relays it to its client). chat() clears it first,
// so after a failed call it is empty. Thread-local: chat() runs on its caller's thread.
struct ChatExtras {
  std::string finish_reason;  // upstream's choices[0].finish_reason ("" = not given)
  std::string tool_calls;     // JSON array text, "" = none
};
ChatExtras& last_chat_extras();

// Parses a chat completion response body; on failure returns ok=false with the reason.
ChatResult parse_chat_response(const std::string& body);

// Removes secrets from an upstream-derived string: every occurrence of `key` (the API key in
// use; ignored when shorter than 4 bytes) and, with shapes, "Bearer <token>" and
// "sk-..."-shaped tokens (for error messages; answers keep ordinary words like "bearer").
std::string redact_secrets(std::string s, const std::string& key, bool shapes = true);

// {base_url}/v1/chat/completions (a base URL already ending in /v1 gets /chat/completions).
std::string chat_url(const std::string& base_url);

class ChatClient {
 public:
  explicit ChatClient(OpenAITierOptions options);
  const OpenAITierOptions& options() const { return opts_; }
  // One call with retries. deadline: absolute; cancelled: polled (may be empty).
  // extra_body: "" or a JSON object merged into the request body (the serve gateway's
  // pass-through of a client's generation parameters and its raw messages; see request_body).
  ChatResult call(const std::vector<Message>& messages, http::Clock::time_point deadline,
                  const std::function<bool()>& cancelled, int max_tokens_override = -1,
                  const std::string& extra_body = {});

 private:
  ChatResult call_once_with_retries(const std::vector<Message>& messages,
                                    http::Clock::time_point deadline,
                                    const std::function<bool()>& cancelled, int max_tokens_override,
                                    const std::string& key, const std::string& extra_body);

 public:
  // The JSON request body. extra_body's keys replace or add to the built ones ("messages"
  // replaces the messages after the system prompt; "logprobs" can only turn log-probabilities
  // on; "model" and "stream" are never taken from it). Throws on an extra_body that is not a
  // JSON object.
  std::string request_body(const std::vector<Message>& messages, int max_tokens,
                           const std::string& extra_body = {}) const;

 private:
  void release_large_buffers();
  double backoff_ms(int retry);

  OpenAITierOptions opts_;
  std::string url_;
  http::CurlPool pool_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
  std::atomic<size_t> last_body_bytes_{0};  // largest response body since the last trim
};

}  // namespace routenlp::openai
