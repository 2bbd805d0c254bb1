#include "routenlp/error.hpp"

namespace routenlp {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::ok: return "ok";
    case Status::invalid_argument: return "invalid_argument";
    case Status::io: return "io";
    case Status::parse: return "parse";
    case Status::model: return "model";
    case Status::tier: return "tier";
    case Status::timeout: return "timeout";
    case Status::cancelled: return "cancelled";
    case Status::no_memory: return "no_memory";
    case Status::internal: return "internal";
    case Status::callback: return "callback";
    case Status::not_supported: return "not_supported";
    case Status::budget: return "budget";
  }
  return "unknown";
}

}  // namespace routenlp
