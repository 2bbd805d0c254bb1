// Fuzz target: the upstream /v1/chat/completions response parser (lib/tiers/openai_chat.hpp,
// internal) and the secret redaction applied to what upstream sends back.
#include <cmath>
#include <string>

#include "fuzz_common.hpp"
#include "tiers/openai_chat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return rn_fuzz::run("chat_response", [&] {
    const std::string body = rn_fuzz::as_string(data, size);
    routenlp::openai::ChatResult r = routenlp::openai::parse_chat_response(body);
    if (r.ok) {
      rn_fuzz::check(r.prompt_tokens >= 0 && r.completion_tokens >= 0, "chat_response",
                     "negative token usage accepted");
      if (r.confidence)
        rn_fuzz::check(std::isfinite(*r.confidence) && *r.confidence >= 0.0, "chat_response",
                       "confidence not a finite non-negative number");
    }
    const std::string key = "sk-fuzz-0123456789";
    std::string red = routenlp::openai::redact_secrets(body + r.error + key, key);
    rn_fuzz::check(red.find(key) == std::string::npos, "chat_response", "redact_secrets left the key");
  });
}
