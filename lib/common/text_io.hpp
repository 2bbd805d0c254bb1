// File reading with errors that name the file. Internal header.
#pragma once

#include <fstream>
#include <string>

namespace routenlp::detail {

// Whole file as bytes. Throws Error(io) naming the path.
std::string read_file(const std::string& path);

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
