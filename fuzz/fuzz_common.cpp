#include "fuzz_common.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace rn_fuzz {

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string base = std::filesystem::temp_directory_path().string() + "/rn-fuzz-XXXXXX";
    if (!mkdtemp(base.data())) {
      std::perror("rn_fuzz: mkdtemp");
      std::abort();
    }
    path = base;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::string& temp_dir() {
  static TempDir dir;
  return dir.path;
}

std::string write_temp(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "rn_fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

std::string write_temp(const std::string& name, const std::string& text) {
  return write_temp(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace rn_fuzz
