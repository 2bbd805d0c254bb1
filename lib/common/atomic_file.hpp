// Writes a file under a temporary name and renames it into place on commit(), so a crash or
// error never leaves a half-written output. Internal header.
#pragma once

#include <filesystem>
#include <fstream>
#include <functional>
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

// Writes a directory (a saved router, tier or pipeline) as one step: `fill` writes its files
// into a fresh "<dir>.tmp.<pid>.<n>" beside it, then an existing `dir` is moved aside, the
// temporary takes its name and the old one is removed (put back if the swap fails). On any
// error the temporary is removed and `dir` is left as it was; filesystem errors become
// Error(io) prefixed with `who`. Creates missing parent directories.
void write_dir_atomic(const std::string& dir, const std::string& who,
                      const std::function<void(const std::filesystem::path& tmp_dir)>& fill);

}  // namespace routenlp::detail
