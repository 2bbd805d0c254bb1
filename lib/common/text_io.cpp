#include "common/text_io.hpp"

#include <cerrno>
#include <cstring>

#include "routenlp/error.hpp"

namespace routenlp::detail {

std::string read_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Status::io, path + ": cannot open: " + std::strerror(errno));
  // Chunked, so a file without an end (a device) stops at the cap.
  std::string out;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    const size_t got = static_cast<size_t>(in.gcount());
    if (out.size() + got > max_bytes)
      throw Error(Status::io, path + ": larger than the " + std::to_string(max_bytes >> 20) +
                                  " MiB limit for this kind of file");
    out.append(buf, got);
  }
  if (in.bad()) throw Error(Status::io, path + ": read failed");
  return out;
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
