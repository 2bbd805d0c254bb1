// Keyed normal and log-normal draws (see hash.hpp).
#include "data/hash.hpp"

#include <cmath>

namespace routenlp::detail {

double keyed_normal(std::string_view key, std::string_view salt) noexcept {
  uint64_t h = fnv1a64(key);
  h = fnv1a64("\x1f", h);
  h = fnv1a64(salt, h);
  uint64_t a = splitmix64(h);
  uint64_t b = splitmix64(a);
  const double scale = 1.0 / 9007199254740992.0;  // 2^-53
  double u1 = (static_cast<double>(a >> 11) + 1.0) * scale;  // (0, 1]
  double u2 = static_cast<double>(b >> 11) * scale;          // [0, 1)
  const double two_pi = 6.283185307179586476925286766559;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

double lognormal_latency(double p50, double p99, std::string_view query_id,
                         std::string_view tier) noexcept {
  if (!(p50 > 0.0)) return 0.0;
  const double z99 = 2.3263478740408408;  // standard normal 0.99 quantile
  double sigma = p99 > p50 ? std::log(p99 / p50) / z99 : 0.0;
  return p50 * std::exp(sigma * keyed_normal(query_id, tier));
}

}  // namespace routenlp::detail
