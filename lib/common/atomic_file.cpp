#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

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

void write_dir_atomic(const std::string& dir, const std::string& who,
                      const std::function<void(const std::filesystem::path& tmp_dir)>& fill) {
  namespace fs = std::filesystem;
  if (dir.empty()) throw Error(Status::invalid_argument, who + ": empty directory name");
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error(Status::io, who + ": cannot create directory " + parent.string() + ": " + ec.message());
  const std::string tag = "." + std::to_string(::getpid()) + "." + std::to_string(g_counter++);
  const fs::path tmp = target.string() + ".tmp" + tag;
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec)
    throw Error(Status::io, who + ": cannot create directory " + tmp.string() + ": " + ec.message());
  try {
    fill(tmp);
    // Swap into place: an existing directory moves aside first and is removed last.
    const fs::path old = target.string() + ".old" + tag;
    const bool had = fs::exists(target, ec);
    if (had) {
      fs::rename(target, old, ec);
      if (ec) throw Error(Status::io, who + ": cannot replace " + target.string() + ": " + ec.message());
    }
    fs::rename(tmp, target, ec);
    if (ec) {
      std::error_code ec2;
      if (had) fs::rename(old, target, ec2);
      throw Error(Status::io, who + ": cannot rename " + tmp.string() + " to " + target.string() +
                                  ": " + ec.message());
    }
    if (had) fs::remove_all(old, ec);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(Status::io, who + ": cannot write " + target.string() + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace routenlp::detail
