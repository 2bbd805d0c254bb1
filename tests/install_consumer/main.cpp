// Consumes the *installed* routenlp package: C++ API and C ABI from one program.
#include <routenlp/routenlp.h>
#include <routenlp/routenlp.hpp>

#include <cstdio>

int main() {
  if (rn_version_number() != RN_VERSION_NUMBER) return 1;
  auto v = routenlp::library_version();
  if (v.major != RN_VERSION_MAJOR || v.minor != RN_VERSION_MINOR) return 1;
  try {
    throw routenlp::Error(routenlp::Status::parse, "x");
  } catch (const routenlp::Error& e) {
    if (e.code() != routenlp::Status::parse) return 1;
  }
  std::printf("installed routenlp %s works\n", routenlp::library_version_string().c_str());
  return 0;
}
