// Shared machinery of the C ABI: the thread-local last error and the guard that keeps every
// exception on this side of extern "C". Every C function body runs inside rn::guard().
#pragma once

#include <new>
#include <string>
#include <utility>

#include "routenlp/error.hpp"
#include "routenlp/routenlp.h"

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

}  // namespace rn
