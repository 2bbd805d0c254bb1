// Location of the bundled bert-base-uncased vocabulary.
#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "routenlp/text/tokenizer.hpp"

#ifndef RN_SOURCE_VOCAB_DIR
#error "RN_SOURCE_VOCAB_DIR must be defined by lib/text/CMakeLists.txt"
#endif

namespace routenlp {

namespace {
constexpr const char* kVocabFile = "bert-base-uncased-vocab.txt";
bool readable(const std::string& p) { return std::ifstream(p).good(); }

// <dir of libroutenlp>/../share/routenlp/vocab/<file>: a relocated install.
std::string next_to_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&default_vocab_path), &info) == 0 || info.dli_fname == nullptr)
    return {};
  std::string lib = info.dli_fname;
  size_t slash = lib.rfind('/');
  if (slash == std::string::npos) return {};
  return lib.substr(0, slash) + "/../share/routenlp/vocab/" + kVocabFile;
}
}  // namespace

std::string default_vocab_path() {
  if (const char* dir = std::getenv("ROUTENLP_DATA_DIR"); dir != nullptr && *dir != '\0')
    return std::string(dir) + "/vocab/" + kVocabFile;
  // 1. the source tree this library was built from (build-tree use);
  std::string src = std::string(RN_SOURCE_VOCAB_DIR) + "/" + kVocabFile;
  if (readable(src)) return src;
  // 2. the configured install location; 3. beside a relocated library.
  std::string inst = std::string(RN_INSTALL_VOCAB_DIR) + "/" + kVocabFile;
  if (readable(inst)) return inst;
  std::string rel = next_to_library();
  if (!rel.empty() && readable(rel)) return rel;
  return inst;
}

}  // namespace routenlp
