// The libtorch part of runtime_info(): BLAS backend and thread settings; kept to light ATen headers
// (compile time).
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include "routenlp/encoder/runtime.hpp"

namespace routenlp::detail {

void torch_runtime(RuntimeInfo& info) {
  info.torch_available = true;
  info.cuda_available = at::hasCUDA();
  info.torch_intra_op_threads = at::get_num_threads();
}

}  // namespace routenlp::detail
