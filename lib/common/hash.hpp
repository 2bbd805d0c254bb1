// Deterministic 64-bit hashing (internal): FNV-1a over bytes, and a seeded FNV-1a with a murmur3
// finaliser where a decision must be a well-mixed function of an id (audit sampling, mixtures).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace routenlp::detail {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

// FNV-1a 64 over the bytes of s, continuing from h.
inline uint64_t fnv1a64(std::string_view s, uint64_t h = kFnvOffset) noexcept {
  for (unsigned char c : s) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// h as 16 lower-case hex digits (how data hashes and fingerprints are written).
inline std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

inline uint64_t hash_id(std::string_view s, uint64_t seed) noexcept {
  uint64_t h = fnv1a64(s, kFnvOffset ^ seed);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace routenlp::detail
