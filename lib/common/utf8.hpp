// UTF-8 validation and repair. Internal header.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace routenlp::detail {

// Byte offset of the first invalid UTF-8 sequence, or std::string_view::npos if valid.
// Rejects overlongs, surrogates and code points above U+10FFFF.
size_t find_invalid_utf8(std::string_view s) noexcept;

// Copy of s with every invalid sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);

// Decode one code point at s[i]; advances i. Invalid input yields U+FFFD and advances 1 byte.
char32_t decode_utf8(std::string_view s, size_t& i) noexcept;

// Append the UTF-8 encoding of cp.
void append_utf8(std::string& out, char32_t cp);

}  // namespace routenlp::detail
