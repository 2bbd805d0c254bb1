#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "routenlp/error.hpp"

namespace routenlp::detail {

namespace {
std::atomic<unsigned> g_counter{0};

void fsync_path(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error(Status::invalid_argument, "output path is empty");
  tmp_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_counter++);
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) {
    throw Error(Status::io, path_ + ": cannot create temporary file " + tmp_ + ": " +
                                std::strerror(errno));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFileWriter::commit() {
  out_.flush();
  if (!out_) throw Error(Status::io, path_ + ": write failed (disk full?)");
  out_.close();
  fsync_path(tmp_);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    std::remove(tmp_.c_str());
    committed_ = true;  // nothing left to clean
    throw Error(Status::io, path_ + ": cannot rename temporary file into place: " +
                                std::strerror(err));
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFileWriter w(path);
  w.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  w.commit();
}

}  // namespace routenlp::detail
