#include "text/unicode.hpp"

#include <algorithm>

#include "text/unicode_tables.inc"

namespace routenlp::detail::uni {

uint8_t flags(char32_t cp) noexcept {
  if (cp >= 0x110000) return 0;
  return kStage2[static_cast<size_t>(kStage1[cp >> 8]) * 256 + (cp & 0xFF)];
}

namespace {
template <size_t N>
const MapEntry* find_entry(const MapEntry (&table)[N], char32_t cp) noexcept {
  const MapEntry* it = std::lower_bound(table, table + N, static_cast<uint32_t>(cp),
                                        [](const MapEntry& e, uint32_t c) { return e.cp < c; });
  return (it != table + N && it->cp == cp) ? it : nullptr;
}
}  // namespace

size_t lower(char32_t cp, char32_t out[3]) noexcept {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  const MapEntry* e = find_entry(kLowerMap, cp);
  if (e == nullptr) {
    out[0] = cp;
    return 1;
  }
  for (uint32_t k = 0; k < e->len; ++k) out[k] = kLowerPool[e->off + k];
  return e->len;
}

size_t decompose(char32_t cp, char32_t out[18]) noexcept {
  // Hangul syllables decompose algorithmically (Unicode 3.12).
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out[0] = kLBase + s / kNCount;
    out[1] = kVBase + (s % kNCount) / kTCount;
    char32_t t = s % kTCount;
    if (t == 0) return 2;
    out[2] = kTBase + t;
    return 3;
  }
  const MapEntry* e = find_entry(kDecompMap, cp);
  if (e == nullptr) {
    out[0] = cp;
    return 1;
  }
  for (uint32_t k = 0; k < e->len; ++k) out[k] = kDecompPool[e->off + k];
  return e->len;
}

uint32_t ccc(char32_t cp) noexcept {
  constexpr size_t n = sizeof(kCccRanges) / sizeof(kCccRanges[0]);
  const CccRange* it = std::lower_bound(kCccRanges, kCccRanges + n, static_cast<uint32_t>(cp),
                                        [](const CccRange& r, uint32_t c) { return r.last < c; });
  return (it != kCccRanges + n && it->first <= cp) ? it->ccc : 0;
}

}  // namespace routenlp::detail::uni
