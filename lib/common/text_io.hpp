// File reading with errors that name the file. Internal header.
#pragma once

#include <fstream>
#include <string>

namespace routenlp::detail {

// Size caps of whole-file reads: a device or a runaway file (/dev/zero, a log passed by
// mistake) is refused once it passes the cap instead of exhausting memory.
constexpr size_t kMaxConfigFileBytes = size_t{256} << 20;   // JSON / YAML / vocab files
constexpr size_t kMaxWeightsFileBytes = size_t{16} << 30;   // safetensors weights

// Whole file as bytes, at most max_bytes. Throws Error(io) naming the path (and the cap).
std::string read_file(const std::string& path, size_t max_bytes = kMaxConfigFileBytes);

// Streams a text file line by line, tracking 1-based line numbers; strips "\r\n" endings.
class LineReader {
 public:
  explicit LineReader(const std::string& path);  // throws Error(io)
  bool next(std::string& line);                   // false at end of file
  size_t line_number() const { return line_no_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
  size_t line_no_ = 0;
};

}  // namespace routenlp::detail
