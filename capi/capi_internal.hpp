// Shared machinery of the C ABI: the thread-local last error and the guard that keeps every
// exception on this side of extern "C". Every C function body runs inside rn::guard().
#pragma once

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "routenlp/error.hpp"
#include "routenlp/routenlp.h"

namespace routenlp {
struct CascadeRequest;
}
struct rn_cascade_request;

// The guard returns a routenlp::Error's code as the rn_status: every value must match.
#define RN_STATUS_MATCHES(cpp, c) \
  static_assert(static_cast<int>(routenlp::Status::cpp) == static_cast<int>(c), \
                "routenlp::Status::" #cpp " != " #c)
RN_STATUS_MATCHES(ok, RN_OK);
RN_STATUS_MATCHES(invalid_argument, RN_ERR_INVALID_ARGUMENT);
RN_STATUS_MATCHES(io, RN_ERR_IO);
RN_STATUS_MATCHES(parse, RN_ERR_PARSE);
RN_STATUS_MATCHES(model, RN_ERR_MODEL);
RN_STATUS_MATCHES(tier, RN_ERR_TIER);
RN_STATUS_MATCHES(timeout, RN_ERR_TIMEOUT);
RN_STATUS_MATCHES(cancelled, RN_ERR_CANCELLED);
RN_STATUS_MATCHES(no_memory, RN_ERR_NO_MEMORY);
RN_STATUS_MATCHES(internal, RN_ERR_INTERNAL);
RN_STATUS_MATCHES(callback, RN_ERR_CALLBACK);
RN_STATUS_MATCHES(not_supported, RN_ERR_NOT_SUPPORTED);
RN_STATUS_MATCHES(budget, RN_ERR_BUDGET);
#undef RN_STATUS_MATCHES

namespace rn {

// Thread-local message read by rn_last_error().
std::string& last_error();

inline rn_status fail(rn_status code, std::string message) {
  last_error() = std::move(message);
  return code;
}

// Runs body (returning void or rn_status); maps exceptions to status codes + last error.
template <class F>
rn_status guard(const char* fn, F&& body) noexcept {
  try {
    last_error().clear();
    if constexpr (std::is_same_v<decltype(body()), void>) {
      body();
      return RN_OK;
    } else {
      return body();
    }
  } catch (const routenlp::Error& e) {
    return fail(static_cast<rn_status>(e.code()), std::string(fn) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return fail(RN_ERR_NO_MEMORY, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(RN_ERR_INTERNAL, std::string(fn) + ": " + e.what());
  } catch (...) {
    return fail(RN_ERR_INTERNAL, std::string(fn) + ": unknown exception");
  }
}

// Argument checks that produce a clear message naming the function and parameter.
#define RN_REQUIRE_ARG(cond, fn, what)                                                    \
  do {                                                                                    \
    if (!(cond)) return ::rn::fail(RN_ERR_INVALID_ARGUMENT, std::string(fn) + ": " + what); \
  } while (0)

// Validates a params struct's struct_size: at least the first release's size, at most ours.
template <class P>
bool struct_size_ok(const P* p, size_t first_release_size) {
  return p != nullptr && p->struct_size >= first_release_size && p->struct_size <= sizeof(P);
}

// A caller's struct (possibly an older, smaller one; NULL: defaults) as a full current one:
// the fields it lacks keep `defaults`. Check struct_size_ok first.
template <class P>
P read_struct(const P* p, P defaults) {
  if (p) std::memcpy(&defaults, p, std::min<size_t>(p->struct_size, sizeof(P)));
  defaults.struct_size = sizeof(P);
  return defaults;
}

// First released sizes of structs shared by several capi_*.cpp files.
extern const size_t kCascadeParamsV1;
extern const size_t kCascadeRequestV1;

// Checks a cascade request against a cascade of `tiers` tiers (struct_size, strings, alpha,
// deadline, start/max tier, router p); `what` names it in the message.
rn_status check_request(const char* fn, const char* what, const rn_cascade_request* request,
                        size_t tiers);
// Lays the fields a C request sets (id, query, task, start/max tier, alpha, budget, deadline,
// router p) over r; fields left at their defaults keep r's value. request: read_struct'ed.
void apply_request_overrides(routenlp::CascadeRequest& r, const rn_cascade_request& request);

}  // namespace rn
