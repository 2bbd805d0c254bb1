// A tier wrapper for chat requests (internal).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp::serve_detail {

// Passes a chat conversation (looked up by request id) to OpenAI-compatible tiers; every
// other tier (or request) gets the plain query.
class ConversationTier : public ModelTier {
 public:
  using Lookup = std::function<const std::vector<ChatMessage>*(const std::string&, int*)>;
  ConversationTier(std::shared_ptr<ModelTier> inner, Lookup lookup)
      : inner_(std::move(inner)), openai_(dynamic_cast<OpenAICompatibleTier*>(inner_.get())),
        lookup_(std::move(lookup)) {}
  const std::string& name() const override { return inner_->name(); }
  TierResponse call(const TierRequest& r) override {
    if (openai_ != nullptr) {
      int max_tokens = -1;
      if (const auto* msgs = lookup_(r.request_id, &max_tokens))
        return openai_->chat(*msgs, r.deadline, r.cancel, max_tokens);
    }
    return inner_->call(r);
  }
  double expected_cost(const TierRequest& r) const override { return inner_->expected_cost(r); }

 private:
  std::shared_ptr<ModelTier> inner_;
  OpenAICompatibleTier* openai_;
  Lookup lookup_;
};

}  // namespace routenlp::serve_detail
