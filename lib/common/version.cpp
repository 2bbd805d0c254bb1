#include "routenlp/version.hpp"

#include <string>

namespace routenlp {

Version library_version() noexcept {
  return {ROUTENLP_VERSION_MAJOR, ROUTENLP_VERSION_MINOR, ROUTENLP_VERSION_PATCH};
}

std::string library_version_string() {
  return std::to_string(ROUTENLP_VERSION_MAJOR) + "." + std::to_string(ROUTENLP_VERSION_MINOR) +
         "." + std::to_string(ROUTENLP_VERSION_PATCH);
}

}  // namespace routenlp
