// OpenAICompatibleTier: ModelTier over the OpenAI-compatible chat client.
#include "routenlp/tiers/openai_tier.hpp"

#include <cmath>
#include <limits>

#include "tiers/openai_chat.hpp"

namespace routenlp {

struct OpenAICompatibleTier::Impl {
  explicit Impl(OpenAITierOptions o) : client(std::move(o)) {}
  openai::ChatClient client;
  std::optional<PortfolioConfig> portfolio;
  int tier_index = -1;
  std::atomic<uint64_t> attempts{0};
};

OpenAICompatibleTier::OpenAICompatibleTier(OpenAITierOptions options,
                                           const PortfolioConfig* portfolio) {
  if (options.name.empty()) options.name = options.model;
  impl_ = std::make_unique<Impl>(std::move(options));
  if (portfolio != nullptr) {
    const auto& name = impl_->client.options().name;
    int k = portfolio->tier_index(name);
    if (k < 0)
      throw Error(Status::invalid_argument,
                  "OpenAICompatibleTier: tier '" + name + "' is not in the portfolio" +
                      (portfolio->source.empty() ? "" : " (" + portfolio->source + ")"));
    impl_->portfolio = *portfolio;
    impl_->tier_index = k;
  }
}

OpenAICompatibleTier::~OpenAICompatibleTier() = default;

const std::string& OpenAICompatibleTier::name() const { return impl_->client.options().name; }

const OpenAITierOptions& OpenAICompatibleTier::options() const { return impl_->client.options(); }

uint64_t OpenAICompatibleTier::attempts() const { return impl_->attempts.load(); }

TierResponse OpenAICompatibleTier::chat(const std::vector<ChatMessage>& messages,
                                        SteadyTime deadline, const std::atomic<bool>* cancel,
                                        int max_tokens, const std::string& extra_body) {
  std::vector<openai::Message> msgs;
  msgs.reserve(messages.size());
  for (const auto& m : messages) msgs.push_back({m.role, m.content});
  std::function<bool()> cancelled;
  if (cancel != nullptr) cancelled = [cancel] { return cancel->load(std::memory_order_relaxed); };
  openai::last_chat_extras() = {};
  openai::ChatResult r = impl_->client.call(msgs, deadline, cancelled, max_tokens, extra_body);
  impl_->attempts += static_cast<uint64_t>(r.attempts);
  TierResponse out;
  out.latency_ms = r.latency_ms;
  if (!r.ok) {
    out.status = r.status == Status::ok ? Status::tier : r.status;
    out.error = r.error;
    return out;
  }
  openai::last_chat_extras() = {r.finish_reason, std::move(r.tool_calls)};
  out.text = std::move(r.text);
  out.confidence = r.confidence;
  out.input_tokens = r.prompt_tokens;
  out.output_tokens = r.completion_tokens;
  if (impl_->portfolio)
    out.cost = impl_->portfolio->price(impl_->tier_index, r.prompt_tokens, r.completion_tokens);
  return out;
}

TierResponse OpenAICompatibleTier::call(const TierRequest& request) {
  return chat({{"user", request.query}}, request.deadline, request.cancel);
}

double OpenAICompatibleTier::expected_cost(const TierRequest& request) const {
  if (!impl_->portfolio) return std::numeric_limits<double>::quiet_NaN();
  int64_t in = static_cast<int64_t>(request.query.size() / 4 + 8);
  int64_t out = std::max(0, impl_->client.options().max_tokens);
  return impl_->portfolio->price(impl_->tier_index, in, out);
}

}  // namespace routenlp
