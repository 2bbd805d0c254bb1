// Deterministic hashing for splits and simulated latencies (FNV-1a: common/hash.hpp). Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/hash.hpp"

namespace routenlp::detail {

// splitmix64 finaliser (Steele, Lea, Flood 2014).
inline uint64_t splitmix64(uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Standard normal draw keyed by (key, salt): Box-Muller on two uniforms from splitmix64 of the
// FNV-1a hash of key + '\x1f' + salt.
double keyed_normal(std::string_view key, std::string_view salt) noexcept;

// Log-normal latency with median p50 and 99th percentile p99 (sigma = ln(p99/p50) / z_0.99),
// keyed by query id and tier name.
double lognormal_latency(double p50, double p99, std::string_view query_id,
                         std::string_view tier) noexcept;

}  // namespace routenlp::detail
