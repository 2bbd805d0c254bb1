// Prometheus text-format helpers shared by the engine's and the online recalibrator's metrics.
// Internal header.
#pragma once

#include <string>

namespace routenlp::detail {

// A label value with backslash, double quote and newline escaped (text exposition format).
inline std::string prometheus_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace routenlp::detail
