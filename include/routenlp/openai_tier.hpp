// OpenAICompatibleTier: a ModelTier that calls any OpenAI-compatible POST /v1/chat/completions
// endpoint (vLLM, llama.cpp server, cloud APIs) over HTTP(S) with libcurl. Details:
// docs/serving.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "routenlp/export.h"
#include "routenlp/portfolio.hpp"
// RN_OPENAI_TIER_CLASS

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
};

}  // namespace routenlp
