// The engine's Prometheus text: request totals, per-(tier, task) counters and latency
// histograms, then the online recalibrator's cells (docs/cascade.md "Metrics").
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cascade/engine_impl.hpp"
#include "common/prometheus_text.hpp"

namespace routenlp {

std::string CascadeEngine::metrics_prometheus() const {
  const Impl& I = *impl_;
  std::ostringstream o;
  o << "# HELP routenlp_cascade_requests_total Requests run.\n"
    << "# TYPE routenlp_cascade_requests_total counter\n"
    << "routenlp_cascade_requests_total " << I.requests.load() << "\n"
    << "# HELP routenlp_cascade_requests_failed_total Requests that returned no answer.\n"
    << "# TYPE routenlp_cascade_requests_failed_total counter\n"
    << "routenlp_cascade_requests_failed_total " << I.failed.load() << "\n";
  std::shared_lock<std::shared_mutex> l(I.metrics_mu);
  struct Series {
    const char* name;
    const char* help;
    const char* type;
    std::function<std::string(const TierCounters&)> value;
  };
  const std::vector<Series> series = {
      {"routenlp_cascade_tier_calls_total", "Tier calls.", "counter",
       [](const TierCounters& c) { return std::to_string(c.calls.load()); }},
      {"routenlp_cascade_tier_accepts_total", "Answers accepted by the threshold.", "counter",
       [](const TierCounters& c) { return std::to_string(c.accepts.load()); }},
      {"routenlp_cascade_tier_escalations_total", "Answers escalated (u > delta).", "counter",
       [](const TierCounters& c) { return std::to_string(c.escalations.load()); }},
      {"routenlp_cascade_tier_final_total", "Answers returned as the last allowed tier.",
       "counter", [](const TierCounters& c) { return std::to_string(c.finals.load()); }},
      {"routenlp_cascade_tier_errors_total", "Tier errors, timeouts and exceptions.", "counter",
       [](const TierCounters& c) { return std::to_string(c.errors.load()); }},
      {"routenlp_cascade_tier_skipped_total", "Tiers not called (budget, deadline, cancel).",
       "counter", [](const TierCounters& c) { return std::to_string(c.skipped.load()); }},
      {"routenlp_cascade_tier_cost_usd_total", "USD spent on the tier.", "counter",
       [](const TierCounters& c) { return detail::prometheus_number(c.cost_nano_usd.load() * 1e-9); }},
      {"routenlp_cascade_tier_audited_total", "Audited answers with a label.", "counter",
       [](const TierCounters& c) { return std::to_string(c.audited.load()); }},
      {"routenlp_cascade_tier_audited_bad_total", "Audited answers labeled unacceptable.",
       "counter", [](const TierCounters& c) { return std::to_string(c.audited_bad.load()); }},
      {"routenlp_cascade_tier_violation_rate", "Audited share of unacceptable answers.", "gauge",
       [](const TierCounters& c) {
         uint64_t n = c.audited.load();
         return n ? detail::prometheus_number(static_cast<double>(c.audited_bad.load()) / n) : std::string("NaN");
       }},
  };
  for (const auto& s : series) {
    o << "# HELP " << s.name << " " << s.help << "\n# TYPE " << s.name << " " << s.type << "\n";
    for (const auto& kv : I.metrics)
      for (size_t k = 0; k < kv.second->tiers.size(); ++k)
        o << s.name << "{tier=\"" << detail::prometheus_label(I.tiers[k]->name()) << "\",task=\""
          << detail::prometheus_label(kv.first) << "\"} " << s.value(*kv.second->tiers[k]) << "\n";
  }
  const char* h = "routenlp_cascade_tier_latency_ms";
  o << "# HELP " << h << " Tier call latency measured by the engine.\n# TYPE " << h
    << " histogram\n";
  for (const auto& kv : I.metrics)
    for (size_t k = 0; k < kv.second->tiers.size(); ++k) {
      const TierCounters& c = *kv.second->tiers[k];
      std::string lab = "tier=\"" + detail::prometheus_label(I.tiers[k]->name()) + "\",task=\"" +
                        detail::prometheus_label(kv.first) + "\"";
      uint64_t cum = 0;
      for (size_t b = 0; b < I.opt.latency_buckets_ms.size(); ++b) {
        cum += c.buckets[b].load();
        o << h << "_bucket{" << lab << ",le=\"" << detail::prometheus_number(I.opt.latency_buckets_ms[b])
          << "\"} " << cum << "\n";
      }
      cum += c.buckets[I.opt.latency_buckets_ms.size()].load();
      o << h << "_bucket{" << lab << ",le=\"+Inf\"} " << cum << "\n";
      o << h << "_sum{" << lab << "} " << detail::prometheus_number(c.latency_us_sum.load() * 1e-3) << "\n";
      o << h << "_count{" << lab << "} " << cum << "\n";
    }
  // Online recalibration: where each cell's threshold stands and its drift alarms.
  if (I.opt.online) o << I.opt.online->metrics_prometheus();
  return o.str();
}

}  // namespace routenlp
