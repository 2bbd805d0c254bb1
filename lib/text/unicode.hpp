// Unicode property look-ups for the BERT normaliser (generated tables). Internal header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace routenlp::detail::uni {

// Property bits returned by flags().
constexpr uint8_t kDrop = 1;     // removed by clean_text (NUL, U+FFFD, controls but \t\n\r)
constexpr uint8_t kWs = 2;       // whitespace (\t \n \r and White_Space)
constexpr uint8_t kPunct = 4;    // BERT punctuation (ASCII symbols and P*)
constexpr uint8_t kMn = 8;       // non-spacing mark, removed by strip_accents
constexpr uint8_t kLower = 16;   // has a lower-case mapping
constexpr uint8_t kDecomp = 32;  // has a canonical decomposition
constexpr uint8_t kCcc = 64;     // canonical combining class > 0
constexpr uint8_t kCjk = 128;    // CJK ideograph (BERT's ranges)

struct MapEntry {
  uint32_t cp;
  uint32_t off;
  uint32_t len;
};
struct CccRange {
  uint32_t first, last;
  uint32_t ccc;
};

// Property bits of a code point (kDrop, kWs, kPunct, kMn, kLower, kDecomp, kCcc, kCjk).
uint8_t flags(char32_t cp) noexcept;
// Full lower-case mapping (1-3 code points) into out; returns its length.
size_t lower(char32_t cp, char32_t out[3]) noexcept;
// Full canonical decomposition (Hangul included) into out (room for 18); returns its length.
size_t decompose(char32_t cp, char32_t out[18]) noexcept;
// Canonical combining class (0 for starters).
uint32_t ccc(char32_t cp) noexcept;

}  // namespace routenlp::detail::uni
