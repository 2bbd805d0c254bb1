// OpenAICompatibleTier: a ModelTier that calls any OpenAI-compatible POST /v1/chat/completions
// endpoint (vLLM, llama.cpp server, cloud APIs) over HTTP(S) with libcurl. Details:
// docs/serving.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/export.h"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

struct OpenAITierOptions {
  std::string name;              // tier name (as in the portfolio); empty = model
  std::string model;             // "model" sent to the server
  std::string base_url;          // http(s)://host:port[/prefix]; "/v1/chat/completions" appended
                                 // ("/chat/completions" when it already ends in /v1)
  std::string api_key_env;       // environment variable holding the API key ("" = no auth);
                                 // read at each call, sent as a Bearer token, never logged
  double connect_timeout_ms = 2000.0;
  double timeout_ms = 30000.0;   // whole call incl. retries; the request deadline may cut it
  int max_retries = 2;           // on 408/429/5xx and connection errors (never other 4xx)
  double backoff_initial_ms = 200.0;  // retry k waits in [b/2, b], b = min(max, initial * 2^k);
  double backoff_max_ms = 5000.0;     // a Retry-After (seconds) header raises it up to max
  bool request_logprobs = true;  // confidence = exp(mean token logprob) when returned
  int max_tokens = 512;          // <= 0: not sent
  double temperature = 0.0;
  std::string system_prompt;     // prepended as a system message when non-empty
  size_t max_idle_connections = 8;  // pooled keep-alive handles
  uint64_t jitter_seed = 0;      // 0 = random
  // A response body above this is a tier error (and escalates); a chat answer is kilobytes.
  size_t max_response_bytes = size_t{8} << 20;
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

// Thread-safe: call() and chat() may run concurrently (pooled keep-alive connections).
// Failures come back as TierResponse errors (never thrown): Status::tier for refused
// connections, HTTP 4xx/5xx, malformed JSON or missing choices; Status::timeout when the
// request deadline or options.timeout_ms passes; Status::cancelled when request.cancel is set.
class RN_API OpenAICompatibleTier : public ModelTier {
 public:
  // portfolio (optional): cost = portfolio.price(tier named options.name, usage tokens);
  // without it cost is 0. Throws Error(invalid_argument) for bad options or a name the
  // portfolio does not have.
  explicit OpenAICompatibleTier(OpenAITierOptions options,
                                const PortfolioConfig* portfolio = nullptr);
  ~OpenAICompatibleTier() override;
  OpenAICompatibleTier(const OpenAICompatibleTier&) = delete;
  OpenAICompatibleTier& operator=(const OpenAICompatibleTier&) = delete;

  const std::string& name() const override;
  // Sends request.query as one user message (after options.system_prompt, if any).
  TierResponse call(const TierRequest& request) override;
  // Expected USD: prices x (query bytes / 4 input tokens, max_tokens output); NaN without prices.
  double expected_cost(const TierRequest& request) const override;
  // Sends a whole conversation; deadline/cancel as in TierRequest; max_tokens <= 0: options'.
  // extra_body: "" or a JSON object whose keys replace or add to the request body's (e.g.
  // "top_p", "stop", "tools", or "messages" to send the messages verbatim); "model" and
  // "stream" are ignored, "logprobs" cannot turn log-probabilities off.
  TierResponse chat(const std::vector<ChatMessage>& messages, SteadyTime deadline = SteadyTime::max(),
                    const std::atomic<bool>* cancel = nullptr, int max_tokens = -1,
                    const std::string& extra_body = {});
  const OpenAITierOptions& options() const;
  // Total HTTP attempts made so far (retries included); for tests and metrics.
  uint64_t attempts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp
