// routenlp's single C++ error type. Its code is the same number the C ABI returns as rn_status.
#pragma once

#include <stdexcept>
#include <string>

#include "routenlp/export.h"

namespace routenlp {

// Mirrors rn_status in <routenlp/routenlp.h>; values never change once released.
enum class Status : int {
  ok = 0,
  invalid_argument = -1,  // a caller passed something that cannot be used
  io = -2,                // file could not be opened, read, written or renamed
  parse = -3,             // malformed file content (JSON, YAML, CSV, safetensors, ...)
  model = -4,             // model weights/config inconsistent or unusable
  tier = -5,              // a tier backend failed
  timeout = -6,           // a deadline passed
  cancelled = -7,         // the caller cancelled
  no_memory = -8,
  internal = -9,          // a bug in routenlp
  callback = -10,         // a host callback reported its own error
  not_supported = -11,    // feature not compiled in / not available on this device
  budget = -12,           // a dollar budget was exhausted
};

// Short stable name of a status ("invalid_argument", ...).
RN_API const char* status_name(Status s) noexcept;

// Every routenlp function that fails throws this (or std::bad_alloc).
class RN_API Error : public std::runtime_error {
 public:
  Error(Status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Status code() const noexcept { return code_; }

 private:
  Status code_;
};

}  // namespace routenlp
