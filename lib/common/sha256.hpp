// SHA-256 (FIPS 180-4) for artifact manifests: detects a tampered or truncated file.
// Internal header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace routenlp::detail {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// Streams the file in chunks (artifact weights can be large). Throws Error(io) naming it.
std::string sha256_file_hex(const std::string& path);

}  // namespace routenlp::detail
