// Library version, as compiled into the shared library (compare with the header's macros).
#pragma once

#include <string>

#include "routenlp/export.h"

namespace routenlp {

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;
};

// Version of the loaded shared library.
RN_API Version library_version() noexcept;
// "0.1.0"
RN_API std::string library_version_string();

}  // namespace routenlp
