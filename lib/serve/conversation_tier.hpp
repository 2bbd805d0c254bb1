// A tier wrapper for chat requests (internal).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/tiers/tier.hpp"
#include "tiers/openai_chat.hpp"

namespace routenlp::serve_detail {

// What a /v1/chat/completions request gives the tiers it calls, and the token usage they
// report back (summed over every tier that answered).
struct ChatContext {
  std::vector<ChatMessage> messages;  // content flattened to text (non-OpenAI tiers, estimates)
  int max_tokens = -1;
  std::string extra_body;  // JSON object passed to OpenAI-compatible tiers ("" = none)
  std::atomic<int64_t> prompt_tokens{0}, completion_tokens{0};
  std::atomic<int> estimated_calls{0};  // answers whose usage was estimated (no usage reported)
  std::atomic<int> answered_calls{0};
  // Per answering OpenAI-compatible tier: its finish_reason and tool_calls, relayed to the
  // client when that tier's answer is returned.
  std::mutex extras_mu;
  std::map<std::string, openai::ChatExtras> extras;
  openai::ChatExtras extras_of(const std::string& tier) {
    std::lock_guard<std::mutex> lock(extras_mu);
    auto it = extras.find(tier);
    return it == extras.end() ? openai::ChatExtras{} : it->second;
  }
};

// Usage estimate for a call whose tier reported none: 1 token per 4 bytes, rounded up.
inline int64_t estimate_tokens(size_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); }

// Passes a chat conversation (looked up by request id) to OpenAI-compatible tiers; every
// other tier (or request) gets the plain query. Records the usage of each answer.
class ConversationTier : public ModelTier {
 public:
  using Lookup = std::function<std::shared_ptr<ChatContext>(const std::string&)>;
  ConversationTier(std::shared_ptr<ModelTier> inner, Lookup lookup)
      : inner_(std::move(inner)), openai_(dynamic_cast<OpenAICompatibleTier*>(inner_.get())),
        lookup_(std::move(lookup)) {}
  const std::string& name() const override { return inner_->name(); }
  TierResponse call(const TierRequest& r) override {
    std::shared_ptr<ChatContext> ctx = lookup_(r.request_id);
    TierResponse out = openai_ != nullptr && ctx
                           ? openai_->chat(ctx->messages, r.deadline, r.cancel, ctx->max_tokens, ctx->extra_body)
                           : inner_->call(r);
    if (ctx && out.ok()) {
      ++ctx->answered_calls;
      if (openai_ != nullptr) {
        std::lock_guard<std::mutex> lock(ctx->extras_mu);
        ctx->extras[name()] = openai::last_chat_extras();  // set by chat() on this thread
      }
      if (out.input_tokens > 0 || out.output_tokens > 0) {
        ctx->prompt_tokens += out.input_tokens;
        ctx->completion_tokens += out.output_tokens;
      } else {
        size_t bytes = 0;
        if (openai_ != nullptr) {
          for (const auto& m : ctx->messages) bytes += m.content.size();
        } else {
          bytes = r.query.size();
        }
        ctx->prompt_tokens += estimate_tokens(bytes);
        ctx->completion_tokens += estimate_tokens(out.text.size());
        ++ctx->estimated_calls;
      }
    }
    return out;
  }
  double expected_cost(const TierRequest& r) const override { return inner_->expected_cost(r); }

 private:
  std::shared_ptr<ModelTier> inner_;
  OpenAICompatibleTier* openai_;
  Lookup lookup_;
};

}  // namespace routenlp::serve_detail
