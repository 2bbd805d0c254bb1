// The current UTC time as ISO 8601 ("2026-12-02T16:50:00Z") for provenance fields. Internal.
#pragma once

#include <ctime>
#include <string>

namespace routenlp::detail {

inline std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace routenlp::detail
