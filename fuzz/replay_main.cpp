// Replays fuzz inputs through the fuzz targets without libFuzzer, in any build:
//   fuzz_replay <target> <file or directory>...
// Directories are read one level deep, files in name order. A missing directory is skipped
// (fuzz/regressions/<target> exists only once a crash has been found). Exit 0 when every input
// ran; a failing input aborts (the target's own check or a sanitizer), after its name is printed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.inc"

namespace {

struct Target {
  const char* name;
  int (*entry)(const uint8_t*, size_t);
};

const Target kTargets[] = {RN_FUZZ_TARGET_TABLE};

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TARGET [FILE|DIR]...\ntargets:", argv[0]);
    for (const auto& t : kTargets) std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  const Target* target = nullptr;
  for (const auto& t : kTargets)
    if (std::strcmp(t.name, argv[1]) == 0) target = &t;
  if (!target) {
    std::fprintf(stderr, "%s: unknown target '%s'\n", argv[0], argv[1]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    fs::path p = argv[i];
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::exists(p, ec)) {
      inputs.push_back(p);
    }
  }
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "%s: cannot read %s\n", argv[0], p.c_str());
      return 1;
    }
    std::fprintf(stderr, "%s %s\n", target->name, p.c_str());
    std::fflush(stderr);
    // libFuzzer never passes a null pointer; keep that for empty files too.
    static const uint8_t kEmpty = 0;
    target->entry(bytes.empty() ? &kEmpty : reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%s: %zu inputs replayed\n", target->name, inputs.size());
  return 0;
}
