// Runtime inspection: which libblas.so.3 the dynamic linker actually loaded.
#include "routenlp/encoder/runtime.hpp"

#include <link.h>
#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "encoder/cpu_kernels.hpp"

namespace routenlp {
namespace detail {
void torch_runtime(RuntimeInfo& info);  // torch_runtime.cpp, or the stub below
}

namespace {
int find_blas(struct dl_phdr_info* phdr, size_t, void* data) {
  const char* name = phdr->dlpi_name;
  if (name == nullptr) return 0;
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  if (std::strncmp(base, "libblas.so", 10) == 0 || std::strncmp(base, "libopenblas", 11) == 0) {
    *static_cast<std::string*>(data) = name;
    return 1;
  }
  return 0;
}
}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  dl_iterate_phdr(find_blas, &info.blas_library);
  // libblas.so.3 is an alternatives symlink: resolve it to see which implementation it is.
  if (!info.blas_library.empty()) {
    if (char* real = ::realpath(info.blas_library.c_str(), nullptr)) {
      info.blas_library = real;
      std::free(real);
    }
  }
  // Debian's reference BLAS lives in .../blas/; OpenBLAS variants in .../openblas-*/.
  info.blas_is_reference = info.blas_library.find("/blas/") != std::string::npos &&
                           info.blas_library.find("openblas") == std::string::npos;
  if (const char* p = std::getenv("OMP_WAIT_POLICY")) info.omp_wait_policy = p;
  info.cpu_kernels = detail::cpu_isa_name(detail::cpu_isa_active());
  detail::torch_runtime(info);
  return info;
}

std::string runtime_warnings(const RuntimeInfo& info) {
  std::string w;
  if (info.torch_available && info.blas_is_reference) {
    w += "WARNING: libtorch is using the reference BLAS (" + info.blas_library +
         "); the encoder runs ~20x slower. Install libopenblas0-openmp "
         "(scripts/install-deps.sh).\n";
  }
  if (info.torch_available && info.torch_intra_op_threads > 1 && info.omp_wait_policy.empty()) {
    w += "NOTE: OMP_WAIT_POLICY is unset with " + std::to_string(info.torch_intra_op_threads) +
         " OpenMP threads; on small CPUs the default busy-wait made libtorch ~2x slower. "
         "Set OMP_WAIT_POLICY=PASSIVE (docs/threading.md).\n";
  }
  return w;
}

#ifndef ROUTENLP_HAVE_TORCH
namespace detail {
void torch_runtime(RuntimeInfo& info) { info.torch_available = false; }
}  // namespace detail
#endif

}  // namespace routenlp
