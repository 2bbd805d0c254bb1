// The cascade engine's state (internal): per-(tier, column) counters, the lazily started pool
// and CascadeEngine::Impl, shared by the tier loop (cascade_engine.cpp) and its Prometheus
// text (engine_metrics.cpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/hash.hpp"
#include "routenlp/cascade/engine.hpp"

namespace routenlp {
namespace detail {

// Per (tier, column) counters; all relaxed atomics.
struct TierCounters {
  std::atomic<uint64_t> calls{0}, accepts{0}, escalations{0}, finals{0}, errors{0}, skipped{0};
  std::atomic<uint64_t> cost_nano_usd{0}, latency_us_sum{0};
  std::atomic<uint64_t> audited{0}, audited_bad{0};
  std::unique_ptr<std::atomic<uint64_t>[]> buckets;  // size nb + 1 (last: +Inf)
  explicit TierCounters(size_t nb) : buckets(new std::atomic<uint64_t>[nb + 1]) {
    for (size_t i = 0; i <= nb; ++i) buckets[i].store(0, std::memory_order_relaxed);
  }
};

struct ColumnCounters {
  std::vector<std::unique_ptr<TierCounters>> tiers;
};

// Simple FIFO thread pool started on first use.
class Pool {
 public:
  explicit Pool(size_t n) : n_(n ? n : std::max(1u, std::thread::hardware_concurrency())) {}
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::function<void()> job) {
    std::call_once(started_, [&] {
      for (size_t i = 0; i < n_; ++i) threads_.emplace_back([this] { loop(); });
    });
    {
      std::lock_guard<std::mutex> l(mu_);
      q_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        job = std::move(q_.front());
        q_.pop_front();
      }
      job();
    }
  }
  size_t n_;
  std::once_flag started_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
};

struct AuditNote {
  std::string column;
  int tier = -1;
  bool accepted = false;
};

}  // namespace detail

using detail::AuditNote;
using detail::ColumnCounters;
using detail::TierCounters;

struct CascadeEngine::Impl {
  std::vector<std::shared_ptr<ModelTier>> tiers;
  CascadeOptions opt;
  std::shared_ptr<const ThresholdTable> table;  // std::atomic_load / atomic_store
  mutable std::atomic<uint64_t> next_id{0};
  uint64_t id_prefix = 0;
  // metrics
  mutable std::shared_mutex metrics_mu;
  mutable std::map<std::string, std::unique_ptr<ColumnCounters>> metrics;
  mutable std::atomic<uint64_t> requests{0}, failed{0};
  // audited decisions awaiting labels (metrics side)
  mutable std::mutex audit_mu;
  mutable std::unordered_map<std::string, AuditNote> audit;
  mutable std::deque<std::string> audit_order;
  mutable detail::Pool pool;

  Impl(size_t threads) : pool(threads) {}

  std::shared_ptr<const ThresholdTable> current() const {
    return opt.online ? opt.online->snapshot() : std::atomic_load(&table);
  }

  ColumnCounters& counters(const std::string& column) const {
    {
      std::shared_lock<std::shared_mutex> l(metrics_mu);
      auto it = metrics.find(column);
      if (it != metrics.end()) return *it->second;
    }
    std::unique_lock<std::shared_mutex> l(metrics_mu);
    auto& slot = metrics[column];
    if (!slot) {
      slot = std::make_unique<ColumnCounters>();
      for (size_t k = 0; k < tiers.size(); ++k)
        slot->tiers.push_back(std::make_unique<TierCounters>(opt.latency_buckets_ms.size()));
    }
    return *slot;
  }

  bool audited(const std::string& id) const {
    if (opt.online) return opt.online->should_audit(id);
    double x = static_cast<double>(detail::hash_id(id, 0x61756469) >> 11) * 0x1.0p-53;
    return x < opt.audit_rate;
  }

  void observe(TierCounters& c, const TraceEntry& e) const {
    c.calls.fetch_add(1, std::memory_order_relaxed);
    switch (e.decision) {
      case TraceDecision::accepted: c.accepts.fetch_add(1, std::memory_order_relaxed); break;
      case TraceDecision::escalated: c.escalations.fetch_add(1, std::memory_order_relaxed); break;
      case TraceDecision::final_answer: c.finals.fetch_add(1, std::memory_order_relaxed); break;
      case TraceDecision::error: c.errors.fetch_add(1, std::memory_order_relaxed); break;
      default: break;
    }
    if (e.cost > 0 && std::isfinite(e.cost))
      c.cost_nano_usd.fetch_add(static_cast<uint64_t>(std::llround(e.cost * 1e9)),
                                std::memory_order_relaxed);
    c.latency_us_sum.fetch_add(static_cast<uint64_t>(std::llround(e.latency_ms * 1e3)),
                               std::memory_order_relaxed);
    const auto& b = opt.latency_buckets_ms;
    size_t i = 0;
    while (i < b.size() && e.latency_ms > b[i]) ++i;
    c.buckets[i].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace routenlp
