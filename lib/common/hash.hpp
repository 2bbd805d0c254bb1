// Stable 64-bit hash of a string (FNV-1a with a seed, then a murmur3 finaliser): used where a
// decision must be a deterministic function of an id (audit sampling, ...). Internal header.
#pragma once

#include <cstdint>
#include <string_view>

namespace routenlp::detail {

inline uint64_t hash_id(std::string_view s, uint64_t seed) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace routenlp::detail
