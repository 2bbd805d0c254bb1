// `routenlp doctor`: report the runtime (BLAS backend, threads, devices) and warn loudly.
#include <cstdio>

#include "commands.hpp"
#include "routenlp/encoder/runtime.hpp"
#include "routenlp/version.hpp"

namespace routenlp::cli {

void register_doctor(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("doctor", "Check the runtime: BLAS backend, threads, CUDA");
  cmd->callback([&action] {
    action = [] {
      auto info = runtime_info();
      std::printf("routenlp %s\n", library_version_string().c_str());
      std::printf("libtorch:          %s\n", info.torch_available ? "yes" : "no (built without)");
      std::printf("CUDA:              %s\n", info.cuda_available ? "available" : "not available");
      std::printf("BLAS loaded:       %s\n",
                  info.blas_library.empty() ? "(none yet)" : info.blas_library.c_str());
      std::printf("intra-op threads:  %d\n", info.torch_intra_op_threads);
      std::printf("OMP_WAIT_POLICY:   %s\n",
                  info.omp_wait_policy.empty() ? "(unset)" : info.omp_wait_policy.c_str());
      std::printf("CPU kernels:       %s\n", info.cpu_kernels.c_str());
      auto w = runtime_warnings(info);
      if (!w.empty()) {
        std::fprintf(stderr, "%s", w.c_str());
        return 1;
      }
      std::printf("OK\n");
      return 0;
    };
  });
}

}  // namespace routenlp::cli
