// C ABI: version, errors, runtime info.
#include <nlohmann/json.hpp>

#include "capi_internal.hpp"
#include "routenlp/encoder/runtime.hpp"
#include "routenlp/version.hpp"

namespace rn {
std::string& last_error() {
  thread_local std::string message;
  return message;
}
}  // namespace rn

extern "C" {

uint32_t rn_version_number(void) {
  auto v = routenlp::library_version();
  return static_cast<uint32_t>(v.major * 10000 + v.minor * 100 + v.patch);
}

const char* rn_version_string(void) {
  static const std::string s = routenlp::library_version_string();
  return s.c_str();
}

const char* rn_last_error(void) { return rn::last_error().c_str(); }

const char* rn_status_name(rn_status status) {
  switch (status) {
    case RN_OK: return "RN_OK";
    case RN_ERR_INVALID_ARGUMENT: return "RN_ERR_INVALID_ARGUMENT";
    case RN_ERR_IO: return "RN_ERR_IO";
    case RN_ERR_PARSE: return "RN_ERR_PARSE";
    case RN_ERR_MODEL: return "RN_ERR_MODEL";
    case RN_ERR_TIER: return "RN_ERR_TIER";
    case RN_ERR_TIMEOUT: return "RN_ERR_TIMEOUT";
    case RN_ERR_CANCELLED: return "RN_ERR_CANCELLED";
    case RN_ERR_NO_MEMORY: return "RN_ERR_NO_MEMORY";
    case RN_ERR_INTERNAL: return "RN_ERR_INTERNAL";
    case RN_ERR_CALLBACK: return "RN_ERR_CALLBACK";
    case RN_ERR_NOT_SUPPORTED: return "RN_ERR_NOT_SUPPORTED";
    case RN_ERR_BUDGET: return "RN_ERR_BUDGET";
  }
  return "RN_ERR_UNKNOWN";
}

rn_status rn_runtime_info_json(const char** out) {
  constexpr const char* fn = "rn_runtime_info_json";
  return rn::guard(fn, [&]() -> rn_status {
    RN_REQUIRE_ARG(out != nullptr, fn, "out is NULL");
    thread_local std::string buf;
    auto info = routenlp::runtime_info();
    nlohmann::json j = {{"torch_available", info.torch_available},
                        {"cuda_available", info.cuda_available},
                        {"blas_library", info.blas_library},
                        {"blas_is_reference", info.blas_is_reference},
                        {"torch_intra_op_threads", info.torch_intra_op_threads},
                        {"omp_wait_policy", info.omp_wait_policy},
                        {"cpu_kernels", info.cpu_kernels},
                        {"warnings", routenlp::runtime_warnings(info)}};
    buf = j.dump();
    *out = buf.c_str();
    return RN_OK;
  });
}

}  // extern "C"
