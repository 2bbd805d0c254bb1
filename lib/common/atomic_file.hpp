// Writes a file under a temporary name and renames it into place on commit(), so a crash or
// error never leaves a half-written output. Internal header.
#pragma once

#include <fstream>
#include <string>

namespace routenlp::detail {

class AtomicFileWriter {
 public:
  // Opens "<path>.tmp.<pid>.<n>" in the destination's directory. Throws Error(io).
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();  // removes the temporary file unless commit() succeeded
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  std::ofstream& stream() { return out_; }
  // Flushes, checks the stream, fsyncs and renames onto the destination. Throws Error(io).
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Convenience: atomically replace `path` with `content`.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace routenlp::detail
