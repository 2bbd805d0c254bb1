// Shared helpers for the fuzz targets (docs/testing.md, "Fuzzing").
//
// Every target is one LLVMFuzzerTestOneInput. Built with ROUTENLP_FUZZ it links libFuzzer's
// main; in a normal test build fuzz/replay_main.cpp links all of them into one executable that
// replays fuzz/corpus/<target> and fuzz/regressions/<target> under ctest.
//
// The contract a target checks: a reader either returns or throws routenlp::Error. Any other
// exception (std::out_of_range from a stray .at(), nlohmann/yaml-cpp exceptions that escaped,
// std::bad_alloc from a size taken on trust) is a bug and aborts, and so does every sanitizer
// report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "routenlp/error.hpp"

namespace rn_fuzz {

// Runs one input through `body`; routenlp::Error is an expected outcome, anything else aborts.
template <class F>
int run(const char* target, F&& body) {
  try {
    body();
  } catch (const routenlp::Error&) {
    // Rejected input: the reader did its job.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz %s: escaped exception %s: %s\n", target, typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz %s: escaped non-std exception\n", target);
    std::abort();
  }
  return 0;
}

// A property that must hold for an accepted input (a round trip, an invariant): aborts with a
// message when it does not.
inline void check(bool ok, const char* target, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz %s: property failed: %s\n", target, what.c_str());
    std::abort();
  }
}

// A private directory for this process (created on first use, removed at exit).
const std::string& temp_dir();

// Writes bytes to temp_dir()/name (replacing it) and returns the path.
std::string write_temp(const std::string& name, const uint8_t* data, size_t size);
std::string write_temp(const std::string& name, const std::string& text);

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace rn_fuzz
