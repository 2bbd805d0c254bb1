// Location of the bundled bert-base-uncased vocabulary.
#include <cstdlib>
#include <fstream>
#include <string>

#include "routenlp/tokenizer.hpp"

#ifndef RN_SOURCE_VOCAB_DIR
#error "RN_SOURCE_VOCAB_DIR must be defined by lib/text/CMakeLists.txt"
#endif

namespace routenlp {

namespace {
constexpr const char* kVocabFile = "bert-base-uncased-vocab.txt";
bool readable(const std::string& p) { return std::ifstream(p).good(); }
}  // namespace

std::string default_vocab_path() {
  if (const char* dir = std::getenv("ROUTENLP_DATA_DIR"); dir != nullptr && *dir != '\0')
    return std::string(dir) + "/vocab/" + kVocabFile;
  // The source tree this library was built from (build-tree use), then the install location.
  std::string src = std::string(RN_SOURCE_VOCAB_DIR) + "/" + kVocabFile;
  std::string inst = std::string(RN_INSTALL_VOCAB_DIR) + "/" + kVocabFile;
  if (readable(src) || !readable(inst)) return readable(src) ? src : inst;
  return inst;
}

}  // namespace routenlp
