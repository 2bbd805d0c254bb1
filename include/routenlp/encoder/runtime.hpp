// What the library found about its runtime: BLAS backend, threads, devices.
#pragma once

#include <string>

#include "routenlp/export.h"

namespace routenlp {

struct RuntimeInfo {
  bool torch_available = false;   // built with libtorch
  bool cuda_available = false;    // libtorch sees a CUDA device
  std::string blas_library;       // path of the libblas.so.3 actually loaded ("" if none)
  bool blas_is_reference = false; // true when the slow reference BLAS is loaded
  int torch_intra_op_threads = 0; // libtorch intra-op thread count (0 when no torch)
  std::string omp_wait_policy;    // OMP_WAIT_POLICY as seen by this process ("" if unset)
  std::string cpu_kernels;        // the encoder's own fp32 CPU kernels: "avx512", "avx2" or
                                  // "none" (libtorch ops; docs/encoder.md "CPU kernels")
};

// Inspect the running process. Thread-safe.
RN_API RuntimeInfo runtime_info();

// Human-readable warnings about the runtime (reference BLAS, ...); empty when all is well.
RN_API std::string runtime_warnings(const RuntimeInfo& info);

}  // namespace routenlp
