#include "common/text_io.hpp"

#include <cerrno>
#include <cstring>
#include <sstream>

#include "routenlp/error.hpp"

namespace routenlp::detail {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Status::io, path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(Status::io, path + ": read failed");
  return ss.str();
}

LineReader::LineReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw Error(Status::io, path + ": cannot open: " + std::strerror(errno));
}

bool LineReader::next(std::string& line) {
  if (!std::getline(in_, line)) {
    if (in_.bad()) throw Error(Status::io, path_ + ": read failed");
    return false;
  }
  ++line_no_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace routenlp::detail
